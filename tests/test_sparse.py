"""Sparse input (stored entries observed, unstored missing), entry predictions,
recommendations and float32."""

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal

from reference_figures import LL_RTOL, NETFLIX_BEST_LL, NETFLIX_RMSE_K12, RMSE_ATOL
from skgmmfill import PRESET_COURSE, MaskedGaussianMixtureImputer, _fitted
from skgmmfill.metrics import rmse


def make_imputer(**params):
    return MaskedGaussianMixtureImputer(**{"n_components": 3, "random_state": 0, **params})


@pytest.fixture
def sparse_and_dense():
    """The same incomplete data as CSR (unstored = missing) and dense NaN-coded."""
    rng = np.random.RandomState(0)
    centers = rng.uniform(1, 5, size=(3, 30))
    X = centers[rng.randint(3, size=200)] + rng.normal(scale=0.5, size=(200, 30))
    X[rng.uniform(size=X.shape) < 0.7] = np.nan
    X[5, 3] = 0.0  # an observed zero: stored explicitly in the sparse form
    X[7] = np.nan  # a row with nothing observed
    rows, cols = np.nonzero(~np.isnan(X))
    X_sparse = sp.csr_array((X[rows, cols], (rows, cols)), shape=X.shape)
    assert X_sparse.nnz == (~np.isnan(X)).sum()
    return X_sparse, X


def test_sparse_and_dense_fit_the_same_mixture(sparse_and_dense):
    X_sparse, X = sparse_and_dense
    sparse_fit, dense_fit = make_imputer().fit(X_sparse), make_imputer().fit(X)
    assert sparse_fit.n_iter_ == dense_fit.n_iter_
    assert_allclose(sparse_fit.lower_bound_, dense_fit.lower_bound_, rtol=1e-10)
    for name in ("weights_", "means_", "covariances_"):
        assert_allclose(getattr(sparse_fit, name), getattr(dense_fit, name), rtol=1e-10)
    assert_allclose(sparse_fit.score_samples(X_sparse), dense_fit.score_samples(X), rtol=1e-10, atol=1e-14)
    assert_allclose(sparse_fit.predict_proba(X_sparse), dense_fit.predict_proba(X), atol=1e-12)
    assert_allclose(sparse_fit.transform(X_sparse), dense_fit.transform(X), rtol=1e-10)


@pytest.mark.parametrize("container", [sp.csr_matrix, sp.csc_array, sp.coo_array, sp.lil_array])
def test_other_sparse_containers(sparse_and_dense, container):
    X_sparse, X = sparse_and_dense
    fit = make_imputer().fit(container(X_sparse))
    assert_allclose(fit.means_, make_imputer().fit(X).means_, rtol=1e-10)


def test_sparse_input_is_never_modified():
    # Non-canonical CSR (unsorted indices, a duplicate) is canonicalised on a copy.
    data, indices, indptr = np.array([2.0, 1.0, 3.0, 4.0]), np.array([2, 0, 0, 0]), np.array([0, 2, 4])
    X = sp.csr_array((data.copy(), indices.copy(), indptr.copy()), shape=(2, 3))
    assert not X.has_canonical_format
    X_filled = MaskedGaussianMixtureImputer(keep_empty_features=True).fit(X).transform(X)
    assert_array_equal(X.data, data) and assert_array_equal(X.indices, indices)
    assert_array_equal(X_filled[:, [0, 2]], [[1.0, 2.0], [7.0, 2.0]])


def test_netflix_reference_figures_from_csr(netflix, netflix_fits):
    X, X_complete = netflix
    X_csr = sp.csr_array(X)  # zeros (missing ratings) are not stored
    best = None
    for seed in range(5):
        fit = MaskedGaussianMixtureImputer(12, **PRESET_COURSE, random_state=seed).fit(X_csr)
        reference = netflix_fits[12, seed]
        assert fit.n_iter_ == reference.n_iter_
        assert_allclose(fit.lower_bound_, reference.lower_bound_, rtol=1e-10)
        assert_allclose(fit.means_, reference.means_, rtol=1e-10, atol=1e-10)
        best = fit if best is None or fit.lower_bound_ > best.lower_bound_ else best
    assert_allclose(best.lower_bound_ * 1200, NETFLIX_BEST_LL[12], rtol=LL_RTOL)
    assert abs(rmse(X_complete, best.transform(X_csr)) - NETFLIX_RMSE_K12) <= RMSE_ATOL


