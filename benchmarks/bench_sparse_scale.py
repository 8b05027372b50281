"""EM on a synthetic rating matrix shaped like the Netflix prize data, as CSR.

The full size is 480,189 users x 17,770 movies with about 100.5 M ratings
(99 % missing). ``--scale s`` keeps the 17,770 movies and takes ``s`` times
the users and ratings, so the cost should grow linearly with ``s``.

The matrix: user activity and movie popularity are long-tailed (log-normal
weights); ratings come from a planted mixture of ``--true-components`` user
types, each with its own mean rating per movie, plus noise, rounded and
clipped to 1..5. Duplicate (user, movie) draws are dropped.

For each scale the script reports the seconds per EM iteration of a K=12
spherical fit (4 iterations of the EM driver on the prepared data, so set-up
is not counted), the set-up time (a whole 1-iteration fit less one
iteration), the default k-means start (``init_params="kmeans"``: k-means on
at most 10,000 evenly spaced rows, then one pass labelling every row), also
as a number of iterations, beside k-means on every row (the former start,
timed up to 100,000 users), and memory read from the OS: each scale is fitted
in a fresh process that loads only the CSR arrays, which reports its resident
memory once loaded (interpreter, libraries and input) and its peak; ``fit/CSR``
is what the fits added to the loaded process at their peak, as a multiple of
the CSR's bytes.

Run: ``python benchmarks/bench_sparse_scale.py [--scale 0.01 0.1 1.0]``
(scale 1.0 needs about 6 GB of memory and a few minutes).
"""

import argparse
import contextlib
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

from skgmmfill import PRESET_COURSE, MaskedGaussianMixtureImputer, _observed
from skgmmfill import _em
from skgmmfill._em import initialize_kmeans, initialize_random_from_data, prepare, run_em
from skgmmfill._observed import ObservedEntries
from skgmmfill._spherical import SphericalCovariance

N_USERS, N_MOVIES, N_RATINGS = 480_189, 17_770, 100_480_507
ALL_ROWS_UP_TO = 100_000  # k-means on every row (the former start) is timed up to this many users


def synthetic_ratings(scale, n_true_components=8, seed=0):
    """A CSR array of ratings 1..5; unstored entries are missing."""
    rng = np.random.default_rng(seed)
    n_users, n_ratings = max(1, round(N_USERS * scale)), round(N_RATINGS * scale)
    user_weights = rng.lognormal(0.0, 1.2, n_users)
    movie_weights = rng.lognormal(0.0, 1.8, N_MOVIES)
    n_draws = round(1.3 * n_ratings)  # duplicates are dropped, then thinned to size
    # Inverse-CDF draws; sorting the uniforms first keeps the searches cache-friendly.
    users = np.searchsorted(np.cumsum(user_weights / user_weights.sum()), np.sort(rng.random(n_draws)))
    movies = np.searchsorted(np.cumsum(movie_weights / movie_weights.sum()), rng.random(n_draws))
    keys = np.minimum(users, n_users - 1).astype(np.int64) * N_MOVIES + np.minimum(movies, N_MOVIES - 1)
    del users, movies
    keys.sort()
    keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])]
    keys = keys[rng.random(keys.size) < n_ratings / keys.size]
    users, movies = np.divmod(keys, N_MOVIES)
    del keys
    user_type = rng.integers(n_true_components, size=n_users)
    type_means = rng.uniform(1.5, 4.5, size=(n_true_components, N_MOVIES))
    ratings = type_means[user_type[users], movies] + rng.normal(0.0, 0.8, users.size)
    ratings = np.clip(np.rint(ratings), 1, 5)
    indptr = np.concatenate([[0], np.cumsum(np.bincount(users, minlength=n_users))])
    return sp.csr_array(
        (ratings, movies.astype(np.int32), indptr.astype(np.int32)), shape=(n_users, N_MOVIES)
    )


@contextlib.contextmanager
def one_thread():
    """In-memory fits reduce the whole matrix as one block on one thread meanwhile
    (large sparse input is otherwise cut into a block per core)."""
    threshold = _observed.THREADED_MIN_ENTRIES
    _observed.THREADED_MIN_ENTRIES = np.inf
    try:
        yield
    finally:
        _observed.THREADED_MIN_ENTRIES = threshold


