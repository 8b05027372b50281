"""Behaviour of MaskedGaussianMixtureImputer: invariants, edge cases, bad input."""

import pickle
import re
import warnings

import numpy as np
import scipy.sparse as sp
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.utils._param_validation import InvalidParameterError

from skgmmfill import PRESET_COURSE, EmptyFeatureWarning, MaskedGaussianMixtureImputer


def make_imputer(**params):
    return MaskedGaussianMixtureImputer(**{"n_components": 2, "covariance_type": "spherical", "random_state": 0, **params})


# ------------------------------------------------------------------ invariants


def test_observed_entries_are_returned_bit_identical(X_nan):
    X_filled = make_imputer().fit(X_nan).transform(X_nan)
    observed = ~np.isnan(X_nan)
    assert_array_equal(X_filled[observed], X_nan[observed])
    assert np.isfinite(X_filled).all()
    assert X_filled.shape == X_nan.shape


def test_input_is_never_modified(X_nan):
    original = X_nan.copy()
    imputer = make_imputer().fit(X_nan)
    for method in ("transform", "score_samples", "predict_proba", "predict", "score"):
        getattr(imputer, method)(X_nan)
    imputer.fit_transform(X_nan)
    assert_array_equal(X_nan, original)


def test_input_is_never_modified_with_numeric_marker(course_test):
    X, _ = course_test
    original = X.copy()
    MaskedGaussianMixtureImputer(4, missing_values=0, random_state=0).fit_transform(X)
    assert_array_equal(X, original)


def test_fit_transform_equals_fit_then_transform(X_nan):
    assert_array_equal(
        make_imputer().fit_transform(X_nan), make_imputer().fit(X_nan).transform(X_nan)
    )


def test_fixed_random_state_is_reproducible(X_nan):
    first, second = make_imputer(n_init=3).fit(X_nan), make_imputer(n_init=3).fit(X_nan)
    assert_array_equal(first.means_, second.means_)
    assert_array_equal(first.transform(X_nan), second.transform(X_nan))


def test_pickle_round_trip_gives_the_same_transform(X_nan):
    imputer = make_imputer().fit(X_nan)
    restored = pickle.loads(pickle.dumps(imputer))
    assert_array_equal(restored.transform(X_nan), imputer.transform(X_nan))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_log_likelihood_never_decreases(X_nan):
    for seed in range(5):
        imputer = make_imputer(n_components=3, random_state=seed, tol=0).fit(X_nan)
        history = np.array(imputer.lower_bounds_)
        assert len(history) == imputer.n_iter_
        assert np.all(np.diff(history) >= -1e-12 * np.abs(history[1:]))


def test_transform_works_on_new_rows(X_nan):
    imputer = make_imputer().fit(X_nan[:40])
    X_new = X_nan[40:]
    X_filled = imputer.transform(X_new)
    assert_array_equal(X_filled[~np.isnan(X_new)], X_new[~np.isnan(X_new)])
    assert np.isfinite(X_filled).all()


def test_transform_rows_are_independent(X_nan):
    imputer = make_imputer().fit(X_nan)
    assert_allclose(imputer.transform(X_nan[:7]), imputer.transform(X_nan)[:7], rtol=1e-13)


def test_score_is_mean_of_score_samples_and_lower_bound(X_nan):
    imputer = make_imputer(n_components=1).fit(X_nan)
    assert imputer.score(X_nan) == pytest.approx(imputer.score_samples(X_nan).mean())
    # After convergence one more M-step moves the likelihood by at most tol.
    assert imputer.score(X_nan) >= imputer.lower_bound_


def test_predict_proba_and_predict(X_nan):
    imputer = make_imputer().fit(X_nan)
    proba = imputer.predict_proba(X_nan)
    assert proba.shape == (60, 2)
    assert_allclose(proba.sum(axis=1), 1.0)
    assert_array_equal(imputer.predict(X_nan), proba.argmax(axis=1))


