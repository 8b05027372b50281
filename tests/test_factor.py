"""The factor family (mixtures of factor analysers), through the estimator."""

from dataclasses import replace

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.utils._param_validation import InvalidParameterError

from skgmmfill import MaskedGaussianMixtureImputer
from skgmmfill._factor import FactorCovariance
from skgmmfill._family import Mixture
from skgmmfill._full import FullCovariance
from skgmmfill._observed import ObservedEntries


def factor_mixture(n_samples, n_features, n_factors, n_components, noise=(0.1, 0.5), seed=0):
    """Rows from a known mixture of factor analysers, its parameters in the
    family's layout, and the component of each row."""
    rng = np.random.RandomState(seed)
    means = 2.0 * rng.normal(size=(n_components, n_features))
    loadings = rng.normal(size=(n_components, n_features, n_factors))
    variances = rng.uniform(*noise, size=(n_components, n_features))
    labels = rng.randint(n_components, size=n_samples)
    factors = rng.normal(size=(n_samples, n_factors))
    X = means[labels] + np.einsum("ndq,nq->nd", loadings[labels], factors)
    X += np.sqrt(variances[labels]) * rng.normal(size=X.shape)
    truth = Mixture(
        np.full(n_components, 1.0 / n_components), means, np.concatenate([loadings, variances[..., None]], axis=2)
    )
    return X, truth


def with_missing(X, fraction, seed=1):
    missing = np.random.RandomState(seed).uniform(size=X.shape) < fraction
    return np.where(missing, np.nan, X), missing


def missing_rmse(X_filled, X, missing):
    return np.sqrt(np.mean((X_filled - X)[missing] ** 2))


def test_conditionals_are_those_of_the_dense_covariances():
    # The factor family's conditionals, by Woodbury, equal the full family's
    # (Schur complements) on Sigma = W W^T + diag(psi).
    X, truth = factor_mixture(80, 12, 3, 2)
    X_missing, missing = with_missing(X, 0.4)
    observed = ObservedEntries.from_dense(X, ~missing)
    factor = FactorCovariance(n_factors=3, min_variance=1e-6)
    full = FullCovariance(reg_covar=0.0)
    dense = truth._replace(covariances=factor.dense_covariances(truth.covariances, 12))
    assert_allclose(factor.log_prob(observed, truth), full.log_prob(observed, dense), rtol=1e-10)
    resp, _ = factor.posterior(observed, truth)
    for method in ("impute", "predictive_variance"):
        assert_allclose(
            getattr(factor, method)(observed, resp, truth)[missing],
            getattr(full, method)(observed, resp, dense)[missing],
            rtol=1e-9,
        )


def test_imputes_a_mixture_of_factor_analysers_near_the_oracle():
    X, truth = factor_mixture(2000, 60, 3, 3)
    X_missing, missing = with_missing(X, 0.4)
    observed = ObservedEntries.from_dense(X, ~missing)
    oracle_family = FactorCovariance(n_factors=3, min_variance=1e-6)
    resp, _ = oracle_family.posterior(observed, truth)
    oracle = missing_rmse(oracle_family.impute(observed, resp, truth), X, missing)

    factor = MaskedGaussianMixtureImputer(3, covariance_type="factor", n_factors=3, n_init=3, random_state=0)
    diag = MaskedGaussianMixtureImputer(3, covariance_type="diag", n_init=3, random_state=0)
    factor_rmse = missing_rmse(factor.fit_transform(X_missing), X, missing)
    diag_rmse = missing_rmse(diag.fit_transform(X_missing), X, missing)
    assert factor_rmse <= 1.05 * oracle
    assert factor_rmse < 0.5 * diag_rmse
    assert np.all(np.diff(factor.map_objectives_) >= 0)


@pytest.mark.parametrize("priors", [{}, {"loading_precision_prior": 5.0, "mean_precision_prior": 2.0, "biases": True}])
def test_dense_and_sparse_input_fit_the_same_mixture(priors):
    X, _ = factor_mixture(300, 25, 2, 2)
    X_missing, missing = with_missing(X, 0.6)
    rows, cols = np.nonzero(~missing)
    X_sparse = sp.csr_array((X[rows, cols], (rows, cols)), shape=X.shape)
    params = dict(n_components=2, covariance_type="factor", n_factors=2, random_state=0, **priors)
    dense = MaskedGaussianMixtureImputer(**params).fit(X_missing)
    sparse = MaskedGaussianMixtureImputer(**params).fit(X_sparse)
    assert sparse.n_iter_ == dense.n_iter_
    assert_allclose(sparse.lower_bound_, dense.lower_bound_, rtol=1e-10)
    for name in ("weights_", "means_", "loadings_", "noise_variances_"):
        assert_allclose(getattr(sparse, name), getattr(dense, name), rtol=1e-8, atol=1e-10)
    assert_allclose(sparse.transform(X_sparse), dense.transform(X_missing), rtol=1e-8)
    assert_allclose(sparse.imputation_std(X_sparse), dense.imputation_std(X_missing), rtol=1e-8, atol=1e-12)


