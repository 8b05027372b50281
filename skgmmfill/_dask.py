"""The Dask backend: the EM driver's data source over a row-partitioned dask array.

Imported only when a dask array comes in, so the core never needs dask. Each
block of rows becomes an :class:`~skgmmfill._observed.ObservedEntries` where
the block lives (on a worker, with a ``dask.distributed`` client; in this
process otherwise). Every EM iteration then sends the parameters, which are
small, to the workers (one task of the graph, which every block's task
reads), computes each block's statistics where it lives and sums them by a
tree reduction: the pattern of dask-ml's k-means, and the
same driver loop (:mod:`skgmmfill._em`) as in memory.

With ``persist=True`` the blocks (and the standardised ones derived from
them) are computed once and kept in worker memory; with ``persist=False``
every reduction recomputes them from their source, for data larger than the
cluster's memory, at the cost of reading and standardising the data again at
every iteration.
"""

from functools import partial

import dask
import dask.array as da
import numpy as np
import scipy.sparse as sp
from dask import delayed
from dask.sizeof import sizeof

from ._observed import ObservedEntries

KMEANS_SAMPLE_ROWS = 100_000
"""The k-means start clusters all rows up to this many, else this many evenly spaced rows."""


@sizeof.register(ObservedEntries)
def _sizeof_entries(entries):
    """The bytes of a block, so that the scheduler moves a task to the data rather
    than the data to another worker (the default would count a few bytes). Every
    task of this module runs a function from it, which registers this on the workers."""
    arrays = [entries.values, entries.mask, entries.n_observed]
    return sum(sizeof(array) for array in arrays)


def is_sparse(X):
    """Whether the blocks of the dask array ``X`` are scipy sparse matrices."""
    return sp.issparse(X._meta)


def check_row_partitioned(X, n_features=None):
    """``X`` as a 2-D dask array with all its columns in one block.

    Raises
    ------
    ValueError
        If ``X`` is not 2-D, or has a different number of columns than ``n_features``.
    """
    if X.ndim != 2:
        raise ValueError(f"Expected a 2-D dask array, got {X.ndim} dimension(s) with shape {X.shape}.")
    if any(np.isnan(size) for size in X.shape):
        raise ValueError("The dask array's shape must be known: call X.compute_chunk_sizes() first.")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(
            f"X has {X.shape[1]} features, but MaskedGaussianMixtureImputer is expecting {n_features} features "
            "as input."
        )
    if len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})  # partitioned by rows only
    return X


class DaskRows:
    """A data source (see :mod:`skgmmfill._em`) whose row blocks are dask tasks.

    Parameters
    ----------
    blocks : list of dask.delayed.Delayed
        Each evaluates to the :class:`~skgmmfill._observed.ObservedEntries`
        of one block of rows, in order.
    row_counts : tuple of int
        Rows per block.
    n_features : int
    dtype : numpy.dtype
    persist : bool
        Keep every block in (worker) memory once computed, or recompute it
        from its source at every reduction.
    """

    def __init__(self, blocks, row_counts, n_features, dtype, persist):
        self.blocks = list(dask.persist(*blocks)) if persist else list(blocks)
        self.row_counts = tuple(int(count) for count in row_counts)
        self.n_features = n_features
        self.dtype = np.dtype(dtype)
        self.persist = persist

    @classmethod
    def from_array(cls, X, entries, dtype, persist=True):
        """The blocks of the row-partitioned dask array ``X``, each turned into
        observed entries by ``entries(block)`` where it lives."""
        blocks = [delayed(_apply)(entries, block) for block in X.to_delayed().ravel()]
        return cls(blocks, X.chunks[0], X.shape[1], dtype, persist)

    @property
    def n_samples(self):
        return sum(self.row_counts)

    def reduce(self, function):
        """``function(block)`` on every block where it lives, summed by a tree reduction.

        ``function`` carries the parameters (a ``K x d`` array or more); it
        travels to each worker once per call (:func:`_broadcast`), not once
        per block.
        """
        shared = _broadcast(function)
        parts = [delayed(_apply)(shared, block) for block in self.blocks]
        # first the blocks each worker holds, where they are, then those sums
        sums = [_tree_sum([parts[i] for i in group]) for group in self._groups()]
        return _tree_sum(sums).compute()

    def _groups(self):
        """Block indices by the worker that holds them, if known (persisted
        blocks and a dask.distributed client), else one group."""
        client = _client()
        if client is None or not self.persist:
            return [range(len(self.blocks))]
        holders = client.who_has(self.blocks)
        groups = {}
        for index, block in enumerate(self.blocks):
            groups.setdefault((holders.get(block.key) or ("",))[0], []).append(index)
        return list(groups.values())

    def map(self, function):
        """The source whose blocks are ``function(block)`` (persisted like these)."""
        shared = _broadcast(function)
        blocks = [delayed(_apply)(shared, block) for block in self.blocks]
        return DaskRows(blocks, self.row_counts, self.n_features, self.dtype, self.persist)

    def dense_rows(self, rows, fill=0.0):
        """The rows ``rows`` (global indices) as one dense array, gathered from their blocks."""
        rows = np.asarray(rows)
        order = np.argsort(rows, kind="stable")
        gathered = np.empty((len(rows), self.n_features), dtype=self.dtype)
        gathered[order] = np.vstack(self._gather(rows[order], partial(_dense_rows, fill=fill)))
        return gathered

    def filled_rows(self):
        """Rows for the k-means start, gathered to the client: all of them up to
        :data:`KMEANS_SAMPLE_ROWS` (so that the start equals the in-memory one),
        else that many evenly spaced rows."""
        n_samples = self.n_samples
        rows = np.arange(n_samples)
        if n_samples > KMEANS_SAMPLE_ROWS:
            rows = np.linspace(0, n_samples - 1, KMEANS_SAMPLE_ROWS).round().astype(np.intp)
        gathered = self._gather(rows, _filled_rows)
        return sp.vstack(gathered, format="csr") if sp.issparse(gathered[0]) else np.vstack(gathered)

    def _gather(self, rows, function):
        """``function(block, local_rows)`` for each block holding some of the sorted ``rows``, in order."""
        starts = np.concatenate([[0], np.cumsum(self.row_counts)])
        owners = np.searchsorted(starts, rows, side="right") - 1
        return dask.compute(*[
            delayed(function)(self.blocks[owner], rows[owners == owner] - starts[owner])
            for owner in np.unique(owners)
        ])


