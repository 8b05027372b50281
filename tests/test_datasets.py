import gzip
import hashlib
from importlib import resources

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from skgmmfill.datasets import load_course_test, load_netflix, load_toy


def test_bundled_files_match_their_checksums():
    data = resources.files("skgmmfill.datasets").joinpath("data")
    sums = data.joinpath("SHA256SUMS").read_text().split("\n")
    checked = 0
    for line in filter(None, sums):
        digest, name = line.split()
        raw = gzip.decompress(data.joinpath(f"{name}.gz").read_bytes())
        assert hashlib.sha256(raw).hexdigest() == digest, name
        checked += 1
    assert checked == 5


def test_load_netflix_nan_coded():
    X, X_complete = load_netflix()
    assert X.shape == X_complete.shape == (1200, 1200)
    assert X.dtype == X_complete.dtype == np.float64
    assert np.isnan(X).sum() == 328232
    observed = ~np.isnan(X)
    assert_array_equal(X[observed], X_complete[observed])
    assert (X_complete == 0).sum() == 2429
    assert not np.isnan(X_complete).any()
    assert np.nanmean(X) == pytest.approx(3.5605, abs=1e-4)


def test_load_netflix_zero_coded_is_the_file_as_stored():
    X0, _ = load_netflix(missing_values=0)
    X_nan, _ = load_netflix()
    assert_array_equal(np.nan_to_num(X_nan), X0)
    assert (X0 == 0).sum() == 328232


def test_course_test_pair_and_toy():
    X, X_complete = load_course_test(missing_values=0)
    assert X.shape == (20, 5) and (X == 0).sum() == 19
    assert (X_complete != 0).all()
    assert np.isnan(load_course_test()[0]).sum() == 19
    toy = load_toy()
    assert toy.shape == (250, 2) and np.isfinite(toy).all()


def test_make_incomplete_mixture():
    from skgmmfill.datasets import make_incomplete_mixture

    X, X_missing, parameters = make_incomplete_mixture(5000, 4, weights=(0.7, 0.3),
                                                       missing_fraction=0.25, random_state=0)
    assert X.shape == X_missing.shape == (5000, 4) and np.isfinite(X).all()
    assert np.isnan(X_missing).mean() == pytest.approx(0.25, abs=0.01)
    assert_array_equal(X_missing[~np.isnan(X_missing)], X[~np.isnan(X_missing)])
    assert parameters["means"].shape == (2, 4) and parameters["covariances"].shape == (2, 4, 4)
    assert np.all(np.linalg.eigvalsh(parameters["covariances"]) > 0.29)
    X_again, _, _ = make_incomplete_mixture(5000, 4, weights=(0.7, 0.3), random_state=0)
    assert_array_equal(X_again, X)
