"""The observed entries of an incomplete matrix, in the form the EM products use.

Every covariance family reads the data only through :class:`ObservedEntries`:
the observed values with zeros at the missing positions, a 0/1 indicator of the
observed positions, and two per-row summaries. All the heavy work of EM is a
matrix product with one of the two ``(n_samples, n_features)`` arrays, so a
family written against this class runs unchanged on both representations:

* dense: two ndarrays, for data given as an array with a missing-value marker;
* sparse: two CSR arrays sharing one sparsity pattern, for data given as a
  sparse matrix whose stored entries are the observed ones. Nothing of size
  ``n_samples x n_features`` is ever allocated.
"""

import functools
import operator
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields, replace
from functools import cached_property

import numpy as np
import scipy.sparse as sp


THREADED_MIN_ENTRIES = 2**20
"""Data with at least this many entries (stored entries if sparse) is reduced on a
thread pool, one block of rows per core, BLAS single-threaded inside: one coarse
split per pass keeps the cores busy on an idle machine and, unlike BLAS's own
threads that synchronise on every product, does not collapse on a busy one
(``benchmarks/bench_threads.py --load 2``)."""

_CHUNK_ENTRIES = 2**18
"""Passes over the stored entries of sparse data work through chunks of about this
many, so that their temporaries stay small whatever the size of the data."""

# A column variance within this many ulps of its mean square per entry summed is rounding (a sum
# of n terms, added in any order, is off by up to about n ulps): the feature is constant.
_ROUNDING_ULPS = 4


@functools.cache
def _blas_threads():
    """threadpoolctl's view of the BLAS libraries loaded (found once: finding them takes milliseconds)."""
    from threadpoolctl import ThreadpoolController  # scikit-learn's dependency

    return ThreadpoolController()


def _available_cores():
    """The cores this process may use, or 1 inside a dask.distributed task:
    there the cluster already runs one task per worker thread, and more
    threads per task would only compete with them."""
    distributed = sys.modules.get("distributed")  # never imported from here
    if distributed is not None:
        try:
            distributed.get_worker()
            return 1
        except ValueError:  # not in a worker
            pass
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class Sums:
    """Named sums over rows that add field by field: ``a + b`` sums every field.

    The statistics of a block of rows are a subclass; the EM driver adds
    those of all blocks, in whatever order a backend produces them.
    """

    def __add__(self, other):
        return type(self)(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})


@dataclass(frozen=True)
class DataMoments(Sums):
    """Per-feature sums of the stored values, missing entries counting as 0.

    What initialisations, the prior's centre and the offsets need from the
    data; additive over row blocks. A family that needs more adds fields in a
    subclass (the full family's ``d x d`` products, the factor family's sketch).

    Attributes
    ----------
    n_samples : int
    counts : ndarray of shape (n_features,)
        Observed entries per feature.
    sums, squared_sums : ndarray of shape (n_features,)
        ``sum_u m_ul x_ul`` and ``sum_u m_ul x_ul**2``.
    """

    n_samples: int
    counts: np.ndarray
    sums: np.ndarray
    squared_sums: np.ndarray

    def extended(self, cls, **fields_added):
        """These moments as the subclass ``cls`` of a family that needs more, with its ``fields_added``."""
        return cls(**{f.name: getattr(self, f.name) for f in fields(self)}, **fields_added)

    def column_means(self, empty=0.0):
        """Mean of each feature's observed entries (``empty`` where none is observed)."""
        return np.divide(self.sums, self.counts, out=np.full(len(self.sums), empty), where=self.counts > 0)

    def column_variances(self):
        """Variance of each feature's observed entries around their mean (0 where fewer than 2).

        Accurate for centred data only: it is ``squared_sums / counts - mean**2``, and 0 where
        that is within rounding of 0 (a constant feature's sums, added in another order, leave
        up to about ``counts`` ulps either way: every backend must find it constant).
        """
        means = self.column_means()
        second = np.divide(self.squared_sums, self.counts, out=np.zeros(len(self.sums)), where=self.counts > 0)
        variances = second - means**2
        rounding = _ROUNDING_ULPS * np.finfo(np.float64).eps * second * np.maximum(self.counts, 1)
        return np.where(variances > rounding, variances, 0.0)

    def filled(self, fill):
        """The moments of the rows with every missing entry set to ``fill`` (shape ``(d,)``).

        Exact, from the sums alone. Fields a subclass adds are kept as they
        are unless it says otherwise.
        """
        fill = np.asarray(fill, dtype=np.float64)
        if not fill.any():
            return self
        unobserved = self.n_samples - self.counts
        return replace(
            self,
            counts=np.full(len(self.counts), float(self.n_samples)),
            sums=self.sums + unobserved * fill,
            squared_sums=self.squared_sums + unobserved * fill**2,
        )


