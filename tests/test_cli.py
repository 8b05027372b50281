import csv
import gzip
import io
import json
import os
import pickle
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal

from reference_figures import NETFLIX_BEST_LL, load_course_solutions
from test_persistence import PlantingPayload
from skgmmfill import PRESET_COURSE, MaskedGaussianMixtureImputer, load_model
from skgmmfill.datasets import read_ratings
from skgmmfill._commands import course_experiment
from skgmmfill.cli import main

COURSE_TEST = Path(__file__).parents[1] / "skgmmfill" / "datasets" / "data" / "test_incomplete.txt.gz"


def test_course_experiment_prints_the_reference_figures(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert f"{NETFLIX_BEST_LL[12]:.4f}" in out and f"{NETFLIX_BEST_LL[1]:.4f}" in out
    assert "0.480491" in out and "0.963949" in out
    assert "wall time" in out


def test_course_subcommand_with_options(capsys):
    assert main(["course", "-k", "2", "-s", "0", "1"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n  2    0 ") == 1 and out.count("\n  2    1 ") == 1


def test_course_experiment_results(tmp_path):
    with open(tmp_path / "out.txt", "w") as out:
        results = course_experiment([2], [0, 1], out=out)
    assert set(results) == {2} and len(results[2]["log_likelihoods"]) == 2
    assert 0.4 < results[2]["rmse_all"] < 0.6


def test_complete_reproduces_the_course_fill(tmp_path):
    source = tmp_path / "test.txt"
    source.write_bytes(gzip.decompress(COURSE_TEST.read_bytes()))
    target = tmp_path / "filled.txt"
    assert main(["complete", str(source), str(target), "-k", "4", "--missing-values", "0", "--preset", "course",
                 "-q"]) == 0
    X = np.loadtxt(source)
    filled = np.loadtxt(target)
    assert_array_equal(filled[X != 0], X[X != 0])
    expected = MaskedGaussianMixtureImputer(4, **PRESET_COURSE, missing_values=0, random_state=0).fit_transform(X)
    assert_array_equal(filled, expected)  # identical to the Python API, digit for digit
    np.testing.assert_allclose(filled, load_course_solutions()["After a run"]["X_pred"], atol=1e-8)


def test_complete_csv_with_empty_cells_and_npz(tmp_path):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(30, 4))
    X[rng.uniform(size=X.shape) < 0.3] = np.nan
    text = "\n".join(",".join("" if np.isnan(v) else repr(float(v)) for v in row) for row in X)
    (tmp_path / "in.csv").write_text(text + "\n")
    assert main(["complete", str(tmp_path / "in.csv"), str(tmp_path / "out.csv"), "-k", "2", "-q"]) == 0
    from_csv = np.loadtxt(tmp_path / "out.csv", delimiter=",")
    expected = MaskedGaussianMixtureImputer(2, random_state=0, keep_empty_features=True).fit_transform(X)
    assert_array_equal(from_csv, expected)
    np.savez(tmp_path / "in.npz", X=X)
    assert main(["complete", str(tmp_path / "in.npz"), str(tmp_path / "out.npz"), "-k", "2", "-q"]) == 0
    with np.load(tmp_path / "out.npz") as arrays:
        assert_array_equal(arrays["X"], expected)


def test_complete_sparse_npz(tmp_path):
    X = sp.random_array((40, 6), density=0.5, random_state=0, format="csr")
    sp.save_npz(tmp_path / "in.npz", X)
    assert main(["complete", str(tmp_path / "in.npz"), str(tmp_path / "out.npz"), "-q"]) == 0
    with np.load(tmp_path / "out.npz") as arrays:
        filled = arrays["X"]
    rows, cols = X.nonzero()
    assert_array_equal(filled[rows, cols], X.toarray()[rows, cols])
    assert_array_equal(filled, MaskedGaussianMixtureImputer(random_state=0, keep_empty_features=True)
                       .fit_transform(X))


def test_complete_triplets_writes_the_imputed_entries(tmp_path):
    (tmp_path / "r.csv").write_text("user,item,rating\nann,m1,5\nann,m2,3\nbob,m1,4\ncyd,m2,1\n")
    assert main(["complete", str(tmp_path / "r.csv"), str(tmp_path / "o.csv"), "--triplets",
                 "--min-value", "1", "--max-value", "5", "-q"]) == 0
    lines = (tmp_path / "o.csv").read_text().splitlines()
    assert lines[0] == "user,item,rating,observed"
    assert [line.split(",")[:2] for line in lines[1:]] == [["bob", "m2"], ["cyd", "m1"]]
    assert all(line.endswith(",0") and 1.0 <= float(line.split(",")[2]) <= 5.0 for line in lines[1:])
    assert main(["complete", str(tmp_path / "r.csv"), str(tmp_path / "all.csv"), "--triplets", "--all",
                 "--min-value", "1", "--max-value", "5", "-q"]) == 0
    rows = [line.split(",") for line in (tmp_path / "all.csv").read_text().splitlines()[1:]]
    assert len(rows) == 6 and ["ann", "m1", "5.0", "1"] in rows and ["cyd", "m2", "1.0", "1"] in rows


@pytest.mark.parametrize(
    "name, content, extra, message",
    [
        ("bad.txt", "1 2 x\n", [], "line 1: 'x' is not a number"),
        ("ragged.csv", "1,2,3\n4,5\n", [], "line 2: 2 values, but the first row has 3"),
        ("empty.txt", "\n", [], "is empty"),
        ("bad.doc", "1 2\n", [], "unknown file type"),
        ("t.csv", "a,b,c,d\n", ["--triplets"], "no user, item, rating lines"),
        ("t.csv", "a;b;3\nc;d\n", ["--triplets", "--sep", ";"], "line 2: 2 fields, expected at least 3"),
        ("t.csv", "a,b,3\nc,d,x\n", ["--triplets"], "line 2: rating 'x' is not a number"),
        ("ratings.csv", "".join(f"{u},{i},{(u + i) % 5 + 1},88{u}{i}\n" for u in range(6) for i in range(3)), [],
         "looks like user, item, rating lines"),
        ("dup.csv", "a,x,1\na,x,2\n", ["--triplets"], "more than once"),
        ("few.txt", "1 2\n3 nan\n", ["-k", "3"], "n_components=3 needs at least 3 rows to fit, but X has 2"),
    ],
)
def test_bad_files_exit_2_with_one_line_and_no_output(tmp_path, capsys, name, content, extra, message):
    (tmp_path / name).write_text(content)
    output = tmp_path / ("out" + Path(name).suffix)
    assert main(["complete", str(tmp_path / name), str(output), "-q", *extra]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("skgmmfill complete: error:") and message in error
    assert not output.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporary file left


def test_missing_input_and_wrong_output_type(tmp_path, capsys):
    assert main(["complete", str(tmp_path / "none.txt"), str(tmp_path / "out.txt")]) == 2
    assert "cannot read" in capsys.readouterr().err
    (tmp_path / "in.txt").write_text("1 2\n3 4\n")
    assert main(["complete", str(tmp_path / "in.txt"), str(tmp_path / "out.csv")]) == 2
    assert "must be a .txt file" in capsys.readouterr().err
    assert main(["complete", str(tmp_path / "in.txt"), str(tmp_path / "no" / "out.txt")]) == 2
    assert "cannot write" in capsys.readouterr().err


def test_choose_k(tmp_path, capsys):
    X, _, _ = __import__("skgmmfill.datasets", fromlist=["x"]).make_incomplete_mixture(300, 4, random_state=0)
    np.savetxt(tmp_path / "x.txt", X)
    assert main(["choose-k", str(tmp_path / "x.txt"), "-k", "1", "3", "--cv", "2", "-q"]) == 0
    out = capsys.readouterr().out
    assert "BIC" in out and "best K by BIC: 3" in out and "masked RMSE: 3" in out


@pytest.mark.parametrize("command", [[], ["course"], ["complete"], ["choose-k"], ["recommend"], ["predict"],
                                     ["evaluate"]])
def test_help(command):
    result = subprocess.run([sys.executable, "-m", "skgmmfill", *command, "--help"],
                            capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("usage: skgmmfill")


def test_course_bad_arguments(capsys):
    assert main(["course", "-k", "0"]) == 2
    assert "--n-components must be positive" in capsys.readouterr().err


def test_choose_k_on_triplets_prints_finite_cv_rmse(tmp_path, capsys):
    X, _ = __import__("skgmmfill.datasets", fromlist=["x"]).load_netflix()
    rows, cols = np.nonzero(~np.isnan(X[:300, :100]))
    lines = ["user,item,rating"] + [f"u{r},m{c},{X[r, c]:g}" for r, c in zip(rows, cols)]
    (tmp_path / "ratings.csv").write_text("\n".join(lines) + "\n")
    assert main(["choose-k", str(tmp_path / "ratings.csv"), "--triplets", "-k", "1", "2", "--cv", "2", "-q"]) == 0
    table = [line.split() for line in capsys.readouterr().out.splitlines()[1:3]]
    assert all(np.isfinite(float(row[2])) for row in table)


@pytest.mark.parametrize("options, expected", [
    (["--preset", "ratings"], {"covariance_type": "factor", "n_factors": 20, "loading_ard_prior": 0.5}),
    (["--preset", "ratings", "--n-factors", "3"], {"covariance_type": "factor", "n_factors": 3}),
    (["--preset", "ratings", "--covariance-type", "diag"], {"covariance_type": "diag", "n_factors": None,
                                                            "loading_precision_prior": None, "loading_ard_prior": None,
                                                            "biases": True}),
])
def test_preset_options_for_another_family_are_dropped(tmp_path, options, expected):
    rng = np.random.RandomState(0)
    X = rng.randint(1, 6, size=(40, 12)).astype(float)
    X[rng.uniform(size=X.shape) < 0.4] = np.nan
    text = "\n".join(",".join("" if np.isnan(v) else str(int(v)) for v in row) for row in X)
    (tmp_path / "in.csv").write_text(text + "\n")
    assert main(["complete", str(tmp_path / "in.csv"), str(tmp_path / "out.csv"), *options, "-q"]) == 0
    from skgmmfill._commands import _imputer_from
    from skgmmfill.cli import _parser
    params = _imputer_from(_parser().parse_args(["complete", "in.csv", "out.csv", *options])).get_params()
    assert {name: params[name] for name in expected} == expected


# ------------------------------------------------------------- rating files


def write_movielens(path, X, style, rng=np.random.RandomState(0)):
    """The observed entries of ``X`` (NaN missing) in a MovieLens-like format,
    users and items numbered from 1, in shuffled order."""
    rows, cols = np.nonzero(~np.isnan(X))
    order = rng.permutation(len(rows))
    lines = {
        "tab": [f"{r + 1}\t{c + 1}\t{X[r, c]:g}\t88{i}" for i, (r, c) in enumerate(zip(rows[order], cols[order]))],
        "colons": [f"{r + 1}::{c + 1}::{X[r, c]:g}::97{i}" for i, (r, c) in enumerate(zip(rows[order], cols[order]))],
        "csv": ["userId,movieId,rating,timestamp"]
        + [f"{r + 1},{c + 1},{X[r, c]:g},12{i}" for i, (r, c) in enumerate(zip(rows[order], cols[order]))],
    }[style]
    text = "\n".join(lines) + "\n"
    if str(path).endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


@pytest.fixture(scope="module")
def ratings_matrix():
    X, _ = __import__("skgmmfill.datasets", fromlist=["x"]).load_netflix()
    X = X[:150, :60].copy()
    X[np.random.RandomState(1).uniform(size=X.shape) < 0.5] = np.nan
    return X


def read_csv_rows(text):
    return [line.split(",") for line in text.splitlines()[1:]]


@pytest.mark.parametrize("style, name", [("tab", "u.data"), ("colons", "ratings.dat"), ("csv", "ratings.csv"),
                                         ("tab", "u.data.gz")])
def test_recommend_on_movielens_formats(tmp_path, capsys, ratings_matrix, style, name):
    X = ratings_matrix
    source = write_movielens(tmp_path / name, X, style)
    assert main(["recommend", str(source), str(tmp_path / "top.csv"), "-n", "4", "-q"]) == 0
    rows = read_csv_rows((tmp_path / "top.csv").read_text())
    by_user = {}
    for user, item, score, rank in rows:
        by_user.setdefault(user, []).append((int(item), float(score), int(rank)))
    assert len(by_user) == 150 and all(len(top) == 4 for top in by_user.values())
    for user, top in by_user.items():
        assert [rank for _, _, rank in top] == [1, 2, 3, 4]
        assert len({item for item, _, _ in top}) == 4
        assert all(np.isnan(X[int(user) - 1, item - 1]) for item, _, _ in top)  # never a rated item
    # every format of the same ratings gives the same recommendations, gzipped or not
    gzipped = write_movielens(tmp_path / "again.data.gz", X, "tab")
    assert main(["recommend", str(gzipped), "-", "-n", "4", "-q"]) == 0
    assert capsys.readouterr().out.replace("\r", "") == (tmp_path / "top.csv").read_text().replace("\r", "")


def test_predict_equals_the_python_api_and_a_saved_model_needs_no_refit(tmp_path, capsys, ratings_matrix):
    from skgmmfill import PRESET_RATINGS
    from skgmmfill.datasets import read_ratings

    source = write_movielens(tmp_path / "u.data", ratings_matrix, "tab")
    (tmp_path / "pairs.tsv").write_text("user\titem\n3\t7\n10\t1\n150\t60\n9999\t2\n")
    assert main(["predict", str(source), str(tmp_path / "pairs.tsv"), str(tmp_path / "p.csv"),
                 "--save", str(tmp_path / "model.npz"), "-q"]) == 0
    predicted = read_csv_rows((tmp_path / "p.csv").read_text())
    X, users, items = read_ratings(source)
    imputer = MaskedGaussianMixtureImputer(**PRESET_RATINGS, min_value=X.data.min(), max_value=X.data.max(),
                                           random_state=0).fit(X)
    rows = [list(users).index(u) for u in ("3", "10", "150")]
    cols = [list(items).index(i) for i in ("7", "1", "60")]
    expected = imputer.predict_entries(X, rows, cols)
    assert_array_equal([float(p[2]) for p in predicted[:3]], np.round(expected, 6 - 1 - int(np.log10(5))))
    assert predicted[3][:2] == ["9999", "2"]  # a user without ratings: the population's prediction
    assert (tmp_path / "p.csv").stat().st_mode & 0o777 == 0o666 & ~_umask()
    # The saved model gives the same predictions and recommendations without refitting.
    assert main(["predict", str(source), str(tmp_path / "pairs.tsv"), str(tmp_path / "q.csv"),
                 "--model", str(tmp_path / "model.npz")]) == 0
    assert (tmp_path / "q.csv").read_text() == (tmp_path / "p.csv").read_text()
    assert "no refitting" in capsys.readouterr().err
    assert main(["recommend", str(source), str(tmp_path / "a.csv"), "-q"]) == 0
    assert main(["recommend", str(source), str(tmp_path / "b.csv"), "--model", str(tmp_path / "model.npz"),
                 "-q"]) == 0
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()
    # ... and they are the Python API's: its ranking, each item with its predicted rating
    listed = read_csv_rows((tmp_path / "a.csv").read_text())
    top = imputer.recommend(X, 10)
    for user in ("3", "10"):
        row = list(users).index(user)
        mine = [(item, float(score)) for name, item, score, _ in listed if name == user]
        assert [item for item, _ in mine] == [items[c] for c in top[row]]
        assert_allclose([score for _, score in mine], imputer.predict_entries(X, [row] * 10, top[row]), rtol=1e-5)


def test_predict_gives_items_without_ratings_the_offsets(tmp_path, capsys, ratings_matrix):
    source = write_movielens(tmp_path / "u.data", ratings_matrix, "tab")
    (tmp_path / "pairs.tsv").write_text("3\tnew-film\n10\tnew-film\n3\t7\n")
    assert main(["predict", str(source), str(tmp_path / "pairs.tsv"), str(tmp_path / "p.csv"),
                 "--save", str(tmp_path / "m.npz")]) == 0
    assert "2 prediction(s) of items without ratings, from the user's and the global offsets" in capsys.readouterr().err
    predicted = {(user, item): float(value) for user, item, value in read_csv_rows((tmp_path / "p.csv").read_text())}
    imputer, items = load_model(tmp_path / "m.npz", return_feature_ids=True)
    assert items[-1] == "new-film"
    X, users, _ = read_ratings(source)
    X = sp.hstack([X, sp.csr_array((X.shape[0], 1))]).tocsr()  # the new film: the model's last column
    for user in ("3", "10"):
        row = list(users).index(user)
        # the preset infers each user's offset with their tastes (row_offset_factor): the API's prediction,
        # (tests/test_factor.py writes that offset out), not 0 and not the global mean alone
        assert predicted[(user, "new-film")] == pytest.approx(
            imputer.predict_entries(X, [row], [X.shape[1] - 1])[0], abs=1e-5)
        assert 1 <= predicted[(user, "new-film")] <= 5
        assert predicted[(user, "new-film")] != pytest.approx(imputer.global_mean_, abs=1e-3)
    assert predicted[("3", "new-film")] != predicted[("10", "new-film")]


def test_predict_keeps_the_fields_of_the_pairs_file_so_that_its_output_can_be_scored(tmp_path, capsys,
                                                                                     ratings_matrix):
    X = ratings_matrix
    held_out = (np.random.RandomState(5).uniform(size=X.shape) < 0.1) & ~np.isnan(X)
    held_out[:, -1] = ~np.isnan(X[:, -1])  # the last item is rated in the test file only
    train, test = split_files(tmp_path, X, held_out, "u1")
    assert main(["predict", str(train), str(test), str(tmp_path / "p.csv"), "-q"]) == 0
    lines = (tmp_path / "p.csv").read_text().splitlines()
    assert lines[0] == "user,item,rating,field4,prediction"
    rows = [line.split(",") for line in lines[1:]]
    assert len(rows) == int(held_out.sum())
    for user, item, rating, stamp, prediction in rows:
        assert float(rating) == X[int(user) - 1, int(item) - 1] and stamp.startswith("88")
        assert 1.0 <= float(prediction) <= 5.0
    errors = np.array([float(row[4]) - float(row[2]) for row in rows])
    assert np.sqrt(np.mean(errors**2)) < 1.2
    (tmp_path / "named.csv").write_text("user,item,stars\n3,7,4\n")
    assert main(["predict", str(train), str(tmp_path / "named.csv"), "-", "-q"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "user,item,stars,prediction" and out[1].startswith("3,7,4,")


def test_conflicting_options_and_impossible_fits_are_refused_before_fitting(tmp_path, capsys, ratings_matrix,
                                                                          monkeypatch):
    from skgmmfill import _commands as cli

    source = write_movielens(tmp_path / "u.data", ratings_matrix, "tab")
    assert main(["recommend", str(source), str(tmp_path / "top.csv"), "--save", str(tmp_path / "m.npz"), "-q"]) == 0
    for option in (["-k", "2"], ["--save", str(tmp_path / "n.npz")], ["--preset", "course"], ["--no-biases"]):
        assert main(["recommend", str(source), "-", "--model", str(tmp_path / "m.npz"), *option]) == 2
        err = capsys.readouterr().err
        assert f"--model and {option[0] if option[0] != '--no-biases' else '--biases'} cannot go together" in err
        assert "fitting" not in err
    monkeypatch.setattr(cli, "_available_bytes", lambda: 2**10)  # a machine with 1 KiB free
    assert main(["recommend", str(source), "-", "-k", "3"]) == 2
    err = capsys.readouterr().err
    assert "fitting 3 factor component(s) of 20 factors with user and item biases on 150 x 60 needs about" in err
    assert "more than the 0.0 GiB of memory available: lower -k or --n-factors" in err
    assert "fitted" not in err
    (tmp_path / "three.csv").write_text("1,1,5\n1,2,3\n1,3,4\n2,1,4\n2,2,2\n3,3,1\n")
    monkeypatch.undo()
    assert main(["recommend", str(tmp_path / "three.csv"), "-"]) == 0  # the preset's factors, where the user set none
    assert "the ratings preset's 20 factors, capped at 2 for 3 columns" in capsys.readouterr().err
    assert main(["recommend", str(tmp_path / "three.csv"), "-", "-q", "--n-factors", "3"]) == 2
    assert capsys.readouterr().err.endswith("error: 3 factors need more than 3 columns, but the data have 3: "
                                            "give --n-factors 2 or fewer\n")


def test_every_command_on_a_rating_file_uses_the_ratings_preset(tmp_path, capsys, ratings_matrix):
    from skgmmfill._commands import _imputer_from
    from skgmmfill.cli import _parser

    source = write_movielens(tmp_path / "u.data", ratings_matrix, "tab")
    for command in (["complete", str(source), "out.csv"], ["choose-k", str(source)], ["recommend", str(source), "-"],
                    ["evaluate", str(source)]):
        X = __import__("scipy.sparse", fromlist=["x"]).csr_array(np.array([[1.0, 5.0]]))
        params = _imputer_from(_parser().parse_args(command), X).get_params()
        assert params["covariance_type"] == "factor" and params["biases"] and params["min_value"] == 1
    params = _imputer_from(_parser().parse_args(["complete", "in.csv", "out.csv"])).get_params()
    assert params["covariance_type"] == "auto" and not params["biases"]
    for command in ("complete", "choose-k", "recommend", "predict", "evaluate"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "(default: 'ratings' for a rating file, else 'none')" in " ".join(capsys.readouterr().out.split())


def test_messages_name_the_input_and_what_to_do(tmp_path, capsys):
    (tmp_path / "full.data").write_text("1\t1\t5\n1\t2\t3\n2\t1\t4\n2\t2\t2\n")
    assert main(["complete", str(tmp_path / "full.data"), str(tmp_path / "out.csv"), "-q"]) == 0
    assert (tmp_path / "out.csv").read_text() == "user,item,rating,observed\n"  # nothing missing, nothing imputed
    assert main(["recommend", str(tmp_path / "nothere.data"), "-"]) == 2
    assert capsys.readouterr().err == (f"skgmmfill recommend: error: cannot read '{tmp_path / 'nothere.data'}': "
                                       "No such file or directory\n")
    assert main(["recommend", str(tmp_path / "full.data"), "-", "--model", str(tmp_path / "full.data")]) == 2
    assert "is not a skgmmfill model file (expected an .npz archive)" in capsys.readouterr().err


ITEM_FILES = {
    "u.item": "1|Toy Story (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?Toy|0|0|1\n"
              "7|Caf\u00e9 Society (1995)|01-Jan-1995||http://x|0|1|0\n",
    "movies.dat": "1::Toy Story (1995)::Animation|Children's|Comedy\n7::Caf\u00e9 Society (1995)::Drama\n",
    "movies.csv": 'movieId,title,genres\n1,Toy Story (1995),Animation|Comedy\n7,"Caf\u00e9 Society, The (1995)",Drama\n',
}


@pytest.mark.parametrize("name", sorted(ITEM_FILES))
def test_titles_from_each_movielens_item_file(tmp_path, capsys, ratings_matrix, name):
    source = write_movielens(tmp_path / "u.data", ratings_matrix, "tab")
    items = tmp_path / name
    items.write_bytes(ITEM_FILES[name].encode("latin-1" if name == "u.item" else "utf-8"))
    title = "Caf\u00e9 Society, The (1995)" if name == "movies.csv" else "Caf\u00e9 Society (1995)"
    (tmp_path / "pairs.tsv").write_text("3\t7\n3\t1\n3\t2\n")
    assert main(["predict", str(source), str(tmp_path / "pairs.tsv"), "-", "--items", str(items), "-q"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["user", "item", "title", "prediction"]
    assert [row[2] for row in rows[1:]] == [title, "Toy Story (1995)", ""]  # item 2 has no title in the file
    assert main(["recommend", str(source), "-", "-n", "60", "--items", str(items), "-q"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["user", "item", "title", "score", "rank"]
    assert {row[2] for row in rows[1:] if row[1] == "7"} <= {title}


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_model_for_other_items_or_another_version_is_an_error(tmp_path, capsys, ratings_matrix):
    source = write_movielens(tmp_path / "u.data", ratings_matrix, "tab")
    assert main(["recommend", str(source), "-", "--save", str(tmp_path / "m.npz"), "-q"]) == 0
    capsys.readouterr()
    (tmp_path / "other.data").write_text("1\t9999\t4\t0\n")
    assert main(["recommend", str(tmp_path / "other.data"), "-", "--model", str(tmp_path / "m.npz"), "-q"]) == 2
    assert "1 item(s) the model" in capsys.readouterr().err
    with zipfile.ZipFile(tmp_path / "m.npz") as saved, zipfile.ZipFile(tmp_path / "v2.npz", "w") as newer:
        for member in saved.namelist():
            content = saved.read(member)
            if member == "header.json":
                content = json.dumps({**json.loads(content), "format_version": 2}).encode()
            newer.writestr(member, content)
    assert main(["recommend", str(source), "-", "--model", str(tmp_path / "v2.npz"), "-q"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "is in model format version 2" in error and "refit" in error


def test_a_pickled_model_is_refused_unread(tmp_path, capsys, ratings_matrix):
    """A model file that would create a file when unpickled creates nothing."""
    source = write_movielens(tmp_path / "u.data", ratings_matrix, "tab")
    planted = tmp_path / "planted"
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(PlantingPayload(str(planted))))
    assert main(["recommend", str(source), str(tmp_path / "out.csv"), "--model", str(tmp_path / "evil.pkl"),
                 "-q"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "is a pickle" in error and "refit" in error
    assert not planted.exists() and not (tmp_path / "out.csv").exists()


def evaluation_table(out):
    """``{model: [mean of each column]}`` of ``skgmmfill evaluate``'s table ("-": NaN)."""
    lines = out.splitlines()
    header = next(number for number, line in enumerate(lines) if line.startswith("model"))
    return lines[header].split()[1:], {
        line[:28].strip(): [float(cell.split()[0]) if cell != "-" else np.nan
                            for cell in re.findall(r"\d+\.\d+(?: \+- \d+\.\d+)?|(?<= )-(?= |$)", line[28:])]
        for line in lines[header + 1 : header + 5]
    }


def test_evaluate_prints_the_metrics_beside_the_baselines(tmp_path, capsys, ratings_matrix):
    source = write_movielens(tmp_path / "u.data", ratings_matrix, "tab")
    assert main(["evaluate", str(source), "--folds", "2", "--top", "5", "-q"]) == 0
    out = capsys.readouterr().out
    columns, table = evaluation_table(out)
    assert columns[:5] == ["RMSE", "MAE", "prec@5", "recall@5", "NDCG@5"]
    assert set(table) == {"skgmmfill (ratings)", "user + item biases", "item means", "item popularity"}
    for name, values in table.items():
        assert all(0 <= v <= 1 for v in values[2:5])
        assert 0 < values[1] < values[0] < 2 if name != "item popularity" else np.isnan(values[:2]).all()
    assert table["user + item biases"][0] < table["item means"][0]
    assert "(mean +- standard deviation over the 2 folds)" in out


def test_evaluate_and_recommend_rank_by_hits(tmp_path, capsys, ratings_matrix):
    source = write_movielens(tmp_path / "u.data", ratings_matrix, "tab")
    assert main(["evaluate", str(source), "--top", "5", "--rank-by", "hits", "-q"]) == 0
    columns, table = evaluation_table(capsys.readouterr().out)
    assert set(table) == {"skgmmfill (ratings), by hits", "user + item biases, by hits", "item means, by hits",
                          "item popularity"}
    assert main(["recommend", str(source), str(tmp_path / "hits.csv"), "-n", "4", "--rank-by", "hits", "-q"]) == 0
    assert main(["recommend", str(source), str(tmp_path / "rating.csv"), "-n", "4", "-q"]) == 0
    hits, rating = (read_csv_rows((tmp_path / name).read_text()) for name in ("hits.csv", "rating.csv"))
    assert len(hits) == len(rating) == 150 * 4 and hits != rating
    assert all(np.isnan(ratings_matrix[int(user) - 1, int(item) - 1]) for user, item, _, _ in hits)


def test_output_directory_is_checked_before_fitting(tmp_path, capsys, ratings_matrix):
    source = write_movielens(tmp_path / "u.data", ratings_matrix, "tab")
    assert main(["recommend", str(source), str(tmp_path / "no" / "top.csv")]) == 2
    err = capsys.readouterr().err
    assert "no directory" in err and "fitting" not in err


def test_version():
    result = subprocess.run([sys.executable, "-m", "skgmmfill", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("skgmmfill 0.")


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["recommend", "--help"]])
def test_version_and_help_import_no_numerical_library(argv):
    """What makes start-up fast (the time itself is measured, not tested: README)."""
    code = ("import sys\nfrom skgmmfill.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print(sorted({'numpy', 'scipy', 'sklearn'} & set(sys.modules)), file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True)
    assert result.stderr.splitlines()[-1] == "[]"


def test_the_command_lines_choices_are_the_registrys():
    from skgmmfill import _commands, cli
    from skgmmfill._imputer import FAMILIES

    assert cli.COVARIANCE_TYPES == ("auto", *FAMILIES) and cli.PRESETS == tuple(_commands._PRESETS)


def test_dense_files_are_not_misread(tmp_path):
    # Tabs with empty cells keep their gaps; a header line is skipped; quoted fields are read.
    (tmp_path / "gaps.txt").write_text("1\t\t3\n\t5\t6\n7\t8\t\n")
    X, _ = __import__("skgmmfill._commands", fromlist=["x"]).read_matrix(str(tmp_path / "gaps.txt"))
    assert_array_equal(np.isnan(X), [[False, True, False], [True, False, False], [False, False, True]])
    (tmp_path / "header.csv").write_text('a,"b",c\n1,,3\n"4",5,6\n')
    X, _ = __import__("skgmmfill._commands", fromlist=["x"]).read_matrix(str(tmp_path / "header.csv"))
    assert X.shape == (2, 3) and np.isnan(X[0, 1]) and X[1, 0] == 4.0


def test_complete_reads_movielens_names_as_ratings(tmp_path, ratings_matrix):
    # u.data (tab, a timestamp column, an unknown extension) was refused; a
    # gzipped one failed to decode. Both are rating files now.
    for name in ("u.data", "u.data.gz"):
        source = write_movielens(tmp_path / name, ratings_matrix, "tab")
        assert main(["complete", str(source), str(tmp_path / "out.csv"), "-q"]) == 0
        rows = read_csv_rows((tmp_path / "out.csv").read_text())
        assert len(rows) == int(np.isnan(ratings_matrix).sum()) and all(row[3] == "0" for row in rows)


def test_evaluate_scores_items_without_training_ratings_by_the_offsets(tmp_path, capsys, ratings_matrix):
    X = ratings_matrix.copy()
    X[:, 0] = np.nan
    X[5, 0] = 4.0  # item 1 has a single rating: whenever it is held out, the offsets predict it
    source = write_movielens(tmp_path / "u.data", X, "tab")
    assert main(["evaluate", str(source), "--folds", "2", "-q"]) == 0
    captured = capsys.readouterr()
    assert "every test rating is scored, 0 of them by users and 1 on items without training ratings" in captured.out
    assert "Skipping features" not in captured.err


def split_files(folder, X, held_out, name):
    """``X``'s ratings as a training and a test file of MovieLens' u1.base/u1.test kind."""
    train, test = X.copy(), X.copy()
    train[held_out], test[~held_out] = np.nan, np.nan
    return (write_movielens(folder / f"{name}.base", train, "tab"),
            write_movielens(folder / f"{name}.test", test, "tab"))


def test_evaluate_on_given_train_and_test_files_scores_every_test_rating(tmp_path, capsys, ratings_matrix):
    X = ratings_matrix
    held_out = np.random.RandomState(3).uniform(size=X.shape) < 0.2
    held_out[:, -4:] = True  # four items appear in the test file only
    held_out[-3:, :] = True  # and three users
    held_out &= ~np.isnan(X)
    train, test = split_files(tmp_path, X, held_out, "u1")
    assert main(["evaluate", str(train), "--test", str(test), "-q"]) == 0
    out = capsys.readouterr().out
    new_items = int((held_out[:-3, -4:]).sum())
    new_users = int(held_out[-3:].sum())
    assert f"every test rating is scored, {new_users} of them by users and {new_items + int(held_out[-3:, -4:].sum())}" \
        f" on items without training ratings" in out
    columns, table = evaluation_table(out)
    assert columns[-3:] == ["RMSE", "new", "items"]
    ours, biases = table["skgmmfill (ratings)"], table["user + item biases"]
    assert 0.5 < ours[0] < 1.5 and 0.3 < ours[5] < 2.0  # new items: from the offsets, in the rating range
    assert ours[0] <= 1.05 * biases[0]


def test_evaluate_on_fold_files(tmp_path, capsys, ratings_matrix):
    X = ratings_matrix
    fold = np.random.RandomState(4).randint(3, size=X.shape)
    for k in range(3):
        split_files(tmp_path, X, (fold == k) & ~np.isnan(X), f"u{k + 1}")
    pattern = str(tmp_path / "u%d")
    assert main(["evaluate", "--folds-files", pattern + ".base", pattern + ".test", "--top", "5", "-q"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"3 folds from {pattern}.base and {pattern}.test")
    assert "(mean +- standard deviation over the 3 folds)" in out
    for name, values in evaluation_table(out)[1].items():  # item popularity has no RMSE or MAE
        assert np.isfinite(values[2 if name == "item popularity" else 0 : 5]).all()
    assert main(["evaluate", "--folds-files", str(tmp_path / "v%d.base"), str(tmp_path / "v%d.test")]) == 2
    assert "no fold files" in capsys.readouterr().err


def test_comment_lines_are_skipped_in_matrices_and_pairs(tmp_path, capsys, ratings_matrix):
    (tmp_path / "in.txt").write_text("# a matrix\t(tabbed comment)\n1 2\nnan 4\n# mid-file\n3 nan\n1 1\n")
    assert main(["complete", str(tmp_path / "in.txt"), str(tmp_path / "out.txt"), "-q"]) == 0
    completed = np.loadtxt(tmp_path / "out.txt")
    assert completed.shape == (4, 2) and completed[0].tolist() == [1.0, 2.0]
    source = write_movielens(tmp_path / "u.data", ratings_matrix, "tab")
    (tmp_path / "pairs.tsv").write_text("# user\titem\n3\t7\n")
    assert main(["predict", str(source), str(tmp_path / "pairs.tsv"), "-", "-q"]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("3,7,")


@pytest.mark.skipif(sys.platform != "linux", reason="address-space limits as Linux sets them")
def test_a_decompression_bomb_is_refused_in_one_line_under_a_memory_limit(tmp_path):
    """A 1.5 GB rating file in a ~1.5 MB gzip, read under a 1 GiB address-space limit."""
    import resource

    bomb = tmp_path / "ratings.csv.gz"
    line = b"1,2,3\n" * (1 << 20)  # 6 MiB of one repeated line
    with gzip.open(bomb, "wb", compresslevel=1) as stream:
        for _ in range(256):
            stream.write(line)
    assert bomb.stat().st_size < 2**25

    def limited():
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "skgmmfill", "recommend", str(bomb), str(tmp_path / "top.csv")],
                            preexec_fn=limited, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr[-500:]
    assert result.stderr.count("\n") == 1 and f"'{bomb}'" in result.stderr, result.stderr
    assert not (tmp_path / "top.csv").exists()


def test_an_undetectable_separator_names_the_flag_on_the_command_line(tmp_path, capsys):
    (tmp_path / "odd.data").write_text("a|x|4\nb|y|5\n")
    assert main(["recommend", str(tmp_path / "odd.data"), "-", "-q"]) == 2
    assert capsys.readouterr().err.rstrip().endswith("cannot tell how the fields are separated (tried tab, '::', "
                                                     "comma, semicolon and spaces, needing at least user, item and "
                                                     "rating); give --sep")
