"""The diag family against direct formulas."""

import numpy as np
from numpy.testing import assert_allclose

from skgmmfill._diag import DiagCovariance
from skgmmfill._family import Mixture
from skgmmfill._observed import ObservedEntries


def test_update_matches_the_direct_formulas():
    rng = np.random.RandomState(3)
    X = rng.normal(1.0, 2.0, size=(40, 4))
    observed = rng.uniform(size=X.shape) > 0.35
    means, variances = rng.normal(size=(3, 4)), rng.uniform(0.5, 2.0, size=(3, 4))
    resp = rng.dirichlet(np.ones(3), size=40)
    family, mixture = DiagCovariance(min_variance=1e-3), Mixture(np.full(3, 1 / 3), means, variances)
    new = family.update(family.statistics(ObservedEntries.from_dense(X, observed), resp, mixture), mixture)
    values = np.where(observed, X, 0.0)
    W = resp.T @ observed
    expected_means = np.where(W >= 1, resp.T @ values / W, means)
    assert_allclose(new.means, expected_means, rtol=1e-12)
    residuals = np.array([
        (resp[:, j, None] * observed * (values - expected_means[j]) ** 2).sum(axis=0) for j in range(3)
    ])
    assert_allclose(new.covariances, np.maximum(residuals / W, 1e-3), rtol=1e-10)
    assert_allclose(new.weights, resp.mean(axis=0), rtol=1e-12)


def test_initial_covariances_are_the_spherical_rule_per_feature():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(20, 3))
    observed = rng.uniform(size=X.shape) > 0.3
    means = rng.normal(size=(2, 3))
    values = np.where(observed, X, 0.0)
    expected = ((values[None] - means[:, None]) ** 2).mean(axis=1)
    moments = ObservedEntries.from_dense(X, observed).moments()
    assert_allclose(DiagCovariance(0.0).initial_covariances(moments, means), expected, rtol=1e-12)
