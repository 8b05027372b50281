"""The full family against direct formulas; its two factorisation routes and its row groups."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.stats import multivariate_normal

from skgmmfill import MaskedGaussianMixtureImputer, _full
from skgmmfill._family import Mixture
from skgmmfill._full import FullCovariance, floor_eigenvalues
from skgmmfill._observed import ObservedEntries


@pytest.fixture
def problem():
    rng = np.random.RandomState(3)
    X = rng.normal(1.0, 2.0, size=(40, 4))
    observed = rng.uniform(size=X.shape) > 0.35
    observed[5] = False  # nothing observed
    observed[6] = True  # everything observed
    means = rng.normal(size=(3, 4))
    variances = rng.uniform(0.5, 2.0, size=(3, 4))
    factors = rng.normal(size=(3, 4, 4)) / 2
    covariances = factors @ np.swapaxes(factors, 1, 2) + np.eye(4)
    resp = rng.dirichlet(np.ones(3), size=40)
    return X, observed, ObservedEntries.from_dense(X, observed), means, variances, covariances, resp


def test_conditional_mean_and_variance(problem):
    X, observed, obs, means, _, covariances, _ = problem
    resp = np.zeros((40, 3))
    resp[:, 1] = 1.0
    mixture = Mixture(np.full(3, 1 / 3), means, covariances)
    imputed = FullCovariance().impute(obs, resp, mixture)
    variance = FullCovariance().predictive_variance(obs, resp, mixture)
    for u in (0, 1, 5, 6):
        o, m = observed[u], ~observed[u]
        S = covariances[1]
        gain = S[np.ix_(m, o)] @ np.linalg.inv(S[np.ix_(o, o)]) if o.any() else np.zeros((m.sum(), 0))
        assert_allclose(imputed[u, m], means[1, m] + gain @ (X[u, o] - means[1, o]), rtol=1e-10)
        assert_allclose(imputed[u, o], X[u, o])
        conditional = S[np.ix_(m, m)] - gain @ S[np.ix_(o, m)]
        assert_allclose(variance[u, m], np.diag(conditional), rtol=1e-10)
        assert_allclose(variance[u, o], 0.0, atol=1e-12)


def test_update_on_complete_data_is_the_sample_moments():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(50, 3))
    obs = ObservedEntries.from_dense(X, np.ones(X.shape, bool))
    resp = np.zeros((50, 2))
    resp[:20, 0] = resp[20:, 1] = 1.0
    family, start = FullCovariance(1e-6), Mixture(np.full(2, 0.5), np.zeros((2, 3)), np.tile(np.eye(3), (2, 1, 1)))
    _, means, covariances = family.update(family.statistics(obs, resp, start), start)
    for j, rows in enumerate((slice(0, 20), slice(20, 50))):
        assert_allclose(means[j], X[rows].mean(axis=0), rtol=1e-12)
        assert_allclose(covariances[j], np.cov(X[rows].T, bias=True), rtol=1e-10)  # above the floor


def test_floor_is_the_constrained_maximiser():
    """Below ``reg_covar`` the update clips the eigenvalues relative to the
    floor, the maximiser of the expected log-likelihood over ``Sigma >= D``:
    no other covariance above the floor scores higher."""
    rng = np.random.RandomState(1)
    scatter = np.cov(rng.normal(size=(3, 30)), bias=True)
    scatter[:, 1] = scatter[1, :] = 0.0  # a feature without spread
    floor = np.array([0.05, 0.02, 2.0])
    (floored,) = floor_eigenvalues(scatter[np.newaxis], floor)
    assert np.linalg.eigvalsh(floored - np.diag(floor)).min() >= -1e-12

    def expected_log_likelihood(sigma):
        return -0.5 * (np.linalg.slogdet(sigma)[1] + np.trace(scatter @ np.linalg.inv(sigma)))

    best = expected_log_likelihood(floored)
    assert expected_log_likelihood(scatter + np.diag(floor)) < best  # the former rule, added to the diagonal
    for _ in range(200):
        direction = rng.normal(size=(3, 3))
        candidate = floored + 1e-3 * (direction @ direction.T)  # still above the floor
        assert expected_log_likelihood(candidate) <= best + 1e-12
    assert_array_equal(floor_eigenvalues(scatter[np.newaxis] + 10.0 * np.eye(3), floor)[0],
                       scatter + 10.0 * np.eye(3))  # already above the floor: unchanged


def full_outputs(obs, resp, means, covariances):
    n_components = len(means)
    family = FullCovariance(1e-6)
    mixture = Mixture(np.full(n_components, 1 / n_components), means, covariances)
    statistics = family.statistics(obs, resp, mixture)
    return [
        family.log_prob(obs, mixture),
        family.impute(obs, resp, mixture),
        family.predictive_variance(obs, resp, mixture),
        statistics.residual_sums,
        statistics.scatter_sums,
        *family.update(statistics, mixture)[1:],
    ]


BATCHINGS = {
    "padded": {},
    "one batch per size": {"_STEP_FLOPS": 0},
    "padded to the largest": {"_STEP_FLOPS": 10**12},
    "LAPACK": {"_VECTORISED_CHOLESKY_SIZE": 0},
}


@pytest.mark.parametrize("batching", BATCHINGS)
@pytest.mark.parametrize("shared_rows", [1, 10**9])
@pytest.mark.parametrize("precision_route", [None, True, False])
def test_routes_shared_patterns_and_row_batches_agree(problem, monkeypatch, shared_rows, precision_route, batching):
    """Factorising Sigma_oo or P_mm, once per pattern or row by row, blocks padded to a
    common size or not, by LAPACK or the vectorised Cholesky: the same results."""
    X, observed, obs, means, _, covariances, resp = problem
    X, observed, resp = np.vstack([X] * 20), np.vstack([observed] * 20), np.vstack([resp] * 20)
    obs = ObservedEntries.from_dense(X, observed)  # every pattern now has 20 or more rows
    default = full_outputs(obs, resp, means, covariances)
    monkeypatch.setattr(_full, "_SHARED_PATTERN_ROWS", shared_rows)
    monkeypatch.setattr(_full, "_CHUNK_ENTRIES", 2**9)  # several chunks per group
    for name, value in BATCHINGS[batching].items():
        monkeypatch.setattr(_full, name, value)
    if precision_route is not None:
        monkeypatch.setattr(_full, "_takes_precision_route", lambda seen, d: np.full(np.shape(seen), precision_route))
    for expected, actual in zip(default, full_outputs(obs, resp, means, covariances)):
        assert_allclose(actual, expected, rtol=1e-10, atol=1e-10)


def test_wide_rows_batched_with_padding_agree_with_one_batch_per_size(monkeypatch):
    """Blocks of 30 to 50 coordinates (both Cholesky kernels, the blocked inverse) on both routes."""
    rng = np.random.RandomState(1)
    n_features = 90
    factors = rng.normal(size=(2, n_features, n_features)) / np.sqrt(n_features)
    covariances = factors @ np.swapaxes(factors, 1, 2) + 0.5 * np.eye(n_features)
    means = rng.normal(size=(2, n_features))
    X = rng.normal(size=(60, n_features)) * 1.5
    observed = rng.uniform(size=X.shape) > rng.choice([0.25, 0.4, 0.6, 0.75], size=(60, 1))
    obs, resp = ObservedEntries.from_dense(X, observed), rng.dirichlet(np.ones(2), size=60)
    sizes = np.minimum(observed.sum(axis=1), n_features - observed.sum(axis=1))
    assert sizes.min() < _full._VECTORISED_CHOLESKY_SIZE < sizes.max()
    padded = full_outputs(obs, resp, means, covariances)
    assert len({chunk.block.shape[-1] for chunk in _full._chunks(obs, n_features, 2)}) < len(np.unique(sizes))
    monkeypatch.setattr(_full, "_STEP_FLOPS", 0)
    monkeypatch.setattr(_full, "_SHARED_PATTERN_ROWS", 10**9)
    for expected, actual in zip(full_outputs(obs, resp, means, covariances), padded):
        assert_allclose(actual, expected, rtol=1e-10, atol=1e-10)
    log_prob = padded[0]
    for u in (0, 17, 42):
        o = observed[u]
        for j in range(2):
            direct = multivariate_normal(means[j, o], covariances[j][np.ix_(o, o)]).logpdf(X[u, o])
            assert_allclose(log_prob[u, j], direct, rtol=1e-10)


@pytest.mark.parametrize("size", [1, 5, 16, 17, 40])
def test_lower_inverse(size):
    rng = np.random.RandomState(size)
    lower = np.tril(rng.normal(size=(3, size, size))) + 3 * np.eye(size)
    assert_allclose(_full._lower_inverse(lower), np.linalg.inv(lower), rtol=1e-12, atol=1e-12)
    stacked = np.moveaxis(lower, 0, -1)
    assert_allclose(np.moveaxis(_full._stacked_lower_inverse(stacked), -1, 0), np.linalg.inv(lower), atol=1e-12)


def test_statistics_are_the_expected_sufficient_statistics(problem):
    """S_j = sum_u r_uj ((x_tilde - mu)(x_tilde - mu)^T + C_uj), computed row by row."""
    X, observed, obs, means, _, covariances, resp = problem
    statistics = FullCovariance().statistics(obs, resp, Mixture(np.full(3, 1 / 3), means, covariances))
    for j in range(3):
        S, A, Sigma = np.zeros((4, 4)), np.zeros(4), covariances[j]
        for u in range(len(X)):
            o, m = observed[u], ~observed[u]
            residual, C = np.zeros(4), np.zeros((4, 4))
            residual[o] = X[u, o] - means[j, o]
            gain = Sigma[np.ix_(m, o)] @ np.linalg.inv(Sigma[np.ix_(o, o)]) if o.any() else np.zeros((m.sum(), 0))
            residual[m] = gain @ residual[o]
            C[np.ix_(m, m)] = Sigma[np.ix_(m, m)] - gain @ Sigma[np.ix_(o, m)]
            A += resp[u, j] * residual
            S += resp[u, j] * (np.outer(residual, residual) + C)
        assert_allclose(statistics.residual_sums[j], A, rtol=1e-10, atol=1e-12)
        assert_allclose(statistics.scatter_sums[j], S, rtol=1e-10, atol=1e-12)


def test_with_an_empty_row(X_nan):
    X = X_nan.copy()
    X[0] = np.nan
    imputer = MaskedGaussianMixtureImputer(2, covariance_type="full", init_params="kmeans", random_state=0)
    X_filled = imputer.fit_transform(X)
    assert_allclose(X_filled[0], imputer.weights_ @ imputer.means_)