def test_fitted_attributes(X_nan):
    imputer = make_imputer(n_components=3).fit(X_nan)
    assert imputer.weights_.shape == (3,)
    assert_allclose(imputer.weights_.sum(), 1.0)
    assert imputer.means_.shape == (3, 4)
    assert imputer.covariances_.shape == (3,)
    assert np.all(imputer.covariances_ > 0)
    assert imputer.n_features_in_ == 4
    assert imputer.converged_ and 1 <= imputer.n_iter_ <= imputer.max_iter


def test_bic_and_aic_count_spherical_parameters(X_nan):
    imputer = make_imputer(n_components=3).fit(X_nan)
    n, d, k = 60, 4, 3
    n_parameters = k * d + k + (k - 1)
    log_likelihood = imputer.score(X_nan) * n
    assert imputer.bic(X_nan) == pytest.approx(-2 * log_likelihood + n_parameters * np.log(n))
    assert imputer.aic(X_nan) == pytest.approx(-2 * log_likelihood + 2 * n_parameters)


# ------------------------------------------------------- n_init, warm start


def test_n_init_keeps_the_best_run(X_nan):
    single = make_imputer(n_components=3, n_init=1).fit(X_nan)
    several = make_imputer(n_components=3, n_init=6).fit(X_nan)
    assert several.lower_bound_ >= single.lower_bound_


def test_warm_start_continues_from_the_fitted_parameters(course_test):
    X, _ = course_test
    full = MaskedGaussianMixtureImputer(4, **PRESET_COURSE, missing_values=0, random_state=0).fit(X)
    imputer = MaskedGaussianMixtureImputer(
        4, **{**PRESET_COURSE, "max_iter": 5}, missing_values=0, random_state=0, warm_start=True
    )
    with pytest.warns(ConvergenceWarning):
        imputer.fit(X)
    for _ in range(2):
        with pytest.warns(ConvergenceWarning):
            imputer.fit(X)
    imputer.fit(X)  # E-steps 16 to 20: the run converges at the 20th, as in one go
    assert imputer.converged_ and imputer.n_iter_ == 5
    assert_allclose(imputer.means_, full.means_, rtol=1e-12)
    assert_allclose(imputer.lower_bound_, full.lower_bound_, rtol=1e-12)


def test_warm_start_needs_the_same_number_of_components(X_nan):
    imputer = make_imputer(warm_start=True).fit(X_nan)
    with pytest.raises(ValueError, match="warm_start=True needs the same n_components"):
        imputer.set_params(n_components=3).fit(X_nan)


def test_verbose_output(X_nan, capsys):
    make_imputer(verbose=2, verbose_interval=1, n_init=2).fit(X_nan)
    out = capsys.readouterr().out
    assert "Initialization 0" in out and "Initialization 1" in out
    assert re.search(r"Iteration 1\t time lapse [0-9.]+s\t ll change inf\t lower bound -[0-9.]+\n", out)
    assert re.search(r"Iteration 2\t time lapse [0-9.]+s\t ll change [0-9.e-]+\t lower bound -[0-9.]+\n", out)
    assert "Initialization converged. time lapse" in out and "lower bound" in out
    make_imputer(verbose=0).fit(X_nan)
    assert capsys.readouterr().out == ""
    make_imputer(verbose=1, verbose_interval=2).fit(X_nan)
    out = capsys.readouterr().out
    assert re.search(r"Iteration 2\t lower bound -[0-9.]+\t [0-9.e-]+ s/iter\n", out)
    assert "Iteration 1\t" not in out


def test_slow_iterations_are_announced(X_nan, monkeypatch):
    from skgmmfill import _em

    monkeypatch.setattr(_em._Progress, "slow_iteration_seconds", 0.0)
    with pytest.warns(UserWarning, match=r"One EM iteration took .* up to 300 iterations \(max_iter x n_init\)"):
        make_imputer(n_init=3, max_iter=100).fit(X_nan)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # with verbose output there is no warning
        make_imputer(verbose=1, n_init=3).fit(X_nan)


