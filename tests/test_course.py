"""The course experiment reproduced through the public API (REFERENCE.md §3)."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import ConvergenceWarning

from reference_figures import (
    COURSE_TEST_FIRST_ESTEP_LL,
    COURSE_TEST_N_ITER,
    COURSE_TEST_RMSE,
    COURSE_TEST_RUN_LL,
    LL_RTOL,
    NETFLIX_BEST_LL,
    NETFLIX_BEST_SEED_K12,
    NETFLIX_ITERS_PER_SEED,
    NETFLIX_LL_PER_SEED,
    NETFLIX_RMSE_K12,
    NETFLIX_RMSE_K12_MISSING_KNOWN,
    PRINTED_ATOL,
    RMSE_ATOL,
    TOY_BEST_LL,
    TOY_BEST_SEED,
    TOY_COURSE_BIC_K3,
    TOY_FIRST_ESTEP_LL_K3,
    load_course_solutions,
)
from skgmmfill import PRESET_COURSE as COURSE
from skgmmfill import MaskedGaussianMixtureImputer
from skgmmfill.datasets import load_netflix, load_toy
from skgmmfill.metrics import rmse


def total_ll(imputer, n_samples):
    return imputer.lower_bound_ * n_samples


@pytest.mark.parametrize("k", [1, 12])
def test_netflix_per_seed_log_likelihoods_and_iterations(netflix_fits, k):
    fits = [netflix_fits[k, seed] for seed in range(5)]
    assert_allclose([total_ll(f, 1200) for f in fits], NETFLIX_LL_PER_SEED[k], rtol=LL_RTOL)
    assert [f.n_iter_ for f in fits] == NETFLIX_ITERS_PER_SEED[k]
    assert all(f.converged_ for f in fits)


@pytest.mark.parametrize("k", [1, 12])
def test_netflix_best_log_likelihood(netflix_fits, k):
    best = max(total_ll(netflix_fits[k, seed], 1200) for seed in range(5))
    assert_allclose(best, NETFLIX_BEST_LL[k], rtol=LL_RTOL)


def test_netflix_best_k12_is_seed_1_and_its_rmse(netflix, netflix_fits):
    X, X_complete = netflix
    seeds = range(5)
    best_seed = max(seeds, key=lambda s: netflix_fits[12, s].lower_bound_)
    assert best_seed == NETFLIX_BEST_SEED_K12
    X_pred = netflix_fits[12, best_seed].transform(X)
    assert abs(rmse(X_complete, X_pred) - NETFLIX_RMSE_K12) <= RMSE_ATOL
    known_missing = (X == 0) & (X_complete != 0)
    assert_allclose(rmse(X_complete, X_pred, mask=known_missing),
                    NETFLIX_RMSE_K12_MISSING_KNOWN, atol=1e-7)


@pytest.fixture(scope="module")
def netflix_nan():
    return load_netflix(missing_values=np.nan)


@pytest.mark.parametrize("k, seed", [(k, seed) for k in (1, 12) for seed in range(5)])
def test_netflix_nan_coding_gives_the_same_fit(netflix_fits, netflix_nan, k, seed):
    X_nan, X_complete = netflix_nan
    fit = MaskedGaussianMixtureImputer(k, **COURSE, random_state=seed).fit(X_nan)
    reference = netflix_fits[k, seed]
    assert fit.n_iter_ == reference.n_iter_
    assert_allclose(fit.lower_bound_, reference.lower_bound_, rtol=1e-13)
    assert_allclose(fit.means_, reference.means_, rtol=1e-12)
    if (k, seed) == (12, NETFLIX_BEST_SEED_K12):
        assert abs(rmse(X_complete, fit.transform(X_nan)) - NETFLIX_RMSE_K12) <= RMSE_ATOL


@pytest.mark.parametrize("k", [1, 12])
def test_netflix_log_likelihood_never_decreases(netflix_fits, k):
    for seed in range(5):
        history = np.array(netflix_fits[k, seed].lower_bounds_)
        assert np.all(np.diff(history) >= -1e-12 * np.abs(history[1:]))


def test_course_test_pair_full_run(course_test):
    X, X_complete = course_test
    expected = load_course_solutions()["After a run"]
    imputer = MaskedGaussianMixtureImputer(4, **COURSE, missing_values=0, random_state=0).fit(X)
    assert imputer.n_iter_ == COURSE_TEST_N_ITER
    assert_allclose(total_ll(imputer, 20), COURSE_TEST_RUN_LL, rtol=LL_RTOL)
    assert_allclose(imputer.means_, expected["Mu"], atol=PRINTED_ATOL)
    assert_allclose(imputer.covariances_, expected["Var"], atol=PRINTED_ATOL)
    assert_allclose(imputer.weights_, expected["P"], atol=PRINTED_ATOL)
    X_pred = imputer.transform(X)
    assert_allclose(X_pred, expected["X_pred"], atol=PRINTED_ATOL)
    assert_array_equal(expected["X_gold"], X_complete)
    assert_allclose(rmse(X_complete, X_pred), COURSE_TEST_RMSE, rtol=1e-13)


def test_course_test_pair_first_iteration(course_test):
    X, _ = course_test
    expected = load_course_solutions()["After first M-step:"]
    with pytest.warns(ConvergenceWarning):
        imputer = MaskedGaussianMixtureImputer(4, **{**COURSE, "max_iter": 1}, missing_values=0, random_state=0)
        imputer.fit(X)
    assert_allclose(total_ll(imputer, 20), COURSE_TEST_FIRST_ESTEP_LL, rtol=1e-14)
    assert_allclose(imputer.means_, expected["Mu"], atol=PRINTED_ATOL)
    assert_allclose(imputer.covariances_, expected["Var"], atol=PRINTED_ATOL)
    assert_allclose(imputer.weights_, expected["P"], atol=PRINTED_ATOL)


def test_course_test_pair_posterior_of_the_final_e_step(course_test):
    # The course returns the posterior of its last E-step, which used the
    # parameters after one M-step fewer: stop one iteration early to get them.
    X, _ = course_test
    expected = load_course_solutions()["After a run"]["post"]
    with pytest.warns(ConvergenceWarning):
        imputer = MaskedGaussianMixtureImputer(
            4, **{**COURSE, "max_iter": COURSE_TEST_N_ITER - 1}, missing_values=0, random_state=0
        ).fit(X)
    assert_allclose(imputer.predict_proba(X), expected, atol=PRINTED_ATOL)


@pytest.mark.parametrize("k", sorted(TOY_BEST_LL))
def test_toy_complete_data_matches_naive_em(k):
    X = load_toy()
    imputer = MaskedGaussianMixtureImputer(k, **COURSE, random_state=TOY_BEST_SEED[k]).fit(X)
    assert_allclose(total_ll(imputer, 250), TOY_BEST_LL[k], atol=5e-5)


def test_toy_bic_matches_the_course_formula():
    X = load_toy()
    imputer = MaskedGaussianMixtureImputer(3, **COURSE, random_state=0).fit(X)
    n = X.shape[0]
    # The course's BIC uses the likelihood its run reports: LL - P/2 ln n.
    course_bic = total_ll(imputer, n) - imputer._n_parameters() / 2 * np.log(n)
    assert_allclose(course_bic, TOY_COURSE_BIC_K3, rtol=1e-12)
    assert imputer.lower_bounds_[0] * n == pytest.approx(TOY_FIRST_ESTEP_LL_K3, rel=1e-13)
