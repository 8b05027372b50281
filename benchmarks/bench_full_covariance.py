"""The "full" covariance type on tabular data: time and accuracy against the oracle.

Data: ``--n-samples`` rows from a known 3-component, 8-dimensional Gaussian
mixture with full covariances, 30 % of entries missing completely at random.
The table gives the fit time and iterations of ``covariance_type="full"``
(k-means start), its imputation RMSE against the oracle (the true parameters'
conditional means), IterativeImputer's, and the coverage of nominal 90 %
intervals from ``imputation_std``.

A second table fits data where nearly every row has its own missingness
pattern (scikit-learn's diabetes table, 442 rows x 10 features with 30 % of
entries missing, and 8 x 8 patches of an image with 70 % of its pixels
missing, as in the inpainting benchmark) twice in the same process: with every
pattern factorised on its own (the baseline, a Python loop over patterns) and
with rare patterns batched row by row (the default).

Run: ``python benchmarks/bench_full_covariance.py [--n-samples 100000]``.
"""

import argparse
import time
import warnings

import numpy as np
from sklearn.datasets import load_diabetes, load_sample_image
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer

from skgmmfill import MaskedGaussianMixtureImputer, _em, _full
from skgmmfill._observed import ObservedEntries
from skgmmfill.datasets import make_incomplete_mixture
from skgmmfill.image import _extract
from skgmmfill.metrics import rmse


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-samples", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    print(f"{'rows':>8} {'fit s':>6} {'iters':>5} {'patterns':>8} {'RMSE':>7} {'oracle':>7} "
          f"{'ratio':>6} {'Iterative':>9} {'90% cover':>9}")
    for n_samples in args.n_samples:
        X, X_missing, parameters = make_incomplete_mixture(n_samples, random_state=0)
        missing = np.isnan(X_missing)
        truth = _em.Mixture(parameters["weights"], parameters["means"], parameters["covariances"])
        imputer = MaskedGaussianMixtureImputer(
            3, covariance_type="full", init_params="kmeans", random_state=0
        )
        tic = time.perf_counter()
        imputer.fit(X_missing)
        seconds = time.perf_counter() - tic
        model = rmse(X, imputer.transform(X_missing), mask=missing)
        observed = ObservedEntries.from_dense(X_missing, ~missing)
        resp, _ = _em.e_step(observed, truth, _full)
        oracle = rmse(X, _full.impute(observed, resp, truth.means, truth.covariances), mask=missing)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            iterative = rmse(X, IterativeImputer(random_state=0).fit_transform(X_missing), mask=missing)
        error = np.abs(X - imputer.transform(X_missing))[missing]
        cover = np.mean(error <= 1.6448536269514722 * imputer.imputation_std(X_missing)[missing])
        print(f"{n_samples:>8,} {seconds:>6.2f} {imputer.n_iter_:>5} {len(observed.patterns):>8} "
              f"{model:>7.4f} {oracle:>7.4f} {model / oracle:>6.3f} {iterative:>9.4f} {cover:>9.3f}")
    print(f"\n{'data':<22} {'K':>3} {'patterns':>8} {'per pattern ms/iter':>19} "
          f"{'batched ms/iter':>15} {'ratio':>6}")
    for name, X, n_components in rare_pattern_data():
        observed = ObservedEntries.from_dense(X, ~np.isnan(X))
        seconds = {}
        for label, shared_rows in (("per pattern", 1), ("batched", _full._SHARED_PATTERN_ROWS)):
            default, _full._SHARED_PATTERN_ROWS = _full._SHARED_PATTERN_ROWS, shared_rows
            imputer = MaskedGaussianMixtureImputer(
                n_components, covariance_type="full", init_params="kmeans", max_iter=20, tol=0.0,
                random_state=0,
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tic = time.perf_counter()
                imputer.fit(X)
                seconds[label] = (time.perf_counter() - tic) / imputer.n_iter_
            _full._SHARED_PATTERN_ROWS = default
        per_pattern, batched = 1000 * seconds["per pattern"], 1000 * seconds["batched"]
        print(f"{name:<22} {n_components:>3} {len(observed.patterns):>8} {per_pattern:>19.1f} "
              f"{batched:>15.1f} {batched / per_pattern:>6.2f}")


def rare_pattern_data():
    """Tables where most rows have a missingness pattern of their own."""
    rng = np.random.RandomState(0)
    diabetes = load_diabetes().data
    yield "diabetes 442 x 10", np.where(rng.uniform(size=diabetes.shape) < 0.3, np.nan, diabetes), 3
    image = load_sample_image("china.jpg").mean(axis=2)[:128, :128] / 255
    patches = _extract(np.where(rng.uniform(size=image.shape) < 0.7, np.nan, image), (8, 8))[::5]
    yield f"8x8 patches {len(patches)} x 64", patches, 10


if __name__ == "__main__":
    main()
