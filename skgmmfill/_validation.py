"""What users hand in, checked once: arrays, their missing entries, entry indices and limits.

Every public entry point (the estimator, its Dask blocks, the metrics and
the command line) turns input into data through these functions, so a given
mistake gets the same message wherever it is made. Nothing here imports
dask: :func:`is_dask_array` tells a dask array by its type's module.
"""

import math
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.utils.validation import check_array, validate_data

from ._observed import ObservedEntries

SPARSE_CONVENTION = "In sparse input every stored entry is observed and the missing entries are the unstored ones"


def is_nan(value):
    """Whether ``value`` (a ``missing_values`` marker) is NaN."""
    return isinstance(value, Real) and math.isnan(value)


def is_dask_array(X):
    """Whether ``X`` is a dask array, decided without importing dask."""
    return type(X).__module__.split(".")[0] == "dask" and hasattr(X, "to_delayed")


def dask_backend(X):
    """:mod:`skgmmfill._dask` if ``X`` is a dask array (imported only then), else None."""
    if not is_dask_array(X):
        return None
    from . import _dask

    return _dask


def float_dtype(X):
    """The dtype outputs take for input ``X``: float32 stays, anything else becomes float64."""
    return np.dtype(np.float32) if X.dtype == np.float32 else np.dtype(np.float64)


def num_rows(X):
    return X.shape[0] if hasattr(X, "shape") else len(X)


def missing_mask(X, missing_values):
    """The boolean mask of the entries of the dense array ``X`` equal to ``missing_values`` (NaN-aware)."""
    return np.isnan(X) if is_nan(missing_values) else X == missing_values


def canonical_csr(X, dtype=None):
    """``X`` as a CSR array with sorted indices and no repeated entry (repeats summed).

    The caller's arrays are never changed: summing repeats sorts in place, so
    it happens on a copy.
    """
    X = sp.csr_array(X, dtype=dtype)
    if not X.has_canonical_format:
        X = X.copy()
        X.sum_duplicates()
    return X


def rows_of_entries(X):
    """Row index of each stored entry of a CSR array."""
    return np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))


def validate_input(X, missing_values, *, estimator=None, reset=False):
    """``X`` validated as the estimator's data; returns it with its missing mask (None if sparse).

    With ``estimator``, scikit-learn's ``validate_data`` also records or
    checks the number and names of the features (``reset``); without it (a
    row block of a dask array, whose shape was checked whole) the values
    alone are checked. Dense input: float32 or float64, NaN allowed only as
    the marker. Sparse input: CSR with every stored entry observed
    (:func:`check_sparse`).
    """
    options = dict(accept_sparse="csr", dtype=(np.float64, np.float32), ensure_all_finite="allow-nan")
    try:
        X = validate_data(estimator, X, reset=reset, **options) if estimator is not None else check_array(X, **options)
    except ValueError as error:
        if "could not convert" in str(error):
            name = type(estimator).__name__ if estimator is not None else "The estimator"
            raise ValueError(f"{name} requires numeric input: {error}") from error
        raise
    if sp.issparse(X):
        return check_sparse(X, missing_values), None
    if is_nan(missing_values):
        return X, np.isnan(X)
    if np.isnan(X).any():
        raise ValueError(
            f"Input X contains NaN, but missing_values={missing_values!r} marks the missing entries. "
            "Set missing_values=np.nan if NaN marks them, or remove the NaN."
        )
    return X, X == missing_values


def check_sparse(X, missing_values):
    """A sparse ``X`` as canonical CSR, checked against the convention: stored = observed."""
    X = sp.csr_array(X)
    try:
        X.check_format(full_check=True)
    except ValueError as error:
        raise ValueError(f"Input X is not a valid sparse matrix: {error}") from error
    if np.isnan(X.data).any():
        raise ValueError(
            f"Input X contains NaN among its stored entries. {SPARSE_CONVENTION}, "
            "so leave the missing entries out instead of storing NaN."
        )
    if not is_nan(missing_values) and (X.data == missing_values).any():
        raise ValueError(
            f"Input X stores entries equal to missing_values={missing_values!r}. {SPARSE_CONVENTION}; "
            "remove those entries (for 0: X.eliminate_zeros()) or set missing_values=np.nan to keep them "
            "as observed values."
        )
    return canonical_csr(X)


def observed_entries(X, missing, ignored_features=None):
    """The :class:`~skgmmfill._observed.ObservedEntries` of validated input
    (``missing`` None for sparse), leaving out ``ignored_features``."""
    if missing is None:
        return ObservedEntries.from_sparse(X, ignored_features)
    return ObservedEntries.from_dense(X, ~missing if ignored_features is None else ~missing & ~ignored_features)


