"""Threads: the library's default against BLAS's default threads and one BLAS thread.

Large input, dense or sparse, is reduced on a thread per core (row blocks);
inside those threads the library runs BLAS single-threaded (threadpoolctl), so
that the two layers of threads do not compete for the cores. This script
times, in one process and in turns:

- the main job (``skgmmfill``: the course experiment on the bundled Netflix
  matrix, K=1 and 12, five seeds each, dense);
- one EM iteration on the Netflix-prize shaped CSR of ``bench_sparse_scale.py``
  (``--scale``): K=12 spherical, and the 10-factor rating model (K=1, 10 factors,
  biases);

each under the four :data:`SETTINGS`. It prints the median and the worst of
``--repeat`` runs, each as a ratio to the fastest setting's.

``--load N`` keeps N other processes spinning on the CPU meanwhile, as on a
busy machine (the case where BLAS threads that spin while they wait hurt most).

Run: ``python benchmarks/bench_threads.py [--scale 0.1] [--repeat 5] [--load 0]``
"""

import argparse
import contextlib
import io
import multiprocessing
import os
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.dirname(__file__))
from bench_sparse_scale import synthetic_ratings  # noqa: E402

from skgmmfill import _observed  # noqa: E402
from skgmmfill._commands import course_experiment  # noqa: E402
from skgmmfill._em import initialize_random_from_data, prepare, run_em  # noqa: E402
from skgmmfill._factor import FactorCovariance  # noqa: E402
from skgmmfill._observed import ObservedEntries  # noqa: E402
from skgmmfill._spherical import SphericalCovariance  # noqa: E402


class _NoLimit:
    """Stands for the library's BLAS limit, switched off."""

    def limit(self, **_):
        return contextlib.nullcontext()


SETTINGS = ["BLAS threads only", "one BLAS thread", "both, no limit", "library default"]
"""BLAS's own threads and no row threads (dense input's rule before: one block); the
library's row threads with one BLAS thread for everything; the row threads with
BLAS's default threads inside each (oversubscribed); the library as shipped."""


@contextlib.contextmanager
def setting(name):
    library_limit, library_threshold = _observed._blas_threads, _observed.THREADED_MIN_ENTRIES
    if name in ("both, no limit", "BLAS threads only"):
        _observed._blas_threads = _NoLimit
    if name == "BLAS threads only":
        _observed.THREADED_MIN_ENTRIES = np.inf
    try:
        with threadpool_limits(1, user_api="blas") if name == "one BLAS thread" else contextlib.nullcontext():
            yield
    finally:
        _observed._blas_threads, _observed.THREADED_MIN_ENTRIES = library_limit, library_threshold


def _spin():
    while True:
        pass


@contextlib.contextmanager
def busy(n_processes):
    """``n_processes`` other processes using the CPU until the block ends."""
    spinners = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(n_processes)]
    for spinner in spinners:
        spinner.start()
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.terminate()
            spinner.join()


def main_job():
    with contextlib.redirect_stdout(io.StringIO()):
        course_experiment()


def em_iteration(X, family, n_components, biases):
    prepared = prepare(ObservedEntries.from_sparse(X), biases=biases, bias_shrinkage=25.0 if biases else 0.0,
                       mean_precision_prior=None)
    family = family.for_data(prepared.moments, prepared.standardization.scale, X.dtype)
    mixture = initialize_random_from_data(prepared.source, n_components, family, np.random.RandomState(0),
                                          prepared.data_zero)

    def iterate():
        prepared.source.__dict__.pop("_thread_blocks", None)  # cut again under the setting being timed
        run_em(prepared.source, mixture, family, max_iter=2, tol=-np.inf, units=prepared.units)

    return iterate


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--load", type=int, default=0, help="other processes kept busy meanwhile")
    args = parser.parse_args()
    X = synthetic_ratings(args.scale)
    jobs = {
        "main job (course experiment)": (main_job, 1),
        f"EM iteration, spherical K=12, CSR x{args.scale:g}": (
            em_iteration(X, SphericalCovariance(min_variance=0.25), 12, False), 2),
        f"EM iteration, factor q=10, CSR x{args.scale:g}": (
            em_iteration(X, FactorCovariance(n_factors=10), 1, True), 2),
    }
    print(f"{os.cpu_count()} cores, {args.load} other busy process(es); seconds over {args.repeat} runs in turns "
          "(ratio to the setting fastest by that statistic)")
    print(f"{'':<52}" + "".join(f"{name:>20}" for name in SETTINGS))
    with busy(args.load):
        for job, (run, per) in jobs.items():
            time_settings(job, run, per, SETTINGS, args.repeat)


def time_settings(job, run, per, settings, repeat):
    """Print the median and the worst of ``run``'s times under each setting, taken in turns,
    and their ratios to the fastest setting's: on a busy machine the best time hides
    the stalls that BLAS's own threads suffer, the median and the worst show them."""
    run()  # warm up
    times = {name: [] for name in settings}
    for _ in range(repeat):
        for name in settings:
            with setting(name):
                tic = time.perf_counter()
                run()
                times[name].append((time.perf_counter() - tic) / per)
    for statistic, of in (("median", np.median), ("worst", np.max)):
        value = {name: of(times[name]) for name in settings}
        fastest = min(value.values())
        print(f"{f'{job}, {statistic}':<52}"
              + "".join(f"{f'{value[n]:.3f} ({value[n] / fastest:.2f})':>20}" for n in settings), flush=True)


if __name__ == "__main__":
    main()
