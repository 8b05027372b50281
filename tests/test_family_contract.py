"""The contract every covariance family passes (see skgmmfill._family).

Parametrised over :data:`skgmmfill._families.FAMILIES`, so a new family is
tested the moment it is registered, with the hyperparameters it declares for
this test (``contract_hyperparameters``).
"""

import pickle
from dataclasses import fields

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose
from scipy.stats import multivariate_normal

from skgmmfill._em import initialize_kmeans, initialize_random_from_data, run_em
from skgmmfill._family import CovarianceFamily, Statistics
from skgmmfill._families import FAMILIES
from skgmmfill._observed import ObservedEntries

N_SAMPLES, N_FEATURES, N_COMPONENTS = 60, 5, 3
VARIANTS = {"factor-implicit": ("factor", {"implicit_precision_prior": 1.0}),
            "factor-ard": ("factor", {"loading_ard_prior": 0.5}),
            "factor-variational": ("factor", {"loading_posterior": "variational", "loading_ard_prior": 0.5}),
            "factor-pattern": ("factor", {"loading_pattern_prior": 0.5, "loading_ard_prior": 0.5}),
            "factor-pattern-auto": ("factor", {"loading_pattern_prior": "auto", "loading_ard_prior": 0.5}),
            "factor-pattern-variational": ("factor", {"loading_pattern_prior": 0.5,
                                                      "loading_posterior": "variational"}),
            "factor-offset": ("factor", {"row_offset_factor": True, "loading_ard_prior": 0.5}),
            "factor-offset-variational": ("factor", {"row_offset_factor": True, "loading_pattern_prior": "auto",
                                                     "loading_posterior": "variational",
                                                     "implicit_precision_prior": 1.0})}
"""Families run again with options that change their E- or M-step (named ``family-option``)."""


@pytest.fixture(params=sorted(FAMILIES) + sorted(VARIANTS))
def family(request):
    name, extra = VARIANTS.get(request.param, (request.param, {}))
    cls = FAMILIES[name]
    return cls(**{**cls.contract_hyperparameters, **extra})


@pytest.fixture
def data():
    """``(X, observed)``: two clusters, 30 % missing, one empty and one complete row."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(N_SAMPLES, N_FEATURES)) + 4.0 * rng.randint(2, size=(N_SAMPLES, 1))
    observed = rng.uniform(size=X.shape) > 0.3
    observed[3] = False
    observed[4] = True
    return X, observed


def sparse_of(X, observed):
    rows, cols = np.nonzero(observed)
    return ObservedEntries.from_sparse(sp.csr_array((X[rows, cols], (rows, cols)), shape=X.shape))


def parameters(family, observed_entries, seed=0):
    """Non-trivial parameters in the family's layout: one update from random responsibilities."""
    rng = np.random.RandomState(seed)
    start = initialize_random_from_data(observed_entries, N_COMPONENTS, family, rng)
    resp = rng.dirichlet(np.ones(N_COMPONENTS), size=observed_entries.n_samples)
    return family.update(family.statistics(observed_entries, resp, start), start)


def assert_statistics_equal(actual, expected, rtol=1e-10):
    assert type(actual) is type(expected)
    for field in fields(expected):
        assert_allclose(getattr(actual, field.name), getattr(expected, field.name), rtol=rtol, atol=1e-10,
                        err_msg=field.name)


def test_is_a_small_frozen_picklable_object(family):
    assert isinstance(family, CovarianceFamily)
    assert pickle.loads(pickle.dumps(family)) == family
    with pytest.raises(AttributeError):
        family.name = "other"
    assert family.n_parameters(N_COMPONENTS, N_FEATURES) > 0


def test_parameters_have_the_declared_shape(family, data):
    X, observed = data
    mixture = parameters(family, ObservedEntries.from_dense(X, observed))
    assert mixture.covariances.shape == family.covariances_shape(N_COMPONENTS, N_FEATURES)


def test_log_prob_is_the_density_of_the_observed_coordinates(family, data):
    if not family.gaussian_rows:
        pytest.skip("not a Gaussian of fixed mean: tests/test_factor.py checks this variant's log_prob")
    X, observed = data
    obs = ObservedEntries.from_dense(X, observed)
    mixture = parameters(family, obs)
    covariances = family.dense_covariances(mixture.covariances, N_FEATURES)
    log_prob = family.log_prob(obs, mixture)
    for u in range(N_SAMPLES):
        o = observed[u]
        for j in range(N_COMPONENTS):
            expected = (
                multivariate_normal(mixture.means[j, o], covariances[j][np.ix_(o, o)]).logpdf(X[u, o])
                if o.any() else 0.0
            )
            assert log_prob[u, j] == pytest.approx(expected, rel=1e-10, abs=1e-10)


def test_dense_equals_sparse(family, data):
    if not family.supports_sparse:
        pytest.skip(f"{family.name} runs on dense data only")
    X, observed = data
    dense, sparse = ObservedEntries.from_dense(X, observed), sparse_of(X, observed)
    mixture = parameters(family, dense)
    assert_allclose(family.log_prob(sparse, mixture), family.log_prob(dense, mixture), rtol=1e-12)
    assert_statistics_equal(family.accumulate(sparse, mixture), family.accumulate(dense, mixture), rtol=1e-12)
    resp, _ = family.posterior(dense, mixture)
    missing = ~observed
    for method in (family.impute, family.predictive_variance):
        assert_allclose(method(sparse, resp, mixture)[missing], method(dense, resp, mixture)[missing], rtol=1e-12)


