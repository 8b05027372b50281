import bz2
import gzip
import hashlib
import importlib.util
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


def test_generated_and_bundled_pairs_name_their_matrices_alike():
    """make_incomplete_mixture gives the truth first and load_netflix the incomplete matrix first (kept: a swap
    would silently break callers); both carry the same field names, which do not depend on the order."""
    from skgmmfill.datasets import make_incomplete_mixture

    drawn = make_incomplete_mixture(50, 3, random_state=0)
    course = load_course_test()
    for data in (drawn, course):
        observed = ~np.isnan(data.incomplete)
        assert_array_equal(data.incomplete[observed], data.complete[observed]) and np.isnan(data.incomplete).any()
    assert drawn.complete is drawn[0] and course.complete is course[1] and set(drawn.parameters) >= {"means"}


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


def test_read_ratings_as_frame_names_the_items_for_the_estimator(tmp_path):
    pd = pytest.importorskip("pandas")
    from skgmmfill import EmptyFeatureWarning, MaskedGaussianMixtureImputer
    from skgmmfill.datasets import read_ratings

    (tmp_path / "r.csv").write_text("u,item,rating\n1,Alien,5\n2,Alien,4\n3,Brazil,2\n1,Casablanca,3\n")
    frame = read_ratings(tmp_path / "r.csv", as_frame=True)
    X, users, items = read_ratings(tmp_path / "r.csv")
    assert isinstance(frame, pd.DataFrame) and list(frame.index) == list(users) and list(frame.columns) == list(items)
    assert_array_equal(frame.sparse.to_coo().toarray(), X.toarray())
    train = frame.copy()
    train["Brazil"] = pd.arrays.SparseArray([0.0, 0.0, 0.0], fill_value=0.0)  # its one rating held out
    with pytest.warns(EmptyFeatureWarning, match=r"1 of 3 feature\(s\) have no observed value .* \('Brazil'\)"):
        imputer = MaskedGaussianMixtureImputer(n_components=1, covariance_type="diag", random_state=0).fit(train)
    assert list(imputer.feature_names_in_) == ["Alien", "Brazil", "Casablanca"]


def movielens_archive(folder, member, lines, items=()):
    path = folder / "ml-100k.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(member, "".join(lines))
        archive.writestr("ml-100k/u.item", "".join(items).encode("latin-1"))
    return path


def test_fetch_movielens_downloads_once_checks_and_caches(tmp_path, monkeypatch):
    from skgmmfill.datasets import _movielens, fetch_movielens

    source = movielens_archive(tmp_path, "ml-100k/u.data", ["1\t1\t5\t8\n", "1\t2\t3\t8\n", "2\t1\t4\t8\n"],
                               ["1|Toy Story (1995)|01-Jan-1995||http://x|0|1\n",
                                "2|Caf\u00e9 Society (1995)|01-Jan-1995||http://y|1|0\n"])
    md5 = hashlib.md5(source.read_bytes()).hexdigest()
    monkeypatch.setitem(_movielens.MOVIELENS, "100k", (source.as_uri(), md5, "ml-100k/u.data", "ml-100k/u.item"))
    home = tmp_path / "home"
    data = fetch_movielens(data_home=home)
    assert_array_equal(data.ratings.toarray(), [[5, 3], [4, 0]]) and list(data.user_ids) == ["1", "2"]
    assert list(data.item_ids) == ["1", "2"] and list(data.titles) == ["Toy Story (1995)", "Caf\u00e9 Society (1995)"]
    assert data.DESCR.startswith("MovieLens 100k") and "3 ratings (1-5 stars) of 2 movies by 2 users" in data.DESCR
    source.unlink()  # from now on only the cache can serve it
    X, users, items = fetch_movielens(data_home=home, return_X_ids=True)
    assert X.nnz == 3 and list(items) == ["1", "2"]
    if importlib.util.find_spec("pandas"):
        frame = fetch_movielens(data_home=home, as_frame=True).ratings
        assert list(frame.columns) == ["1", "2"] and frame.sparse.density == 0.75
    with pytest.raises(OSError, match="download_if_missing=False"):
        fetch_movielens(data_home=tmp_path / "empty", download_if_missing=False)


def test_fetch_movielens_refuses_a_changed_archive(tmp_path, monkeypatch):
    from skgmmfill.datasets import _movielens, fetch_movielens

    source = movielens_archive(tmp_path, "ml-100k/u.data", ["1\t1\t5\t8\n"])
    monkeypatch.setitem(_movielens.MOVIELENS, "100k", (source.as_uri(), "0" * 32, "ml-100k/u.data", "ml-100k/u.item"))
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


