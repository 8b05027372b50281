"""Adding a covariance family: a toy one, written here and registered at test time.

The tied-diagonal family (one variance per feature, shared by every
component) is its own small class and one line in the registry
(:data:`skgmmfill._families.FAMILIES`, patched here); nothing else in the
package changes. It then passes the family contract (the tests of
``test_family_contract.py``, collected again here with this family) and fits
through the estimator, the model files and the command line's option lists.
This is the worked check of the contributor guide.
"""

from dataclasses import dataclass

import numpy as np
import pytest
from numpy.testing import assert_allclose
from test_family_contract import *  # noqa: F401,F403 (the contract's tests, run again for the toy family)

from skgmmfill import MaskedGaussianMixtureImputer, load_model, save_model
from skgmmfill._families import FAMILIES
from skgmmfill._family import Mixture, estimate_means, mixture_weights
from skgmmfill._independent import IndependentFeatures


@dataclass(frozen=True)
class TiedDiagCovariance(IndependentFeatures):
    """One variance per feature, the same in every component (stored per component, rows equal)."""

    name = "tied-diag"
    contract_hyperparameters = {"min_variance": 1e-3}

    def n_parameters(self, n_components, n_features):
        return n_components * n_features + n_features

    def covariances_shape(self, n_components, n_features):
        return (n_components, n_features)

    def feature_variances(self, covariances, n_features):
        return covariances

    def initial_covariances(self, moments, means):
        n_samples = moments.n_samples
        variances = (moments.squared_sums - 2.0 * means * moments.sums + n_samples * means**2) / n_samples
        return np.maximum(variances.mean(axis=0), self.min_variance) * np.ones_like(means)

    def log_prob(self, observed, mixture):
        means, variances = mixture.means, mixture.covariances
        precisions = 1.0 / variances
        products = observed.row_products(-2.0 * means * precisions, means**2 * precisions + np.log(variances),
                                         squared_coefs=precisions)
        products += observed.n_observed[:, np.newaxis] * np.log(2.0 * np.pi)
        return -0.5 * products

    def update(self, statistics, mixture, prior=None):
        """The diag update pooled over the components: ``v_l = sum_j R_jl / sum_j W_jl``."""
        value_sums, count_sums = statistics.value_sums, statistics.count_sums
        means = estimate_means(value_sums, count_sums, mixture.means, prior)
        residuals = statistics.squared_sums - 2.0 * means * value_sums + means**2 * count_sums
        if prior is not None:
            kappa, prior_means = prior
            residuals += kappa * (means - prior_means) ** 2
            count_sums = count_sums + 1.0
        pooled_counts = count_sums.sum(axis=0)
        variances = np.divide(residuals.sum(axis=0), pooled_counts, out=mixture.covariances[0].copy(),
                              where=pooled_counts > 0)
        variances = np.maximum(variances, self.min_variance) * np.ones_like(means)
        return Mixture(mixture_weights(statistics), means, variances)

    def log_mean_prior(self, mixture, prior):
        kappa, prior_means = prior
        means, variances = mixture.means, mixture.covariances
        return float(
            -0.5 * (np.log(2.0 * np.pi * variances / kappa) + kappa * (means - prior_means) ** 2 / variances).sum()
        )


@pytest.fixture
def family():
    return TiedDiagCovariance(**TiedDiagCovariance.contract_hyperparameters)


@pytest.fixture
def registered(monkeypatch):
    monkeypatch.setitem(FAMILIES, TiedDiagCovariance.name, TiedDiagCovariance)


def test_the_registered_family_fits_predicts_and_saves(registered, tmp_path):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 4)) + 5.0 * rng.randint(2, size=(200, 1))
    X[rng.uniform(size=X.shape) < 0.2] = np.nan
    imputer = MaskedGaussianMixtureImputer(2, covariance_type="tied-diag", random_state=0).fit(X)
    assert np.ptp(imputer.covariances_, axis=0).max() == 0.0  # tied: every component's variances are equal
    assert np.all(np.diff(imputer.map_objectives_) >= -1e-10)
    filled = imputer.transform(X)
    assert np.isfinite(filled).all() and np.array_equal(filled[~np.isnan(X)], X[~np.isnan(X)])
    save_model(imputer, tmp_path / "model.npz")
    assert_allclose(load_model(tmp_path / "model.npz").transform(X), filled)
    with pytest.raises(ValueError, match="n_factors=2 is used only with covariance_type='factor'"):
        MaskedGaussianMixtureImputer(covariance_type="tied-diag", n_factors=2).fit(X)
