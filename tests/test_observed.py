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


def test_sparse_representation_matches_dense():
    import scipy.sparse as sp

    from skgmmfill._observed import _row_sums_of_squares

    rng = np.random.RandomState(0)
    X = rng.normal(size=(50, 8))
    X[rng.uniform(size=X.shape) < 0.6] = 0.0
    X[[3, 4, 49]] = 0.0  # empty rows, the last one included
    X_sparse = sp.csr_array(X)
    dense = ObservedEntries.from_dense(X, X != 0)
    sparse = ObservedEntries.from_sparse(X_sparse)
    assert sparse.is_sparse and not dense.is_sparse
    assert_array_equal(sparse.n_observed, dense.n_observed)
    np.testing.assert_allclose(sparse.squared_norms, dense.squared_norms, rtol=1e-14)
    for max_entries in (1, 3, 7, 1000):
        np.testing.assert_allclose(_row_sums_of_squares(X_sparse, max_entries), dense.squared_norms, rtol=1e-14)
    coefs = rng.normal(size=(3, 8))
    np.testing.assert_allclose(sparse.row_products(coefs, coefs**2), dense.row_products(coefs, coefs**2), rtol=1e-12)
    resp = rng.dirichlet(np.ones(3), size=50)
    for s, d in zip(sparse.weighted_sums(resp), dense.weighted_sums(resp)):
        np.testing.assert_allclose(s, d, rtol=1e-12, atol=1e-15)
    for name in ("counts", "sums", "squared_sums"):
        np.testing.assert_allclose(getattr(sparse.moments(), name), getattr(dense.moments(), name), rtol=1e-13)
    assert_array_equal(sparse.dense_rows([4, 0]), dense.dense_rows([4, 0]))
    assert_array_equal(sparse.row_block(slice(2, 9)).dense_mask(), dense.row_block(slice(2, 9)).dense_mask())
    rows, cols = np.array([0, 1, 2, 3]), np.array([0, 1, 2, 3])
    for got, expected in zip(sparse.lookup(rows, cols), dense.lookup(rows, cols)):
        assert_array_equal(got, expected)


def test_sparse_ignored_features_drop_their_entries():
    import scipy.sparse as sp

    X = np.array([[1.0, 2.0, 0.0], [0.0, 3.0, 4.0], [5.0, 0.0, 0.0]])
    ignored = np.array([False, True, False])
    sparse = ObservedEntries.from_sparse(sp.csr_array(X), ignored)
    dense = ObservedEntries.from_dense(X, (X != 0) & ~ignored)
    assert_array_equal(sparse.values.toarray(), dense.values)
    assert_array_equal(sparse.mask.toarray(), dense.mask)
    assert_array_equal(sparse.n_observed, [1, 1, 1])


def test_row_block_threads_run_blas_single_threaded(monkeypatch):
    """A thread per core reduces large sparse data; BLAS inside them keeps to one thread."""
    import scipy.sparse as sp
    from threadpoolctl import threadpool_info

    from skgmmfill import _observed

    monkeypatch.setattr(_observed, "THREADED_MIN_ENTRIES", 1)
    monkeypatch.setattr(_observed, "_available_cores", lambda: 2)
    X = sp.random_array((40, 6), density=0.5, format="csr", random_state=0)
    observed = ObservedEntries.from_sparse(X)
    seen = observed.reduce(lambda block: [max((i["num_threads"] for i in threadpool_info()
                                               if i["user_api"] == "blas"), default=1)])
    assert len(seen) == 2 and set(seen) == {1}


def test_a_constant_feature_has_no_variance_whatever_the_order_of_its_sums():
    """924 equal values summed in two orders (rows split into blocks) leave sums a few ulps apart;
    both must find the feature constant, or the variance floor ("auto": the pooled variance for a
    feature without spread) differs between backends (it did, by 1e-3, between in-memory and Dask)."""
    rng = np.random.default_rng(0)
    X = np.column_stack([np.full(924, 0.4761904761904762), rng.normal(size=924)])
    whole = ObservedEntries.from_dense(X, np.ones(X.shape, dtype=bool)).moments()
    blocks = [ObservedEntries.from_dense(part, np.ones(part.shape, dtype=bool)).moments()
              for part in np.array_split(X[rng.permutation(924)], 7)]
    split = blocks[0]
    for part in blocks[1:]:
        split = split + part
    for moments in (whole, split):
        variances = moments.column_variances()
        assert variances[0] == 0.0 and variances[1] > 0.5