def check_entries(rows, cols, shape):
    """Validate entry indices against ``shape``: equal-length 1-D integer arrays in range."""
    rows = check_array(rows, ensure_2d=False, dtype=None, ensure_min_samples=0, input_name="rows")
    cols = check_array(cols, ensure_2d=False, dtype=None, ensure_min_samples=0, input_name="cols")
    for name, index, size in (("rows", rows, shape[0]), ("cols", cols, shape[1])):
        if index.ndim != 1 or (index.dtype.kind not in "iu" and index.size):  # no entries: any dtype
            raise ValueError(f"{name} must be a 1-D array of integers, got {index.dtype} with shape {index.shape}.")
        if index.size and (index.min() < 0 or index.max() >= size):
            raise ValueError(f"{name} must lie in [0, {size}), got values in [{index.min()}, {index.max()}].")
    if rows.shape != cols.shape:
        raise ValueError(f"rows and cols must have the same length, got {len(rows)} and {len(cols)}.")
    return rows.astype(np.intp, copy=False), cols.astype(np.intp, copy=False)


def check_limits(min_value, max_value, n_features):
    """``min_value`` and ``max_value`` as arrays of shape ``(n_features,)``, the first never above the second."""
    limits = []
    for name, value, default in (("min_value", min_value, -np.inf), ("max_value", max_value, np.inf)):
        value = np.asarray(default if value is None else value, dtype=np.float64)
        if value.ndim == 0:
            value = np.full(n_features, value)
        elif value.shape != (n_features,):
            raise ValueError(
                f"'{name}' should be of shape ({n_features},) when an array-like is provided. "
                f"Got {value.shape}, instead."
            )
        limits.append(value)
    crossed = np.flatnonzero(limits[0] > limits[1])
    if crossed.size:
        shown = ", ".join(f"feature {l}: {limits[0][l]:g} > {limits[1][l]:g}" for l in crossed[:3])
        raise ValueError(
            f"min_value must not exceed max_value, but it does for {crossed.size} of "
            f"{n_features} feature(s) ({shown}{', ...' if crossed.size > 3 else ''}): swap or correct them."
        )
    return tuple(limits)


def check_ranking(n, n_features, rank_by, exclude_observed, n_observed):
    """Check the arguments of ``recommend`` (``n_observed`` None for a model saved before it existed)."""
    if not isinstance(n, Integral) or not 1 <= n <= n_features:
        raise ValueError(f"n must be an integer in [1, n_features_in_={n_features}], got {n!r}.")
    if rank_by not in ("rating", "hits"):
        raise ValueError(f"rank_by must be 'rating' or 'hits', got {rank_by!r}.")
    if rank_by == "hits" and not exclude_observed:
        raise ValueError("rank_by='hits' ranks the unrated columns: exclude_observed=False needs rank_by='rating'.")
    if rank_by == "hits" and n_observed is None:
        raise ValueError("rank_by='hits' needs n_observed_, which models saved before it existed lack: refit.")


def relevance_threshold(X, missing, relevant_above):
    """``relevant_above``, or the mean of ``X``'s observed entries when None."""
    if relevant_above is not None:
        if not isinstance(relevant_above, Real) or not np.isfinite(relevant_above):
            raise ValueError(f"relevant_above must be a finite number or None, got {relevant_above!r}.")
        return float(relevant_above)
    values = X.data if missing is None else X[~missing]
    if values.size == 0:
        raise ValueError("X has no observed entries to take the mean of: pass relevant_above.")
    return float(values.mean())


class EmptyFeatureWarning(UserWarning):
    """Some features have no observed value in the data given to ``fit``.

    Issued once per fit. ``warnings.filterwarnings("ignore",
    category=EmptyFeatureWarning)`` silences it, in a ``GridSearchCV`` too
    (scikit-learn passes the filters on to its workers).
    """


NAMED_EMPTY_FEATURES = 10


def empty_features_message(empty_features, feature_names):
    """The warning for features without observed values, naming at most ten of
    them: by ``feature_names_in_`` when the data had names (a DataFrame, or
    ``read_ratings(..., as_frame=True)``'s item ids), else by column index."""
    where = np.flatnonzero(empty_features)
    shown = where[:NAMED_EMPTY_FEATURES]
    names = [repr(str(name)) for name in feature_names[shown]] if feature_names is not None else [str(i) for i in shown]
    more = f" and {where.size - shown.size} more" if where.size > shown.size else ""
    which = "" if feature_names is not None else "column(s) "
    return (
        f"{where.size} of {empty_features.size} feature(s) have no observed value in the data given to fit "
        f"({which}{', '.join(names)}{more}). They are dropped from the output of transform; set "
        "keep_empty_features=True to keep them (filled from the offsets with biases=True, else with 0)."
    )
