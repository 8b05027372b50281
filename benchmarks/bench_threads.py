"""Threads: the library's default against BLAS's default threads and one BLAS thread.

Large sparse input is reduced on a thread per core; inside those threads the
library runs BLAS single-threaded (threadpoolctl), so that the two layers of
threads do not compete for the cores. Dense input is one block, where BLAS
keeps its own threads. This script times, in one process and in turns:

- the main job (``skgmmfill``: the course experiment on the bundled Netflix
  matrix, K=1 and 12, five seeds each, dense);
- one EM iteration on the Netflix-prize shaped CSR of ``bench_sparse_scale.py``
  (``--scale``): K=12 spherical, and ``PRESET_RATINGS``' model (K=1, 10 factors,
  biases);

each under three settings: BLAS's default threads everywhere (the library's
limit switched off), one BLAS thread for everything (``threadpool_limits(1)``),
and the library's default. It prints the best of ``--repeat`` times and each as
a ratio to the best of the three.

Run: ``python benchmarks/bench_threads.py [--scale 0.1] [--repeat 3]``
"""

import argparse
import contextlib
import io
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


@contextlib.contextmanager
def setting(name):
    library_limit = _observed._blas_threads
    if name == "BLAS default threads":
        _observed._blas_threads = _NoLimit
    try:
        with threadpool_limits(1, user_api="blas") if name == "one BLAS thread" else contextlib.nullcontext():
            yield
    finally:
        _observed._blas_threads = library_limit


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
        run_em(prepared.source, mixture, family, max_iter=2, tol=-np.inf, units=prepared.units)

    return iterate


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    X = synthetic_ratings(args.scale)
    jobs = {
        "main job (course experiment)": (main_job, 1),
        f"EM iteration, spherical K=12, CSR x{args.scale:g}": (
            em_iteration(X, SphericalCovariance(min_variance=0.25), 12, False), 2),
        f"EM iteration, PRESET_RATINGS, CSR x{args.scale:g}": (
            em_iteration(X, FactorCovariance(n_factors=10), 1, True), 2),
    }
    settings = ["BLAS default threads", "one BLAS thread", "library default"]
    print(f"{os.cpu_count()} cores; seconds, best of {args.repeat} in turns; (ratio to the best of the three)")
    print(f"{'':<44}" + "".join(f"{name:>24}" for name in settings))
    for job, (run, per) in jobs.items():
        run()  # warm up
        best = dict.fromkeys(settings, np.inf)
        for _ in range(args.repeat):
            for name in settings:
                with setting(name):
                    tic = time.perf_counter()
                    run()
                    best[name] = min(best[name], (time.perf_counter() - tic) / per)
        fastest = min(best.values())
        print(f"{job:<44}" + "".join(f"{f'{best[n]:.3f} ({best[n] / fastest:.2f})':>24}" for n in settings),
              flush=True)


if __name__ == "__main__":
    main()
