"""MAP means (mean_precision_prior) and row/column offsets (biases)."""

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal

from skgmmfill import MaskedGaussianMixtureImputer, _biases
from skgmmfill._observed import ObservedEntries


@pytest.fixture
def ratings():
    """A small rating matrix with user and item effects and NaN for missing."""
    rng = np.random.RandomState(0)
    users, items = rng.normal(0, 0.7, 80), rng.normal(0, 0.5, 25)
    X = np.clip(np.rint(3.5 + users[:, None] + items + rng.normal(0, 0.8, (80, 25))), 1, 5)
    X[rng.uniform(size=X.shape) < 0.4] = np.nan
    return X


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("covariance_type", ["spherical", "diag", "full"])
@pytest.mark.parametrize("biases", [False, True])
def test_map_objective_never_decreases(X_nan, covariance_type, biases):
    imputer = MaskedGaussianMixtureImputer(
        3, covariance_type=covariance_type, mean_precision_prior=5.0, biases=biases,
        init_params="kmeans", random_state=0, tol=1e-10, max_iter=150,
    ).fit(X_nan)
    objectives = np.array(imputer.map_objectives_)
    assert np.all(np.diff(objectives) >= -1e-12 * np.abs(objectives[1:]))
    assert len(imputer.lower_bounds_) == len(objectives) == imputer.n_iter_
    # The reported likelihood is the plain one, below the objective by the prior term.
    assert not np.allclose(objectives, imputer.lower_bounds_)


def test_without_prior_the_objective_is_the_log_likelihood(X_nan):
    imputer = MaskedGaussianMixtureImputer(2, random_state=0).fit(X_nan)
    assert imputer.map_objectives_ == imputer.lower_bounds_


@pytest.mark.parametrize("covariance_type", ["spherical", "diag", "full"])
def test_strong_prior_pins_the_means_to_the_column_means(X_nan, covariance_type):
    imputer = MaskedGaussianMixtureImputer(
        3, covariance_type=covariance_type, mean_precision_prior=1e9, random_state=0
    ).fit(X_nan)
    assert_allclose(imputer.mean_prior_, np.nanmean(X_nan, axis=0), rtol=1e-12)
    assert_allclose(imputer.means_, np.tile(imputer.mean_prior_, (3, 1)), atol=1e-5)


def test_offsets_match_the_direct_formulas(ratings):
    observed = ~np.isnan(ratings)
    entries = ObservedEntries.from_dense(ratings, observed)
    b, c, shrinkage = _biases.fit_offsets(entries, entries.moments(), shrinkage=4.0)
    assert shrinkage == (4.0, 4.0)
    assert b == pytest.approx(np.nanmean(ratings))
    # r from c exactly (the row offsets follow from each row's own entries).
    residuals, row_offsets = _biases.remove_offsets(b, c, 4.0, entries)
    expected_r = np.nansum(ratings - b - c, axis=1) / (observed.sum(1) + 4.0)
    assert_allclose(row_offsets - b, expected_r, rtol=1e-12)
    assert_allclose(residuals.values, np.where(observed, ratings - b - expected_r[:, None] - c, 0.0), atol=1e-12)
    # c from the r of the pass before it: the alternation written out directly.
    r, direct_c = np.zeros(len(ratings)), None
    for _ in range(_biases.N_PASSES):
        direct_c = np.nansum(ratings - b - r[:, None], axis=0) / (observed.sum(0) + 4.0)
        r = np.nansum(ratings - b - direct_c, axis=1) / (observed.sum(1) + 4.0)
    assert_allclose(c, direct_c, rtol=1e-12)
    b0, c0, _ = _biases.fit_offsets(entries, entries.moments(), shrinkage=0.0)
    r0 = _biases.remove_offsets(b0, c0, 0.0, entries)[1] - b0
    assert abs(np.nanmean(ratings - b0 - r0[:, None] - c0)) < 0.05  # near-unbiased fit


def random_effects(n_rows, n_cols, row_sd, column_sd, noise_sd, seed=0):
    """``3 + r_u + c_l + e_ul`` observed where a Zipf-like popularity meets a user's activity."""
    rng = np.random.default_rng(seed)
    activity = rng.lognormal(0.0, 1.0, n_rows)
    popularity = 1.0 / np.arange(1, n_cols + 1) ** 0.8
    odds = np.outer(activity, popularity)
    observed = rng.uniform(size=odds.shape) < 40 * odds / odds.sum(axis=1).mean()
    X = (3.0 + rng.normal(0, row_sd, (n_rows, 1)) + rng.normal(0, column_sd, n_cols)
         + rng.normal(0, noise_sd, odds.shape))
    return np.where(observed, X, np.nan)


