import numpy as np
from numpy.testing import assert_array_equal

from skgmmfill._observed import ObservedEntries


def test_from_dense_zeroes_missing_entries_and_summarises_rows():
    X = np.array([[1.0, np.nan, 2.0], [np.nan, np.nan, np.nan], [3.0, 0.0, -1.0]])
    observed = ~np.isnan(X)
    obs = ObservedEntries.from_dense(X, observed)
    assert_array_equal(obs.values, [[1.0, 0.0, 2.0], [0.0, 0.0, 0.0], [3.0, 0.0, -1.0]])
    assert_array_equal(obs.mask, observed.astype(float))
    assert_array_equal(obs.n_observed, [2, 0, 3])
    assert_array_equal(obs.squared_norms, [5.0, 0.0, 10.0])
    assert (obs.n_samples, obs.n_features) == (3, 3)


def test_weighted_sums():
    X = np.array([[1.0, 2.0], [3.0, np.nan]])
    obs = ObservedEntries.from_dense(X, ~np.isnan(X))
    resp = np.array([[1.0, 0.0], [0.5, 0.5]])
    value_sums, count_sums = obs.weighted_sums(resp)
    assert_array_equal(value_sums, [[2.5, 2.0], [1.5, 0.0]])
    assert_array_equal(count_sums, [[1.5, 1.0], [0.5, 0.0]])
