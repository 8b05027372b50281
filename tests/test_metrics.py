import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skgmmfill import MaskedGaussianMixtureImputer
from skgmmfill.datasets import load_netflix
from skgmmfill.metrics import hide_observed_entries, make_masked_rmse_scorer, rmse


def test_rmse_over_all_entries_and_over_a_mask():
    X_true = np.array([[1.0, 2.0], [3.0, 4.0]])
    X_pred = np.array([[1.0, 2.0], [3.0, 0.0]])
    assert rmse(X_true, X_pred) == pytest.approx(2.0)
    assert rmse(X_true, X_pred, mask=[[False, False], [True, True]]) == pytest.approx(np.sqrt(8.0))


@pytest.mark.parametrize(
    "X_pred, mask, message",
    [
        (np.zeros((2, 3)), None, "different shapes"),
        (np.array([[np.nan, 0.0], [0.0, 0.0]]), None, "X_pred contains NaN or infinity"),
        (np.zeros((2, 2)), np.zeros((2, 2), bool), "selects no entry"),
        (np.zeros((2, 2)), np.ones((3, 2), bool), "mask has shape"),
    ],
)
def test_rmse_bad_input(X_pred, mask, message):
    with pytest.raises(ValueError, match=message):
        rmse(np.ones((2, 2)), X_pred, mask=mask)


def test_hide_observed_entries_hides_a_fraction_of_each_row():
    rng = np.random.RandomState(0)
    missing = rng.uniform(size=(50, 40)) < 0.4
    missing[0] = True
    missing[1, 1:] = True  # one observed entry: nothing to hide
    X = rng.normal(size=(50, 40))
    hidden = hide_observed_entries(X, missing, 0.2, random_state=3)
    assert not (hidden & missing).any()
    n_observed = (~missing).sum(axis=1)
    expected = np.minimum(np.rint(0.2 * n_observed), np.maximum(n_observed - 1, 0))
    assert_array_equal(hidden.sum(axis=1), expected)
    assert_array_equal(hidden, hide_observed_entries(X, missing, 0.2, random_state=3))


def test_scorer_scores_only_the_hidden_entries(X_nan):
    imputer = MaskedGaussianMixtureImputer(2, random_state=0).fit(X_nan)
    scorer = make_masked_rmse_scorer(fraction=0.3, random_state=1)
    hidden = hide_observed_entries(X_nan, np.isnan(X_nan), 0.3, random_state=1)
    X_pred = imputer.transform(np.where(hidden, np.nan, X_nan))
    assert scorer(imputer, X_nan) == pytest.approx(-rmse(X_nan, X_pred, mask=hidden))
    assert scorer(imputer, X_nan) == scorer(imputer, X_nan)


def test_scorer_rejects_bad_fraction():
    with pytest.raises(ValueError, match="fraction must be in"):
        make_masked_rmse_scorer(fraction=1.0)


def test_scorer_needs_all_features_kept():
    X = np.array([[1.0, np.nan, 2.0, 3.0]] * 4)
    imputer = MaskedGaussianMixtureImputer().fit(X)
    with pytest.raises(ValueError, match="keep_empty_features=True"):
        make_masked_rmse_scorer()(imputer, X)


def test_scorer_on_a_pipeline_scores_in_the_input_units(X_nan):
    pipeline = make_pipeline(StandardScaler(), MaskedGaussianMixtureImputer(2, random_state=0))
    pipeline.fit(X_nan)
    hidden = hide_observed_entries(X_nan, np.isnan(X_nan), 0.2, random_state=0)
    scaler = pipeline[0]
    X_pred = scaler.inverse_transform(pipeline.transform(np.where(hidden, np.nan, X_nan)))
    assert make_masked_rmse_scorer()(pipeline, X_nan) == pytest.approx(
        -rmse(X_nan, X_pred, mask=hidden)
    )


@pytest.fixture(scope="module")
def netflix_nan():
    return load_netflix(missing_values=np.nan)[0]


def test_grid_search_over_n_components_on_netflix(netflix_nan):
    search = GridSearchCV(
        MaskedGaussianMixtureImputer(random_state=0),
        {"n_components": [1, 3]},
        scoring=make_masked_rmse_scorer(),
        cv=KFold(3, shuffle=True, random_state=0),
    ).fit(netflix_nan)
    scores = search.cv_results_["mean_test_score"]
    assert np.all((-1.2 < scores) & (scores < -0.8))  # RMSE of ratings 1-5
    assert search.best_params_["n_components"] in (1, 3)
    assert search.best_estimator_.transform(netflix_nan[:5]).shape == (5, 1200)


@pytest.mark.filterwarnings("ignore")  # three iterations do not converge; folds leave items empty
def test_the_recommended_grid_search_gives_the_same_scores_in_parallel_on_sparse_ratings():
    """README's tuning recipe, n_jobs=2 as recommended: each point's scores equal a serial run's."""
    import scipy.sparse as sp

    from skgmmfill import PRESET_RATINGS, RATINGS_GRID

    ratings = sp.csr_array(load_netflix(missing_values=0).incomplete[:150, :200])

    def search(n_jobs):
        return GridSearchCV(
            MaskedGaussianMixtureImputer(**{**PRESET_RATINGS, "max_iter": 3}, min_value=1, max_value=5,
                                         keep_empty_features=True, random_state=0),
            RATINGS_GRID, scoring=make_masked_rmse_scorer(fraction=0.2, random_state=0),
            cv=KFold(2, shuffle=True, random_state=0), n_jobs=n_jobs,
        ).fit(ratings)

    serial, parallel = search(1), search(2)
    scores = parallel.cv_results_["mean_test_score"]
    assert len(scores) == np.prod([len(values) for values in RATINGS_GRID.values()])
    assert np.all((-1.3 < scores) & (scores < -0.7))  # RMSE of ratings 1-5
    assert_array_equal(scores, serial.cv_results_["mean_test_score"])
    assert parallel.best_params_ == serial.best_params_