# ------------------------------------------------------------ bad sparse input


def test_nan_stored_in_sparse_input():
    X = sp.csr_array(np.array([[1.0, np.nan], [2.0, 3.0]]))
    with pytest.raises(ValueError, match="contains NaN among its stored entries"):
        MaskedGaussianMixtureImputer().fit(X)


def test_stored_entries_equal_to_missing_values():
    X = sp.csr_array((np.array([0.0, 2.0, 3.0]), ([0, 0, 1], [0, 1, 1])), shape=(2, 2))
    with pytest.raises(ValueError, match=r"stores entries equal to missing_values=0.*eliminate_zeros"):
        MaskedGaussianMixtureImputer(missing_values=0).fit(X)
    MaskedGaussianMixtureImputer().fit(X)  # with NaN as the marker a stored 0 is a rating


def test_invalid_sparse_structure():
    X = sp.csr_array((np.array([1.0, 2.0]), np.array([0, -1]), np.array([0, 1, 2])), shape=(2, 3))
    with pytest.raises(ValueError, match="not a valid sparse matrix"):
        MaskedGaussianMixtureImputer().fit(X)


def test_wrong_feature_count_in_sparse_input(sparse_and_dense):
    X_sparse, _ = sparse_and_dense
    imputer = make_imputer().fit(X_sparse)
    with pytest.raises(ValueError, match="X has 29 features, but MaskedGaussianMixtureImputer is expecting 30"):
        imputer.predict_proba(X_sparse[:, :29])


def test_empty_sparse_input():
    with pytest.raises(ValueError, match=r"0 sample\(s\)"):
        MaskedGaussianMixtureImputer().fit(sp.csr_array((0, 3)))


def test_dense_transform_of_large_sparse_input_is_refused(sparse_and_dense, monkeypatch):
    X_sparse, _ = sparse_and_dense
    imputer = make_imputer().fit(X_sparse)
    monkeypatch.setattr(_fitted, "MAX_DENSE_OUTPUT", 1000)
    with pytest.raises(ValueError, match="dense 200 x 30 array.*use predict_entries.*recommend"):
        imputer.transform(X_sparse)


# -------------------------------------------------------- entries and top-N


@pytest.mark.parametrize("representation", ["sparse", "dense"])
def test_predict_entries_equals_transform(sparse_and_dense, representation):
    X_sparse, X_dense = sparse_and_dense
    X = X_sparse if representation == "sparse" else X_dense
    X_train = X_dense.copy()
    X_train[:, 4] = np.nan  # a feature empty during fit, observed in X
    imputer = make_imputer(keep_empty_features=True).fit(X_train)
    X_filled = imputer.transform(X)
    rng = np.random.RandomState(1)
    rows, cols = rng.randint(200, size=500), rng.randint(30, size=500)
    seen_in_4 = np.flatnonzero(~np.isnan(X_dense[:, 4]))[0]
    unseen_in_4 = np.flatnonzero(np.isnan(X_dense[:, 4]))[0]
    rows = np.r_[rows, 5, seen_in_4, unseen_in_4]
    cols = np.r_[cols, 3, 4, 4]
    predicted = imputer.predict_entries(X, rows, cols)
    # Observed entries bit for bit; the others up to summation order.
    observed = ~np.isnan(X_dense[rows, cols])
    assert observed.sum() > 100 and (~observed).sum() > 100
    assert_array_equal(predicted[observed], X_dense[rows, cols][observed])
    assert_allclose(predicted, X_filled[rows, cols], rtol=1e-14)
    # The stored zero, an observed and a missing entry of the feature empty in fit.
    assert_array_equal(predicted[-3:], [0.0, X_dense[seen_in_4, 4], 0.0])


