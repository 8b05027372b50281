"""MovieLens rating archives, downloaded once and cached, in scikit-learn's ``fetch_*`` manner."""

import contextlib
import hashlib
import os
import shutil
import tempfile
import urllib.request
import zipfile
from functools import partial
from pathlib import Path

import numpy as np
from sklearn.datasets import get_data_home
from sklearn.utils import Bunch

from ._readers import _pandas, ratings_frame, read_items, read_opened

MOVIELENS = {
    "100k": ("https://files.grouplens.org/datasets/movielens/ml-100k.zip",
             "0e33842e24a9c977be4e0107933c0723", "ml-100k/u.data", "ml-100k/u.item"),
    "1m": ("https://files.grouplens.org/datasets/movielens/ml-1m.zip",
           "c4d9eecfca2ab87c1945afe126590906", "ml-1m/ratings.dat", "ml-1m/movies.dat"),
}
"""Each variant's archive, its MD5 as GroupLens publishes it, and the ratings and movies files inside."""

_DESCRIPTION = """MovieLens {variant} (GroupLens Research, https://grouplens.org/datasets/movielens/)
{n_ratings:,} ratings (1-5 stars) of {n_items:,} movies by {n_users:,} users, each of whom rated at least
20 movies. ``ratings``: users x movies, stored = rated; ``user_ids``, ``item_ids``: the MovieLens ids of its
rows and columns; ``titles``: the title of each movie of ``item_ids``. Read from {archive}; see the archive's README
for the terms of use (no redistribution, cite Harper and Konstan, ACM TiiS 2015)."""


def fetch_movielens(variant="100k", *, data_home=None, download_if_missing=True, return_X_ids=False,
                    as_frame=False):
    """The MovieLens ratings and movie titles of ``variant``, downloaded from GroupLens once.

    The archive is kept in ``data_home/movielens/`` and its MD5 checked
    against the published one after the download and at every load, so a
    truncated or altered file is an error, never a silent misreading.

    Parameters
    ----------
    variant : {"100k", "1m"}, default="100k"
        MovieLens 100K (943 users, 1,682 movies, 100,000 ratings) or 1M
        (6,040 users, 3,706 rated movies, 1,000,209 ratings), ratings 1-5.
    data_home : str or path-like, default=None
        Where to cache the archive; by default scikit-learn's data home
        (``~/scikit_learn_data``, or ``$SCIKIT_LEARN_DATA``).
    download_if_missing : bool, default=True
        If False, a missing archive is an error instead of a download.
    return_X_ids : bool, default=False
        Return ``(ratings, user_ids, item_ids)`` instead of the Bunch.
    as_frame : bool, default=False
        Give ``ratings`` as a pandas DataFrame of sparse columns indexed by
        user and movie ids (needs pandas), as
        :func:`~skgmmfill.datasets.read_ratings` does with ``as_frame=True``.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``ratings``: a ``scipy.sparse.csr_array`` of shape
        ``(n_users, n_movies)``, unstored entries unrated (a DataFrame with
        ``as_frame=True``); ``user_ids``,
        ``item_ids``: the MovieLens user and movie ids (str) of its rows and
        columns, in numerical order; ``titles``: the title of each movie of
        ``item_ids``; ``DESCR``: a description.
    (ratings, user_ids, item_ids) : tuple
        With ``return_X_ids=True``.
    """
    if as_frame and _pandas() is None:
        raise ImportError("as_frame=True needs pandas: pip install pandas")
    if variant not in MOVIELENS:
        raise ValueError(f"variant must be one of {sorted(MOVIELENS)}, got {variant!r}")
    url, md5, member, movies = MOVIELENS[variant]
    folder = Path(get_data_home(data_home)) / "movielens"
    archive = folder / url.rsplit("/", 1)[1]
    if not archive.exists():
        if not download_if_missing:
            raise OSError(f"{archive} is not there and download_if_missing=False")
        folder.mkdir(parents=True, exist_ok=True)
        _download(url, archive, md5)
    digest = _md5(archive)
    if digest != md5:
        raise OSError(f"{archive} has MD5 {digest}, not the published {md5}: delete it to download it again")
    X, users, items = read_opened(f"{archive}:{member}", partial(_open_member, archive, member))
    n_ratings = X.nnz
    if as_frame:
        X = ratings_frame(X, users, items)
    if return_X_ids:
        return X, users, items
    title_of = dict(zip(*read_items(f"{archive}:{movies}", opener=partial(_open_member, archive, movies))))
    titles = np.array([title_of.get(item, "") for item in items], dtype=str)
    description = _DESCRIPTION.format(variant=variant, n_ratings=n_ratings, n_users=len(users), n_items=len(items),
                                      archive=archive)
    return Bunch(ratings=X, user_ids=users, item_ids=items, titles=titles, DESCR=description)


@contextlib.contextmanager
def _open_member(archive, member, name):
    with zipfile.ZipFile(archive) as opened, opened.open(member) as stream:
        yield stream


def _download(url, archive, md5):
    """``url`` to ``archive`` through a temporary file, kept only if its MD5 is ``md5``."""
    handle, temporary = tempfile.mkstemp(dir=archive.parent, prefix=".download-")
    try:
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            shutil.copyfileobj(response, out)
        digest = _md5(temporary)
        if digest != md5:
            raise OSError(f"the download of {url} has MD5 {digest}, not the published {md5}")
        os.replace(temporary, archive)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def _md5(path):
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(2**20), b""):
            digest.update(chunk)
    return digest.hexdigest()
