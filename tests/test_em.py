"""The EM driver and the shared kernels, on the course test pair (test_solutions.txt)."""

import re
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from reference_figures import COURSE_TEST_FIRST_ESTEP_LL, PRINTED_ATOL, load_course_solutions
from skgmmfill import _em
from skgmmfill._family import Mixture, estimate_means, normalize_log_prob
from skgmmfill._observed import ObservedEntries
from skgmmfill._spherical import SphericalCovariance

COURSE = SphericalCovariance(min_variance=0.25)


@pytest.fixture
def course_observed(course_test):
    X, _ = course_test
    return ObservedEntries.from_dense(X, X != 0)


def test_initialization_draws_the_course_rows(course_observed):
    expected = load_course_solutions()["Input:"]
    mixture = _em.initialize_random_from_data(course_observed, 4, COURSE, np.random.RandomState(0))
    assert_array_equal(mixture.means, expected["Mu"])
    assert_allclose(mixture.covariances, expected["Var"], atol=PRINTED_ATOL)
    assert_array_equal(mixture.weights, expected["P"])


def test_first_e_step(course_observed):
    expected = load_course_solutions()["After first E-step:"]
    mixture = _em.initialize_random_from_data(course_observed, 4, COURSE, np.random.RandomState(0))
    resp, log_prob_norm = COURSE.posterior(course_observed, mixture)
    assert_allclose(resp, expected["post"], atol=PRINTED_ATOL)
    assert log_prob_norm.sum() == pytest.approx(COURSE_TEST_FIRST_ESTEP_LL, rel=1e-14)


def test_first_m_step(course_observed):
    expected = load_course_solutions()["After first M-step:"]
    mixture = _em.initialize_random_from_data(course_observed, 4, COURSE, np.random.RandomState(0))
    resp, _ = COURSE.posterior(course_observed, mixture)
    mixture = COURSE.update(COURSE.statistics(course_observed, resp, mixture), mixture)
    assert_allclose(mixture.means, expected["Mu"], atol=PRINTED_ATOL)
    assert_allclose(mixture.covariances, expected["Var"], atol=PRINTED_ATOL)
    assert_allclose(mixture.weights, expected["P"], atol=PRINTED_ATOL)


def test_zero_weight_component_gets_no_responsibility(course_observed):
    mixture = Mixture(
        weights=np.array([0.5, 0.5, 0.0]),
        means=np.full((3, 5), 3.0),
        covariances=np.ones(3),
    )
    resp, log_prob_norm = COURSE.posterior(course_observed, mixture)
    assert_array_equal(resp[:, 2], 0.0)
    assert np.isfinite(log_prob_norm).all()
    new = COURSE.update(COURSE.statistics(course_observed, resp, mixture), mixture)
    assert new.weights[2] == 0.0
    assert np.isfinite(new.means).all() and np.isfinite(new.covariances).all()


def test_estimate_means_keeps_coordinates_below_the_minimum_count():
    value_sums = np.array([[2.0, 3.0]])
    count_sums = np.array([[1.0, 0.5]])
    previous = np.array([[9.0, 9.0]])
    assert_array_equal(estimate_means(value_sums, count_sums, previous), [[2.0, 9.0]])
    assert_array_equal(previous, [[9.0, 9.0]])


def test_run_em_stops_on_the_relative_rule(course_observed):
    mixture = _em.initialize_random_from_data(course_observed, 4, COURSE, np.random.RandomState(0))
    result = _em.run_em(course_observed, mixture, COURSE, max_iter=1000, tol=1e-6, stopping_rule="relative_gain")
    history = np.array(result.lower_bounds)
    assert result.converged and result.n_iter == len(history) == 20
    changes = np.diff(history)
    assert changes[-1] <= 1e-6 * abs(history[-1])
    assert np.all(changes[:-1] > 1e-6 * np.abs(history[1:-1]))