def _client():
    """The dask.distributed client in use, or None."""
    try:
        from distributed import default_client

        return default_client()
    except (ImportError, ValueError):  # no distributed, or no client
        return None


def _broadcast(value):
    """``value`` as an argument of every block's task.

    With a dask.distributed client it is scattered to all workers at once
    (measured: 0.15 s per iteration instead of 0.20 on the benchmark's
    scale 0.1 with two workers, where otherwise one worker waits to fetch it
    from the other); else it is one task of the graph.
    """
    client = _client()
    if client is None:
        return delayed(_identity)(value)
    return client.scatter(value, broadcast=True, hash=False)


_FAN_IN = 8  # statistics summed per task of the reduction tree


def _tree_sum(parts):
    """The sum of delayed ``parts``, :data:`_FAN_IN` at a time."""
    while len(parts) > 1:
        parts = [delayed(_sum)(*parts[i : i + _FAN_IN]) for i in range(0, len(parts), _FAN_IN)]
    return parts[0]


def _sum(*parts):
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total


def _identity(value):
    return value


def _apply(function, block):
    return function(block)


def _dense_rows(block, rows, fill):
    return block.dense_rows(rows, fill)


def _filled_rows(block, rows):
    return block.row_block(rows).filled_rows()


def map_rows(X, function, dtype, n_columns=None):
    """``function`` applied to every row block of ``X``, lazily: a dask array
    with ``X``'s row chunks and ``n_columns`` columns (1-D output if None)."""
    if n_columns is None:
        return X.map_blocks(function, dtype=dtype, drop_axis=1, meta=np.empty((0,), dtype))
    return X.map_blocks(function, dtype=dtype, chunks=(X.chunks[0], (n_columns,)), meta=np.empty((0, 0), dtype))


def entries_of_rows(X, rows, cols, function, dtype):
    """``function(block, local_rows, cols)`` for the entries of each block, as one
    lazy dask array in the order of ``rows``."""
    starts = np.concatenate([[0], np.cumsum(X.chunks[0])])
    owners = np.searchsorted(starts, rows, side="right") - 1
    pieces, order = [], []
    for owner, block in enumerate(X.to_delayed().ravel()):
        these = np.flatnonzero(owners == owner)
        if these.size:
            values = delayed(function)(block, rows[these] - starts[owner], cols[these])
            pieces.append(da.from_delayed(values, shape=(these.size,), dtype=dtype))
            order.append(these)
    if not pieces:
        return da.zeros((0,), dtype=dtype)
    inverse = np.empty(len(rows), dtype=np.intp)
    inverse[np.concatenate(order)] = np.arange(len(rows))
    return da.concatenate(pieces)[inverse]


def with_block_seeds(X, seeds, function, dtype, n_columns):
    """``function(block, seed)`` on every row block with its own seed, lazily."""
    blocks = X.to_delayed().ravel()
    pieces = [
        da.from_delayed(delayed(function)(block, int(seed)), shape=(rows, n_columns), dtype=dtype)
        for block, seed, rows in zip(blocks, seeds, X.chunks[0])
    ]
    return da.concatenate(pieces, axis=0)

