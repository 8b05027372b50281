"""Every gallery example runs and draws its figure (the docs build renders them)."""

import runpy
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("plot_*.py"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.stem)
def test_example_draws_a_figure(path, monkeypatch):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = []
    monkeypatch.setattr(plt, "show", lambda: shown.append(plt.get_fignums()))
    plt.close("all")
    runpy.run_path(str(path), run_name="__main__")
    assert shown and shown[-1], f"{path.name} showed no figure"
    figure = plt.figure(shown[-1][-1])
    assert figure.axes and all(axis.has_data() for axis in figure.axes if axis.get_label() != "<colorbar>")
    plt.close("all")


def test_there_are_eight_examples():
    assert len(EXAMPLES) == 8