# Files the fast parsers must read exactly as the line-by-line parse does, in
# blocks of a few lines (so that every block boundary, fallback and restart runs).
READER_CASES = {
    "u.data": "196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t377\t1\t878887116\n196\t377\t4.5\t1\n" * 1
    + "".join(f"{u}\t{i}\t{(u * i) % 5 + 1}\t9\n" for u in range(1, 30) for i in (7, 11)),
    "ratings.dat": "".join(f"{u}::{i}::{(u + i) % 5 + 1}::97\n" for u in range(1, 40) for i in (3, 5)),
    "export.csv": '\ufeff# exported\nuser,item,rating\n"u 1",x,4\n\nu2,"y, z",3.5\n  # note\nu2,x,1\r\n'
    + "".join(f"u{u},m{u % 7},{u % 5 + 1}\n" for u in range(3, 60)),
    "spaces.txt": "".join(f"  {u}   {u % 4}\t{u % 5 + 1}\n" for u in range(50)),
    "late_text_ids.tsv": "".join(f"{u}\t{u % 3}\t4\n" for u in range(1, 60)) + "x9\t1\t2\n",
    "big_ids.csv": "".join(f"{u},1,2\n" for u in range(1, 60)) + "123456789012345678901234,1,5\n",
    "odd_colons.dat": "# note: colons\n" + "".join(f"{u}::{u % 3}::4::1\n" for u in range(60)) + "7:::8::2\n",
    "latin1.csv": "".join(f"caf\u00e9{u},1,2\n" for u in range(60)),
}


@pytest.mark.parametrize("name", sorted(READER_CASES))
def test_every_parser_reads_a_file_alike_in_any_block_size(tmp_path, monkeypatch, name):
    from skgmmfill.datasets import _readers, read_ratings

    text = READER_CASES[name]
    path = tmp_path / name
    path.write_bytes(text.encode("latin-1" if name.startswith("latin1") else "utf-8"))
    expected = read_ratings(path, parser="numpy")
    for block_bytes in (40, 200, 1 << 24):
        monkeypatch.setattr(_readers, "BLOCK_BYTES", block_bytes)
        for parser in ("pandas", "numpy"):
            X, users, items = read_ratings(path, parser=parser)
            assert_array_equal(X.toarray(), expected[0].toarray())
            assert X.has_canonical_format and X.dtype == np.float64
            assert list(users) == list(expected[1]) and list(items) == list(expected[2])
    if name == "export.csv":
        assert {"u 1", "u2"} <= set(users) and "y, z" in list(items) and X[list(users).index("u2")].sum() == 4.5
    if name == "late_text_ids.tsv":
        assert list(users[-2:]) == ["59", "x9"]  # ids read as text once one is not an integer
    if name == "latin1.csv":
        assert users[0] == "caf\u00e90"


def test_errors_name_the_line_in_any_block(tmp_path, monkeypatch):
    from skgmmfill.datasets import _readers, read_ratings

    monkeypatch.setattr(_readers, "BLOCK_BYTES", 64)
    lines = [f"{u}\t{u % 9}\t3\n" for u in range(1, 80)]
    path = tmp_path / "r.tsv"
    for parser in ("pandas", "numpy"):
        path.write_text("".join(lines[:50] + ["# note\n", "51\t2\n"] + lines[51:]))
        with pytest.raises(ValueError, match=r"line 52: 2 fields, expected at least 3 \(user, item, rating\) "
                                             "separated by tabs"):
            read_ratings(path, parser=parser)
        path.write_text("".join(lines[:60] + ["61\t2\tgood\n"] + lines[61:]))
        with pytest.raises(ValueError, match="line 61: rating 'good' is not a number"):
            read_ratings(path, parser=parser)
        path.write_text("".join(lines + ["# again\n", "3\t3\t5\n"]))
        with pytest.raises(ValueError, match=r"1 \(user, item\) pair\(s\) rated more than once \(user '3', item '3' "
                                             r"on lines 3 and 81\); keep one rating per pair"):
            read_ratings(path, parser=parser)
        X = read_ratings(path, parser=parser, duplicates="mean")[0]
        assert X[2, 3] == 4.0 and X.nnz == 79


def test_a_line_without_end_is_refused_in_bounded_memory(tmp_path):
    from skgmmfill.datasets import read_ratings

    path = tmp_path / "zeros.csv.gz"
    with gzip.open(path, "wb") as stream:
        stream.write(b"1,2,3\n" + b"0" * (3 << 20))
    with pytest.raises(ValueError, match="line 2: longer than 1 MiB without a line break"):
        read_ratings(path)


def test_the_parser_parameter(tmp_path, monkeypatch):
    from skgmmfill.datasets import _readers, read_ratings

    (tmp_path / "r.csv").write_text("1,2,3\n")
    with pytest.raises(ValueError, match="parser must be one of"):
        read_ratings(tmp_path / "r.csv", parser="arrow")
    monkeypatch.setattr(_readers, "_pandas", lambda: None)  # pandas not installed
    with pytest.raises(ImportError, match="parser='pandas' needs pandas"):
        read_ratings(tmp_path / "r.csv", parser="pandas")
    assert read_ratings(tmp_path / "r.csv")[0].nnz == 1  # "auto" without pandas