def test_auto_shrinkage_estimates_the_variance_ratios():
    """sigma_r = 0.5, sigma_c = 0.7, sigma = 1: lambda_r = 4, lambda_c = 1 / 0.49 = 2.04."""
    X = random_effects(3000, 800, 0.5, 0.7, 1.0)
    entries = ObservedEntries.from_dense(X, ~np.isnan(X))
    row_shrinkage, column_shrinkage = _biases.fit_offsets(entries, entries.moments(), "auto")[2]
    assert row_shrinkage == pytest.approx(4.0, rel=0.15)
    assert column_shrinkage == pytest.approx(1.0 / 0.49, rel=0.15)


def test_auto_shrinkage_is_free_of_units_and_the_same_dense_and_sparse():
    X = random_effects(400, 150, 0.4, 0.6, 0.9, seed=1)
    rows, cols = np.nonzero(~np.isnan(X))
    fitted = {}
    for name, data in {"dense": X, "scaled": 10.0 * X - 3.0,
                       "sparse": sp.csr_array((X[rows, cols], (rows, cols)), shape=X.shape)}.items():
        imputer = MaskedGaussianMixtureImputer(covariance_type="diag", biases=True, bias_shrinkage="auto",
                                               mean_precision_prior=1e4).fit(data)
        fitted[name] = imputer.bias_shrinkage_
    assert fitted["dense"].shape == (2,) and np.all(fitted["dense"] > 0)
    assert_allclose(fitted["scaled"], fitted["dense"], rtol=1e-8)
    assert_allclose(fitted["sparse"], fitted["dense"], rtol=1e-10)
    fixed = MaskedGaussianMixtureImputer(covariance_type="diag", biases=True, bias_shrinkage=7.0).fit(X)
    assert_array_equal(fixed.bias_shrinkage_, [7.0, 7.0])


def test_biases_predict_new_rows_from_their_own_entries(ratings):
    # Without shrinkage a row's offset absorbs a shift of all its ratings exactly.
    imputer = MaskedGaussianMixtureImputer(2, biases=True, bias_shrinkage=0.0, random_state=0)
    imputer.fit(ratings[:60])
    new = ratings[60:]
    missing = np.isnan(new)
    assert_allclose(imputer.transform(new + 1.0)[missing], imputer.transform(new)[missing] + 1.0,
                    rtol=1e-12)
    assert_array_equal(imputer.transform(new)[~missing], new[~missing])


def test_biases_beat_column_means_on_held_out_ratings(ratings):
    rng = np.random.RandomState(1)
    hidden = ~np.isnan(ratings) & (rng.uniform(size=ratings.shape) < 0.2)
    train = np.where(hidden, np.nan, ratings)
    with_biases = MaskedGaussianMixtureImputer(biases=True, random_state=0).fit_transform(train)
    column_means = np.where(np.isnan(train), np.nanmean(train, axis=0), train)
    error = lambda X_pred: np.sqrt(np.mean((X_pred - ratings)[hidden] ** 2))  # noqa: E731
    assert error(with_biases) < 0.9 * error(column_means)


def test_biases_same_for_sparse_and_dense(ratings):
    rows, cols = np.nonzero(~np.isnan(ratings))
    X_sparse = sp.csr_array((ratings[rows, cols], (rows, cols)), shape=ratings.shape)
    # (k-means starts differ by design: column means fill dense rows, sparse ones keep 0)
    params = dict(n_components=2, biases=True, mean_precision_prior=10.0, covariance_type="diag",
                  random_state=0)
    dense = MaskedGaussianMixtureImputer(**params).fit(ratings)
    sparse = MaskedGaussianMixtureImputer(**params).fit(X_sparse)
    assert_allclose(sparse.column_offsets_, dense.column_offsets_, rtol=1e-10)
    assert_allclose(sparse.means_, dense.means_, rtol=1e-8, atol=1e-10)
    assert_allclose(sparse.transform(X_sparse), dense.transform(ratings), rtol=1e-10)
    entries = np.nonzero(np.ones(ratings.shape, bool))
    assert_allclose(sparse.predict_entries(X_sparse, *entries), dense.transform(ratings)[entries], rtol=1e-10)
    assert_array_equal(sparse.predict_entries(X_sparse, rows, cols), ratings[rows, cols])