def memory_gib(field):
    """``VmRSS`` (now) or ``VmHWM`` (peak of this process), in GiB (Linux)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 2**20
    raise RuntimeError(f"{field} not found in /proc/self/status")


def time_fit(X, n_components, n_iterations=4):
    """Seconds of a whole 1-iteration fit, and per EM iteration as the driver
    runs them (the loop alone, on the prepared data, from the course's start)."""
    imputer = MaskedGaussianMixtureImputer(
        n_components, **{**PRESET_COURSE, "max_iter": 1, "tol": 0.0}, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        tic = time.perf_counter()
        imputer.fit(X)
        one = time.perf_counter() - tic
    prepared = prepare(ObservedEntries.from_sparse(X), biases=False, bias_shrinkage=0.0, mean_precision_prior=None)
    family = SphericalCovariance(min_variance=PRESET_COURSE["min_variance"])
    family = family.for_data(prepared.moments, prepared.standardization.scale, X.dtype)
    mixture = initialize_random_from_data(prepared.source, n_components, family, np.random.RandomState(0),
                                          prepared.data_zero)
    tic = time.perf_counter()
    run_em(prepared.source, mixture, family, max_iter=n_iterations, tol=-np.inf, units=prepared.units)
    return one, (time.perf_counter() - tic) / n_iterations


def time_kmeans_start(X, n_components, all_rows):
    """Seconds of the default start (``init_params="kmeans"``, default floor) on the
    prepared data; with ``all_rows`` k-means clusters every row (the former rule)."""
    prepared = prepare(ObservedEntries.from_sparse(X), biases=False, bias_shrinkage=0.0, mean_precision_prior=None)
    family = SphericalCovariance(min_variance="auto").for_data(prepared.moments, prepared.standardization.scale,
                                                               X.dtype)
    sample_rows = _em.KMEANS_SAMPLE_ROWS
    _em.KMEANS_SAMPLE_ROWS = X.shape[0] if all_rows else sample_rows
    try:
        tic = time.perf_counter()
        initialize_kmeans(prepared.source, n_components, family, np.random.RandomState(0))
        return time.perf_counter() - tic
    finally:
        _em.KMEANS_SAMPLE_ROWS = sample_rows


def measure(path, n_components):
    """In a fresh process: load the CSR arrays, then time the fits and read the peak."""
    with np.load(path) as arrays:
        X = sp.csr_array(
            (arrays["data"], arrays["indices"], arrays["indptr"]), shape=tuple(arrays["shape"])
        )
    loaded = memory_gib("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:  # the peak from here on (Linux)
        f.write("5")
    one, per_iteration = time_fit(X, n_components)
    start = time_kmeans_start(X, n_components, all_rows=False)
    peak = memory_gib("VmHWM")
    start_all = time_kmeans_start(X, n_components, all_rows=True) if X.shape[0] <= ALL_ROWS_UP_TO else None
    print(json.dumps({"one": one, "per_iteration": per_iteration, "loaded": loaded, "peak": peak, "start": start,
                      "start_all": start_all}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, nargs="+", default=[0.01, 0.1, 1.0])
    parser.add_argument("--n-components", type=int, default=12)
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: the child process
    args = parser.parse_args()
    if args.measure:
        return measure(args.measure, args.n_components)

    print(f"K={args.n_components}, spherical, float64; 17,770 movies at every scale;")
    print("memory: the fitting process (interpreter + libraries + input), from the OS; fit/CSR = (peak - loaded) / CSR")
    print(
        f"{'scale':>6} {'users':>8} {'ratings':>12} {'CSR GiB':>8} {'s/iter':>7} "
        f"{'set-up s':>8} {'ns/rating/iter':>14} {'loaded GiB':>10} {'peak GiB':>8} {'fit/CSR':>7} "
        f"{'k-means s':>9} {'/ iter':>6} {'all rows s':>10} {'/ iter':>6}"
    )
    with tempfile.TemporaryDirectory() as folder:
        for scale in args.scale:
            X = synthetic_ratings(scale)
            path = os.path.join(folder, "ratings.npz")
            np.savez(path, data=X.data, indices=X.indices, indptr=X.indptr, shape=X.shape)
            csr_gib = (X.data.nbytes + X.indices.nbytes + X.indptr.nbytes) / 2**30
            nnz, n_users = X.nnz, X.shape[0]
            del X
            child = subprocess.run(
                [sys.executable, __file__, "--measure", path, "--n-components", str(args.n_components)],
                capture_output=True, text=True, check=True,
            )
            result = json.loads(child.stdout.splitlines()[-1])
            per_iteration = result["per_iteration"]
            print(
                f"{scale:>6g} {n_users:>8,} {nnz:>12,} {csr_gib:>8.2f} {per_iteration:>7.2f} "
                f"{result['one'] - per_iteration:>8.2f} {1e9 * per_iteration / nnz:>14.2f} "
                f"{result['loaded']:>10.2f} {result['peak']:>8.2f} {(result['peak'] - result['loaded']) / csr_gib:>7.2f} "
                f"{result['start']:>9.2f} {result['start'] / per_iteration:>6.1f} "
                + (f"{result['start_all']:>10.2f} {result['start_all'] / per_iteration:>6.1f}"
                   if result["start_all"] is not None else f"{'':>10} {'':>6}"),
                flush=True,
            )


if __name__ == "__main__":
    main()
