import subprocess
import sys

import pytest

from reference_figures import NETFLIX_BEST_LL
from skgmmfill.cli import course_experiment, main


def test_course_experiment_prints_the_reference_figures(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert f"{NETFLIX_BEST_LL[12]:.4f}" in out and f"{NETFLIX_BEST_LL[1]:.4f}" in out
    assert "0.480491" in out and "0.963949" in out
    assert "wall time" in out


def test_course_experiment_results(tmp_path):
    with open(tmp_path / "out.txt", "w") as out:
        results = course_experiment([2], [0, 1], out=out)
    assert set(results) == {2} and len(results[2]["log_likelihoods"]) == 2
    assert 0.4 < results[2]["rmse_all"] < 0.6


def test_bad_arguments_exit_with_code_2():
    with pytest.raises(SystemExit) as error:
        main(["--n-components", "0"])
    assert error.value.code == 2


def test_module_entry_point_help():
    result = subprocess.run(
        [sys.executable, "-m", "skgmmfill", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0 and "course experiment" in result.stdout
