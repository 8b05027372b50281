"""What ``MaskedGaussianMixtureImputer()`` does with every parameter at its default.

First table: scikit-learn's diabetes table (442 x 10) with 30 % of entries
removed completely at random (seeds 0-2): the RMSE of the imputed entries
divided by their standard deviation, for the all-default imputer (``"auto"``
picks "full" here), the previous defaults (one spherical component: the
column means), ``SimpleImputer()`` and ``IterativeImputer()``, with fit
times.

Second table: the all-default imputer on the bundled 1200 x 1200 Netflix
matrix, dense (NaN-coded) and as CSR (``"auto"`` picks "diag" for both),
against the course's own fit (``PRESET_COURSE``, K=12, seed 1) timed in the
same process.

Run: ``python benchmarks/bench_defaults.py``.
"""

import time
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.datasets import load_diabetes
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, SimpleImputer

from skgmmfill import PRESET_COURSE, MaskedGaussianMixtureImputer
from skgmmfill.datasets import load_netflix


def timed(function):
    tic = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = function()
    return result, time.perf_counter() - tic


def diabetes_table():
    X = load_diabetes().data
    models = {
        "MaskedGaussianMixtureImputer()": MaskedGaussianMixtureImputer,
        "previous defaults (1 spherical component)": lambda: MaskedGaussianMixtureImputer(
            covariance_type="spherical", init_params="random_from_data", min_variance=0.25
        ),
        "SimpleImputer()": SimpleImputer,
        "IterativeImputer()": IterativeImputer,
    }
    print(f"{'diabetes, 30 % MCAR':<44} {'seed 0':>7} {'seed 1':>7} {'seed 2':>7} {'fit s':>7}")
    for name, make in models.items():
        errors, seconds = [], []
        for seed in range(3):
            missing = np.random.RandomState(seed).uniform(size=X.shape) < 0.3
            X_missing = np.where(missing, np.nan, X)
            filled, elapsed = timed(lambda: make().fit_transform(X_missing))
            errors.append(np.sqrt(np.mean((filled - X)[missing] ** 2)) / X[missing].std())
            seconds.append(elapsed)
        print(f"{name:<44} {errors[0]:>7.3f} {errors[1]:>7.3f} {errors[2]:>7.3f} {np.mean(seconds):>7.2f}")


def netflix_table():
    X, _ = load_netflix()
    X_zero = np.nan_to_num(X)
    course = MaskedGaussianMixtureImputer(12, **PRESET_COURSE, missing_values=0, random_state=1)
    timed(lambda: course.fit(X_zero))  # warm-up: first calls into BLAS and OpenMP
    _, course_seconds = timed(lambda: course.fit(X_zero))
    rows, cols = np.nonzero(~np.isnan(X))
    X_csr = sp.csr_array((X[rows, cols], (rows, cols)), shape=X.shape)
    print(f"\n{'Netflix 1200 x 1200, all defaults':<36} {'chosen':>7} {'iters':>5} {'fit s':>7} "
          f"{'/ course K=12 fit':>17}")
    for name, data in (("dense, NaN-coded", X), ("CSR", X_csr)):
        imputer, seconds = timed(lambda data=data: MaskedGaussianMixtureImputer().fit(data))
        print(f"{name:<36} {imputer.covariance_type_:>7} {imputer.n_iter_:>5} {seconds:>7.2f} "
              f"{seconds / course_seconds:>17.2f}")
    print(f"{'course: PRESET_COURSE, K=12, seed 1':<36} {'':>7} {'':>5} {course_seconds:>7.2f} {1.0:>17.2f}")


if __name__ == "__main__":
    diabetes_table()
    netflix_table()