def test_low_rank_table_imputes_better_than_diag():
    # 300 x 400 of rank 10 plus noise, 30 % missing: the shape the issue names.
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 10)) @ rng.normal(size=(10, 400)) + 0.3 * rng.normal(size=(300, 400))
    X_missing, missing = with_missing(X, 0.3)
    factor = MaskedGaussianMixtureImputer(2, covariance_type="factor", n_factors=10, random_state=0)
    diag = MaskedGaussianMixtureImputer(2, covariance_type="diag", random_state=0)
    factor_rmse = missing_rmse(factor.fit_transform(X_missing), X, missing)
    assert factor_rmse < 0.2 * missing_rmse(diag.fit_transform(X_missing), X, missing)
    assert factor_rmse < 0.45  # the noise alone leaves 0.3


def test_fitted_attributes_and_methods():
    X, _ = factor_mixture(200, 8, 2, 2)
    X_missing, missing = with_missing(X, 0.3)
    imputer = MaskedGaussianMixtureImputer(2, covariance_type="factor", n_factors=2, random_state=0).fit(X_missing)
    assert imputer.loadings_.shape == (2, 8, 2) and imputer.noise_variances_.shape == (2, 8)
    assert not hasattr(imputer, "covariances_")
    assert imputer._n_parameters() == 1 + 2 * (8 + 8 + 8 * 2 - 1)
    filled = imputer.transform(X_missing)
    assert_array_equal(filled[~missing], X[~missing])
    rows, cols = np.nonzero(missing)
    assert_allclose(imputer.predict_entries(X_missing, rows, cols), filled[rows, cols], rtol=1e-12)
    top = imputer.recommend(X_missing, n=1)[:, 0]
    cautious = filled - 1.96 * imputer.imputation_std(X_missing) / np.sqrt(imputer.n_observed_)
    scores = np.where(missing, cautious, -np.inf)
    has_missing = missing.any(axis=1)
    assert_array_equal(top[has_missing], scores.argmax(axis=1)[has_missing])
    std = imputer.imputation_std(X_missing)
    assert np.all(std[missing] > 0) and np.all(std[~missing] == 0)
    draws = [
        MaskedGaussianMixtureImputer(**{**imputer.get_params(), "sample_posterior": True}).fit(X_missing).transform(X_missing)
        for _ in range(2)
    ]
    assert_array_equal(draws[0], draws[1])
    assert_array_equal(draws[0][~missing], X[~missing])
    # A refit with another family replaces the attributes.
    imputer.set_params(covariance_type="diag", n_factors=None).fit(X_missing)
    assert hasattr(imputer, "covariances_") and not hasattr(imputer, "loadings_")


def test_float32_and_warm_start():
    X, _ = factor_mixture(200, 8, 2, 2)
    X_missing, _ = with_missing(X, 0.3)
    X32 = X_missing.astype(np.float32)
    imputer = MaskedGaussianMixtureImputer(2, covariance_type="factor", n_factors=2, random_state=0).fit(X32)
    assert imputer.transform(X32).dtype == np.float32 and imputer.loadings_.dtype == np.float32
    once = MaskedGaussianMixtureImputer(2, covariance_type="factor", n_factors=2, max_iter=5, tol=0.0,
                                        random_state=0, warm_start=True)
    with pytest.warns(Warning):
        once.fit(X_missing)
    first = once.lower_bounds_[-1]
    with pytest.warns(Warning):
        once.fit(X_missing)
    assert once.lower_bounds_[0] >= first


def test_loading_prior_shrinks_the_loadings():
    X, _ = factor_mixture(60, 10, 2, 1)
    X_missing, _ = with_missing(X, 0.5)
    norms = [
        np.linalg.norm(
            MaskedGaussianMixtureImputer(covariance_type="factor", n_factors=2, loading_precision_prior=beta,
                                         random_state=0).fit(X_missing).loadings_
        )
        for beta in (None, 10.0, 1000.0)
    ]
    assert norms[0] > norms[1] > norms[2]


@pytest.mark.parametrize(
    "params, message",
    [
        ({"n_factors": 8}, "n_factors must be smaller than n_features = 8"),
        ({"n_factors": 12}, "n_factors must be smaller than n_features = 8"),
        ({"covariance_type": "diag", "n_factors": 2}, "n_factors=2 is used only with covariance_type='factor'"),
        ({"covariance_type": "auto", "n_factors": 2}, "n_factors=2 is used only with covariance_type='factor'"),
        ({"covariance_type": "full", "loading_precision_prior": 1.0}, "loading_precision_prior=1.0 is used only"),
        ({"covariance_type": "diag", "noise_variance_prior": 5.0}, "noise_variance_prior=5.0 is used only"),
    ],
)
def test_bad_n_factors(params, message):
    X, _ = factor_mixture(50, 8, 2, 1)
    imputer = MaskedGaussianMixtureImputer(**{"covariance_type": "factor", **params})
    with pytest.raises(ValueError, match=message):
        imputer.fit(X)


@pytest.mark.parametrize("n_factors", [0, 2.5, "3"])
def test_n_factors_must_be_a_positive_integer(n_factors):
    with pytest.raises(InvalidParameterError, match="n_factors"):
        MaskedGaussianMixtureImputer(covariance_type="factor", n_factors=n_factors).fit(np.eye(5))


def test_default_number_of_factors():
    X, _ = factor_mixture(100, 4, 1, 1)
    assert MaskedGaussianMixtureImputer(covariance_type="factor").fit(X).loadings_.shape == (1, 4, 3)
    with pytest.raises(ValueError, match="n_features = 1"):
        MaskedGaussianMixtureImputer(covariance_type="factor").fit(X[:, :1])