@dataclass(frozen=True)
class Extent(Sums):
    """Column counts and sums of the observed entries, and their largest magnitude.

    The first pass of the standardisation; added block by block, the
    magnitudes by their maximum.
    """

    counts: np.ndarray
    sums: np.ndarray
    largest: float

    def __add__(self, other):
        return Extent(self.counts + other.counts, self.sums + other.sums, max(self.largest, other.largest))


@dataclass(frozen=True)
class ObservedEntries:
    """Observed part of a data matrix ``X`` with ``n`` rows and ``d`` columns.

    Write ``C_u`` for the set of observed columns of row ``u`` and
    ``m_ul = [l in C_u]`` for the observation indicator.

    Attributes
    ----------
    values : ndarray or scipy.sparse.csr_array of shape (n_samples, n_features)
        ``m_ul * x_ul``: the observed values, 0 (or unstored) at missing entries.
    mask : same type and shape as ``values``
        ``m_ul`` as 0 / 1 in the dtype of ``values``. When sparse, it shares
        the index arrays of ``values``.
    n_observed : ndarray of shape (n_samples,)
        ``|C_u|``, the number of observed entries of each row.
    """

    values: object
    mask: object
    n_observed: np.ndarray

    @classmethod
    def from_dense(cls, X, observed):
        """Build the representation from a dense array and its observed mask.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            Floating-point data; entries where ``observed`` is False are ignored
            (they may hold NaN or any placeholder). Never modified.
        observed : ndarray of bool, shape (n_samples, n_features)
            True where the entry of ``X`` is observed.
        """
        values = np.where(observed, X, X.dtype.type(0))
        mask = observed.astype(X.dtype)
        return cls(
            values=values,
            mask=mask,
            n_observed=mask.sum(axis=1),
        )

    @classmethod
    def from_sparse(cls, X, ignored_features=None):
        """Build the representation from a CSR array whose stored entries are observed.

        Parameters
        ----------
        X : scipy.sparse.csr_array of shape (n_samples, n_features)
            In canonical format (sorted indices, no duplicates). Stored entries,
            explicit zeros included, are observed; unstored ones are missing.
            Never modified; the representation shares its arrays.
        ignored_features : ndarray of bool, shape (n_features,), default=None
            Features whose stored entries are to be treated as missing.
        """
        if ignored_features is not None and ignored_features[X.indices].any():
            keep = ~ignored_features[X.indices]
            row_counts = np.add.reduceat(keep, X.indptr[:-1]) * (np.diff(X.indptr) > 0)
            indptr = np.concatenate([[0], np.cumsum(row_counts)]).astype(X.indptr.dtype)
            X = sp.csr_array((X.data[keep], X.indices[keep], indptr), shape=X.shape)
        ones = np.ones_like(X.data)
        mask = sp.csr_array((ones, X.indices, X.indptr), shape=X.shape, copy=False)
        return cls(
            values=X,
            mask=mask,
            n_observed=np.diff(X.indptr).astype(X.dtype),
        )

    def shifted(self, row_shift, column_shift, scale=1.0):
        """The same entries minus ``row_shift[u] + column_shift[l]``, divided by ``scale``.

        Parameters
        ----------
        row_shift : ndarray of shape (n_samples,) or float
        column_shift : ndarray of shape (n_features,)
        scale : float, default=1.0
        """
        row_shift = np.broadcast_to(np.asarray(row_shift, dtype=self.dtype), (self.n_samples,))
        column_shift = np.asarray(column_shift, dtype=self.dtype)
        if self.is_sparse:
            X, data = self.values, np.empty_like(self.values.data)
            for start, stop in _row_chunks(X.indptr):  # temporaries of a chunk's size
                first, last = X.indptr[start], X.indptr[stop]
                row_shifts = np.repeat(row_shift[start:stop], np.diff(X.indptr[start : stop + 1]))
                chunk = np.subtract(X.data[first:last], row_shifts, out=data[first:last])
                chunk -= column_shift[X.indices[first:last]]
                if scale != 1.0:
                    chunk /= self.dtype.type(scale)
            values = sp.csr_array(
                (data, self.values.indices, self.values.indptr), shape=self.values.shape, copy=False
            )
        else:
            values = self.values - self.mask * (row_shift[:, np.newaxis] + column_shift)
            if scale != 1.0:
                values /= self.dtype.type(scale)
        return ObservedEntries(values=values, mask=self.mask, n_observed=self.n_observed)

    # -- the data source protocol of the EM driver (one block: all the rows) --

    def reduce(self, function):
        """``function(block)`` summed over the row blocks.

        The EM driver reads data only through :meth:`reduce`, :meth:`map`,
        :meth:`dense_rows` and :meth:`filled_rows`, so a backend holding the
        rows elsewhere (several blocks, a cluster) provides the same four.
        In memory, large data (dense or sparse) is cut into one block of rows
        per core, run on a thread pool (NumPy's and scipy's products release
        the GIL; BLAS is held to one thread inside) and summed in block order,
        so the result does not depend on timing; small data is one block.
        """
        blocks = self._thread_blocks
        if not blocks:
            return function(self)
        # one BLAS thread inside each of ours: a thread per core already keeps the cores busy
        with ThreadPoolExecutor(len(blocks)) as pool, _blas_threads().limit(limits=1, user_api="blas"):
            return functools.reduce(operator.add, pool.map(function, blocks))

    @cached_property
    def _thread_blocks(self):
        """Row blocks of about equal numbers of entries, one per core;
        none for small data (not ``[self]``: a reference cycle would
        keep these arrays alive until the garbage collector's next run)."""
        n_threads = min(_available_cores(), self.n_samples)
        n_entries = self.values.nnz if self.is_sparse else self.values.size
        if n_entries < THREADED_MIN_ENTRIES or n_threads < 2:
            return ()
        if self.is_sparse:
            targets = np.linspace(0, self.values.nnz, n_threads + 1)[1:-1]
            bounds = np.concatenate([[0], np.searchsorted(self.values.indptr, targets), [self.n_samples]])
        else:
            bounds = np.linspace(0, self.n_samples, n_threads + 1).astype(int)
        return [self.row_block(slice(start, stop)) for start, stop in zip(bounds[:-1], bounds[1:]) if stop > start]

    def map(self, function):
        """The data source with every block replaced by ``function(block)``."""
        return function(self)

    def moments(self):
        """The :class:`DataMoments` of these rows (computed once, then reused)."""
        return self.cached("moments", self._moments)

    def _moments(self):
        if self.is_sparse:
            return DataMoments(self.n_samples, *_column_moments(self.values))
        return DataMoments(self.n_samples, self.mask.sum(axis=0), self.values.sum(axis=0),
                           self.squared_values.sum(axis=0))

    def cached(self, key, compute):
        """``compute()``, computed once for these rows and then reused (the entries are immutable)."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def extent(self):
        """The :class:`Extent` of these rows."""
        with np.errstate(over="ignore"):  # sums too large to hold: the caller's error
            if self.is_sparse:
                data = self.values.data
                counts, sums = _column_moments(self.values, squares=False)
            else:
                data = self.values
                counts, sums = self.mask.sum(axis=0, dtype=np.float64), self.values.sum(axis=0, dtype=np.float64)
        return Extent(counts, sums, max(float(data.max(initial=0.0)), -float(data.min(initial=0.0))))

    def squared_deviations(self, location, unit):
        """``sum ((x_ul - location_l) / unit)**2`` over the observed entries.

        Dividing by ``unit`` (about the data's magnitude) before squaring keeps
        values near the largest float from overflowing, tiny ones from
        underflowing.
        """
        if not self.is_sparse:
            deviations = ((self.values - self.mask * location) / unit).ravel()
            return float(np.dot(deviations, deviations))
        total, X = 0.0, self.values
        for start in range(0, X.nnz, _CHUNK_ENTRIES):  # temporaries of a chunk's size
            deviations = X.data[start : start + _CHUNK_ENTRIES] - location[X.indices[start : start + _CHUNK_ENTRIES]]
            deviations /= unit
            total += float(np.dot(deviations, deviations))
        return total

    @cached_property
    def _cache(self):
        return {}

    def filled_rows(self, rows=None):
        """The rows (all, or those indexed by ``rows``) with 0 at the missing
        entries, for k-means: dense, or sparse (unstored) without densifying.
        In standardised coordinates 0 is about each column's observed mean."""
        if rows is not None:
            return self.row_block(rows).filled_rows()
        if not self.is_sparse:
            return self.values
        rows = self.values
        if rows.nnz < np.iinfo(np.int32).max and rows.indices.dtype != np.int32:
            # KMeans takes only 32-bit sparse indices
            rows = sp.csr_array(
                (rows.data, rows.indices.astype(np.int32), rows.indptr.astype(np.int32)),
                shape=rows.shape,
            )
        return rows

    @property
    def is_sparse(self):
        return sp.issparse(self.values)

    @property
    def dtype(self):
        return self.values.dtype

    @property
    def n_samples(self):
        return self.values.shape[0]

    @property
    def n_features(self):
        return self.values.shape[1]

    @cached_property
    def squared_norms(self):
        """``sum_{l in C_u} x_ul**2``, the squared norm of each row's observed part, ``(n_samples,)``."""
        if self.is_sparse:
            return _row_sums_of_squares(self.values)
        return np.einsum("ij,ij->i", self.values, self.values)

    @cached_property
    def squared_values(self):
        """``m_ul * x_ul**2``, like ``values`` (computed on first use)."""
        if self.is_sparse:
            return sp.csr_array(
                (self.values.data**2, self.values.indices, self.values.indptr),
                shape=self.values.shape,
                copy=False,
            )
        return self.values**2

    @cached_property
    def pattern_labels(self):
        """Rows labelled by their set of observed columns (dense data only).

        Returns
        -------
        labels : ndarray of int, shape (n_samples,)
            The same label for rows with the same missingness pattern.
        counts : ndarray of int, shape (n_patterns,)
            The number of rows with each label.
        """
        if self.is_sparse:
            raise TypeError("missingness patterns are only formed for dense data")
        keys = np.packbits(self.mask != 0, axis=1)
        _, labels, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
        return labels.ravel(), counts

    def row_products(self, value_coefs=None, mask_coefs=None, squared_coefs=None):
        """``values @ value_coefs.T + mask @ mask_coefs.T + squared_values @ squared_coefs.T``.

        Terms whose coefficients are None are left out.

        Parameters
        ----------
        value_coefs, mask_coefs, squared_coefs : ndarray of shape (C, n_features) or None

        Returns
        -------
        products : ndarray of shape (n_samples, C)

        Notes
        -----
        Dense data is multiplied as ``coefs @ values.T`` and the result
        transposed: for few components OpenBLAS runs that orientation fastest.
        """
        products = None
        for name, coefs in (("values", value_coefs), ("mask", mask_coefs), ("squared_values", squared_coefs)):
            if coefs is None:
                continue
            data = getattr(self, name)
            coefs = coefs.astype(self.dtype, copy=False)
            term = data @ coefs.T if self.is_sparse else (coefs @ data.T).T
            if products is None:
                products = term
            else:
                products += term
        return products

    def weighted_sums(self, resp):
        """Responsibility-weighted sums over rows of the observed entries.

        Parameters
        ----------
        resp : ndarray of shape (n_samples, n_components)
            Responsibilities ``r_uj``.

        Returns
        -------
        value_sums : ndarray of shape (n_components, n_features)
            ``S_jl = sum_u r_uj m_ul x_ul``.
        count_sums : ndarray of shape (n_components, n_features)
            ``W_jl = sum_u r_uj m_ul``, the weighted number of observations
            of column ``l`` that component ``j`` receives.
        """
        return self.column_sums(resp, "values"), self.column_sums(resp, "mask")

    def weighted_squared_sums(self, resp):
        """``Q_jl = sum_u r_uj m_ul x_ul**2``, shape ``(n_components, n_features)``."""
        return self.column_sums(resp, "squared_values")

    def column_sums(self, weights, of):
        """``sum_u weights_uc data_ul``, shape ``(C, n_features)``, for ``data`` the
        attribute named ``of`` (``"values"``, ``"mask"`` or ``"squared_values"``).

        The transposed products of the M-steps.
        """
        data = getattr(self, of)
        return (_transpose(data) @ weights).T if self.is_sparse else weights.T @ data

    def dense_rows(self, rows, fill=0.0):
        """Rows as a dense ``(len(rows), n_features)`` array, ``fill`` at the missing entries."""
        values, mask = self.values[rows], self.mask[rows]
        if self.is_sparse:
            values, mask = values.toarray(), mask.toarray()
        return values + (1 - mask) * np.asarray(fill, dtype=self.dtype)

    def row_block(self, rows):
        """The observed entries of the rows ``rows`` (a slice or an index array).

        A slice of sparse rows shares the arrays of these entries (scipy's
        slicing would copy them).
        """
        if self.is_sparse and isinstance(rows, slice) and rows.step in (None, 1):
            start, stop, _ = rows.indices(self.n_samples)
            values, mask = (_row_range(matrix, start, stop) for matrix in (self.values, self.mask))
        else:
            values, mask = self.values[rows], self.mask[rows]
        return ObservedEntries(values=values, mask=mask, n_observed=self.n_observed[rows])

    def dense_mask(self):
        """``mask`` as a dense boolean array (use on row blocks of big data)."""
        mask = self.mask.toarray() if self.is_sparse else self.mask
        return mask != 0

    def lookup(self, rows, cols):
        """Whether entries ``(rows[i], cols[i])`` are observed, and their values.

        Returns
        -------
        observed : ndarray of bool, shape (n_entries,)
        values : ndarray of shape (n_entries,)
            The observed value, or 0 where the entry is missing.
        """
        observed = np.asarray(self.mask[rows, cols]).ravel() != 0
        return observed, np.asarray(self.values[rows, cols]).ravel()


def _transpose(X):
    """``X.T`` of a CSR array as a CSC array sharing its arrays (scipy's
    transpose copies arrays that are views of larger ones: a row block's)."""
    transposed = sp.csc_array((X.shape[1], X.shape[0]), dtype=X.dtype)
    transposed.indptr, transposed.indices, transposed.data = X.indptr, X.indices, X.data
    return transposed


def _row_range(X, start, stop):
    """Rows ``start:stop`` of a canonical CSR array, as views of its arrays.

    scipy's slicing copies them, and so does its constructor for arrays that
    are small views of larger ones; an empty array of the block's shape is
    given the views instead (the block stays canonical, as ``X`` is).
    """
    stop = max(start, stop)
    first, last = X.indptr[start], X.indptr[stop]
    block = sp.csr_array((stop - start, X.shape[1]), dtype=X.dtype)
    block.indptr = X.indptr[start : stop + 1] - first
    block.indices, block.data = X.indices[first:last], X.data[first:last]
    return block


def row_batches(n_rows, rows_per_batch):
    """Consecutive slices of at most ``rows_per_batch`` rows (at least one) covering ``range(n_rows)``:
    how every loop over rows bounds its temporaries."""
    rows_per_batch = max(1, int(rows_per_batch))
    return [slice(start, min(start + rows_per_batch, n_rows)) for start in range(0, n_rows, rows_per_batch)]


def _row_chunks(indptr, max_entries=_CHUNK_ENTRIES):
    """``(start, stop)`` ranges of consecutive rows holding about ``max_entries``
    stored entries each (more where one row holds more), covering every row."""
    bounds = np.searchsorted(indptr, np.arange(0, indptr[-1], max_entries), side="right") - 1
    return zip(bounds, np.append(bounds[1:], len(indptr) - 1))


def _row_sums_of_squares(X, max_entries=_CHUNK_ENTRIES):
    """``sum_k data_k**2`` over the stored entries of each row of a CSR array.

    Works through blocks of rows holding at most about ``max_entries`` stored
    entries, so the temporaries stay small whatever the size of ``X``.
    """
    sums = np.zeros(X.shape[0], dtype=X.dtype)
    for start, stop in _row_chunks(X.indptr, max_entries):
        first, last = X.indptr[start], X.indptr[stop]
        starts = X.indptr[start:stop] - first
        nonempty = np.flatnonzero(np.diff(X.indptr[start : stop + 1]))
        if nonempty.size:
            squares = X.data[first:last] ** 2
            sums[start + nonempty] = np.add.reduceat(squares, starts[nonempty])
    return sums


def _column_moments(X, max_entries=_CHUNK_ENTRIES, squares=True):
    """Counts, sums and (with ``squares``) sums of squares of the stored entries of each column of a CSR array.

    One pass in blocks of at most ``max_entries`` stored entries, so no
    temporary (the squares, the 64-bit copy of the indices that ``bincount``
    makes) grows with the size of ``X``.
    """
    moments = np.zeros((3 if squares else 2, X.shape[1]))
    for start in range(0, X.nnz, max_entries):
        indices = X.indices[start : start + max_entries]
        data = X.data[start : start + max_entries].astype(np.float64)
        moments[0] += np.bincount(indices, minlength=X.shape[1])
        moments[1] += np.bincount(indices, weights=data, minlength=X.shape[1])
        if squares:
            moments[2] += np.bincount(indices, weights=data * data, minlength=X.shape[1])
    return list(moments)
