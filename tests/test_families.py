"""The diag and full families against direct formulas; behaviour per covariance type."""

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal
from scipy.stats import multivariate_normal

from skgmmfill import MaskedGaussianMixtureImputer, _diag, _full
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


def observed_logpdf(x, cols, mean, covariance):
    if not cols.any():
        return 0.0
    return multivariate_normal(mean[cols], covariance[np.ix_(cols, cols)]).logpdf(x[cols])


def test_diag_log_prob_dense_and_sparse(problem):
    X, observed, obs, means, variances, _, _ = problem
    expected = np.array([
        [observed_logpdf(X[u], observed[u], means[j], np.diag(variances[j])) for j in range(3)]
        for u in range(40)
    ])
    assert_allclose(_diag.log_prob(obs, means, variances), expected, rtol=1e-12, atol=1e-12)
    rows, cols = np.nonzero(observed)
    sparse = ObservedEntries.from_sparse(sp.csr_array((X[rows, cols], (rows, cols)), shape=X.shape))
    assert_allclose(_diag.log_prob(sparse, means, variances), expected, rtol=1e-12, atol=1e-12)


def test_diag_m_step_matches_the_direct_update(problem):
    X, observed, obs, means, variances, _, resp = problem
    new_means, new_variances = _diag.m_step(obs, resp, means, variances, 1e-3)
    values = np.where(observed, X, 0.0)
    W = resp.T @ observed
    expected_means = np.where(W >= 1, resp.T @ values / W, means)
    assert_allclose(new_means, expected_means, rtol=1e-12)
    residuals = np.array([
        (resp[:, j, None] * observed * (values - expected_means[j]) ** 2).sum(axis=0) for j in range(3)
    ])
    assert_allclose(new_variances, np.maximum(residuals / W, 1e-3), rtol=1e-10)


def test_full_log_prob(problem):
    X, observed, obs, means, _, covariances, _ = problem
    expected = np.array([
        [observed_logpdf(X[u], observed[u], means[j], covariances[j]) for j in range(3)]
        for u in range(40)
    ])
    assert_allclose(_full.log_prob(obs, means, covariances), expected, rtol=1e-12, atol=1e-12)


def test_full_conditional_mean_and_variance(problem):
    X, observed, obs, means, _, covariances, _ = problem
    resp = np.zeros((40, 3))
    resp[:, 1] = 1.0
    imputed = _full.impute(obs, resp, means, covariances)
    variance = _full.predictive_variance(obs, resp, means, covariances)
    for u in (0, 1, 5, 6):
        o, m = observed[u], ~observed[u]
        S = covariances[1]
        gain = S[np.ix_(m, o)] @ np.linalg.inv(S[np.ix_(o, o)]) if o.any() else np.zeros((m.sum(), 0))
        assert_allclose(imputed[u, m], means[1, m] + gain @ (X[u, o] - means[1, o]), rtol=1e-10)
        assert_allclose(imputed[u, o], X[u, o])
        conditional = S[np.ix_(m, m)] - gain @ S[np.ix_(o, m)]
        assert_allclose(variance[u, m], np.diag(conditional), rtol=1e-10)
        assert_allclose(variance[u, o], 0.0, atol=1e-12)


def test_full_m_step_on_complete_data_is_the_sample_moments():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(50, 3))
    obs = ObservedEntries.from_dense(X, np.ones(X.shape, bool))
    resp = np.zeros((50, 2))
    resp[:20, 0] = resp[20:, 1] = 1.0
    means, covariances = _full.m_step(obs, resp, np.zeros((2, 3)), np.tile(np.eye(3), (2, 1, 1)), 1e-6)
    for j, rows in enumerate((slice(0, 20), slice(20, 50))):
        assert_allclose(means[j], X[rows].mean(axis=0), rtol=1e-12)
        assert_allclose(covariances[j], np.cov(X[rows].T, bias=True) + 1e-6 * np.eye(3), rtol=1e-10)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("covariance_type", ["diag", "full"])