def long_tail_ratings(seed=0, n_users=400, n_items=80):
    """Ratings 1-5 of a rank-3 model plus biases, items of Zipf-like popularity,
    and one more item rated once, with 5 stars."""
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.8
    rated = rng.uniform(size=(n_users, n_items)) < 0.5 * popularity / popularity.max()
    users, items = rng.normal(size=(n_users, 3)) * 0.4, rng.normal(size=(n_items, 3)) * 0.4
    ratings = 3.5 + rng.normal(0, 0.4, (n_users, 1)) + rng.normal(0, 0.5, n_items) + users @ items.T
    ratings = np.clip(np.round(ratings + rng.normal(0, 0.8, ratings.shape)), 1, 5)
    X = np.where(rated, ratings, np.nan)
    once = np.full((n_users, 1), np.nan)
    once[0] = 5.0
    return np.hstack([X, once])


def test_an_item_rated_once_predicts_as_the_bias_model_with_the_noise_and_mean_priors():
    """The long-tail rule. By maximum likelihood an item rated once gets its noise
    variance at the floor (its one rating then dominates its rater's factors) and
    its mean at that rating (it tops almost every list). The noise prior keeps its
    variance near the pooled one, the mean prior its mean near the offsets: its
    predictions stay within 0.1 of the bias model's and it tops no list."""
    X = long_tail_ratings()
    rows_seen, cols_seen = np.nonzero(~np.isnan(X))
    ratings = sp.csr_array((X[rows_seen, cols_seen], (rows_seen, cols_seen)), shape=X.shape)
    once, users = X.shape[1] - 1, np.arange(X.shape[0])
    scale = {"min_value": 1, "max_value": 5, "random_state": 0}
    biases = MaskedGaussianMixtureImputer(biases=True, covariance_type="diag", mean_precision_prior=1e4, **scale)
    bias_predictions = biases.fit(ratings).predict_entries(ratings, users, np.full(len(users), once))
    factor = dict(biases=True, covariance_type="factor", n_factors=3, loading_precision_prior=100.0, **scale)
    shrunk = MaskedGaussianMixtureImputer(**factor, mean_precision_prior=25.0, noise_variance_prior=50.0).fit(ratings)
    predictions = shrunk.predict_entries(ratings, users, np.full(len(users), once))
    assert np.abs(predictions - bias_predictions)[1:].max() < 0.1
    assert once not in shrunk.recommend(ratings, 10)
    assert once not in shrunk.recommend(ratings, 10, rank_by="hits")
    unshrunk = MaskedGaussianMixtureImputer(**factor).fit(ratings)
    assert np.mean(unshrunk.recommend(ratings, 10)[:, 0] == once) > 0.5  # what the priors prevent
    pooled = np.nanvar(X - shrunk.global_mean_ - shrunk.column_offsets_)
    assert unshrunk.noise_variances_[0, once] < 0.01 * pooled
    assert shrunk.noise_variances_[0, once] > 0.5 * pooled


def test_the_rating_preset_keeps_an_item_rated_once_near_the_bias_model_and_off_every_list():
    """The long-tail rule for PRESET_RATINGS, whose item offsets are shrunk as the data say
    (less than the default 25 pseudo-ratings). Its users' offsets are inferred with their tastes
    (``row_offset_factor``), so they differ from the bias model's ridge estimate (by up to 0.38 here,
    0.09 on average, for users of 2-7 ratings), but the item's own part does not move: the item
    rated once is predicted within 0.1 of the offsets alone (what the model predicts for an item
    without ratings, plus the item's offset). With the users' offsets subtracted first, it is
    predicted within 0.1 of the bias model with the same shrinkage. Neither model, by either
    ranking, puts it in any top 10."""
    from skgmmfill import PRESET_RATINGS

    X = long_tail_ratings()
    rows_seen, cols_seen = np.nonzero(~np.isnan(X))
    new = X.shape[1]  # a column without ratings: the offsets alone
    ratings = sp.csr_array((X[rows_seen, cols_seen], (rows_seen, cols_seen)), shape=(X.shape[0], new + 1))
    once, users = X.shape[1] - 1, np.arange(X.shape[0])
    column = np.full(len(users), once)
    seed = {"random_state": 0, "keep_empty_features": True}
    preset = MaskedGaussianMixtureImputer(**PRESET_RATINGS, **seed).fit(ratings)
    offsets = preset.predict_entries(ratings, users, np.full(len(users), new)) + preset.column_offsets_[once]
    assert np.abs(preset.predict_entries(ratings, users, column) - offsets)[1:].max() < 0.1
    biases = MaskedGaussianMixtureImputer(biases=True, bias_shrinkage="auto", covariance_type="diag",
                                          mean_precision_prior=1e4, **seed).fit(ratings)
    assert_allclose(preset.bias_shrinkage_, biases.bias_shrinkage_)
    assert preset.bias_shrinkage_[1] < 25.0
    offsets_first = MaskedGaussianMixtureImputer(**{**PRESET_RATINGS, "row_offset_factor": None}, **seed).fit(ratings)
    assert np.abs(offsets_first.predict_entries(ratings, users, column)
                  - biases.predict_entries(ratings, users, column))[1:].max() < 0.1
    for model in (preset, offsets_first):
        assert once not in model.recommend(ratings, 10)
        assert once not in model.recommend(ratings, 10, rank_by="hits")