def test_predict_entries_in_batches(sparse_and_dense, monkeypatch):
    X_sparse, _ = sparse_and_dense
    imputer = make_imputer().fit(X_sparse)
    rows, cols = np.repeat(np.arange(200), 30), np.tile(np.arange(30), 200)
    expected = imputer.predict_entries(X_sparse, rows, cols)
    monkeypatch.setattr(_fitted, "BATCH_ENTRIES", 7 * 3)
    assert_array_equal(imputer.predict_entries(X_sparse, rows, cols), expected)
    assert_allclose(expected.reshape(200, 30), imputer.transform(X_sparse), rtol=1e-14)


@pytest.mark.parametrize(
    "rows, cols, message",
    [
        ([0, 1], [0], "same length"),
        ([0, 200], [0, 1], r"rows must lie in \[0, 200\)"),
        ([0, 1], [-1, 1], r"cols must lie in \[0, 30\)"),
        ([0.5, 1], [0, 1], "rows must be a 1-D array of integers"),
    ],
)
def test_predict_entries_bad_indices(sparse_and_dense, rows, cols, message):
    X_sparse, _ = sparse_and_dense
    imputer = make_imputer().fit(X_sparse)
    with pytest.raises(ValueError, match=message):
        imputer.predict_entries(X_sparse, rows, cols)


@pytest.mark.parametrize("representation", ["sparse", "dense"])
def test_recommend_never_returns_observed_columns(sparse_and_dense, representation, monkeypatch):
    X_sparse, X_dense = sparse_and_dense
    X = X_sparse if representation == "sparse" else X_dense
    imputer = make_imputer().fit(X)
    monkeypatch.setattr(_fitted, "BATCH_ENTRIES", 30 * 17)  # blocks of 17 rows
    top = imputer.recommend(X, n=5)
    assert top.shape == (200, 5)
    observed = ~np.isnan(X_dense)
    assert not observed[np.arange(200)[:, None], top].any()
    scores = rating_scores(imputer, X_dense)
    for u in (0, 7, 100):
        candidates = np.flatnonzero(~observed[u])
        best = candidates[np.argsort(-scores[u, candidates], kind="stable")[:5]]
        assert_allclose(scores[u, top[u]], scores[u, best])


def rating_scores(imputer, X_dense):
    """The documented rating ranking: the prediction less 1.96 standard errors of the column's mean."""
    shrinkage = imputer.bias_shrinkage_[1] if imputer.biases else 0.0
    caution = 1.96 / np.sqrt(imputer.n_observed_ + shrinkage)
    return imputer.transform(X_dense) - caution * imputer.imputation_std(X_dense)


@pytest.mark.parametrize("biases", [False, True])
def test_recommend_by_rating_is_the_documented_formula_dense_and_sparse(sparse_and_dense, biases, monkeypatch):
    X_sparse, X_dense = sparse_and_dense
    imputer = make_imputer(biases=biases, bias_shrinkage="auto").fit(X_sparse)
    scores = rating_scores(imputer, X_dense)
    scores[~np.isnan(X_dense)] = -np.inf
    expected = np.argsort(-scores, axis=1, kind="stable")[:, :4]
    monkeypatch.setattr(_fitted, "BATCH_ENTRIES", 30 * 17)  # blocks of 17 rows
    for X in (X_sparse, X_dense):
        assert_array_equal(imputer.recommend(X, n=4), expected)
    # fewer ratings, more caution: the predictions alone rank differently somewhere
    assert not np.array_equal(np.argsort(-np.where(np.isnan(X_dense), imputer.transform(X_dense), -np.inf),
                                         axis=1, kind="stable")[:, :4], expected)


def test_recommend_including_observed_and_padding():
    X = np.array([[5.0, np.nan, 1.0], [np.nan, np.nan, 4.0], [4.0, 2.0, np.nan]])
    imputer = MaskedGaussianMixtureImputer(random_state=0).fit(X)
    top = imputer.recommend(X, n=3)
    assert_array_equal(top[0], [1, -1, -1])  # one unobserved column, then padding
    assert_array_equal(top[1, 2], -1)
    scores = np.where(np.isnan(X), rating_scores(imputer, X), X)  # observed columns compete with their values
    top_all = imputer.recommend(X, n=3, exclude_observed=False)
    assert_array_equal(top_all, np.argsort(-scores, axis=1, kind="stable"))
    with pytest.raises(ValueError, match="n must be an integer in"):
        imputer.recommend(X, n=4)


