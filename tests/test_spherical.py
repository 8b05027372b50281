"""The spherical family against direct (elementwise) formulas."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from skgmmfill._family import Mixture
from skgmmfill._observed import ObservedEntries
from skgmmfill._spherical import SphericalCovariance, squared_distances


@pytest.fixture
def problem():
    rng = np.random.RandomState(1)
    X = rng.normal(2.0, 1.5, size=(30, 6))
    observed = rng.uniform(size=X.shape) > 0.3
    observed[4] = False  # a row with nothing observed
    means = rng.normal(2.0, 1.0, size=(3, 6))
    variances = np.array([0.5, 1.0, 2.0])
    resp = rng.dirichlet(np.ones(3), size=30)
    return X, observed, ObservedEntries.from_dense(X, observed), means, variances, resp


def update(obs, resp, means, variances, min_variance):
    family = SphericalCovariance(min_variance=min_variance)
    mixture = Mixture(np.full(3, 1 / 3), means, variances)
    new = family.update(family.statistics(obs, resp, mixture), mixture)
    return new.means, new.covariances


def direct_squared_distances(X, observed, means):
    diff = np.where(observed[:, None, :], X[:, None, :] - means[None, :, :], 0.0)
    return (diff**2).sum(axis=2)


def test_squared_distances(problem):
    X, observed, obs, means, _, _ = problem
    assert_allclose(
        squared_distances(obs, means),
        direct_squared_distances(X, observed, means),
        rtol=1e-12, atol=1e-12,
    )


def test_log_prob_is_the_gaussian_density_of_the_observed_coordinates(problem):
    X, observed, obs, means, variances, _ = problem
    from scipy.stats import multivariate_normal

    log_prob = SphericalCovariance().log_prob(obs, Mixture(np.full(3, 1 / 3), means, variances))
    for u in (0, 7, 4):
        cols = observed[u]
        for j in range(3):
            expected = (
                multivariate_normal(means[j, cols], variances[j] * np.eye(cols.sum())).logpdf(X[u, cols])
                if cols.any() else 0.0
            )
            assert log_prob[u, j] == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_m_step_matches_the_direct_update(problem):
    X, observed, obs, means, variances, resp = problem
    new_means, new_variances = update(obs, resp, means, variances, 1e-3)
    W = resp.T @ observed
    expected_means = np.where(W >= 1, (resp.T @ np.where(observed, X, 0)) / W, means)
    assert_allclose(new_means, expected_means, rtol=1e-12)
    D = direct_squared_distances(X, observed, expected_means)
    expected_var = (resp * D).sum(axis=0) / (resp * observed.sum(1)[:, None]).sum(axis=0)
    assert_allclose(new_variances, expected_var, rtol=1e-11)


def test_m_step_keeps_means_with_less_than_one_observation_and_floors_variance(problem):
    X, observed, obs, means, variances, _ = problem
    resp = np.zeros((30, 3))
    resp[:, 0] = 1.0
    resp[0] = [0.0, 0.6, 0.4]  # components 1 and 2 see less than one row
    new_means, new_variances = update(obs, resp, means, variances, 0.25)
    assert_allclose(new_means[1:], means[1:])
    assert np.all(new_variances >= 0.25)


def test_component_without_weight_keeps_its_parameters(problem):
    X, observed, obs, means, variances, resp = problem
    resp = resp.copy()
    resp[:, 2] = 0.0
    new_means, new_variances = update(obs, resp, means, variances, 0.1)
    assert_allclose(new_means[2], means[2])
    assert new_variances[2] == variances[2]
    assert np.isfinite(new_variances).all()


def test_initial_covariances_count_missing_entries_as_zero(problem):
    X, observed, obs, means, _, _ = problem
    values = np.where(observed, X, 0.0)
    expected = ((values[None] - means[:, None]) ** 2).mean(axis=(1, 2))
    moments = obs.moments()
    assert_allclose(SphericalCovariance(0.0).initial_covariances(moments, means), expected, rtol=1e-12)
    assert_allclose(SphericalCovariance(1e6).initial_covariances(moments, means), 1e6)


def test_impute_is_the_responsibility_weighted_mean(problem):
    _, _, obs, means, variances, resp = problem
    mixture = Mixture(np.full(3, 1 / 3), means, variances)
    assert_allclose(SphericalCovariance().impute(obs, resp, mixture), resp @ means)


def test_n_parameters():
    assert SphericalCovariance().n_parameters(12, 1200) == 12 * 1200 + 12