def test_implicit_feedback_shifts_each_rows_factor_prior_by_its_pattern():
    """With implicit feedback a row's observed coordinates are
    N(mu_o + W_o C^T y_u, W_o W_o^T + Psi_o), y_u its pattern over sqrt(|O_u|)."""
    from scipy.stats import multivariate_normal

    from skgmmfill._em import initialize_random_from_data
    from skgmmfill._factor import FactorCovariance

    rng = np.random.RandomState(0)
    X = rng.normal(size=(40, 6))
    observed = rng.uniform(size=X.shape) > 0.3
    obs = ObservedEntries.from_dense(X, observed)
    family = FactorCovariance(n_factors=2, min_variance=1e-3, implicit_precision_prior=0.5)
    start = initialize_random_from_data(obs, 2, family, rng)
    mixture = family.update(family.statistics(obs, rng.dirichlet(np.ones(2), size=40), start), start)
    loadings, noise, implicit = mixture.covariances[..., :2], mixture.covariances[..., 2], mixture.covariances[..., 3:]
    assert np.abs(implicit).max() > 1e-3  # one update moved C away from 0
    log_prob = family.log_prob(obs, mixture)
    for u in range(40):
        o = observed[u]
        pattern = o / np.sqrt(max(o.sum(), 1))
        for j in range(2):
            mean = mixture.means[j] + loadings[j] @ (implicit[j].T @ pattern)
            covariance = loadings[j] @ loadings[j].T + np.diag(noise[j])
            expected = multivariate_normal(mean[o], covariance[np.ix_(o, o)]).logpdf(X[u, o]) if o.any() else 0.0
            assert log_prob[u, j] == pytest.approx(expected, rel=1e-10, abs=1e-10)


def test_implicit_feedback_learns_from_which_entries_are_observed():
    """Rows of two tastes that observe different halves of the columns: the
    pattern alone tells the taste, and the fit with implicit feedback uses it."""
    rng = np.random.default_rng(0)
    n, d = 600, 40
    taste = rng.integers(2, size=n)
    loadings = rng.normal(size=(d, 1))
    X = (2.0 * taste - 1.0)[:, None] * loadings.T + 0.5 * rng.normal(size=(n, d))
    likes = np.where(taste[:, None] == 1, np.arange(d) < d // 2, np.arange(d) >= d // 2)
    observed = rng.uniform(size=(n, d)) < np.where(likes, 0.25, 0.03)
    rows, cols = np.nonzero(observed)
    train = sp.csr_array((X[rows, cols], (rows, cols)), shape=(n, d))
    test_rows, test_cols = np.nonzero(~observed)
    errors = {}
    for name, implicit in (("plain", None), ("implicit", 1.0)):
        imputer = MaskedGaussianMixtureImputer(covariance_type="factor", n_factors=1, biases=True,
                                               implicit_precision_prior=implicit, random_state=0).fit(train)
        predicted = imputer.predict_entries(train, test_rows, test_cols)
        errors[name] = np.sqrt(np.mean((predicted - X[test_rows, test_cols]) ** 2))
        assert np.all(np.diff(imputer.map_objectives_) >= -1e-10 * np.abs(imputer.map_objectives_[1:]))
    assert errors["implicit"] < 0.9 * errors["plain"], errors
    assert imputer.implicit_loadings_.shape == (1, d, 1)


def updated_once(family, n, d, n_components, *, observe=lambda draws: draws > 0.3, prior=None, seed=0):
    """``(X, observed, ObservedEntries, mixture)``: two clusters with entries hidden where ``observe``
    of uniform draws is False, and ``family``'s parameters one update from random responsibilities."""
    from skgmmfill._em import initialize_random_from_data

    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, d)) + 2.0 * rng.randint(2, size=(n, 1))
    observed = observe(rng.uniform(size=X.shape))
    obs = ObservedEntries.from_dense(X, observed)
    start = initialize_random_from_data(obs, n_components, family, rng)
    resp = rng.dirichlet(np.ones(n_components), size=n)
    return X, observed, obs, family.update(family.statistics(obs, resp, start), start, prior=prior)


def variational_parameters(n_components=2, d=6):
    """Data, a variational factor family and parameters one update from random responsibilities."""
    family = FactorCovariance(n_factors=2, min_variance=1e-3, loading_precision_prior=2.0,
                              loading_posterior="variational")
    X, observed, obs, mixture = updated_once(family, 40, d, n_components, prior=(3.0, np.zeros(d)))
    return X, observed, obs, family, mixture


def posterior_of_loadings(family, mixture, j):
    """Each feature's ``(w_l, mu_l)`` posterior mean ``(d, q+1)`` and covariance ``(d, q+1, q+1)``."""
    q = family.n_factors
    loadings, noise = mixture.covariances[j, :, :q], mixture.covariances[j, :, q]
    packed = mixture.covariances[j, :, q + 1:]
    upper = np.triu_indices(q + 1)
    covariance = np.zeros((len(noise), q + 1, q + 1))
    covariance[:, upper[0], upper[1]] = packed
    covariance[:, upper[1], upper[0]] = packed
    return np.column_stack([loadings, mixture.means[j]]), covariance, noise


