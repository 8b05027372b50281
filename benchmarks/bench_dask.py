"""EM on a Dask cluster against the single-process fit, on the Netflix-prize-shaped synthetic matrix.

The matrix is that of ``bench_sparse_scale.py`` (17,770 movies, 100 M ratings
at scale 1.0, users and ratings scaled by ``--scale``), written to disk as
row-partitioned ``.npz`` files of ``--rows-per-block`` users, the way a
rating log sits in files; a dask array reads them block by block.

For each scale the table gives the seconds per EM iteration (K=12 spherical,
the course's model; the difference between a 7-iteration and a 1-iteration
fit, over 6, each the best of 3, after a warm-up fit) of

* the single-process fit of the CSR matrix in memory on one thread (the
  baseline, timed in this process: scipy's sparse products use one core), and
  as the library runs it by default, a block of rows per core on threads;
* a ``dask.distributed`` LocalCluster of 1 and of 2 worker processes (one
  thread each), blocks persisted in worker memory (the default);
* with ``--stream``: 2 workers whose memory limit is below the data's size,
  ``persist=False``, so every iteration reads the blocks from disk again;

with each worker's peak resident memory, and the ratio to the baseline.
Every dask fit is checked against the baseline's log-likelihood.

Run: ``python benchmarks/bench_dask.py [--scale 0.1 1.0] [--stream]``.
"""

import argparse
import os
import tempfile
import time
import warnings

import dask
import dask.array as da
import numpy as np
import scipy.sparse as sp
from bench_sparse_scale import memory_gib, one_thread, synthetic_ratings
from dask.distributed import Client, LocalCluster
from sklearn.exceptions import ConvergenceWarning

from skgmmfill import PRESET_COURSE, MaskedGaussianMixtureImputer


def write_blocks(X, folder, rows_per_block):
    """Row blocks of the CSR ``X`` as ``.npz`` files; returns their paths and row counts."""
    paths, counts = [], []
    for start in range(0, X.shape[0], rows_per_block):
        block = X[start : start + rows_per_block]
        path = os.path.join(folder, f"rows-{start:09d}.npz")
        sp.save_npz(path, sp.csr_matrix(block), compressed=False)
        paths.append(path)
        counts.append(block.shape[0])
    return paths, counts


def read_block(path):
    return sp.csr_array(sp.load_npz(path))


def dask_matrix(paths, counts, n_features):
    pieces = [
        da.from_delayed(dask.delayed(read_block)(path), shape=(rows, n_features), dtype=np.float64,
                        meta=sp.csr_array((0, 0)))
        for path, rows in zip(paths, counts)
    ]
    return da.concatenate(pieces, axis=0)


def fit_seconds(X, max_iter, **params):
    imputer = MaskedGaussianMixtureImputer(
        12, **{**PRESET_COURSE, "max_iter": max_iter, "tol": 0.0}, random_state=0, **params
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", UserWarning)  # movies nobody rated; dask's graph-size notes
        tic = time.perf_counter()
        imputer.fit(X)
    return time.perf_counter() - tic, imputer


def per_iteration(X, repeat=3, **params):
    fit_seconds(X, 1, **params)  # warm-up: file cache, imports and connections on the workers
    one = min(fit_seconds(X, 1, **params)[0] for _ in range(repeat))
    fits = [fit_seconds(X, 7, **params) for _ in range(repeat)]
    return (min(seconds for seconds, _ in fits) - one) / 6, fits[0][1]


def reset_peak():
    """Start the process's peak resident set afresh (Linux)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def peak_gib():
    # VmHWM, not getrusage: a worker spawned from this process would report this process's peak
    return memory_gib("VmHWM")


def on_cluster(X_dask, n_workers, memory_limit, **params):
    with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, memory_limit=memory_limit,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        client.run(reset_peak)
        seconds, imputer = per_iteration(X_dask, **params)
        peaks = client.run(peak_gib)
    return seconds, imputer, max(peaks.values())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, nargs="+", default=[0.1, 1.0])
    parser.add_argument("--rows-per-block", type=int, default=25_000)
    parser.add_argument("--stream", action="store_true", help="add the run that reads the blocks every iteration")
    args = parser.parse_args()
    print("K=12 spherical (PRESET_COURSE), float64, 17,770 movies; one thread per worker; "
          "memory: peak resident set of the process or of the largest worker")
    print(f"{'scale':>6} {'ratings':>12} {'CSR GiB':>8} {'run':<38} {'s/iter':>7} {'ratio':>6} "
          f"{'peak GiB':>8}")
    for scale in args.scale:
        X = synthetic_ratings(scale)
        reset_peak()
        csr_gib = (X.data.nbytes + X.indices.nbytes + X.indptr.nbytes) / 2**30
        head = f"{scale:>6g} {X.nnz:>12,} {csr_gib:>8.2f}"
        with one_thread():
            baseline, reference = per_iteration(X)
        print(f"{head} {'single process, one thread (baseline)':<38} {baseline:>7.2f} {1.0:>6.2f} "
              f"{peak_gib():>8.2f}", flush=True)
        threaded, _ = per_iteration(X)
        print(f"{head} {'single process, a thread per core':<38} {threaded:>7.2f} {threaded / baseline:>6.2f} "
              f"{peak_gib():>8.2f}", flush=True)
        with tempfile.TemporaryDirectory() as folder:
            paths, counts = write_blocks(X, folder, args.rows_per_block)
            n_features = X.shape[1]
            del X
            X_dask = dask_matrix(paths, counts, n_features)
            runs = [(f"{n} worker{'s' if n > 1 else ''}, persisted", n, "auto", {}) for n in (1, 2)]
            if args.stream:
                limit = max(int(0.75 * csr_gib * 2**30), 2**29)
                runs.append((f"2 workers < {limit / 2**30:.2f} GiB each, streamed", 2, limit, {"persist": False}))
            for name, n_workers, limit, params in runs:
                seconds, imputer, peak = on_cluster(X_dask, n_workers, limit, **params)
                assert np.isclose(imputer.lower_bound_, reference.lower_bound_, rtol=1e-10, atol=0)
                print(f"{head} {name:<38} {seconds:>7.2f} {seconds / baseline:>6.2f} {peak:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