def test_log_likelihood_never_decreases(X_nan, covariance_type):
    for seed in range(3):
        imputer = MaskedGaussianMixtureImputer(
            3, covariance_type=covariance_type, random_state=seed, tol=1e-10, max_iter=200
        ).fit(X_nan)
        history = np.array(imputer.lower_bounds_)
        assert np.all(np.diff(history) >= -1e-12 * np.abs(history[1:]))


@pytest.mark.parametrize(
    "covariance_type, shape, n_parameters",
    [("spherical", (3,), 3 * 4 + 3), ("diag", (3, 4), 2 * 3 * 4), ("full", (3, 4, 4), 3 * (4 + 10))],
)
def test_shapes_and_parameter_counts(X_nan, covariance_type, shape, n_parameters):
    imputer = MaskedGaussianMixtureImputer(3, covariance_type=covariance_type, random_state=0)
    imputer.fit(X_nan)
    assert imputer.covariances_.shape == shape
    assert imputer._n_parameters() == n_parameters + 2
    log_likelihood = imputer.score(X_nan) * 60
    assert imputer.bic(X_nan) == pytest.approx(-2 * log_likelihood + (n_parameters + 2) * np.log(60))
    X_filled = imputer.transform(X_nan)
    assert np.isfinite(X_filled).all()
    assert_array_equal(X_filled[~np.isnan(X_nan)], X_nan[~np.isnan(X_nan)])


def test_full_with_an_empty_row(X_nan):
    X = X_nan.copy()
    X[0] = np.nan
    imputer = MaskedGaussianMixtureImputer(2, covariance_type="full", init_params="kmeans", random_state=0)
    X_filled = imputer.fit_transform(X)
    assert_allclose(X_filled[0], imputer.weights_ @ imputer.means_)


def test_full_refuses_sparse_input():
    X = sp.csr_array(np.eye(4))
    with pytest.raises(ValueError, match="covariance_type='full' needs dense input"):
        MaskedGaussianMixtureImputer(covariance_type="full").fit(X)


def test_warm_start_needs_the_same_covariance_type(X_nan):
    imputer = MaskedGaussianMixtureImputer(2, random_state=0, warm_start=True).fit(X_nan)
    with pytest.raises(ValueError, match="same covariance_type"):
        imputer.set_params(covariance_type="diag").fit(X_nan)


@pytest.mark.parametrize("covariance_type", ["spherical", "diag"])
def test_kmeans_init_works_on_sparse_input(covariance_type):
    rng = np.random.RandomState(0)
    X = sp.random_array((100, 20), density=0.3, random_state=rng, format="csr")
    imputer = MaskedGaussianMixtureImputer(
        3, covariance_type=covariance_type, init_params="kmeans", random_state=0
    ).fit(X)
    assert np.isfinite(imputer.means_).all() and imputer.converged_


@pytest.mark.parametrize("shared_rows", [1, 10**9])
def test_full_shared_patterns_and_row_batches_agree(problem, monkeypatch, shared_rows):
    """Patterns factorised once for all their rows, or rows factorised one by one: same results."""
    X, observed, obs, means, _, covariances, resp = problem
    X, observed, resp = np.vstack([X] * 20), np.vstack([observed] * 20), np.vstack([resp] * 20)
    obs = ObservedEntries.from_dense(X, observed)  # every pattern now has 20 or more rows
    default = [
        _full.log_prob(obs, means, covariances),
        _full.impute(obs, resp, means, covariances),
        _full.predictive_variance(obs, resp, means, covariances),
        *_full.m_step(obs, resp, means, covariances, 1e-6),
    ]
    monkeypatch.setattr(_full, "_SHARED_PATTERN_ROWS", shared_rows)
    monkeypatch.setattr(_full, "_CHUNK_ENTRIES", 2**9)  # several chunks per group
    other = [
        _full.log_prob(obs, means, covariances),
        _full.impute(obs, resp, means, covariances),
        _full.predictive_variance(obs, resp, means, covariances),
        *_full.m_step(obs, resp, means, covariances, 1e-6),
    ]
    for expected, actual in zip(default, other):
        assert_allclose(actual, expected, rtol=1e-10, atol=1e-12)
