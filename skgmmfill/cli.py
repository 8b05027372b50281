"""Command line: ``skgmmfill`` runs the course experiment on the bundled Netflix data."""

import argparse
import sys
import time

import numpy as np

from . import MaskedGaussianMixtureImputer
from .datasets import load_netflix
from .metrics import rmse


def course_experiment(n_components_list=(1, 12), seeds=range(5), out=None):
    """Fit the course's model for each K and seed; report likelihoods and RMSE.

    For each ``K``, one fit per seed with ``missing_values=0`` and the course's
    conventions; the best seed (highest log-likelihood) fills the matrix, which
    is scored against the complete matrix over all entries (the course's RMSE)
    and over the missing entries whose true rating is known.

    Returns
    -------
    results : dict
        ``{K: {"log_likelihoods": [...], "best_seed": s, "rmse_all": x,
        "rmse_missing": y}}``.
    """
    out = sys.stdout if out is None else out
    start = time.perf_counter()
    X, X_complete = load_netflix(missing_values=0)
    missing_known = (X == 0) & (X_complete != 0)
    print(f"Netflix matrix {X.shape[0]} x {X.shape[1]}, "
          f"{int((X != 0).sum()):,} ratings observed, {int((X == 0).sum()):,} missing.",
          file=out)
    print(f"\n{'K':>3} {'seed':>4} {'iters':>5} {'log-likelihood':>20} {'fit (s)':>8}", file=out)
    results = {}
    fit_seconds = 0.0
    for n_components in n_components_list:
        fits = []
        for seed in seeds:
            imputer = MaskedGaussianMixtureImputer(
                n_components, missing_values=0, random_state=seed, max_iter=1000
            )
            tic = time.perf_counter()
            imputer.fit(X)
            elapsed = time.perf_counter() - tic
            fit_seconds += elapsed
            log_likelihood = imputer.lower_bound_ * X.shape[0]
            fits.append((log_likelihood, seed, imputer))
            print(f"{n_components:>3} {seed:>4} {imputer.n_iter_:>5} "
                  f"{log_likelihood:>20.4f} {elapsed:>8.3f}", file=out)
        best_ll, best_seed, best = max(fits, key=lambda fit: fit[0])
        X_pred = best.transform(X)
        results[n_components] = {
            "log_likelihoods": [fit[0] for fit in fits],
            "best_seed": best_seed,
            "rmse_all": rmse(X_complete, X_pred),
            "rmse_missing": rmse(X_complete, X_pred, mask=missing_known),
        }
    print(f"\n{'K':>3} {'best seed':>9} {'best log-likelihood':>20} "
          f"{'RMSE (all)':>11} {'RMSE (missing, known)':>22}", file=out)
    for n_components, result in results.items():
        best_ll = max(result["log_likelihoods"])
        print(f"{n_components:>3} {result['best_seed']:>9} {best_ll:>20.4f} "
              f"{result['rmse_all']:>11.6f} {result['rmse_missing']:>22.6f}", file=out)
    print(f"\nfitting {fit_seconds:.2f} s, wall time {time.perf_counter() - start:.2f} s",
          file=out)
    return results


def main(argv=None):
    """Entry point of the ``skgmmfill`` command."""
    parser = argparse.ArgumentParser(
        prog="skgmmfill",
        description="Reproduce the course experiment: EM on the observed entries of "
        "the bundled 1200 x 1200 Netflix matrix for each K and seed, then fill "
        "the matrix with the best mixture and score it against the complete one.",
    )
    parser.add_argument("-k", "--n-components", type=int, nargs="+", default=[1, 12],
                        metavar="K", help="numbers of components (default: 1 12)")
    parser.add_argument("-s", "--seeds", type=int, nargs="+", default=list(range(5)),
                        metavar="SEED", help="random seeds (default: 0 1 2 3 4)")
    args = parser.parse_args(argv)
    if min(args.n_components) < 1:
        parser.error("--n-components must be positive integers")
    if min(args.seeds) < 0:
        parser.error("--seeds must be non-negative integers")
    course_experiment(args.n_components, args.seeds)
    return 0