def test_recommend_by_hits_is_the_documented_formula_dense_and_sparse(sparse_and_dense, monkeypatch):
    from scipy.special import log_ndtr

    X_sparse, X_dense = sparse_and_dense
    imputer = make_imputer().fit(X_sparse)
    assert_array_equal(imputer.n_observed_, (~np.isnan(X_dense)).sum(axis=0))
    threshold = np.nanmean(X_dense)
    with np.errstate(divide="ignore", invalid="ignore"):  # std 0 at the observed entries, set aside below
        hits = (np.log1p(imputer.n_observed_)
                + log_ndtr((imputer.transform(X_dense) - threshold) / imputer.imputation_std(X_dense)))
    hits[~np.isnan(X_dense)] = -np.inf
    expected = np.argsort(-hits, axis=1, kind="stable")[:, :4]
    monkeypatch.setattr(_fitted, "BATCH_ENTRIES", 30 * 17)  # blocks of 17 rows
    for X in (X_sparse, X_dense):
        top = imputer.recommend(X, n=4, rank_by="hits")
        assert_allclose(np.take_along_axis(hits, top, axis=1), np.take_along_axis(hits, expected, axis=1))
    assert not np.array_equal(expected, imputer.recommend(X_dense, n=4))  # not the ranking by rating
    moved = imputer.recommend(X_dense, n=4, rank_by="hits", relevant_above=threshold + 1.0)
    assert moved.shape == (200, 4)
    with pytest.raises(ValueError, match="rank_by must be 'rating' or 'hits', got 'popularity'"):
        imputer.recommend(X_dense, rank_by="popularity")
    with pytest.raises(ValueError, match="exclude_observed=False needs rank_by='rating'"):
        imputer.recommend(X_dense, rank_by="hits", exclude_observed=False)
    with pytest.raises(ValueError, match="X has no observed entries to take the mean of: pass relevant_above"):
        imputer.recommend(np.full((1, X_dense.shape[1]), np.nan), rank_by="hits")
    with pytest.raises(ValueError, match="relevant_above must be a finite number or None"):
        imputer.recommend(X_dense, rank_by="hits", relevant_above=np.nan)


# ------------------------------------------------------------------- float32


@pytest.mark.parametrize("to_container", [np.asarray, sp.csr_array])
def test_float32_stays_float32(sparse_and_dense, to_container):
    X_sparse, X_dense = sparse_and_dense
    X64 = X_sparse if to_container is sp.csr_array else X_dense
    X32 = X64.astype(np.float32)
    fit32, fit64 = make_imputer().fit(X32), make_imputer().fit(X64)
    for name in ("weights_", "means_", "covariances_"):
        assert getattr(fit32, name).dtype == np.float32
        assert_allclose(getattr(fit32, name), getattr(fit64, name), rtol=1e-3, atol=1e-4)
    assert fit32.transform(X32).dtype == np.float32
    assert fit32.predict_entries(X32, [0, 1], [0, 1]).dtype == np.float32
    assert_allclose(fit32.lower_bound_, fit64.lower_bound_, rtol=1e-5)
    assert_allclose(fit32.transform(X32), fit64.transform(X64), rtol=1e-3, atol=1e-3)


def test_float32_netflix_accuracy(netflix, netflix_fits):
    X, X_complete = netflix
    fit = MaskedGaussianMixtureImputer(12, **PRESET_COURSE, missing_values=0, random_state=1)
    fit.fit(X.astype(np.float32))
    assert abs(fit.lower_bound_ * 1200 - NETFLIX_BEST_LL[12]) < 1e-5 * abs(NETFLIX_BEST_LL[12])
    assert abs(rmse(X_complete, fit.transform(X.astype(np.float32))) - NETFLIX_RMSE_K12) < 1e-4