def test_not_converged_warns(X_nan):
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        make_imputer(max_iter=1).fit(X_nan)


# ------------------------------------------------------------- edge cases


def test_row_with_no_observed_entry(X_nan):
    X = X_nan.copy()
    X[3] = np.nan
    imputer = make_imputer().fit(X)
    assert imputer.score_samples(X)[3] == pytest.approx(0.0, abs=1e-15)
    assert_allclose(imputer.predict_proba(X)[3], imputer.weights_)
    assert_allclose(imputer.transform(X)[3], imputer.weights_ @ imputer.means_)


def test_all_rows_empty_except_one():
    X = np.full((5, 3), np.nan)
    X[0] = [1.0, 2.0, 3.0]
    X_filled = MaskedGaussianMixtureImputer(random_state=0).fit_transform(X)
    assert_allclose(X_filled, np.tile([1.0, 2.0, 3.0], (5, 1)))


@pytest.mark.parametrize("keep_empty_features", [False, True])
def test_feature_never_observed_during_fit(X_nan, keep_empty_features):
    X = X_nan.copy()
    X[:, 1] = np.nan
    if keep_empty_features:
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)
            imputer = make_imputer(keep_empty_features=True).fit(X)
    else:
        with pytest.warns(EmptyFeatureWarning, match=r"^1 of 4 feature\(s\) have no observed value in the data given "
                          r"to fit \(column\(s\) 1\)\. They are dropped"):
            imputer = make_imputer().fit(X)
    X_filled = imputer.transform(X)
    kept = [0, 1, 2, 3] if keep_empty_features else [0, 2, 3]
    assert X_filled.shape == (60, len(kept))
    assert_array_equal(imputer.get_feature_names_out(), [f"x{i}" for i in kept])
    if keep_empty_features:
        assert_array_equal(X_filled[:, 1], 0.0)
    # A value in that feature at transform time does not move the posterior.
    X_new = X.copy()
    X_new[:, 1] = 1e6
    assert_allclose(imputer.predict_proba(X_new), imputer.predict_proba(X))
    assert np.isfinite(imputer.transform(X_new)).all()


def test_empty_feature_warning_names_features_and_stops_at_ten():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 30))
    X[:, 3:28] = np.nan
    frame = pd.DataFrame(X, columns=[f"movie {i}" for i in range(30)])
    with pytest.warns(EmptyFeatureWarning) as record:
        make_imputer(n_components=1).fit(frame)
    assert len(record) == 1  # once per fit
    names = ", ".join(f"'movie {i}'" for i in range(3, 13))
    assert str(record[0].message).startswith(f"25 of 30 feature(s) have no observed value in the data given to fit "
                                             f"({names} and 15 more).")


def test_empty_feature_warning_once_per_fit_in_a_search_and_silenced_by_its_category():
    from sklearn.model_selection import GridSearchCV

    from skgmmfill.metrics import make_masked_rmse_scorer

    rng = np.random.default_rng(0)
    X = rng.integers(1, 6, (90, 12)).astype(float)
    X[rng.random(X.shape) < 0.5] = 0
    X[:, 5] = 0
    search = GridSearchCV(make_imputer(covariance_type="diag"), {"n_components": [1, 2]}, cv=3,
                          scoring=make_masked_rmse_scorer(random_state=0))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        search.fit(sp.csr_array(X))
    assert sum(issubclass(w.category, EmptyFeatureWarning) for w in record) == 2 * 3 + 1  # each fit, refit included
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", category=EmptyFeatureWarning)
        search.fit(sp.csr_array(X))