def test_biases_count_in_bic(ratings):
    plain = MaskedGaussianMixtureImputer(2, random_state=0).fit(ratings)
    with_biases = MaskedGaussianMixtureImputer(2, biases=True, random_state=0).fit(ratings)
    assert with_biases._n_parameters() == plain._n_parameters() + 1 + ratings.shape[1]


def test_netflix_rating_figures(netflix):
    """The README's figures on the missing Netflix ratings with a known value."""
    from skgmmfill import PRESET_RATINGS
    from skgmmfill.metrics import rmse

    X0, X_complete = netflix
    X = np.where(X0 == 0, np.nan, X0)
    known = np.isnan(X) & (X_complete != 0)
    bias_only = MaskedGaussianMixtureImputer(biases=True, mean_precision_prior=1e4, random_state=0,
                                             min_value=1, max_value=5)
    assert rmse(X_complete, bias_only.fit_transform(X), mask=known) == pytest.approx(0.8964, abs=5e-4)
    # Missing not at random: the interaction model learnt from the observed
    # ratings does worse than the biases on these (see the README).
    preset = MaskedGaussianMixtureImputer(**PRESET_RATINGS, min_value=1, max_value=5, random_state=0)
    assert rmse(X_complete, preset.fit_transform(X), mask=known) == pytest.approx(1.0524, abs=5e-4)


def test_netflix_observed_entry_cross_validation(netflix):
    """The README's 3-fold CV over the observed Netflix ratings (bench_rating_models.py, table 2)."""
    import scipy.sparse as sp

    from skgmmfill import PRESET_RATINGS

    X, _ = netflix
    rows, cols = np.nonzero(X)
    ratings = X[rows, cols]
    fold = np.random.RandomState(0).randint(3, size=len(rows))
    errors = []
    for k in range(3):
        train = sp.csr_array((ratings[fold != k], (rows[fold != k], cols[fold != k])), shape=X.shape)
        preset = MaskedGaussianMixtureImputer(**PRESET_RATINGS, min_value=1, max_value=5, random_state=0)
        test = fold == k
        predicted = preset.fit(train).predict_entries(train, rows[test], cols[test])
        errors.append(np.sqrt(np.mean((predicted - ratings[test]) ** 2)))
    assert np.mean(errors) == pytest.approx(0.7658, abs=5e-4)  # user + item biases: 0.8738


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("covariance_type", ["diag", "factor"])
def test_an_item_without_training_ratings_is_predicted_from_the_offsets(sparse, covariance_type):
    """Never 0: the global mean plus the user's offset, as the bias model predicts a new item."""
    rng = np.random.RandomState(0)
    X = np.round(np.clip(3.5 + rng.normal(size=(60, 1)) + 0.5 * rng.normal(size=(60, 8)), 1, 5))
    X[rng.uniform(size=X.shape) < 0.3] = np.nan
    X[:, 5] = np.nan  # a new item
    options = {"n_factors": 2} if covariance_type == "factor" else {}
    imputer = MaskedGaussianMixtureImputer(covariance_type=covariance_type, biases=True, keep_empty_features=True,
                                           min_value=1, max_value=5, **options)
    rows_seen, cols_seen = np.nonzero(~np.isnan(X))
    data = sp.csr_array((X[rows_seen, cols_seen], (rows_seen, cols_seen)), shape=X.shape) if sparse else X
    imputer.fit(data)
    rows = np.arange(60)
    predicted = imputer.predict_entries(data, rows, np.full(60, 5))
    residuals = X - imputer.global_mean_ - imputer.column_offsets_
    user_offsets = np.nansum(residuals, axis=1) / ((~np.isnan(X)).sum(axis=1) + imputer.bias_shrinkage_[0])
    assert_allclose(predicted, np.clip(imputer.global_mean_ + user_offsets, 1, 5), rtol=1e-10)
    assert 1 <= predicted.min() and predicted.std() > 0.1  # each user's own offset, not a constant
    assert_allclose(imputer.transform(data)[:, 5], predicted, rtol=1e-12)
    assert 5 not in imputer.recommend(data, n=3)
