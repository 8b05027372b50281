import bz2
import gzip
import hashlib
import zipfile
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


# ------------------------------------------------------------ rating files


def test_read_ratings_formats_and_natural_order(tmp_path):
    from skgmmfill.datasets import read_ratings

    (tmp_path / "u.data").write_text("10\t2\t3\t881250949\n2\t10\t4\t1\n10\t10\t5\t2\n")
    (tmp_path / "r.dat.bz2").write_bytes(bz2.compress(b"10::2::3::1\n2::10::4::1\n10::10::5::2\n"))
    (tmp_path / "r.csv").write_text('user;"item";score\n10;2;3\n2;10;4\n10;10;5\n')
    for name in ("u.data", "r.dat.bz2"):
        X, users, items = read_ratings(tmp_path / name)
        assert list(users) == ["2", "10"] and list(items) == ["2", "10"]  # numerically, not as text
        assert_array_equal(X.toarray(), [[0, 4], [3, 5]])
    X, users, items = read_ratings(tmp_path / "r.csv", columns=("item", "user", "score"))
    assert_array_equal(X.toarray(), [[0, 3], [4, 5]])


def test_read_ratings_duplicates_and_bad_lines(tmp_path):
    from skgmmfill.datasets import read_ratings

    (tmp_path / "d.csv").write_text("a,x,1\nb,x,2\na,x,4\n")
    with pytest.raises(ValueError, match="user 'a', item 'x' on lines 1 and 3"):
        read_ratings(tmp_path / "d.csv")
    assert read_ratings(tmp_path / "d.csv", duplicates="mean")[0].toarray()[0, 0] == 2.5
    (tmp_path / "short.txt").write_text("a b 1\nb c\n")
    with pytest.raises(ValueError, match="cannot tell how the fields are separated"):
        read_ratings(tmp_path / "short.txt")


def movielens_archive(folder, member, lines):
    path = folder / "ml-100k.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(member, "".join(lines))
    return path


def test_fetch_movielens_downloads_once_checks_and_caches(tmp_path, monkeypatch):
    from skgmmfill.datasets import _movielens, fetch_movielens

    source = movielens_archive(tmp_path, "ml-100k/u.data", ["1\t1\t5\t8\n", "1\t2\t3\t8\n", "2\t1\t4\t8\n"])
    md5 = hashlib.md5(source.read_bytes()).hexdigest()
    monkeypatch.setitem(_movielens.MOVIELENS, "100k", (source.as_uri(), md5, "ml-100k/u.data"))
    home = tmp_path / "home"
    X, users, items = fetch_movielens(data_home=home)
    assert_array_equal(X.toarray(), [[5, 3], [4, 0]]) and list(users) == ["1", "2"]
    source.unlink()  # from now on only the cache can serve it
    assert fetch_movielens(data_home=home)[0].nnz == 3
    with pytest.raises(OSError, match="download_if_missing=False"):
        fetch_movielens(data_home=tmp_path / "empty", download_if_missing=False)


def test_fetch_movielens_refuses_a_changed_archive(tmp_path, monkeypatch):
    from skgmmfill.datasets import _movielens, fetch_movielens

    source = movielens_archive(tmp_path, "ml-100k/u.data", ["1\t1\t5\t8\n"])
    monkeypatch.setitem(_movielens.MOVIELENS, "100k", (source.as_uri(), "0" * 32, "ml-100k/u.data"))
    with pytest.raises(OSError, match="not the published"):
        fetch_movielens(data_home=tmp_path / "home")
    assert list((tmp_path / "home" / "movielens").iterdir()) == []  # nothing half-downloaded kept
    with pytest.raises(ValueError, match="variant must be one of"):
        fetch_movielens("25m")


def test_read_ratings_skips_comment_lines(tmp_path):
    from skgmmfill.datasets import read_ratings

    path = tmp_path / "export.csv"
    path.write_text("# exported 2024 from the shop\nuser,item,rating\n  # a note\na,x,4\nb,x,2\n# last\nb,y,5\n")
    X, users, items = read_ratings(path)
    assert list(users) == ["a", "b"] and list(items) == ["x", "y"]
    assert X.data.max() == 5 and X.nnz == 3
    path.write_text("a\tx\t4\n#\tcomment\n")
    assert read_ratings(path)[0].nnz == 1
    (tmp_path / "bad.csv").write_text("# header comment\na,x,4\nb,y,oops\n")
    with pytest.raises(ValueError, match="line 3: rating 'oops'"):  # line numbers count the comments
        read_ratings(tmp_path / "bad.csv")


def test_an_undetectable_separator_names_the_python_parameter_not_a_cli_flag(tmp_path):
    from skgmmfill.datasets import read_ratings

    (tmp_path / "odd.txt").write_text("a|x|4\nb|y|5\n")
    with pytest.raises(ValueError, match="pass the separator as sep$") as error:
        read_ratings(tmp_path / "odd.txt")
    assert "--" not in str(error.value)
    assert read_ratings(tmp_path / "odd.txt", sep="|")[0].nnz == 2
