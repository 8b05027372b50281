"""The Dask backend: the EM driver's data source over a row-partitioned dask
array, and the estimator's methods applied where its row blocks live.

Imported only when a dask array comes in, so the core never needs dask. The
estimator meets it in two places, :func:`fit_source` (the data a fit runs on)
and :func:`apply` (a method of the fitted model on every row block); the
blocks are validated by the same pure functions as data in memory
(:mod:`skgmmfill._validation`), and only the small fitted model
(:class:`~skgmmfill._fitted.FittedMixture`) travels to them, never the
estimator. Each
block of rows becomes an :class:`~skgmmfill._observed.ObservedEntries` where
the block lives (on a worker, with a ``dask.distributed`` client; in this
process otherwise). Every EM iteration then sends the parameters, which are
small, to every worker once, computes each block's statistics where it
lives and sums them: the pattern of dask-ml's k-means, and the same driver
loop (:mod:`skgmmfill._em`) as in memory.

With ``persist=True`` the blocks (and the standardised ones derived from
them) are computed once and kept in worker memory: with a
``dask.distributed`` client as futures placed evenly on the workers, whose
statistics each worker sums before the client adds the workers' sums (no
graph to build and optimise at every iteration, two transfers fewer than a
tree). With ``persist=False`` every reduction recomputes the blocks from
their source by a tree reduction, for data larger than the cluster's
memory, at the cost of reading and standardising the data again at every
iteration.
"""

import warnings
from functools import partial

import dask
import dask.array as da
import numpy as np
import scipy.sparse as sp
from dask import delayed
from dask.sizeof import sizeof

from ._observed import ObservedEntries
from ._validation import check_entries, float_dtype, observed_entries, validate_input


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


def fit_source(X, missing_values, n_features=None, persist=True):
    """The data source a fit runs on, and whether its blocks are sparse.

    Each block is validated where it lives as data in memory are, against
    ``missing_values`` (and the whole array against ``n_features``, the
    fitted model's, for a warm start).
    """
    X = check_row_partitioned(X, n_features)
    dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    return DaskRows.from_array(X, partial(_block_entries, missing_values), dtype, persist=persist), is_sparse(X)


def _block_entries(missing_values, block):
    return observed_entries(*validate_input(block, missing_values))


def apply(model, method, X, missing_values, n_features, *, n_columns=None, dtype=None, **options):
    """``model.method(block, missing, **options)`` on every validated row block of ``X``, lazily.

    A dask array with ``X``'s row chunks and ``n_columns`` columns (1-D if
    None), in ``dtype`` (the data's float type if None). Two options change
    how blocks are cut: ``rows`` and ``cols`` (entries, sent to the blocks
    holding them, the result in their order) and ``random_state`` (block
    ``i`` draws from a generator seeded by the ``i``-th of a stream of seeds
    drawn from it, so a seed and the row chunks fix the draws).
    """
    X = check_row_partitioned(X, n_features)
    dtype = float_dtype(X) if dtype is None else dtype
    if "rows" in options:
        rows, cols = check_entries(options.pop("rows"), options.pop("cols"), X.shape)
        return entries_of_rows(X, rows, cols, partial(_entries_of_block, model, method, missing_values, options), dtype)
    on_block = partial(_on_block, model, method, missing_values)
    if "random_state" in options:
        seeds = options.pop("random_state").randint(np.iinfo(np.int32).max, size=len(X.chunks[0]))
        return with_block_seeds(X, seeds, partial(_on_seeded_block, on_block, options), dtype, n_columns)
    return map_rows(X, partial(on_block, options), dtype, n_columns)


def _on_block(model, method, missing_values, options, block):
    return getattr(model, method)(*validate_input(block, missing_values), **options)


def _on_seeded_block(on_block, options, block, seed):
    return on_block({**options, "random_state": np.random.RandomState(seed)}, block)