def test_statistics_of_a_row_split_add_up(family, data):
    X, observed = data
    obs = ObservedEntries.from_dense(X, observed)
    mixture = parameters(family, obs)
    whole = family.accumulate(obs, mixture)
    parts = [obs.row_block(slice(0, 7)), obs.row_block(slice(7, 40)), obs.row_block(slice(40, N_SAMPLES))]
    summed = sum((family.accumulate(part, mixture) for part in parts[1:]), family.accumulate(parts[0], mixture))
    assert_statistics_equal(summed, whole)
    assert whole.n_samples == N_SAMPLES
    moments = obs.row_block(slice(0, 30)).moments() + obs.row_block(slice(30, N_SAMPLES)).moments()
    assert_allclose(moments.sums, obs.moments().sums, rtol=1e-12)


def test_fused_pass_is_log_prob_normalise_statistics(family, data):
    X, observed = data
    obs = ObservedEntries.from_dense(X, observed)
    mixture = parameters(family, obs)
    fused = family.accumulate(obs, mixture)
    resp, log_prob_norm = family.posterior(obs, mixture)
    separate = family.statistics(obs, resp, mixture)
    assert isinstance(fused, Statistics)
    assert fused.log_likelihood == pytest.approx(log_prob_norm.sum(), rel=1e-12)
    assert separate.log_likelihood == 0.0
    for field in fields(fused):
        if field.name != "log_likelihood":
            assert_allclose(getattr(fused, field.name), getattr(separate, field.name), rtol=1e-10, atol=1e-12)
    assert_allclose(fused.resp_sums, resp.sum(axis=0), rtol=1e-12)


@pytest.mark.parametrize("prior", [None, 5.0])
def test_objective_never_decreases(family, data, prior):
    X, observed = data
    obs = ObservedEntries.from_dense(X, observed)
    prior = None if prior is None else (prior, obs.moments().column_means())
    for seed in range(3):
        start = initialize_random_from_data(obs, N_COMPONENTS, family, np.random.RandomState(seed))
        result = run_em(obs, start, family, max_iter=40, tol=-np.inf, prior=prior)
        objectives = np.array(result.objectives)
        assert len(objectives) == 40
        assert np.all(np.diff(objectives) >= -1e-12 * np.abs(objectives[1:]))


def degenerate_tables():
    """Tables where a careless update lowers the objective: ``(name, X, observed)``."""
    rng = np.random.RandomState(1)
    X = rng.normal(size=(N_SAMPLES, N_FEATURES)) + 4.0 * rng.randint(2, size=(N_SAMPLES, 1))
    observed = rng.uniform(size=X.shape) > 0.3
    constant = X.copy()
    constant[:, 1] = 0.0  # no spread (at 0, its standardised value)
    constant_observed = np.ones(X.shape, dtype=bool)
    constant_observed[:, 1] = observed[:, 1]  # and missing in about 30 % of the rows, where nothing else is
    duplicated = np.repeat(X[:12], 5, axis=0)  # 12 distinct rows, each 5 times
    once = observed.copy()
    once[1:, 2] = False  # feature 2 observed in one row only
    return [("constant column", constant, constant_observed), ("duplicate rows", duplicated, np.repeat(observed[:12], 5, 0)),
            ("feature observed once", X, once)]


@pytest.mark.parametrize("prior", [None, 5.0])
@pytest.mark.parametrize("table", range(3), ids=["constant-column", "duplicate-rows", "feature-observed-once"])
def test_objective_never_decreases_on_degenerate_data(family, table, prior):
    _, X, observed = degenerate_tables()[table]
    obs = ObservedEntries.from_dense(X, observed)
    prior = None if prior is None else (prior, obs.moments().column_means())
    starts = [initialize_random_from_data(obs, N_COMPONENTS, family, np.random.RandomState(seed)) for seed in range(3)]
    starts += [initialize_kmeans(obs, n_components, family, np.random.RandomState(0)) for n_components in (1, 2)]
    for start in starts:
        objectives = np.array(run_em(obs, start, family, max_iter=40, tol=-np.inf, prior=prior).objectives)
        assert len(objectives) == 40  # ObjectiveDecreaseWarning is an error in the tests
        assert np.all(np.diff(objectives) >= -1e-10 * np.abs(objectives[1:])), np.diff(objectives).min()


def test_impute_entries_equals_impute_at_those_entries(family, data):
    X, observed = data
    obs = ObservedEntries.from_dense(X, observed)
    mixture = parameters(family, obs)
    resp, _ = family.posterior(obs, mixture)
    rows, cols = np.nonzero(~observed)
    assert_allclose(family.impute_entries(obs, resp, mixture, rows, cols),
                    family.impute(obs, resp, mixture)[rows, cols], rtol=1e-12)


def test_predictions_are_finite_and_reproducible(family, data):
    X, observed = data
    obs = ObservedEntries.from_dense(X, observed)
    mixture = parameters(family, obs)
    resp, _ = family.posterior(obs, mixture)
    missing = ~observed
    variance = family.predictive_variance(obs, resp, mixture)
    assert np.all(variance[missing] >= 0) and np.isfinite(variance).all()
    draws = [family.sample(obs, resp, mixture, np.random.RandomState(1))[missing] for _ in range(2)]
    assert np.isfinite(draws[0]).all()
    assert_allclose(draws[0], draws[1])


def test_predictive_moments_are_the_mean_and_the_variance(family, data):
    X, observed = data
    obs = ObservedEntries.from_dense(X, observed)
    mixture = parameters(family, obs)
    resp, _ = family.posterior(obs, mixture)
    mean, variance = family.predictive_moments(obs, resp, mixture)
    assert_allclose(mean, family.impute(obs, resp, mixture), rtol=1e-12)
    assert_allclose(variance, family.predictive_variance(obs, resp, mixture), rtol=1e-12)
