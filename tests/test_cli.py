import gzip
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_array_equal

from reference_figures import NETFLIX_BEST_LL, load_course_solutions
from skgmmfill import PRESET_COURSE, MaskedGaussianMixtureImputer
from skgmmfill.cli import course_experiment, main

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


def test_complete_triplets(tmp_path):
    (tmp_path / "r.csv").write_text("user,item,rating\nann,m1,5\nann,m2,3\nbob,m1,4\ncyd,m2,1\n")
    assert main(["complete", str(tmp_path / "r.csv"), str(tmp_path / "o.csv"), "--triplets",
                 "--min-value", "1", "--max-value", "5", "-q"]) == 0
    lines = (tmp_path / "o.csv").read_text().splitlines()
    assert lines[0] == "user,item,rating" and len(lines) == 1 + 3 * 2
    ratings = {tuple(line.split(",")[:2]): float(line.split(",")[2]) for line in lines[1:]}
    assert ratings["ann", "m1"] == 5.0 and ratings["cyd", "m2"] == 1.0
    assert 1.0 <= ratings["bob", "m2"] <= 5.0


@pytest.mark.parametrize(
    "name, content, extra, message",
    [
        ("bad.txt", "1 2 x\n", [], "line 1: 'x' is not a number"),
        ("ragged.csv", "1,2,3\n4,5\n", [], "line 2: 2 values, but the first row has 3"),
        ("empty.txt", "\n", [], "is empty"),
        ("bad.doc", "1 2\n", [], "unknown file type"),
        ("t.csv", "a,b,c,d\n", ["--triplets"], "no user,item,rating lines"),
        ("t.csv", "a,b,3\nc,d\n", ["--triplets"], "line 2: expected user,item,rating"),
        ("dup.csv", "a,x,1\na,x,2\n", ["--triplets"], "more than once"),
        ("few.txt", "1 2\n3 nan\n", ["-k", "3"], "n_samples >= n_components"),
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


@pytest.mark.parametrize("command", [[], ["course"], ["complete"], ["choose-k"]])
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
    (["--preset", "ratings"], {"covariance_type": "factor", "n_factors": 10}),
    (["--preset", "ratings", "--n-factors", "3"], {"covariance_type": "factor", "n_factors": 3}),
    (["--preset", "ratings", "--covariance-type", "diag"], {"covariance_type": "diag", "n_factors": None,
                                                            "loading_precision_prior": None, "biases": True}),
])
def test_preset_options_for_another_family_are_dropped(tmp_path, options, expected):
    rng = np.random.RandomState(0)
    X = rng.randint(1, 6, size=(40, 12)).astype(float)
    X[rng.uniform(size=X.shape) < 0.4] = np.nan
    text = "\n".join(",".join("" if np.isnan(v) else str(int(v)) for v in row) for row in X)
    (tmp_path / "in.csv").write_text(text + "\n")
    assert main(["complete", str(tmp_path / "in.csv"), str(tmp_path / "out.csv"), *options, "-q"]) == 0
    from skgmmfill.cli import _imputer_from, _parser
    params = _imputer_from(_parser().parse_args(["complete", "in.csv", "out.csv", *options])).get_params()
    assert {name: params[name] for name in expected} == expected