def _entries_of_block(model, method, missing_values, options, block, rows, cols):
    return getattr(model, method)(*validate_input(block, missing_values), rows, cols, **options)


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
    blocks : list of dask.delayed.Delayed or distributed.Future
        Each evaluates to the :class:`~skgmmfill._observed.ObservedEntries`
        of one block of rows, in order: futures of blocks kept on the workers
        named by ``holders``, or delayed objects (kept in this process, or
        recomputed from their source at every reduction).
    row_counts : tuple of int
        Rows per block.
    n_features : int
    dtype : numpy.dtype
    persist : bool
        Whether the blocks are kept in (worker) memory once computed.
    holders : list of str, optional
        The worker each block's future was placed on.
    """

    def __init__(self, blocks, row_counts, n_features, dtype, persist, holders=None):
        self.blocks = list(blocks)
        self.row_counts = tuple(int(count) for count in row_counts)
        self.n_features = n_features
        self.dtype = np.dtype(dtype)
        self.persist = persist
        self.holders = holders

    @classmethod
    def from_array(cls, X, entries, dtype, persist=True):
        """The blocks of the row-partitioned dask array ``X``, each turned into
        observed entries by ``entries(block)`` where it lives."""
        blocks = [delayed(_apply)(entries, block) for block in X.to_delayed().ravel()]
        holders = None
        if persist:
            blocks, holders = _persist(blocks, X.chunks[0])
        return cls(blocks, X.chunks[0], X.shape[1], dtype, persist, holders)

    @property
    def n_samples(self):
        return sum(self.row_counts)

    def reduce(self, function):
        """``function(block)`` on every block where it lives, summed.

        ``function`` carries the parameters (a ``K x d`` array or more); it
        travels to each worker once per call (:func:`_broadcast`), not once
        per block. Placed blocks are summed on their worker first, then the
        workers' sums here, in worker order (so the result does not depend
        on timing); other blocks by a tree reduction.
        """
        shared = _broadcast(function)
        if self.holders is None:
            return _tree_sum([delayed(_apply)(shared, block) for block in self.blocks]).compute()
        groups = {}
        for block, holder in zip(self.blocks, self.holders):
            groups.setdefault(holder, []).append(_submit(_apply, holder, shared, block))
        sums = [parts[0] if len(parts) == 1 else _submit(_sum, holder, *parts) for holder, parts in groups.items()]
        return _sum(*_gather(_client(), sums))

    def map(self, function):
        """The source whose blocks are ``function(block)`` (kept, and placed, like these)."""
        shared = _broadcast(function)
        if self.holders is not None:
            blocks = [_submit(_apply, holder, shared, block) for block, holder in zip(self.blocks, self.holders)]
        else:
            blocks = [delayed(_apply)(shared, block) for block in self.blocks]
            blocks = list(dask.persist(*blocks)) if self.persist else blocks
        return DaskRows(blocks, self.row_counts, self.n_features, self.dtype, self.persist, self.holders)

    def dense_rows(self, rows, fill=0.0):
        """The rows ``rows`` (global indices) as one dense array, gathered from their blocks."""
        rows = np.asarray(rows)
        order = np.argsort(rows, kind="stable")
        gathered = np.empty((len(rows), self.n_features), dtype=self.dtype)
        gathered[order] = np.vstack(self._gather(rows[order], partial(_dense_rows, fill=fill)))
        return gathered

    def filled_rows(self, rows=None):
        """Rows for the k-means start (all, or those indexed by ``rows``), gathered to the client."""
        rows = np.arange(self.n_samples) if rows is None else np.asarray(rows)
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


def _persist(blocks, row_counts):
    """The blocks computed and kept: futures placed on the workers, and those
    workers' addresses, with a dask.distributed client; else persisted in
    this process, and None.

    Left to itself the scheduler may put several blocks on one worker (each
    block is a task that reads its data, run by whichever worker is free
    first), and then every iteration waits for that worker. So each worker
    gets a run of neighbouring blocks holding about the same number of rows,
    as a preference: another worker computes a block if its worker is gone.
    """
    client = _client()
    if client is None:
        return list(dask.persist(*blocks)), None
    workers = sorted(client.scheduler_info()["workers"])
    middles = np.cumsum(row_counts) - np.asarray(row_counts) / 2
    shares = np.minimum((middles * len(workers) // max(sum(row_counts), 1)).astype(int), len(workers) - 1)
    holders = [workers[share] for share in shares]
    futures = [client.compute(block, workers=[holder], allow_other_workers=True) for block, holder in zip(blocks, holders)]
    return futures, holders


def _submit(function, holder, *args):
    """``function(*args)`` as a task preferably run on the worker ``holder``."""
    return _client().submit(function, *args, workers=[holder], allow_other_workers=True, pure=False)


def _broadcast(value):
    """``value`` as an argument of every block's task: one task of the graph that holds it.

    The workers fetch it from whichever worker ran that task, and if that
    worker dies the scheduler runs the task again elsewhere. A scatter with
    ``broadcast=True`` was no faster (34-42 ms per iteration of the course
    model on 2 local workers either way), and its replication, which the
    scheduler runs over the workers alive when it starts, retries a worker
    that dies meanwhile for ever (distributed 2026.8), and the fit waits
    with it.
    """
    client = _client()
    if client is None:
        return delayed(_identity)(value)
    with warnings.catch_warnings():
        # the parameters of a large model pass the 10 MB at which dask warns; they travel once per call by design
        warnings.filterwarnings("ignore", message="Sending large graph", category=UserWarning)
        return client.submit(_identity, value, pure=False)


def _gather(client, futures):
    """The results of ``futures``, fetched straight from the workers (two transfers fewer than
    through the scheduler) once all are computed; through the scheduler if that takes over
    :data:`_DIRECT_GATHER_TIMEOUT` seconds, since a direct fetch from a worker that has just died
    can otherwise wait for ever while the scheduler recomputes what that worker held."""
    from distributed import wait

    wait(futures)  # however long the computation takes; the scheduler reruns lost tasks
    try:
        return client.sync(_gather_directly, client, futures, callback_timeout=_DIRECT_GATHER_TIMEOUT)
    except (TimeoutError, OSError):
        return client.gather(futures, direct=False)


async def _gather_directly(client, futures):
    return await client.gather(futures, direct=True, asynchronous=True)


_DIRECT_GATHER_TIMEOUT = 30
"""Seconds a fetch straight from the workers may take before it goes through the scheduler
instead: one from a worker that has just died can otherwise wait for ever."""


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

