"""Scores for imputations: RMSE against known values, a masked-RMSE scorer
for model selection when only the incomplete matrix is known, and the top-N
scores of recommendations (precision, recall and NDCG at ``k``)."""

import numpy as np
import scipy.sparse as sp
from sklearn.pipeline import Pipeline
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array

from ._validation import canonical_csr, missing_mask, rows_of_entries

__all__ = ["rmse", "psnr", "make_masked_rmse_scorer", "hide_observed_entries", "precision_at_k", "recall_at_k",
           "ndcg_at_k"]


def rmse(X_true, X_pred, *, mask=None):
    """Root mean squared error between two matrices.

    Parameters
    ----------
    X_true, X_pred : array-like of shape (n_samples, n_features)
        Reference and predicted values. They must be finite at the scored
        entries; elsewhere they are ignored (and may be NaN).
    mask : array-like of bool, shape (n_samples, n_features), default=None
        Entries to score. None scores every entry, which is the course's
        convention (observed entries, copied unchanged, then add no error).

    Returns
    -------
    rmse : float
        ``sqrt(mean((X_true - X_pred)**2))`` over the scored entries.
    """
    X_true = check_array(X_true, dtype=np.float64, ensure_all_finite=False, input_name="X_true")
    X_pred = check_array(X_pred, dtype=np.float64, ensure_all_finite=False, input_name="X_pred")
    if X_true.shape != X_pred.shape:
        raise ValueError(
            f"X_true and X_pred have different shapes: {X_true.shape} and {X_pred.shape}."
        )
    if mask is None:
        mask = np.ones(X_true.shape, dtype=bool)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != X_true.shape:
        raise ValueError(f"mask has shape {mask.shape}, but X_true has shape {X_true.shape}.")
    if not mask.any():
        raise ValueError("mask selects no entry to score.")
    for name, values in (("X_true", X_true[mask]), ("X_pred", X_pred[mask])):
        if not np.isfinite(values).all():
            raise ValueError(f"{name} contains NaN or infinity at entries to score.")
    return float(np.sqrt(np.mean((X_true[mask] - X_pred[mask]) ** 2)))


def psnr(image_true, image_test, *, data_range=1.0):
    """Peak signal-to-noise ratio of an image estimate, in decibels.

    Parameters
    ----------
    image_true, image_test : array-like of the same shape
        Reference image and estimate, both finite.
    data_range : float, default=1.0
        The reference's possible range of values (1 for images in [0, 1],
        255 for 8-bit ones).

    Returns
    -------
    psnr : float
        ``10 log10(data_range**2 / mean((image_true - image_test)**2))``.

    Examples
    --------
    >>> from skgmmfill.metrics import psnr
    >>> round(psnr([[0.0, 1.0]], [[0.1, 0.9]]), 6)
    20.0
    """
    image_true = np.asarray(image_true, dtype=np.float64)
    image_test = np.asarray(image_test, dtype=np.float64)
    if image_true.shape != image_test.shape:
        raise ValueError(
            f"image_true and image_test have different shapes: {image_true.shape} and {image_test.shape}."
        )
    if not (np.isfinite(image_true).all() and np.isfinite(image_test).all()):
        raise ValueError("psnr needs finite images; one contains NaN or infinity.")
    return float(10.0 * np.log10(data_range**2 / np.mean((image_true - image_test) ** 2)))


def _final_imputer(estimator):
    return estimator.steps[-1][1] if isinstance(estimator, Pipeline) else estimator


def hide_observed_entries(X, missing, fraction, random_state):
    """Choose, in each row, ``round(fraction * n_observed)`` observed entries to hide.

    At least one observed entry of each row stays visible, so rows with fewer
    than two observed entries hide nothing. The choice depends only on which
    entries are observed and on ``random_state``: a sparse matrix with the same
    entries stored hides the same ones (see :func:`make_masked_rmse_scorer`).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    missing : ndarray of bool, shape (n_samples, n_features)
    fraction : float in (0, 1)
    random_state : int, RandomState instance or None

    Returns
    -------
    hidden : ndarray of bool, shape (n_samples, n_features)
    """
    rows, cols = np.nonzero(~missing)  # row-major, the order of a canonical CSR matrix
    chosen = _choose_hidden(rows, X.shape[0], fraction, random_state)
    hidden = np.zeros(X.shape, dtype=bool)
    hidden[rows[chosen], cols[chosen]] = True
    return hidden


