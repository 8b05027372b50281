"""The full model on data drawn from a known mixture: recovery, imputation
against the oracle and IterativeImputer, calibration, posterior sampling, clipping."""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer

from skgmmfill import MaskedGaussianMixtureImputer
from skgmmfill._family import Mixture
from skgmmfill._full import FullCovariance
from skgmmfill._observed import ObservedEntries
from skgmmfill.datasets import make_incomplete_mixture
from skgmmfill.metrics import rmse

N_SAMPLES, N_FEATURES, MISSING_FRACTION = 3000, 8, 0.3
TRUE_WEIGHTS = np.array([0.5, 0.3, 0.2])


@pytest.fixture(scope="module")
def synthetic():
    """``(X_complete, X_missing, missing, true_mixture)``: 3 full-covariance components in 8-D."""
    X, X_missing, parameters = make_incomplete_mixture(
        N_SAMPLES, N_FEATURES, weights=TRUE_WEIGHTS, missing_fraction=MISSING_FRACTION, random_state=0
    )
    truth = Mixture(parameters["weights"], parameters["means"], parameters["covariances"])
    return X, X_missing, np.isnan(X_missing), truth


@pytest.fixture(scope="module")
def full_fit(synthetic):
    _, X_missing, _, _ = synthetic
    return MaskedGaussianMixtureImputer(
        3, covariance_type="full", init_params="kmeans", random_state=0
    ).fit(X_missing)


def test_full_recovers_the_parameters(synthetic, full_fit):
    _, _, _, truth = synthetic
    order = np.argsort(full_fit.means_[:, 0])
    true_order = np.argsort(truth.means[:, 0])
    assert_allclose(full_fit.weights_[order], truth.weights[true_order], atol=0.03)
    assert_allclose(full_fit.means_[order], truth.means[true_order], atol=0.2)
    assert_allclose(full_fit.covariances_[order], truth.covariances[true_order], atol=0.3)


def test_full_imputes_nearly_as_well_as_the_oracle_and_beats_iterative_imputer(synthetic, full_fit):
    X, X_missing, missing, truth = synthetic
    observed = ObservedEntries.from_dense(X_missing, ~missing)
    resp, _ = FullCovariance().posterior(observed, truth)
    oracle = rmse(X, FullCovariance().impute(observed, resp, truth), mask=missing)
    model = rmse(X, full_fit.transform(X_missing), mask=missing)
    assert model <= 1.05 * oracle
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        iterative = IterativeImputer(random_state=0).fit_transform(X_missing)
    assert model < rmse(X, iterative, mask=missing)


def test_nominal_90_percent_intervals_cover_88_to_92_percent(synthetic, full_fit):
    X, X_missing, missing, _ = synthetic
    error = np.abs(X - full_fit.transform(X_missing))[missing]
    std = full_fit.imputation_std(X_missing)
    assert_array_equal(std[~missing], 0.0)
    coverage = np.mean(error <= 1.6448536269514722 * std[missing])
    assert 0.88 <= coverage <= 0.92


@pytest.mark.parametrize("covariance_type", ["diag", "full"])
def test_posterior_draws_reproduce_the_predictive_mean_and_variance(synthetic, covariance_type):
    _, X_missing, missing, _ = synthetic
    X_rows, missing_rows = X_missing[:80], missing[:80]
    imputer = MaskedGaussianMixtureImputer(
        3, covariance_type=covariance_type, init_params="kmeans", random_state=0
    ).fit(X_missing)
    mean, std = imputer.transform(X_rows), imputer.imputation_std(X_rows)
    imputer.set_params(sample_posterior=True)
    n_draws = 400
    draws = np.stack([imputer.transform(X_rows) for _ in range(n_draws)])
    assert_array_equal(draws[:, ~missing_rows], np.broadcast_to(X_rows[~missing_rows], (n_draws, (~missing_rows).sum())))
    z = (draws.mean(axis=0) - mean)[missing_rows] / (std[missing_rows] / np.sqrt(n_draws))
    assert abs(z.mean()) < 0.15 and 0.8 < z.std() < 1.2  # standard normal within sampling error
    variance_ratio = draws.var(axis=0)[missing_rows] / std[missing_rows] ** 2
    assert abs(variance_ratio.mean() - 1.0) < 0.05


def test_successive_draws_differ_and_refitting_repeats_them(synthetic):
    _, X_missing, _, _ = synthetic
    imputer = MaskedGaussianMixtureImputer(2, sample_posterior=True, random_state=0).fit(X_missing[:200])
    first, second = imputer.transform(X_missing[:200]), imputer.transform(X_missing[:200])
    assert not np.array_equal(first, second)
    assert_array_equal(imputer.fit(X_missing[:200]).transform(X_missing[:200]), first)


@pytest.mark.parametrize("covariance_type", ["spherical", "full"])
def test_min_and_max_value_clip_imputed_entries_only(synthetic, covariance_type):
    _, X_missing, missing, _ = synthetic
    low = np.full(N_FEATURES, -1.0)
    low[0] = -np.inf
    imputer = MaskedGaussianMixtureImputer(
        3, covariance_type=covariance_type, init_params="kmeans", random_state=0,
        min_value=low, max_value=1.5,
    ).fit(X_missing)
    X_filled = imputer.transform(X_missing)
    assert_array_equal(X_filled[~missing], X_missing[~missing])
    assert X_filled[missing].max() <= 1.5
    assert X_filled[:, 1:][missing[:, 1:]].min() >= -1.0
    assert X_filled[:, 0][missing[:, 0]].min() < -1.0  # unbounded below in feature 0
    unclipped = imputer.set_params(min_value=None, max_value=None).transform(X_missing)
    assert_allclose(X_filled, np.where(missing, np.clip(unclipped, low, 1.5), X_missing))
    rows, cols = np.nonzero(missing)
    imputer.set_params(min_value=low, max_value=1.5)
    assert_allclose(imputer.predict_entries(X_missing, rows, cols), X_filled[rows, cols], rtol=1e-12)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"min_value": [0.0, 1.0]}, r"'min_value' should be of shape \(8,\)"),
        ({"min_value": 2.0, "max_value": 1.0}, r"min_value must not exceed max_value, but it does for \d+ of"),
    ],
)
def test_bad_limits(synthetic, params, message):
    _, X_missing, _, _ = synthetic
    with pytest.raises(ValueError, match=message):
        MaskedGaussianMixtureImputer(**params).fit(X_missing)


def test_crossed_limits_name_the_features(synthetic):
    _, X_missing, _, _ = synthetic
    low = np.zeros(X_missing.shape[1])
    low[[2, 5]] = 9.0
    with pytest.raises(ValueError, match=r"it does for 2 of 8 feature\(s\) \(feature 2: 9 > 1, feature 5: 9 > 1\)"):
        MaskedGaussianMixtureImputer(min_value=low, max_value=1.0).fit(X_missing)