def test_variational_log_prob_is_each_rows_lower_bound_written_out():
    """E_q[log p(x_O | t, w, mu)] + E_q[log p(t)] + H(q(t)) with q(t) the optimal Gaussian, from
    expectations written out: E[(x - lambda^T t~)^2] = x^2 - 2 x lambda^T E[t~] + tr(E[lambda lambda^T] E[t~ t~^T])."""
    X, observed, obs, family, mixture = variational_parameters()
    q = family.n_factors
    log_prob = family.log_prob(obs, mixture)
    for j in range(2):
        rows, covariance, noise = posterior_of_loadings(family, mixture, j)
        second = np.einsum("la,lb->lab", rows, rows) + covariance  # E[lambda lambda^T]
        assert np.all(np.linalg.eigvalsh(covariance) > 0)
        for u in range(len(X)):
            o = np.flatnonzero(observed[u])
            precision = np.eye(q) + (second[o, :q, :q] / noise[o, None, None]).sum(axis=0)
            projection = ((rows[o, :q] * X[u, o, None] - second[o, :q, q]) / noise[o, None]).sum(axis=0)
            factor_covariance = np.linalg.inv(precision)
            mean = factor_covariance @ projection
            augmented = np.zeros((q + 1, q + 1))
            augmented[:q, :q] = factor_covariance + np.outer(mean, mean)
            augmented[:q, q] = augmented[q, :q] = mean
            augmented[q, q] = 1.0
            expected_squares = (X[u, o] ** 2 - 2.0 * X[u, o] * (rows[o] @ np.append(mean, 1.0))
                                + np.einsum("lab,ab->l", second[o], augmented))
            bound = (-0.5 * np.sum(np.log(2.0 * np.pi * noise[o]) + expected_squares / noise[o])
                     - 0.5 * (q * np.log(2.0 * np.pi) + np.trace(factor_covariance) + mean @ mean)
                     + 0.5 * (q * np.log(2.0 * np.pi * np.e) + np.linalg.slogdet(factor_covariance)[1]))
            assert log_prob[u, j] == pytest.approx(bound, rel=1e-10, abs=1e-10)


def test_variational_predictive_variance_counts_the_loadings_uncertainty():
    """Var[x_ul] = psi_l + tr(E[lambda lambda^T] E[t~ t~^T]) - (lambda^T E[t~])^2 for one component."""
    X, observed, obs, family, mixture = variational_parameters(n_components=1)
    rows, covariance, noise = posterior_of_loadings(family, mixture, 0)
    resp = np.ones((len(X), 1))
    mean, variance = family.predictive_moments(obs, resp, mixture)
    factors = family._factors(obs, mixture)
    for u in range(len(X)):
        m, v = factors.means[u, 0], factors.covariances[u, 0]
        augmented = np.block([[v + np.outer(m, m), m[:, None]], [m[None, :], np.ones((1, 1))]])
        centre = rows @ np.append(m, 1.0)
        spread = noise + np.einsum("lab,ab->l", np.einsum("la,lb->lab", rows, rows) + covariance, augmented)
        assert_allclose(mean[u], centre, rtol=1e-10)
        assert_allclose(variance[u], spread - centre**2, rtol=1e-9)
        point = noise + np.einsum("la,ab,lb->l", rows, augmented, rows) - centre**2
        assert np.all(variance[u] > point)  # wider than with the loadings taken as known


def test_variational_loadings_need_a_loading_prior():
    with pytest.raises(ValueError, match="loading_posterior='variational' needs loading_precision_prior"):
        MaskedGaussianMixtureImputer(covariance_type="factor", n_factors=2,
                                     loading_posterior="variational").fit(np.eye(4) + 1.0)


def pattern_parameters(d=8, **options):
    """A factor family with the pattern prior, data whose features are observed more and less
    often, and parameters one update from random responsibilities."""
    family = FactorCovariance(n_factors=2, min_variance=1e-3, loading_precision_prior=2.0, loading_pattern_prior=0.5,
                              noise_variance_target=1.3, **options)
    _, observed, _, mixture = updated_once(family, 50, d, 2, observe=lambda draws: draws < np.linspace(0.9, 0.2, d))
    return observed, family, mixture


def test_pattern_features_span_the_leading_part_of_the_co_observation_matrix():
    """With a sketch as wide as the features, Nystrom is exact: F F^T is M's best rank-r part."""
    from skgmmfill._factor import PATTERN_FEATURES

    observed, family, mixture = pattern_parameters(d=40)
    features = family._split(mixture.covariances).pattern
    counts = observed.sum(axis=0)
    co_observation = observed.T.astype(float) @ observed / np.sqrt(np.outer(counts, counts))
    eigenvalues, vectors = np.linalg.eigh(co_observation)
    leading = (vectors[:, -PATTERN_FEATURES:] * eigenvalues[-PATTERN_FEATURES:]) @ vectors[:, -PATTERN_FEATURES:].T
    for j in range(2):  # the same F in every component
        assert_allclose(features[j] @ features[j].T, leading, atol=1e-8)