def test_fit_mixture_draws_each_initialisation_from_one_random_state(course_observed):
    kwargs = dict(n_components=4, max_iter=1000, tol=1e-6, stopping_rule="relative_gain")
    best = _em.fit_mixture(course_observed, COURSE, n_init=3, random_state=np.random.RandomState(0), **kwargs)
    rng = np.random.RandomState(0)
    runs = [_em.fit_mixture(course_observed, COURSE, n_init=1, random_state=rng, **kwargs) for _ in range(3)]
    assert best.lower_bound == max(run.lower_bound for run in runs)


def test_normalize_log_prob_is_a_stable_logsumexp():
    f = np.array([[-1000.0, -1001.0, -np.inf], [3.0, 2.0, 1.0], [0.0, -np.inf, -np.inf]])
    resp, log_prob_norm = normalize_log_prob(f.copy())
    sigmoid_1 = 1.0 / (1.0 + np.exp(-1.0))
    softmax = np.exp([2.0, 1.0, 0.0]) / np.exp([2.0, 1.0, 0.0]).sum()
    assert_allclose(resp, [[sigmoid_1, 1 - sigmoid_1, 0.0], softmax, [1.0, 0.0, 0.0]], rtol=1e-15)
    assert_allclose(
        log_prob_norm,
        [-1000.0 + np.log1p(np.exp(-1.0)), 3.0 + np.log1p(np.exp(-1.0) + np.exp(-2.0)), 0.0],
        rtol=1e-15,
    )


def test_normalize_log_prob_flushes_subnormal_responsibilities():
    resp, log_prob_norm = normalize_log_prob(np.array([[0.0, -720.0]]))
    assert np.exp(-720.0) < np.finfo(float).tiny  # would be subnormal
    assert_array_equal(resp, [[1.0, 0.0]])
    assert log_prob_norm[0] == pytest.approx(0.0, abs=1e-300)


class _DriftingVariances(SphericalCovariance):
    """A broken update: the variances doubled after every M-step."""

    def update(self, statistics, mixture, prior=None):
        updated = super().update(statistics, mixture, prior)
        return updated._replace(covariances=2.0 * updated.covariances)


def test_a_falling_objective_is_reported_never_taken_for_convergence(course_observed):
    family = _DriftingVariances(min_variance=0.25)
    start = _em.initialize_random_from_data(course_observed, 4, family, np.random.RandomState(0))
    with pytest.warns(_em.ObjectiveDecreaseWarning, match=r"fell by .* at iteration \d+") as record:
        result = _em.run_em(course_observed, start, family, max_iter=30, tol=1e-3)
    assert len(record) == 1  # once per run
    fall = int(re.search(r"at iteration (\d+)", str(record[0].message)).group(1))
    assert np.diff(result.objectives)[fall - 2] < 0
    assert result.n_iter > fall  # the fall did not stop the run


def test_full_keeps_rising_on_a_constant_column():
    """A constant column with missing entries made the former rule (the floor
    added after each update) lower the objective at the second iteration, which
    the stopping rule took for convergence."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(30, 3)) + 4.0 * rng.randint(2, size=(30, 1))
    X[:, 1] = 7.0
    X[rng.uniform(size=X.shape) < 0.3] = np.nan
    from skgmmfill import MaskedGaussianMixtureImputer

    imputer = MaskedGaussianMixtureImputer(covariance_type="full", tol=0.0, max_iter=20).fit(X)
    assert np.all(np.diff(imputer.map_objectives_) >= -1e-12 * np.abs(imputer.map_objectives_[1:]))
    assert imputer.n_iter_ > 2


def test_kmeans_clusters_every_row_up_to_the_sample_size_then_evenly_spaced_rows():
    assert _em.kmeans_sample(_em.KMEANS_SAMPLE_ROWS) is None
    rows = _em.kmeans_sample(3 * _em.KMEANS_SAMPLE_ROWS + 7)
    assert len(rows) == _em.KMEANS_SAMPLE_ROWS and rows[0] == 0 and rows[-1] == 3 * _em.KMEANS_SAMPLE_ROWS + 6
    assert np.all(np.diff(rows) >= 3)
