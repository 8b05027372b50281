"""Data sets bundled with skgmmfill, synthetic data, and readers for rating files and rating logs in Dask.

The files come from the MIT 6.86x project "Collaborative Filtering via Gaussian
Mixtures": a 1200 x 1200 Netflix rating matrix (with and without its missing
entries), a 20 x 5 test pair and a 250 x 2 toy set. ``data/SHA256SUMS`` lists
the SHA-256 of each uncompressed file.
"""

import gzip
from importlib import resources
from typing import NamedTuple

import numpy as np
from sklearn.utils import check_random_state

from ._movielens import fetch_movielens
from ._readers import read_items, read_ratings

__all__ = [
    "load_netflix",
    "load_course_test",
    "load_toy",
    "make_incomplete_mixture",
    "IncompletePair",
    "IncompleteMixture",
    "read_ratings",
    "read_items",
    "fetch_movielens",
    "ratings_to_dask_array",
]


class IncompletePair(NamedTuple):
    """A matrix with missing entries and the same matrix with them revealed.

    Unpack it (``X, X_gold = load_netflix()``) or read its fields by name
    (``.incomplete``, ``.complete``), as for :class:`IncompleteMixture`.
    """

    incomplete: np.ndarray
    complete: np.ndarray


class IncompleteMixture(NamedTuple):
    """Draws from a Gaussian mixture, the draws with entries hidden, and the mixture.

    The positional order is ``(complete, incomplete, parameters)``, the
    opposite of :class:`IncompletePair`'s for the two matrices (scikit-learn's
    ``make_*`` generators give the truth first); the field names are the same
    in both, so code that reads ``.incomplete`` and ``.complete`` does not
    depend on the order.
    """

    complete: np.ndarray
    incomplete: np.ndarray
    parameters: dict


for _pair in (IncompletePair, IncompleteMixture):
    _pair.incomplete.__doc__ = "The matrix with NaN (or the chosen code) at its missing entries."
    _pair.complete.__doc__ = "The same matrix with its missing entries revealed."
IncompleteMixture.parameters.__doc__ = 'The mixture drawn from: ``"weights"``, ``"means"``, ``"covariances"``.'


def _load(name):
    path = resources.files(__package__).joinpath("data", f"{name}.txt.gz")
    with path.open("rb") as compressed, gzip.open(compressed, "rt") as text:
        return np.loadtxt(text, dtype=np.float64)


def _recode_missing(X, missing_values):
    """Replace the files' 0 = missing by ``missing_values``."""
    if missing_values == 0:
        return X
    return np.where(X == 0, missing_values, X)


def load_netflix(*, missing_values=np.nan):
    """Load the 1200 x 1200 Netflix rating matrix of the course.

    Rows are users, columns are movies, ratings are 1 to 5. 1,111,768 ratings
    are observed and 328,232 (22.8 %) are missing.

    Parameters
    ----------
    missing_values : float, default=np.nan
        Code for the missing ratings in ``X_incomplete``. The file stores them
        as 0; ``missing_values=0`` returns the matrix as stored.

    Returns
    -------
    data : IncompletePair
        ``(X_incomplete, X_complete)``, also as ``data.incomplete`` and
        ``data.complete``:
    X_incomplete : ndarray of shape (1200, 1200)
        Observed ratings, with ``missing_values`` at the missing ones.
    X_complete : ndarray of shape (1200, 1200)
        The ratings with the missing ones revealed. Always as stored: it is
        not quite complete, since 2,429 entries (all missing in
        ``X_incomplete``, in six users) are 0, meaning the true rating is
        unknown. The course's RMSE counts them as 0 all the same; use
        ``X_complete != 0`` as a mask to score only known ratings.

    Examples
    --------
    >>> from skgmmfill.datasets import load_netflix
    >>> X, X_gold = load_netflix()
    >>> X.shape, int(np.isnan(X).sum()), int((X_gold == 0).sum())
    ((1200, 1200), 328232, 2429)
    """
    X_incomplete = _recode_missing(_load("netflix_incomplete"), missing_values)
    return IncompletePair(X_incomplete, _load("netflix_complete"))


def load_course_test(*, missing_values=np.nan):
    """Load the course's 20 x 5 test pair (ratings 1-5; 19 of 100 missing).

    Parameters
    ----------
    missing_values : float, default=np.nan
        Code for the missing entries of ``X_incomplete`` (stored as 0).

    Returns
    -------
    data : IncompletePair
        ``(X_incomplete, X_complete)``, also by name:
    X_incomplete : ndarray of shape (20, 5)
    X_complete : ndarray of shape (20, 5)
        Fully observed; equal to ``X_incomplete`` on its observed entries.
    """
    return IncompletePair(_recode_missing(_load("test_incomplete"), missing_values), _load("test_complete"))


def load_toy():
    """Load the course's 250 x 2 toy data set (real values, nothing missing).

    Returns
    -------
    X : ndarray of shape (250, 2)
    """
    return _load("toy_data")