@pytest.mark.parametrize("options", [{}, {"loading_ard_prior": 0.5}])
def test_pattern_prior_is_the_loadings_marginal_density_written_out(options):
    """log_prior's loading term is sum_jk log N(w_jk; 0, (Psi_j + s^2/lambda F F^T) / beta_jk): g integrated out.

    Without ARD ``beta`` is the prior's; with ARD the maximiser of that density and the hyperprior."""
    from scipy.optimize import minimize_scalar
    from scipy.stats import multivariate_normal

    observed, family, mixture = pattern_parameters(**options)
    parts = family._split(mixture.covariances)
    q, (n_components, d) = family.n_factors, mixture.means.shape
    assert_allclose(parts.pattern_variance, 1.3 / 0.5)  # s^2 / lambda, kept when lambda is given
    total = 0.0
    for j in range(n_components):
        F = parts.pattern[j]
        covariance = np.diag(parts.noise[j]) + 1.3 / 0.5 * F @ F.T
        for k in range(q):
            w = parts.loadings[j, :, k]

            def log_density(beta):
                return multivariate_normal(np.zeros(d), covariance / beta).logpdf(w)

            if "loading_ard_prior" in options:  # beta_jk >= 2 maximises the density and the hyperprior
                a = 0.5 * d
                best = minimize_scalar(lambda b: -(log_density(b) + 0.5 * a * (np.log(b) - b / 2.0)),
                                       bounds=(2.0, 1e6), method="bounded", options={"xatol": 1e-10})
                total += -best.fun
            else:
                total += log_density(2.0)
    # no mean prior (prior=None) and no noise prior: the loadings' term is all of log_prior
    assert family.log_prior(mixture, None) == pytest.approx(total, rel=1e-6)


def test_the_pattern_strengths_step_is_em_towards_the_maximiser_of_the_loadings_density():
    """``loading_pattern_prior="auto"``: each step in ``v = s^2 / lambda`` (``g`` missing) raises
    sum_k log N(w_k; 0, (Psi + v F F^T) / beta) given the loadings, and repeated steps reach the
    maximiser over v (found here by a scalar search)."""
    from scipy.optimize import minimize_scalar
    from scipy.stats import multivariate_normal

    observed, family, mixture = pattern_parameters()
    auto = replace(family, loading_pattern_prior="auto")  # beta = loading_precision_prior = 2, no ARD
    parts = auto._split(mixture.covariances.astype(np.float64))
    j = 1

    def log_density(v):
        covariance = np.diag(parts.noise[j]) + v * parts.pattern[j] @ parts.pattern[j].T
        return sum(multivariate_normal(np.zeros(len(covariance)), covariance / 2.0).logpdf(parts.loadings[j, :, k])
                   for k in range(auto.n_factors))

    values = [1.3 / 0.5]
    for _ in range(500):
        values.append(auto._pattern_variance_step(
            parts._replace(pattern_variance=np.full_like(parts.pattern_variance, values[-1])))[j])
    densities = [log_density(v) for v in values[:20]]
    assert np.all(np.diff(densities) >= -1e-9 * np.abs(densities[1:]))
    assert densities[-1] > densities[0]
    best = minimize_scalar(lambda v: -log_density(v), bounds=(1e-8, 1e3), method="bounded", options={"xatol": 1e-12})
    assert log_density(values[-1]) == pytest.approx(-best.fun, rel=1e-7)


def test_the_pattern_prior_fades_where_the_pattern_says_nothing_and_holds_where_it_does():
    """``loading_pattern_prior="auto"`` on the two-taste data (below) keeps the prior (lambda about 2)
    and predicts the rarely observed features as well as the strength 1 does; with 1,000 such
    features observed at random (the 30 pattern features then span little of the loadings' space,
    and nothing of their signs) its estimated lambda is in the thousands: the prior fades, as if
    absent."""
    train, test_rows, test_cols, truth, rare = two_tastes_observed_by_liking()
    fits = {}
    for name, pattern in (("fixed", 1.0), ("auto", "auto")):
        fits[name] = MaskedGaussianMixtureImputer(covariance_type="factor", n_factors=1, biases=True,
                                                  loading_precision_prior=1.0, loading_pattern_prior=pattern,
                                                  keep_empty_features=True, random_state=0).fit(train)
    errors = {name: np.sqrt(np.mean((fit.predict_entries(train, test_rows, test_cols) - truth)[rare] ** 2))
              for name, fit in fits.items()}
    assert errors["auto"] < 1.02 * errors["fixed"], errors
    assert fits["auto"].loading_pattern_strengths_[0] < 10.0
    assert_allclose(fits["fixed"].loading_pattern_strengths_, 1.0)
    random_train, *_ = two_tastes_observed_by_liking(at_random=True, d=1000)
    at_random = MaskedGaussianMixtureImputer(covariance_type="factor", n_factors=1, biases=True,
                                             loading_precision_prior=1.0, loading_pattern_prior="auto",
                                             random_state=0).fit(random_train)
    assert at_random.loading_pattern_strengths_[0] > 100.0
    assert np.all(np.diff(at_random.map_objectives_) >= -1e-10 * np.abs(at_random.map_objectives_[1:]))


