"""Output files as the shell's ``>`` treats them (skgmmfill._output), through the command line."""

import io
import os
import stat
import subprocess
import sys
import threading

import numpy as np
import pytest

from skgmmfill import MaskedGaussianMixtureImputer
from skgmmfill._output import OutputError, check_output, open_output
from skgmmfill.cli import main

RATINGS = "".join(f"{u}\t{i}\t{(u * 7 + i * 3) % 5 + 1}\t0\n" for u in range(1, 31) for i in range(1, 13) if (u + i) % 3)


@pytest.fixture
def ratings(tmp_path):
    path = tmp_path / "u.data"
    path.write_text(RATINGS)
    return path


def recommend(ratings, output, *extra):
    return main(["recommend", str(ratings), str(output), "-n", "2", "-q", "--max-iter", "5", *extra])


def test_a_fifo_is_written_in_place(tmp_path, ratings):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text(encoding="utf-8")))
    reader.start()
    assert recommend(ratings, fifo) == 0
    reader.join(timeout=60)
    assert received and received[0].startswith("user,item,score,rank")
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_a_character_device_stays_a_device(tmp_path, ratings):
    device = tmp_path / "null"
    try:
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # the numbers of /dev/null
        with open(device, "w") as probe:
            probe.write("x")
    except OSError as error:
        pytest.skip(f"cannot make or open a character device here: {error}")
    assert recommend(ratings, device) == 0
    assert stat.S_ISCHR(device.lstat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null", "u.data"]  # no temporary left beside it


def test_an_existing_file_keeps_its_permissions(tmp_path, ratings):
    output = tmp_path / "private.csv"
    output.write_text("old\n")
    output.chmod(0o600)
    assert recommend(ratings, output) == 0
    assert stat.S_IMODE(output.stat().st_mode) == 0o600
    assert output.read_text().startswith("user,item")


def test_a_symlink_is_followed_and_its_target_replaced(tmp_path, ratings):
    (tmp_path / "data").mkdir()
    target = tmp_path / "data" / "top.csv"
    target.write_text("old\n")
    link = tmp_path / "latest.csv"
    link.symlink_to(target)
    assert recommend(ratings, link) == 0
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text().startswith("user,item")


def test_a_directory_or_unwritable_path_is_refused_before_fitting(tmp_path, ratings, capsys, monkeypatch):
    def no_fit(self, X, y=None):
        raise AssertionError("a fit started")

    monkeypatch.setattr(MaskedGaussianMixtureImputer, "fit", no_fit)
    (tmp_path / "out").mkdir()
    assert recommend(ratings, tmp_path / "out") == 2
    assert capsys.readouterr().err.strip().endswith(f"cannot write '{tmp_path / 'out'}': it is a directory")
    assert recommend(ratings, tmp_path / "u.data" / "top.csv") == 2
    assert f"cannot write '{tmp_path / 'u.data' / 'top.csv'}'" in capsys.readouterr().err
    assert recommend(ratings, "-", "--save", str(tmp_path / "out")) == 2
    assert "it is a directory" in capsys.readouterr().err


def test_non_ascii_ids_are_written_as_utf8_under_the_c_locale(tmp_path):
    users, items = ["Zoë", "Łukasz", "茂", "Ann", "Bo", "Cy"], ["Amélie", "Léon", "東京物語", "Heat", "Ran"]
    (tmp_path / "r.csv").write_text("user,item,rating\n" + "".join(
        f"{user},{item},{(k + j) % 5 + 1}\n" for k, user in enumerate(users) for j, item in enumerate(items)
        if (k + j) % 3), encoding="utf-8")
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
    env.pop("PYTHONIOENCODING", None)
    for output in (str(tmp_path / "top.csv"), "-"):
        result = subprocess.run(
            [sys.executable, "-m", "skgmmfill", "recommend", str(tmp_path / "r.csv"), output, "-n", "2", "-q",
             "--max-iter", "3", "--n-factors", "2"],
            env=env, capture_output=True, timeout=120)
        assert result.returncode == 0, result.stderr.decode(errors="replace")
        text = result.stdout if output == "-" else (tmp_path / "top.csv").read_bytes()
        assert "Zoë" in text.decode("utf-8") and "東京物語" in text.decode("utf-8")


def test_an_npz_matrix_goes_to_stdout(tmp_path):
    X = np.array([[1.0, np.nan, 3.0], [2.0, 2.0, np.nan], [1.5, 1.0, 3.5], [0.5, np.nan, 2.5]])
    np.savez(tmp_path / "in.npz", X=X)
    result = subprocess.run([sys.executable, "-m", "skgmmfill", "complete", str(tmp_path / "in.npz"), "-", "-q"],
                            capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    with np.load(io.BytesIO(result.stdout), allow_pickle=False) as arrays:
        completed = arrays["X"]
    assert not np.isnan(completed).any()
    np.testing.assert_array_equal(completed[~np.isnan(X)], X[~np.isnan(X)])


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    output = tmp_path / "kept.txt"
    output.write_text("before\n")
    with pytest.raises(KeyboardInterrupt), open_output(output) as stream:
        stream.write("half of the new")
        raise KeyboardInterrupt
    assert output.read_text() == "before\n"
    assert [p.name for p in tmp_path.iterdir()] == ["kept.txt"]


def test_a_new_file_gets_the_umask_mode(tmp_path):
    umask = os.umask(0o027)
    try:
        with open_output(tmp_path / "new.txt") as stream:
            stream.write("x")
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "new.txt").stat().st_mode) == 0o640


def test_check_output_names_the_path_given(tmp_path):
    with pytest.raises(OutputError, match=r"cannot write 'nowhere/x.csv': no directory"):
        check_output("nowhere/x.csv")
    check_output("-")
    check_output(tmp_path / "fine.csv")