def test_grid_search_over_a_pipeline_with_a_scaler_on_netflix(netflix_nan):
    pipeline = make_pipeline(StandardScaler(), MaskedGaussianMixtureImputer(random_state=0))
    search = GridSearchCV(
        pipeline,
        {"maskedgaussianmixtureimputer__n_components": [1, 2]},
        scoring=make_masked_rmse_scorer(),
        cv=2,
    ).fit(netflix_nan)
    assert np.all((-1.2 < search.cv_results_["mean_test_score"]) & (search.cv_results_["mean_test_score"] < -0.8))


def test_scorer_keeps_dataframe_feature_names(X_nan, recwarn):
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(X_nan, columns=["a", "b", "c", "d"])
    pipeline = make_pipeline(StandardScaler(), MaskedGaussianMixtureImputer(2, random_state=0))
    pipeline.set_output(transform="pandas").fit(X)
    score = make_masked_rmse_scorer()(pipeline, X)
    assert not [w for w in recwarn if "feature names" in str(w.message)]
    pipeline_numpy = make_pipeline(StandardScaler(), MaskedGaussianMixtureImputer(2, random_state=0))
    assert score == pytest.approx(make_masked_rmse_scorer()(pipeline_numpy.fit(X_nan), X_nan))


# ------------------------------------------------------------- sparse input


def _as_csr(X):
    import scipy.sparse as sp

    rows, cols = np.nonzero(~np.isnan(X))
    return sp.csr_array((X[rows, cols], (rows, cols)), shape=X.shape)


def test_scorer_on_csr_equals_the_scorer_on_the_same_data_dense():
    X, _ = load_netflix()
    X = X[:300, :200]
    params = dict(n_components=3, covariance_type="diag", keep_empty_features=True, random_state=0)
    dense = MaskedGaussianMixtureImputer(**params).fit(X)
    sparse = MaskedGaussianMixtureImputer(**params).fit(_as_csr(X))
    scorer = make_masked_rmse_scorer(fraction=0.25, random_state=4)
    dense_score, sparse_score = scorer(dense, X), scorer(sparse, _as_csr(X))
    assert np.isfinite(sparse_score) and sparse_score < 0
    assert sparse_score == pytest.approx(dense_score, rel=1e-10)


def test_sparse_scorer_leaves_unsorted_input_unchanged():
    X, _ = load_netflix()
    X = X[:100, :80]
    imputer = MaskedGaussianMixtureImputer(2, covariance_type="diag", keep_empty_features=True, random_state=0)
    imputer.fit(_as_csr(X))
    csr = _as_csr(X)
    order = np.arange(csr.nnz)
    for row in range(csr.shape[0]):  # each row's entries stored in reverse column order
        order[csr.indptr[row] : csr.indptr[row + 1]] = order[csr.indptr[row] : csr.indptr[row + 1]][::-1]
    unsorted = type(csr)((csr.data[order], csr.indices[order], csr.indptr), shape=csr.shape)
    indices, data = unsorted.indices.copy(), unsorted.data.copy()
    scorer = make_masked_rmse_scorer(fraction=0.25, random_state=4)
    assert scorer(imputer, unsorted) == pytest.approx(scorer(imputer, csr), rel=1e-12)
    np.testing.assert_array_equal(unsorted.indices, indices)
    np.testing.assert_array_equal(unsorted.data, data)


def test_grid_search_over_a_csr_matrix_has_finite_scores():
    X, _ = load_netflix()
    search = GridSearchCV(
        MaskedGaussianMixtureImputer(covariance_type="diag", random_state=0),
        {"n_components": [1, 2]},
        scoring=make_masked_rmse_scorer(),
        cv=KFold(3, shuffle=True, random_state=0),
        error_score="raise",
    ).fit(_as_csr(X[:400]))
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


def test_sparse_scorer_refuses_a_pipeline():
    X, _ = load_netflix()
    pipeline = make_pipeline(StandardScaler(with_mean=False),
                             MaskedGaussianMixtureImputer(covariance_type="diag")).fit(_as_csr(X[:50]))
    with pytest.raises(ValueError, match="not a Pipeline"):
        make_masked_rmse_scorer()(pipeline, _as_csr(X[:50]))


def test_top_n_metrics_by_hand():
    from skgmmfill.metrics import ndcg_at_k, precision_at_k, recall_at_k

    recommended = np.array([[3, 1, 4], [0, 2, -1], [1, 2, 3]])
    rows, cols = np.array([0, 0, 1, 1, 0]), np.array([1, 5, 2, 7, 1])  # row 2 has nothing relevant
    # row 0: hits at rank 2 of relevant {1, 5}; row 1: hit at rank 2 of {2, 7}
    assert precision_at_k(recommended, rows, cols, k=3) == pytest.approx((1 / 3 + 1 / 3) / 2)
    assert recall_at_k(recommended, rows, cols, k=3) == pytest.approx((1 / 2 + 1 / 2) / 2)
    ideal = 1 + 1 / np.log2(3)
    assert ndcg_at_k(recommended, rows, cols, k=3) == pytest.approx((1 / np.log2(3)) / ideal)
    assert precision_at_k(recommended, rows, cols, k=1) == 0.0
    with pytest.raises(ValueError, match="k must be in"):
        precision_at_k(recommended, rows, cols, k=4)
