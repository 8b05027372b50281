"""Results do not depend on the data's units or offsets (the standardisation in ``_em``)."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_diabetes
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer

from skgmmfill import PRESET_COURSE, MaskedGaussianMixtureImputer
from skgmmfill._em import Standardization, standardization
from skgmmfill._observed import ObservedEntries


def three_clusters(n_samples=600, n_features=8, seed=0):
    """Rows from three separated Gaussian clusters, 30 % of entries missing (NaN)."""
    rng = np.random.RandomState(seed)
    centres = rng.normal(0.0, 3.0, (3, n_features))
    X = centres[rng.randint(3, size=n_samples)] + rng.normal(size=(n_samples, n_features))
    return np.where(rng.uniform(size=X.shape) < 0.3, np.nan, X)


def as_input(X, container):
    """Dense NaN-coded, or CSR with the observed entries stored."""
    if container == "dense":
        return X
    rows, cols = np.nonzero(~np.isnan(X))
    return sp.csr_array((X[rows, cols], (rows, cols)), shape=X.shape)


# (scale a, offset b, dtype, tolerance relative to the data's spread). float32 holds
# 1e4 + x only to 2**-10 (1.5e-4 of this data's spread) before anything is fitted, and a
# conditional mean adds up several such errors: a few entries in thousands reach 1.5e-3.
TRANSFORMS = [
    (1.0, 1e6, np.float64, 1e-6),
    (1.0, 1e8, np.float64, 1e-6),
    (1.0, 1e4, np.float32, 3e-3),
    (1e-3, 0.0, np.float64, 1e-6),
    (1e3, 0.0, np.float64, 1e-6),
]
CASES = [("spherical", "dense"), ("spherical", "sparse"), ("diag", "dense"), ("diag", "sparse"), ("full", "dense")]


def fit_imputation(params, X, container):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no silent NaN, no overflow, no convergence trouble
        imputer = MaskedGaussianMixtureImputer(**params).fit(as_input(X, container))
    return imputer, imputer.transform(as_input(X, container))


@pytest.mark.parametrize("covariance_type, container", CASES)
@pytest.mark.parametrize("scale, offset, dtype, rtol", TRANSFORMS)
def test_affine_equivariance_with_defaults(covariance_type, container, scale, offset, dtype, rtol):
    X = three_clusters().astype(dtype)
    params = dict(n_components=3, covariance_type=covariance_type, random_state=0)
    reference, imputed = fit_imputation(params, X, container)
    moved = (scale * X.astype(np.float64) + offset).astype(dtype)
    fitted, imputed_moved = fit_imputation(params, moved, container)
    assert fitted.n_iter_ == reference.n_iter_
    spread = np.nanstd(X.astype(np.float64))
    back = (imputed_moved.astype(np.float64) - offset) / scale
    assert_allclose(back, imputed, rtol=0, atol=rtol * spread)
    assert_allclose((fitted.means_ - offset) / scale, reference.means_, rtol=0, atol=rtol * spread)
    # the log-likelihood is a density: it moves by -log(a) per observed entry, and not with b
    shift = -np.log(scale) * (~np.isnan(X)).sum() / len(X)
    assert_allclose(fitted.lower_bound_, reference.lower_bound_ + shift, rtol=10 * rtol)


@pytest.mark.parametrize("container", ["dense", "sparse"])
@pytest.mark.parametrize("offset", [1e6, 1e8])
def test_course_preset_is_offset_equivariant_from_an_offset_free_start(container, offset):
    # The course's relative stopping rule and its variance floor (in data units) do not
    # move with an offset; its random start does, by definition (missing entries start at
    # the data's 0), so the start here is k-means.
    X = three_clusters()
    params = dict(PRESET_COURSE, n_components=3, init_params="kmeans", random_state=0)
    reference, imputed = fit_imputation(params, X, container)
    fitted, imputed_moved = fit_imputation(params, X + offset, container)
    assert fitted.n_iter_ == reference.n_iter_
    assert_allclose(imputed_moved - offset, imputed, rtol=0, atol=1e-6 * np.nanstd(X))


@pytest.mark.parametrize("container", ["dense", "sparse"])
def test_values_whose_squares_overflow(container):
    X = three_clusters(200, 5)
    imputer, imputed = fit_imputation(dict(n_components=2, covariance_type="diag", random_state=0), X, container)
    big, imputed_big = fit_imputation(dict(n_components=2, covariance_type="diag", random_state=0), X * 1e200,
                                      container)
    assert np.isfinite(imputed_big).all()
    assert_allclose(imputed_big / 1e200, imputed, rtol=1e-9)
    assert np.isfinite(big.imputation_std(as_input(X * 1e200, container))).all()
    tiny, imputed_tiny = fit_imputation(dict(n_components=2, covariance_type="diag", random_state=0), X * 1e-200,
                                        container)
    assert_allclose(imputed_tiny * 1e200, imputed, rtol=1e-9)


def test_full_on_values_whose_squares_overflow():
    X = three_clusters(300, 4)
    params = dict(n_components=2, covariance_type="full", random_state=0)
    _, imputed = fit_imputation(params, X, "dense")
    _, imputed_big = fit_imputation(params, X * 1e200, "dense")
    assert_allclose(imputed_big / 1e200, imputed, rtol=1e-9)


def test_values_too_large_to_average_are_a_clear_error():
    X = np.full((4, 2), 1e308)
    X[0, 0] = np.nan
    with pytest.raises(ValueError, match="too large to average"):
        MaskedGaussianMixtureImputer().fit(X)


def test_standardization_centres_and_scales_the_observed_entries():
    X = three_clusters(100, 3) * 1e3 + 1e7
    observed = ObservedEntries.from_dense(np.nan_to_num(X), ~np.isnan(X))
    location, scale = standardization(observed, biases=False)
    assert_allclose(location, np.nanmean(X, axis=0), rtol=1e-15)
    assert_allclose(scale, np.sqrt(np.nanmean((X - location) ** 2)), rtol=1e-12)
    location, _ = standardization(observed, biases=True)
    assert_array_equal(location, np.full(3, np.nanmean(X)))
    assert isinstance(standardization(observed, biases=False), Standardization)


@pytest.mark.parametrize("covariance_type", ["spherical", "diag", "full"])
def test_explicit_variance_floors_are_in_data_units(covariance_type):
    X = three_clusters(300, 4)
    name = "reg_covar" if covariance_type == "full" else "min_variance"
    params = dict(n_components=3, covariance_type=covariance_type, random_state=0, **{name: 0.5})
    reference = MaskedGaussianMixtureImputer(**params).fit(X)
    scaled = MaskedGaussianMixtureImputer(**{**params, name: 0.5 * 100.0}).fit(10.0 * X)
    assert_allclose(scaled.covariances_ / 100.0, reference.covariances_, rtol=1e-9)
    if covariance_type != "full":
        assert reference.covariances_.min() >= 0.5 * (1 - 1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_defaults_impute_diabetes_no_worse_than_iterative_imputer(seed):
    X = load_diabetes().data
    rng = np.random.RandomState(seed)
    missing = rng.uniform(size=X.shape) < 0.3
    X_missing = np.where(missing, np.nan, X)
    relative_rmse = lambda filled: np.sqrt(np.mean((filled - X)[missing] ** 2)) / X[missing].std()  # noqa: E731
    ours = MaskedGaussianMixtureImputer().fit(X_missing)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        iterative = relative_rmse(IterativeImputer().fit_transform(X_missing))
    assert ours.covariance_type_ == "full"
    assert relative_rmse(ours.transform(X_missing)) <= iterative