def two_tastes_observed_by_liking(at_random=False, d=100):
    """Rows of two tastes that observe mostly the features they like (or, ``at_random``, each
    feature with the same probability whatever their taste): the training ratings, the unobserved
    entries and their true values, and which of those are of features observed at most 5 times."""
    rng = np.random.default_rng(0)
    n = 600
    taste = rng.integers(2, size=n)
    loadings = np.where(np.arange(d) < d // 2, 1.0, -1.0)[:, None] * rng.uniform(0.5, 1.5, size=(d, 1))
    X = (2.0 * taste - 1.0)[:, None] * loadings.T + 0.5 * rng.normal(size=(n, d))
    likes = np.where(taste[:, None] == 1, np.arange(d) < d // 2, np.arange(d) >= d // 2)
    popularity = rng.permutation(0.8 / np.arange(1, d + 1) ** 0.9)
    observed = rng.uniform(size=(n, d)) < popularity * np.where(likes | at_random, 1.0, 0.15)
    rows, cols = np.nonzero(observed)
    train = sp.csr_array((X[rows, cols], (rows, cols)), shape=(n, d))
    test_rows, test_cols = np.nonzero(~observed)
    rare = observed.sum(axis=0)[test_cols] <= 5
    return train, test_rows, test_cols, X[test_rows, test_cols], rare


def test_pattern_prior_predicts_rarely_observed_features_from_those_observed_with_them():
    """Rows of two tastes that observe mostly the features they like: the features' co-observation
    tells which features go together, and the pattern prior gives a feature observed a few times
    loadings like those of its kind."""
    train, test_rows, test_cols, truth, rare = two_tastes_observed_by_liking()
    errors = {}
    for name, pattern in (("plain", None), ("pattern", 1.0)):
        imputer = MaskedGaussianMixtureImputer(covariance_type="factor", n_factors=1, biases=True,
                                               loading_precision_prior=1.0, loading_pattern_prior=pattern,
                                               keep_empty_features=True, random_state=0).fit(train)
        predicted = imputer.predict_entries(train, test_rows, test_cols)
        errors[name] = np.sqrt(np.mean((predicted - truth)[rare] ** 2))
        assert np.all(np.diff(imputer.map_objectives_) >= -1e-10 * np.abs(imputer.map_objectives_[1:]))
    assert errors["pattern"] < 0.95 * errors["plain"], errors


def test_pattern_prior_needs_a_loading_prior():
    with pytest.raises(ValueError, match="loading_pattern_prior=1.0 needs loading_precision_prior"):
        MaskedGaussianMixtureImputer(covariance_type="factor", n_factors=2,
                                     loading_pattern_prior=1.0).fit(np.eye(4) + 1.0)


def test_row_offset_factor_is_a_factor_whose_loading_is_the_same_for_every_feature():
    """``Sigma = tau^2 1 1^T + W W^T + diag(psi)``: densities and conditionals are the full family's,
    and each row's offset is its conditional mean ``tau^2 1^T Sigma_OO^{-1} (x_O - mu_O)``."""
    X, truth = factor_mixture(80, 12, 3, 1)
    offset_scale = 0.7
    with_offset = np.concatenate([np.full((1, 12, 1), offset_scale), truth.covariances], axis=2)
    truth = truth._replace(covariances=with_offset)
    X = X + offset_scale * np.random.RandomState(3).normal(size=(80, 1))
    X_missing, missing = with_missing(X, 0.4)
    observed = ObservedEntries.from_dense(X, ~missing)
    factor = FactorCovariance(n_factors=3, min_variance=1e-6, row_offset_factor=True)
    dense = truth._replace(covariances=factor.dense_covariances(truth.covariances, 12))
    loadings, noise = truth.covariances[0, :, 1:4], truth.covariances[0, :, 4]
    assert_allclose(dense[2][0], offset_scale**2 + loadings @ loadings.T + np.diag(noise), rtol=1e-12)
    full = FullCovariance(reg_covar=0.0)
    assert_allclose(factor.log_prob(observed, truth), full.log_prob(observed, dense), rtol=1e-10)
    resp, _ = factor.posterior(observed, truth)
    assert_allclose(factor.impute(observed, resp, truth)[missing], full.impute(observed, resp, dense)[missing],
                    rtol=1e-9)
    offsets = factor.row_offsets(observed, resp, truth)
    for u in (0, 7, 41):
        seen = ~missing[u]
        covariance = dense[2][0][np.ix_(seen, seen)]
        expected = offset_scale**2 * np.linalg.solve(covariance, X[u, seen] - truth.means[0, seen]).sum()
        assert offsets[u] == pytest.approx(expected, rel=1e-9)


def test_row_offset_factor_learns_the_offsets_spread_and_predicts_new_items_from_it():
    """Ratings with user offsets of standard deviation 0.6: EM finds ``tau`` near it (the objective
    never decreasing), and an item without training ratings is predicted as the global mean plus
    each user's inferred offset, from the fitted attributes."""
    rng = np.random.default_rng(0)
    n, d = 400, 30
    user_offsets = rng.normal(0.0, 0.6, n)
    tastes = 0.5 * rng.normal(size=(n, 2)) @ rng.normal(size=(2, d))
    X = 3.0 + user_offsets[:, None] + rng.normal(0.0, 0.5, d) + tastes + 0.5 * rng.normal(size=(n, d))
    X[rng.uniform(size=X.shape) < 0.5] = np.nan
    X[:, 7] = np.nan  # a new item
    imputer = MaskedGaussianMixtureImputer(covariance_type="factor", n_factors=2, biases=True,
                                           loading_precision_prior=1.0, row_offset_factor=True,
                                           keep_empty_features=True, random_state=0).fit(X)
    assert imputer.row_offset_scales_[0] == pytest.approx(0.6, rel=0.15)
    assert np.all(np.diff(imputer.map_objectives_) >= -1e-10 * np.abs(imputer.map_objectives_[1:]))
    predicted = imputer.predict_entries(X, np.arange(n), np.full(n, 7))
    covariance = (imputer.row_offset_scales_[0] ** 2 + imputer.loadings_[0] @ imputer.loadings_[0].T
                  + np.diag(imputer.noise_variances_[0]))
    for u in (0, 1, 2, 3):
        seen = ~np.isnan(X[u])
        residuals = X[u, seen] - imputer.global_mean_ - imputer.column_offsets_[seen] - imputer.means_[0, seen]
        offset = imputer.row_offset_scales_[0] ** 2 * np.linalg.solve(covariance[np.ix_(seen, seen)], residuals).sum()
        assert predicted[u] == pytest.approx(imputer.global_mean_ + offset, rel=1e-6)
    assert np.corrcoef(predicted, user_offsets)[0, 1] > 0.9
    assert_allclose(imputer.transform(X)[:, 7], predicted, rtol=1e-10)


def residual_variances_moments(nu, target, counts, seed=0):
    """:class:`DataMoments` of features whose noise variances are drawn from the prior
    ``psi_l ~ nu target / chi^2_nu`` (``nu=None``: all equal to ``target``), ``counts[l]``
    Gaussian entries each."""
    from skgmmfill._observed import DataMoments

    rng = np.random.default_rng(seed)
    variances = np.full(len(counts), target) if nu is None else nu * target / rng.chisquare(nu, len(counts))
    feature = np.repeat(np.arange(len(counts)), counts)
    values = 3.0 + rng.normal(size=len(feature)) * np.sqrt(variances[feature])
    return DataMoments(n_samples=int(counts.max()), counts=counts.astype(np.float64),
                       sums=np.bincount(feature, values), squared_sums=np.bincount(feature, values**2))


@pytest.mark.parametrize("nu", [3.0, 20.0, 100.0])
def test_the_auto_noise_prior_recovers_the_strength_and_centre_the_variances_were_drawn_with(nu):
    """Empirical Bayes on the features' sample variances (scaled F marginals): 3,000
    features with 2-300 entries each, long-tailed as a catalogue's items are."""
    from skgmmfill._factor import AUTO_NOISE_PRIOR_LIMITS, estimated_noise_prior

    counts = np.minimum(2 + np.random.default_rng(1).zipf(1.5, 3000), 300)
    strength, target = estimated_noise_prior(residual_variances_moments(nu, 0.7, counts))
    assert strength == pytest.approx(nu, rel=0.25)
    assert target == pytest.approx(0.7, rel=0.05)
    # one noise variance for all: as strong as the search allows, centred on it
    strength, target = estimated_noise_prior(residual_variances_moments(None, 0.7, counts))
    assert strength > 0.01 * AUTO_NOISE_PRIOR_LIMITS[1]
    assert target == pytest.approx(0.7, rel=0.02)
    # nothing to compare: one observation's worth at the pooled variance
    assert estimated_noise_prior(residual_variances_moments(nu, 0.7, np.array([1, 1, 5])))[0] == 1.0


def test_the_auto_noise_prior_is_estimated_from_the_residuals_and_does_not_depend_on_units():
    """``noise_variance_prior="auto"`` through the estimator: the estimate is that of the
    residuals after both offsets (each user's offset included, although the model infers
    it), exposed as ``noise_variance_prior_`` and ``noise_variance_target_``; ratings in
    other units give the same strength, the target in those units and the same fill."""
    from skgmmfill._factor import estimated_noise_prior
    from skgmmfill._observed import DataMoments

    X = long_tail_ratings()
    params = dict(biases=True, covariance_type="factor", n_factors=3, loading_precision_prior=100.0,
                  mean_precision_prior=25.0, noise_variance_prior="auto", row_offset_factor=True,
                  max_iter=20, random_state=0)
    imputer = MaskedGaussianMixtureImputer(**params).fit(X)
    rows, cols = np.nonzero(~np.isnan(X))
    residuals = X[rows, cols] - imputer.global_mean_ - imputer.column_offsets_[cols]
    row_shrinkage = imputer.bias_shrinkage_[0]
    residuals -= (np.bincount(rows, residuals) / (np.bincount(rows) + row_shrinkage))[rows]
    moments = DataMoments(n_samples=X.shape[0], counts=np.bincount(cols, minlength=X.shape[1]).astype(float),
                          sums=np.bincount(cols, residuals, X.shape[1]),
                          squared_sums=np.bincount(cols, residuals**2, X.shape[1]))
    strength, target = estimated_noise_prior(moments)
    assert imputer.noise_variance_prior_ == pytest.approx(strength, rel=1e-6)
    assert imputer.noise_variance_target_ == pytest.approx(target, rel=1e-6)
    assert 0.5 < target < 0.8  # the generator's noise variance is 0.64 before rounding to stars
    rescaled = MaskedGaussianMixtureImputer(**params).fit(10.0 * X - 7.0)
    assert rescaled.noise_variance_prior_ == pytest.approx(imputer.noise_variance_prior_, rel=1e-6)
    assert rescaled.noise_variance_target_ == pytest.approx(100.0 * imputer.noise_variance_target_, rel=1e-6)
    assert_allclose(rescaled.transform(10.0 * X - 7.0), 10.0 * imputer.transform(X) - 7.0, rtol=1e-6)
    given = MaskedGaussianMixtureImputer(**{**params, "noise_variance_prior": 5.0}).fit(X)
    assert given.noise_variance_prior_ == 5.0
