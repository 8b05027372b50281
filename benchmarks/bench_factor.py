"""The factor family's speed: prize-shaped rating data, and a wide dense table.

Table 1, ``covariance_type="factor"`` with K=1, q=10 factors and biases on the
synthetic Netflix-prize-shaped CSR of ``bench_sparse_scale.py`` (17,770
movies; scale 0.1 is 48k users and 10 M ratings, 1.0 the full 100 M). One EM
iteration is set against the two products any alternating-least-squares
method needs per sweep, timed in the same process on the same matrix: the
mask times the ``d x q^2`` per-item outer products (user step) and the
transposed mask times the ``n x q^2`` per-user ones (item step). An EM
iteration is timed as the library runs it (large sparse input is cut into
one row block per core on a thread pool) and on one thread: three
iterations of the EM driver from a k-means start, set-up not counted.
That model (loading prior 100, no other prior) is then set against
``PRESET_RATINGS``'s (each user's offset a factor and 20 factors with ARD on the loading precisions,
variational loadings, mean prior 25, the noise prior and the pattern prior's strength estimated), the same
with implicit feedback (``implicit_precision_prior=1``) and an earlier preset (the users' offsets
subtracted first, pattern strength 1), per iteration on both cores, in the same process; then the seconds of the data
preparation with biases (standardisation and the offsets' passes) with the fixed shrinkage 25 and with
``bias_shrinkage="auto"`` (one pass per empirical-Bayes step), and of the pass that starts the preset's fit
(column moments and sketches) with and without the pattern prior's co-observation sketch. Each scale runs
in a fresh process that reports its peak memory.

Table 2: a 300 x 400 table of rank 10 plus noise with 30 % of its entries
missing: a K=2, q=10 factor fit to convergence against diag and against
5 iterations of "full" (its cost per iteration grows with ``d^3``), with the
RMSE over the missing entries.

Run: ``python benchmarks/bench_factor.py [--scale 0.1 1.0]`` (scale 1.0
needs about 12 GB of memory).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_em_iteration import best_time  # noqa: E402
from bench_rating_models import PRESET_OFFSETS_FIRST  # noqa: E402
from bench_sparse_scale import memory_gib, one_thread, synthetic_ratings  # noqa: E402

from skgmmfill import PRESET_RATINGS, MaskedGaussianMixtureImputer, _observed  # noqa: E402
from skgmmfill._em import initialize_kmeans, prepare, run_em  # noqa: E402
from skgmmfill._factor import FactorCovariance  # noqa: E402
from skgmmfill._observed import ObservedEntries  # noqa: E402

N_FACTORS = 10


PLAIN = {"n_factors": N_FACTORS, "loading_precision_prior": 100.0}


def factor_options(params):
    """The options of ``params`` that :func:`seconds_per_iteration` takes: the factor family's and the mean prior."""
    return {name: params[name] for name in (*FactorCovariance.hyperparameters, "mean_precision_prior")
            if name in params}


PRESET = factor_options(PRESET_RATINGS)
MODELS = {
    "plain": PLAIN,  # the factor model the first rows of this table measured
    "preset": PRESET,  # PRESET_RATINGS: 20 variational factors with ARD, mean, noise and pattern priors
    "implicit": {**PRESET, "implicit_precision_prior": 1.0},
    "offsets first": factor_options(PRESET_OFFSETS_FIRST),  # an earlier preset: no offset factor, pattern 1
}


def seconds_per_iteration(X, n_iterations=3, mean_precision_prior=None, **family_options):
    """EM iterations as ``fit`` runs them (the driver's loop on the prepared
    data), from a k-means start; the set-up is not counted."""
    family = FactorCovariance(**family_options).for_features(X.shape[1])
    prepared = prepare(ObservedEntries.from_sparse(X), biases=True, bias_shrinkage=25.0,
                       mean_precision_prior=mean_precision_prior, row_offsets_in_model=family.models_row_offsets,
                       residual_moments=family.needs_residual_moments)
    family = family.for_data(prepared.moments, prepared.standardization.scale, X.dtype, prepared.residual_moments)
    mixture = initialize_kmeans(prepared.source, 1, family, np.random.RandomState(0))
    tic = time.perf_counter()
    run_em(prepared.source, mixture, family, max_iter=n_iterations, tol=-np.inf, prior=prepared.prior,
           units=prepared.units)
    return (time.perf_counter() - tic) / n_iterations


def als_products(X):
    """Seconds of ``mask @ (d x q^2)`` and ``mask^T @ (n x q^2)``, each the best of 2."""
    mask = sp.csr_array((np.ones_like(X.data), X.indices, X.indptr), shape=X.shape)
    rng = np.random.default_rng(0)
    item_outer = rng.random((X.shape[1], N_FACTORS**2))
    user_outer = rng.random((X.shape[0], N_FACTORS**2))
    return best_time(lambda: mask @ item_outer, 2), best_time(lambda: mask.T @ user_outer, 2)


def offsets_seconds(X, bias_shrinkage):
    """Seconds of ``prepare`` with biases: standardisation, column moments and the offsets' passes."""
    tic = time.perf_counter()
    prepare(ObservedEntries.from_sparse(X), biases=True, bias_shrinkage=bias_shrinkage, mean_precision_prior=None)
    return time.perf_counter() - tic