def make_incomplete_mixture(
    n_samples=1000,
    n_features=8,
    *,
    weights=(0.5, 0.3, 0.2),
    missing_fraction=0.3,
    random_state=None,
):
    """Draw from a random full-covariance Gaussian mixture, then hide entries at random.

    The means are uniform on ``[-6, 6]``; each covariance is ``A A^T / d + 0.3 I``
    with ``A`` standard normal, so features are correlated within components.
    Each entry is then missing, independently, with probability
    ``missing_fraction`` (missing completely at random).

    Parameters
    ----------
    n_samples : int, default=1000
    n_features : int, default=8
    weights : sequence of float, default=(0.5, 0.3, 0.2)
        Mixing proportions; their number is the number of components.
    missing_fraction : float, default=0.3
    random_state : int, RandomState instance or None, default=None

    Returns
    -------
    data : IncompleteMixture
        ``(X_complete, X_incomplete, parameters)``, also as
        ``data.complete``, ``data.incomplete`` and ``data.parameters``:
    X_complete : ndarray of shape (n_samples, n_features)
    X_incomplete : ndarray of shape (n_samples, n_features)
        ``X_complete`` with NaN at the missing entries.
    parameters : dict
        ``"weights"``, ``"means"`` and ``"covariances"`` of the mixture.
    """
    rng = check_random_state(random_state)
    weights = np.asarray(weights, dtype=np.float64)
    n_components = len(weights)
    means = rng.uniform(-6, 6, size=(n_components, n_features))
    factors = rng.normal(size=(n_components, n_features, n_features)) / np.sqrt(n_features)
    covariances = factors @ np.swapaxes(factors, 1, 2) + 0.3 * np.eye(n_features)
    labels = rng.choice(n_components, size=n_samples, p=weights)
    X = np.empty((n_samples, n_features))
    for j in range(n_components):
        chosen = labels == j
        X[chosen] = rng.multivariate_normal(means[j], covariances[j], size=chosen.sum())
    missing = rng.uniform(size=X.shape) < missing_fraction
    parameters = {"weights": weights, "means": means, "covariances": covariances}
    return IncompleteMixture(X, np.where(missing, np.nan, X), parameters)


def ratings_to_dask_array(ratings, *, user="user", item="item", rating="rating", rows_per_block=50_000):
    """A rating log in a dask DataFrame as a row-partitioned sparse dask array.

    The ratings (one line per user, item and rating, e.g. read with
    ``dask.dataframe.read_parquet`` or ``read_csv``) become a users x items
    matrix whose row blocks are ``scipy.sparse`` CSR arrays, stored entries
    being the ratings and unstored ones missing: the input
    :meth:`MaskedGaussianMixtureImputer.fit` takes on a cluster. Users are
    sorted into blocks of ``rows_per_block`` by one shuffle; only the sorted
    id arrays are gathered to the client.

    Parameters
    ----------
    ratings : dask.dataframe.DataFrame
    user, item, rating : str
        Column names.
    rows_per_block : int, default=50_000
        Users per row block.

    Returns
    -------
    X : dask.array.Array of shape (n_users, n_items)
        Row blocks of CSR arrays (float64).
    user_ids, item_ids : ndarray
        The ids of the rows and columns of ``X``, sorted.

    Raises
    ------
    ValueError
        If a (user, item) pair is rated more than once, naming one.
    """
    import dask.array as da
    import scipy.sparse as sp
    from dask import compute, delayed

    frame = ratings[[user, item, rating]]
    user_ids, item_ids = compute(frame[user].unique(), frame[item].unique())
    user_ids, item_ids = np.sort(np.asarray(user_ids)), np.sort(np.asarray(item_ids))
    n_users, n_items = len(user_ids), len(item_ids)
    coded = frame.map_partitions(
        _code_ratings, user_ids, item_ids, user, item, rating,
        meta={"row": np.int64, "col": np.int64, "value": np.float64},
    )
    starts = list(range(0, n_users, rows_per_block))
    coded = coded.set_index("row", divisions=starts + [n_users - 1], sorted=False)
    stops = starts[1:] + [n_users]
    pieces = [
        da.from_delayed(
            delayed(_csr_block)(part, start, stop, n_items, user_ids, item_ids),
            shape=(stop - start, n_items), dtype=np.float64, meta=sp.csr_array((0, 0)),
        )
        for part, start, stop in zip(coded.to_delayed(), starts, stops)
    ]
    return da.concatenate(pieces, axis=0), user_ids, item_ids


def _code_ratings(part, user_ids, item_ids, user, item, rating):
    import pandas as pd

    return pd.DataFrame({
        "row": np.searchsorted(user_ids, part[user].to_numpy()).astype(np.int64),
        "col": np.searchsorted(item_ids, part[item].to_numpy()).astype(np.int64),
        "value": part[rating].to_numpy(dtype=np.float64),
    })


def _csr_block(part, start, stop, n_items, user_ids, item_ids):
    import scipy.sparse as sp

    rows, cols, values = part.index.to_numpy() - start, part["col"].to_numpy(), part["value"].to_numpy()
    keys = rows * n_items + cols
    unique, counts = np.unique(keys, return_counts=True)
    if (counts > 1).any():
        row, col = divmod(int(unique[counts > 1][0]), n_items)
        raise ValueError(
            f"user {user_ids[start + row]!r} rated item {item_ids[col]!r} more than once; "
            "keep one rating per pair (e.g. the latest) before building the matrix."
        )
    return sp.csr_array((values, (rows, cols)), shape=(stop - start, n_items))
