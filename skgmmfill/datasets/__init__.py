"""Data sets bundled with skgmmfill.

The files come from the MIT 6.86x project "Collaborative Filtering via Gaussian
Mixtures": a 1200 x 1200 Netflix rating matrix (with and without its missing
entries), a 20 x 5 test pair and a 250 x 2 toy set. ``data/SHA256SUMS`` lists
the SHA-256 of each uncompressed file.
"""

import gzip
from importlib import resources

import numpy as np
from sklearn.utils import check_random_state

__all__ = ["load_netflix", "load_course_test", "load_toy", "make_incomplete_mixture"]


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
    return X_incomplete, _load("netflix_complete")


def load_course_test(*, missing_values=np.nan):
    """Load the course's 20 x 5 test pair (ratings 1-5; 19 of 100 missing).

    Parameters
    ----------
    missing_values : float, default=np.nan
        Code for the missing entries of ``X_incomplete`` (stored as 0).

    Returns
    -------
    X_incomplete : ndarray of shape (20, 5)
    X_complete : ndarray of shape (20, 5)
        Fully observed; equal to ``X_incomplete`` on its observed entries.
    """
    return (
        _recode_missing(_load("test_incomplete"), missing_values),
        _load("test_complete"),
    )


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
    return X, np.where(missing, np.nan, X), parameters