def _choose_hidden(rows, n_samples, fraction, random_state):
    """Which observed entries to hide, given the row of each in row-major order.

    Each entry draws a uniform key; in each row the ``round(fraction * n)``
    entries with the smallest keys are hidden (at most ``n - 1``).
    """
    keys = check_random_state(random_state).random_sample(len(rows))
    order = np.lexsort((keys, rows))
    counts = np.bincount(rows, minlength=n_samples)
    rank = np.empty(len(rows), dtype=np.intp)
    rank[order] = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
    n_hidden = np.clip(np.rint(fraction * counts), 0, np.maximum(counts - 1, 0))
    return rank < n_hidden[rows]


def make_masked_rmse_scorer(fraction=0.2, random_state=0):
    """Make a scorer that hides observed entries and scores their imputation.

    The scorer ``scorer(estimator, X, y=None)`` hides, in each row of ``X``,
    a seeded ``fraction`` of the row's observed entries (see
    :func:`hide_observed_entries`), lets the fitted ``estimator`` fill them,
    and returns minus the RMSE on the hidden entries, so that greater is better
    as :class:`~sklearn.model_selection.GridSearchCV` expects.

    ``estimator`` is a fitted :class:`~skgmmfill.MaskedGaussianMixtureImputer`
    or a :class:`~sklearn.pipeline.Pipeline` ending in one; the missing-value
    marker is read from it. For a sparse ``X`` (stored entries observed) the
    hidden entries are removed from a copy of its pattern and predicted by
    :meth:`~skgmmfill.MaskedGaussianMixtureImputer.predict_entries`, so nothing
    of size ``n_samples x n_features`` is formed; the same data dense or sparse
    and the same ``random_state`` give the same score. In a Pipeline the steps before the imputer must
    pass missing values through and have an ``inverse_transform`` (as
    :class:`~sklearn.preprocessing.StandardScaler` does), which maps the
    imputed values back to the units of ``X`` before scoring.

    Parameters
    ----------
    fraction : float, default=0.2
        Fraction of each row's observed entries to hide, in (0, 1).
    random_state : int, RandomState instance or None, default=0
        Seeds which entries are hidden; an int hides the same entries in every
        call, so that all candidates are scored on the same entries.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y=None) -> float``, minus the RMSE.

    Examples
    --------
    >>> from sklearn.model_selection import GridSearchCV
    >>> from skgmmfill import MaskedGaussianMixtureImputer
    >>> from skgmmfill.metrics import make_masked_rmse_scorer
    >>> search = GridSearchCV(
    ...     MaskedGaussianMixtureImputer(random_state=0),
    ...     {"n_components": [1, 2, 4]},
    ...     scoring=make_masked_rmse_scorer(),
    ... )
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction!r}.")

    def masked_rmse_scorer(estimator, X, y=None):
        if sp.issparse(X):
            return -_sparse_masked_rmse(estimator, X, fraction, random_state)
        marker = _final_imputer(estimator).missing_values
        X_input = X
        X = check_array(X, dtype=np.float64, ensure_all_finite="allow-nan")
        missing = missing_mask(X, marker)
        hidden = hide_observed_entries(X, missing, fraction, random_state)
        if not hidden.any():
            raise ValueError("No observed entry could be hidden: every row has fewer than two.")
        X_hidden = np.where(hidden, marker, X)
        if hasattr(X_input, "columns"):  # keep a DataFrame's names for the estimator
            X_hidden = type(X_input)(X_hidden, columns=X_input.columns, index=X_input.index)
        X_pred = estimator.transform(X_hidden)
        if isinstance(estimator, Pipeline):
            for _, step in reversed(estimator.steps[:-1]):
                X_pred = step.inverse_transform(X_pred)
        X_pred = np.asarray(X_pred)
        if X_pred.shape != X.shape:
            raise ValueError(
                f"The imputation has shape {X_pred.shape}, but X has shape {X.shape}; "
                "set keep_empty_features=True so that no feature is dropped."
            )
        return -rmse(X, X_pred, mask=hidden)

    return masked_rmse_scorer


def _sparse_masked_rmse(estimator, X, fraction, random_state):
    """The masked RMSE of a sparse ``X``, from the stored entries alone."""
    if isinstance(estimator, Pipeline):
        raise ValueError(
            "The masked-RMSE scorer takes sparse X only with the imputer itself, not a Pipeline: "
            "its predictions of single entries cannot go back through the other steps."
        )
    X = canonical_csr(X, dtype=np.float64)
    rows = rows_of_entries(X)
    chosen = _choose_hidden(rows, X.shape[0], fraction, random_state)
    if not chosen.any():
        raise ValueError("No observed entry could be hidden: every row has fewer than two.")
    kept_per_row = np.bincount(rows[~chosen], minlength=X.shape[0])
    indptr = np.concatenate([[0], np.cumsum(kept_per_row)])
    X_hidden = sp.csr_array((X.data[~chosen], X.indices[~chosen], indptr), shape=X.shape)
    predicted = estimator.predict_entries(X_hidden, rows[chosen], X.indices[chosen])
    return rmse(X.data[chosen][np.newaxis], np.asarray(predicted)[np.newaxis])


def _hits(recommended, relevant_rows, relevant_cols, k):
    """The hit matrix of the rows with a relevant entry, and their numbers of relevant entries.

    ``hits[i, r]`` says whether the ``r``-th recommendation of the ``i``-th
    such row is relevant; a padding ``-1`` is never a hit.
    """
    recommended = check_array(recommended, dtype=None, input_name="recommended")
    if recommended.dtype.kind not in "iu":
        raise ValueError(f"recommended must hold column indices (integers), got {recommended.dtype}.")
    if not 1 <= k <= recommended.shape[1]:
        raise ValueError(f"k must be in [1, {recommended.shape[1]}] (the columns of recommended), got {k}.")
    relevant_rows = np.asarray(relevant_rows, dtype=np.intp)
    relevant_cols = np.asarray(relevant_cols, dtype=np.intp)
    if relevant_rows.shape != relevant_cols.shape or relevant_rows.ndim != 1:
        raise ValueError("relevant_rows and relevant_cols must be 1-D arrays of the same length.")
    if relevant_rows.size and not 0 <= relevant_rows.min() <= relevant_rows.max() < len(recommended):
        raise ValueError(f"relevant_rows must lie in [0, {len(recommended)}), the rows of recommended.")
    n_columns = max(int(recommended.max(initial=-1)), int(relevant_cols.max(initial=-1))) + 1
    relevant = sp.csr_array((np.ones(len(relevant_rows), dtype=np.int8), (relevant_rows, relevant_cols)),
                            shape=(len(recommended), n_columns))
    relevant.sum_duplicates()
    counts = np.diff(relevant.indptr)
    scored = np.flatnonzero(counts)
    top = recommended[scored, :k]
    hits = np.zeros(top.shape, dtype=bool)
    valid = top >= 0
    hits[valid] = np.asarray(relevant[np.repeat(scored, k).reshape(top.shape)[valid], top[valid]]).ravel() > 0
    return hits, counts[scored]


def precision_at_k(recommended, relevant_rows, relevant_cols, k=10):
    """Mean fraction of relevant entries among each row's first ``k`` recommendations.

    Averaged over the rows with at least one relevant entry, as is usual
    for recommenders; a row with fewer than ``k`` recommendations (padded
    with -1) still divides by ``k``.

    Parameters
    ----------
    recommended : array-like of int, shape (n_rows, n)
        Each row's recommended columns, best first, padded with -1 (what
        :meth:`~skgmmfill.MaskedGaussianMixtureImputer.recommend` returns).
    relevant_rows, relevant_cols : array-like of int, shape (n_relevant,)
        The relevant entries, e.g. held-out ratings of at least 4 stars.
    k : int, default=10
        How many recommendations count, at most ``n``.

    Returns
    -------
    precision : float
    """
    hits, _ = _hits(recommended, relevant_rows, relevant_cols, k)
    return float(hits.sum(axis=1).mean() / k) if len(hits) else float("nan")


def recall_at_k(recommended, relevant_rows, relevant_cols, k=10):
    """Mean fraction of each row's relevant entries found in its first ``k`` recommendations.

    Parameters are as in :func:`precision_at_k`.

    Returns
    -------
    recall : float
    """
    hits, counts = _hits(recommended, relevant_rows, relevant_cols, k)
    return float((hits.sum(axis=1) / counts).mean()) if len(hits) else float("nan")


def ndcg_at_k(recommended, relevant_rows, relevant_cols, k=10):
    """Mean normalised discounted cumulative gain of each row's first ``k`` recommendations.

    With binary relevance, ``DCG = sum_r hit_r / log2(r + 1)`` over ranks
    ``r = 1..k``, divided by the DCG of an ideal list (all relevant entries
    first). Parameters are as in :func:`precision_at_k`.

    Returns
    -------
    ndcg : float
    """
    hits, counts = _hits(recommended, relevant_rows, relevant_cols, k)
    if not len(hits):
        return float("nan")
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.cumsum(discounts)[np.minimum(counts, k) - 1]
    return float(((hits @ discounts) / ideal).mean())