def start_pass_seconds(X, mean_precision_prior=None, **family_options):
    """Seconds of the pass whose moments and sketches start a factor fit (:meth:`FactorCovariance.moments`);
    the options as :func:`seconds_per_iteration` takes them."""
    family = FactorCovariance(**family_options).for_features(X.shape[1])  # the sketches need no for_data
    observed = ObservedEntries.from_sparse(X)
    return best_time(lambda: observed.reduce(family.moments), 2)


def measure(path):
    """In a fresh process: the bare products and EM iterations, then the peak memory."""
    with np.load(path) as arrays:
        X = sp.csr_array((arrays["data"], arrays["indices"], arrays["indptr"]), shape=tuple(arrays["shape"]))
    with open("/proc/self/clear_refs", "w") as f:  # the peak from here on (Linux)
        f.write("5")
    user_step, item_step = als_products(X)
    threaded = {name: seconds_per_iteration(X, **options) for name, options in MODELS.items()}
    offsets = {str(shrinkage): offsets_seconds(X, shrinkage) for shrinkage in (25.0, "auto")}
    start = {str(pattern): start_pass_seconds(X, **{**PRESET, "loading_pattern_prior": pattern})
             for pattern in (None, PRESET["loading_pattern_prior"])}
    with one_thread():
        single = seconds_per_iteration(X, **PLAIN)
    print(json.dumps({"user_step": user_step, "item_step": item_step, "threaded": threaded, "single": single,
                      "offsets": offsets, "start": start, "peak": memory_gib("VmHWM")}))


def rating_table(scales):
    print(f"Table 1. K=1, q={N_FACTORS}, biases, float64, {_observed._available_cores()} cores; "
          f"ALS products: mask @ (d x q^2) + mask^T @ (n x q^2), same process")
    print(f"{'scale':>6} {'users':>8} {'ratings':>12} {'ALS products s':>14} {'EM iter s':>9} {'ratio':>6} "
          f"{'1 thread s':>10} {'ratio':>6} {'preset s':>8} {'ratio':>6} {'implicit s':>10} {'ratio':>6} "
          f"{'offsets first s':>15} {'ratio':>6} {'offsets 25 s':>12} {'auto s':>7} {'start pass s':>12} "
          f"{'+pattern s':>10} {'peak GiB':>8}")
    with tempfile.TemporaryDirectory() as folder:
        for scale in scales:
            X = synthetic_ratings(scale)
            path = os.path.join(folder, "ratings.npz")
            np.savez(path, data=X.data, indices=X.indices, indptr=X.indptr, shape=X.shape)
            n_users, nnz = X.shape[0], X.nnz
            del X
            child = subprocess.run([sys.executable, __file__, "--measure", path],
                                   capture_output=True, text=True, check=True)
            result = json.loads(child.stdout.splitlines()[-1])
            bare = result["user_step"] + result["item_step"]
            plain, preset, implicit, offsets_first = (result["threaded"][name] for name in MODELS)
            print(f"{scale:>6g} {n_users:>8,} {nnz:>12,} {bare:>14.2f} {plain:>9.2f} "
                  f"{plain / bare:>6.2f} {result['single']:>10.2f} {result['single'] / bare:>6.2f} "
                  f"{preset:>8.2f} {preset / plain:>6.2f} {implicit:>10.2f} {implicit / plain:>6.2f} "
                  f"{offsets_first:>15.2f} {offsets_first / plain:>6.2f} {result['offsets']['25.0']:>12.2f} "
                  f"{result['offsets']['auto']:>7.2f} {result['start']['None']:>12.2f} "
                  f"{result['start'][str(PRESET['loading_pattern_prior'])]:>10.2f} {result['peak']:>8.2f}", flush=True)


def wide_table():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 10)) @ rng.normal(size=(10, 400)) + 0.3 * rng.normal(size=(300, 400))
    missing = np.random.RandomState(1).uniform(size=X.shape) < 0.3
    X_missing = np.where(missing, np.nan, X)
    print("\nTable 2. 300 x 400, rank 10 + noise 0.3, 30 % missing, K=2")
    print(f"{'model':<34} {'iterations':>10} {'fit s':>7} {'RMSE missing':>12}")
    models = [
        ("factor, q=10", {"covariance_type": "factor", "n_factors": 10}),
        ("diag", {"covariance_type": "diag"}),
        ("full, 5 iterations", {"covariance_type": "full", "max_iter": 5}),
    ]
    for name, params in models:
        imputer = MaskedGaussianMixtureImputer(2, random_state=0, **params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            tic = time.perf_counter()
            filled = imputer.fit_transform(X_missing)
            seconds = time.perf_counter() - tic
        error = np.sqrt(np.mean((filled - X)[missing] ** 2))
        print(f"{name:<34} {imputer.n_iter_:>10} {seconds:>7.2f} {error:>12.4f}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, nargs="+", default=[0.1, 1.0])
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: the child process
    args = parser.parse_args()
    if args.measure:
        return measure(args.measure)
    rating_table(args.scale)
    wide_table()


if __name__ == "__main__":
    main()
