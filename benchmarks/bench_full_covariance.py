"""The "full" covariance type on tabular data: time and accuracy against the oracle.

Data: ``--n-samples`` rows from a known 3-component, 8-dimensional Gaussian
mixture with full covariances, 30 % of entries missing completely at random.
The table gives the fit time and iterations of ``covariance_type="full"``
(k-means start), its imputation RMSE against the oracle (the true parameters'
conditional means), IterativeImputer's, and the coverage of nominal 90 %
intervals from ``imputation_std``.

A second table gives the cost of one EM iteration (the fused E-step and
statistics, then the update) on incomplete data as a ratio to the same rows
complete, both timed in this process from the same starting parameters (best
of ``--repeat`` runs of 3 iterations, complete and incomplete alternated): the price of exact conditionals.
scikit-learn's GaussianMixture on the complete rows is timed beside them, to
show the complete-data baseline is not a slow one. The
shapes are those of the family-seam issue: 20,000 x 20 (K=5, 30 % missing),
3,000 x 64 (K=10, 70 %), 300 x 100 (K=2, 30 %), 8 x 8 patches of an image
(K=10, 70 % of pixels missing) and 300 x 400 (K=2, 30 %), the last also as
the wall time of a 5-iteration fit.

Run: ``python benchmarks/bench_full_covariance.py [--n-samples 100000]``.
"""

import argparse
import time
import warnings

import numpy as np
from sklearn.datasets import load_sample_image
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer
from sklearn.mixture import GaussianMixture

from skgmmfill import MaskedGaussianMixtureImputer
from skgmmfill._em import initialize_kmeans, run_em
from skgmmfill._family import Mixture
from skgmmfill._full import FullCovariance
from skgmmfill._observed import ObservedEntries
from skgmmfill.datasets import make_incomplete_mixture
from skgmmfill.image import _extract
from skgmmfill.metrics import rmse


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-samples", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"{'rows':>8} {'fit s':>6} {'iters':>5} {'patterns':>8} {'RMSE':>7} {'oracle':>7} "
          f"{'ratio':>6} {'Iterative':>9} {'90% cover':>9}")
    for n_samples in args.n_samples:
        X, X_missing, parameters = make_incomplete_mixture(n_samples, random_state=0)
        missing = np.isnan(X_missing)
        truth = Mixture(parameters["weights"], parameters["means"], parameters["covariances"])
        imputer = MaskedGaussianMixtureImputer(
            3, covariance_type="full", init_params="kmeans", random_state=0
        )
        tic = time.perf_counter()
        imputer.fit(X_missing)
        seconds = time.perf_counter() - tic
        model = rmse(X, imputer.transform(X_missing), mask=missing)
        observed = ObservedEntries.from_dense(X_missing, ~missing)
        resp, _ = FullCovariance().posterior(observed, truth)
        oracle = rmse(X, FullCovariance().impute(observed, resp, truth), mask=missing)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            iterative = rmse(X, IterativeImputer(random_state=0).fit_transform(X_missing), mask=missing)
        error = np.abs(X - imputer.transform(X_missing))[missing]
        cover = np.mean(error <= 1.6448536269514722 * imputer.imputation_std(X_missing)[missing])
        print(f"{n_samples:>8,} {seconds:>6.2f} {imputer.n_iter_:>5} {len(observed.pattern_labels[1]):>8} "
              f"{model:>7.4f} {oracle:>7.4f} {model / oracle:>6.3f} {iterative:>9.4f} {cover:>9.3f}")
    print(f"\n{'data':<26} {'K':>3} {'complete ms/iter':>16} {'incomplete ms/iter':>18} {'ratio':>6} "
          f"{'sklearn complete':>16}")
    for name, X_complete, X_missing, n_components in incomplete_tables():
        family = FullCovariance()
        complete = ObservedEntries.from_dense(X_complete, np.ones(X_complete.shape, dtype=bool))
        start = initialize_kmeans(complete, n_components, family, np.random.RandomState(0))
        timings = ([], [])
        for _ in range(args.repeat):  # alternated, so that a slow spell of the machine hits both
            for X, times in zip((X_complete, X_missing), timings):
                tic = time.perf_counter()
                observed = ObservedEntries.from_dense(X, ~np.isnan(X))  # pattern grouping included
                run_em(observed, start, family, max_iter=3, tol=-np.inf)
                times.append((time.perf_counter() - tic) / 3)
        milliseconds = [1000 * min(times) for times in timings]
        reference = GaussianMixture(n_components, max_iter=1, tol=0.0, random_state=0, warm_start=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reference.fit(X_complete)  # initialise, then time 3 iterations as above
            reference.set_params(max_iter=3)
            tic = time.perf_counter()
            reference.fit(X_complete)
        sklearn_ms = 1000 * (time.perf_counter() - tic) / 3
        print(f"{name:<26} {n_components:>3} {milliseconds[0]:>16.1f} {milliseconds[1]:>18.1f} "
              f"{milliseconds[1] / milliseconds[0]:>6.1f} {sklearn_ms:>16.1f}")
    _, X_wide, _ = make_incomplete_mixture(300, 400, weights=(0.5, 0.5), missing_fraction=0.3, random_state=0)
    imputer = MaskedGaussianMixtureImputer(2, covariance_type="full", init_params="kmeans", max_iter=5,
                                           tol=0.0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tic = time.perf_counter()
        imputer.fit(X_wide)
    print(f"\n300 x 400, 30 % missing, K=2: 5 iterations (k-means start included) in "
          f"{time.perf_counter() - tic:.1f} s")


def incomplete_tables():
    """``(name, X_complete, X_missing, n_components)`` for the ratio table."""
    for n_samples, n_features, n_components, fraction in (
        (20_000, 20, 5, 0.3), (3_000, 64, 10, 0.7), (300, 100, 2, 0.3), (300, 400, 2, 0.3)
    ):
        X, X_missing, _ = make_incomplete_mixture(
            n_samples, n_features, weights=np.full(n_components, 1 / n_components),
            missing_fraction=fraction, random_state=0,
        )
        yield f"{n_samples:,} x {n_features}, {fraction:.0%} missing", X, X_missing, n_components
    rng = np.random.RandomState(0)
    image = load_sample_image("china.jpg").mean(axis=2)[:128, :128] / 255
    patches = _extract(image, (8, 8))[::5]
    damaged = np.where(rng.uniform(size=patches.shape) < 0.7, np.nan, patches)
    keep = ~np.isnan(damaged).all(axis=1)
    yield f"8x8 patches {keep.sum()} x 64, 70 %", patches[keep], damaged[keep], 10


if __name__ == "__main__":
    main()