def test_more_components_than_distinct_rows_stays_finite():
    # Components collapse onto identical rows: the variance floor keeps them finite.
    X = np.tile([[1.0, 2.0, np.nan], [1.0, np.nan, 3.0]], (3, 1))
    imputer = MaskedGaussianMixtureImputer(4, covariance_type="spherical", min_variance=0.25, random_state=0).fit(X)
    assert_array_equal(imputer.covariances_, imputer.min_variance)
    X_filled = imputer.transform(X)
    assert np.isfinite(X_filled).all()
    assert_array_equal(X_filled[~np.isnan(X)], X[~np.isnan(X)])


def test_single_sample():
    X = np.array([[1.0, np.nan, 3.0]])
    imputer = MaskedGaussianMixtureImputer(keep_empty_features=True)
    assert_array_equal(imputer.fit_transform(X), [[1.0, 0.0, 3.0]])


def test_integer_input_with_numeric_marker(course_test):
    X, _ = course_test
    X_int = X.astype(np.int64)
    imputer = MaskedGaussianMixtureImputer(4, missing_values=0, random_state=0)
    assert_array_equal(imputer.fit_transform(X_int), imputer.fit_transform(X))


def test_list_input(X_nan):
    assert_array_equal(make_imputer().fit_transform(X_nan.tolist()), make_imputer().fit_transform(X_nan))


# -------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "X, message",
    [
        (np.array([[1.0, np.inf], [2.0, 3.0]]), "Input X contains infinity"),
        ([["a", "b"], ["c", "d"]], "requires numeric input: could not convert string"),
        (np.array([1.0, 2.0, 3.0]), "Expected 2D array, got 1D array"),
        (np.empty((0, 3)), r"0 sample\(s\)"),
        (np.empty((3, 0)), r"0 feature\(s\)"),
    ],
)
def test_bad_input_is_named(X, message):
    with pytest.raises(ValueError, match=message):
        MaskedGaussianMixtureImputer().fit(X)


def test_fewer_rows_than_components():
    with pytest.raises(ValueError, match="n_components=3 needs at least 3 rows to fit, but X has 2: lower"):
        MaskedGaussianMixtureImputer(3).fit(np.ones((2, 2)))


def test_nan_with_numeric_missing_values(course_test):
    X, _ = course_test
    X = X.copy()
    X[0, 0] = np.nan
    imputer = MaskedGaussianMixtureImputer(missing_values=0)
    with pytest.raises(ValueError, match=r"Input X contains NaN, but missing_values=0"):
        imputer.fit(X)
    imputer.fit(np.nan_to_num(X))
    with pytest.raises(ValueError, match=r"Input X contains NaN, but missing_values=0"):
        imputer.transform(X)


def test_wrong_feature_count_at_transform(X_nan):
    imputer = make_imputer().fit(X_nan)
    with pytest.raises(ValueError, match="X has 3 features, but MaskedGaussianMixtureImputer is expecting 4"):
        imputer.transform(X_nan[:, :3])


def test_unfitted_methods_raise(X_nan):
    for method in ("transform", "score_samples", "score", "predict_proba", "predict", "bic"):
        with pytest.raises(NotFittedError):
            getattr(MaskedGaussianMixtureImputer(), method)(X_nan)


@pytest.mark.parametrize(
    "params",
    [
        {"n_components": 0},
        {"covariance_type": "blob"},
        {"missing_values": "NA"},
        {"min_variance": 0.0},
        {"tol": -1.0},
        {"n_init": 0},
        {"init_params": "kmeans++"},
    ],
)
def test_invalid_parameters(X_nan, params):
    with pytest.raises(InvalidParameterError):
        MaskedGaussianMixtureImputer(**params).fit(X_nan)


# ------------------------------------------------------- per covariance type


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


def test_full_refuses_sparse_input():
    X = sp.csr_array(np.eye(4))
    with pytest.raises(ValueError, match="needs dense input"):
        MaskedGaussianMixtureImputer(covariance_type="full").fit(X)


def test_warm_start_needs_the_same_covariance_type(X_nan):
    imputer = MaskedGaussianMixtureImputer(2, covariance_type="spherical", random_state=0, warm_start=True).fit(X_nan)
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


