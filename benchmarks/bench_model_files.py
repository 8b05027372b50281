"""Saving and loading a rating model: skgmmfill's data-only format against pickle and skops.io.

A ``PRESET_RATINGS`` model (biases, one factor component, at most 20 factors, the pattern prior) fitted on a
synthetic CSR of prize width (17,770 items, 3,000 users at 1 % density, three
EM iterations: the parameters' size, not their quality, matters here) is
saved and loaded with :func:`skgmmfill.save_model` / :func:`skgmmfill.load_model`,
with :mod:`pickle` (the baseline, timed in the same process) and, if it is
installed, with skops.io (trusting the four types it asks for). Each time is
the best of seven; the table gives the times, their ratio to pickle's and the
file sizes.

Run: ``python benchmarks/bench_model_files.py`` (``pip install skops`` for
its row).
"""

import os
import pickle
import sys
import tempfile
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

from skgmmfill import PRESET_RATINGS, MaskedGaussianMixtureImputer, load_model, save_model

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_em_iteration import best_time  # noqa: E402

REPEAT = 7


def rating_model():
    rng = np.random.RandomState(0)
    X = sp.random_array((3000, 17770), density=0.01, random_state=rng, format="csr")
    X.data = np.ceil(5.0 * X.data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return MaskedGaussianMixtureImputer(**{**PRESET_RATINGS, "max_iter": 3}, random_state=0).fit(X)


def pickle_pair(model, path):
    def save():
        with open(path, "wb") as stream:
            pickle.dump(model, stream)

    def load():
        with open(path, "rb") as stream:
            return pickle.load(stream)

    return save, load


def skops_pair(model, path):
    try:
        import skops.io as sio
    except ImportError:
        return None
    sio.dump(model, path)
    trusted = sio.get_untrusted_types(file=path)
    return (lambda: sio.dump(model, path)), (lambda: sio.load(path, trusted=trusted))


def main():
    model = rating_model()
    directory = tempfile.mkdtemp()
    paths = {name: os.path.join(directory, name) for name in ("model.pkl", "model.npz", "model.skops")}
    formats = {
        "pickle (runs code on load)": (*pickle_pair(model, paths["model.pkl"]), paths["model.pkl"]),
        "skgmmfill save/load_model": (lambda: save_model(model, paths["model.npz"]),
                                      lambda: load_model(paths["model.npz"]), paths["model.npz"]),
    }
    skops = skops_pair(model, paths["model.skops"])
    if skops is not None:
        formats["skops.io"] = (*skops, paths["model.skops"])
    times = {name: (best_time(save, REPEAT), best_time(load, REPEAT)) for name, (save, load, _) in formats.items()}
    base_save, base_load = times["pickle (runs code on load)"]
    print(f"{'format':<28} {'save ms':>8} {'ratio':>6} {'load ms':>8} {'ratio':>6} {'MB':>6}")
    for name, (save, load) in times.items():
        size = os.path.getsize(formats[name][2]) / 1e6
        print(f"{name:<28} {1e3 * save:>8.1f} {save / base_save:>6.2f} {1e3 * load:>8.1f} {load / base_load:>6.2f} "
              f"{size:>6.2f}")
    if skops is None:
        print("(skops.io not installed: pip install skops for its row)")


if __name__ == "__main__":
    main()
