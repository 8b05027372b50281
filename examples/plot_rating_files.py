"""
From rating files to evaluated, titled recommendations
======================================================

A MovieLens-like catalogue is generated here (so that the example runs
offline): user activity and film popularity are long-tailed, many films are
rated once or twice, ratings come from a few tastes, and a title file in
MovieLens' ``u.item`` format names the films. The files then go through the
command line a user would type: ``evaluate`` on a given train/test split
(films rated only in the test file included: they are predicted from the
offsets), ``recommend`` with ``--items`` for titles. Last, in Python, the
posterior standard deviation of each test prediction
(:meth:`~skgmmfill.MaskedGaussianMixtureImputer.imputation_std`) is set
against the error it turned out to have.
"""

import contextlib
import io
import os
import tempfile

import matplotlib.pyplot as plt
import numpy as np

from skgmmfill import PRESET_RATINGS, MaskedGaussianMixtureImputer
from skgmmfill.cli import main
from skgmmfill.datasets import read_ratings

rng = np.random.default_rng(0)
n_users, n_films, n_tastes = 400, 300, 4
popularity = rng.zipf(1.6, n_films).astype(float)  # a long tail: most films are rarely rated
activity = rng.lognormal(2.5, 0.8, n_users)
taste = rng.integers(n_tastes, size=n_users)
film_means = rng.normal(3.4, 0.6, n_films) + rng.normal(0, 0.7, (n_tastes, n_films))
lines = {"train": [], "test": []}
for user in range(n_users):
    count = min(n_films, max(3, int(activity[user])))
    films = rng.choice(n_films, size=count, replace=False, p=popularity / popularity.sum())
    for film in films:
        rating = int(np.clip(np.rint(film_means[taste[user], film] + rng.normal(0, 0.6)), 1, 5))
        split = "test" if rng.random() < 0.2 or film >= n_films - 10 else "train"  # 10 films in test only
        lines[split].append(f"{user + 1}\t{film + 1}\t{rating}\t{880000000 + len(lines[split])}\n")

folder = tempfile.mkdtemp()
for split in lines:
    with open(os.path.join(folder, f"u1.{'base' if split == 'train' else 'test'}"), "w") as f:
        f.writelines(lines[split])
with open(os.path.join(folder, "u.item"), "w", encoding="latin-1") as f:
    for film in range(n_films):
        f.write(f"{film + 1}|Film {film + 1} ({1960 + film % 60})|01-Jan-1995||http://example.org|0|1|0\n")
base, test, items = (os.path.join(folder, name) for name in ("u1.base", "u1.test", "u.item"))


def run(*argv):
    """``skgmmfill *argv``, its standard output returned."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(list(argv)) == 0
    return out.getvalue()


# %%
# Evaluate on the given split
# ---------------------------
# The preset against the user + item bias model and item means; every test
# rating is scored, those of films without training ratings included (the
# preset and the bias model predict them from the user's and the global
# offsets; item means, having none, put them at the lowest rating).
print(run("evaluate", base, "--test", test, "-q"))

# %%
# Recommend, with titles
# ----------------------
print("".join(run("recommend", base, "-", "-n", "3", "--items", items, "-q").splitlines(True)[:7]))

# %%
# How sure is each prediction?
# ----------------------------
# The training ratings as a dense matrix (NaN unrated) of the users and films
# of both files; the test ratings are hidden entries.
R_train, users, films = read_ratings(base)
R_test, test_users, test_films = read_ratings(test)
user_index = {u: i for i, u in enumerate(users)}
film_index = {f: i for i, f in enumerate(films)}
for f in test_films:
    film_index.setdefault(f, len(film_index))
X = np.full((len(users), len(film_index)), np.nan)
X[:, : len(films)] = np.where(R_train.toarray() > 0, R_train.toarray(), np.nan)
rows, cols, truth = [], [], []
for r, c in zip(*R_test.nonzero()):
    if test_users[r] in user_index:
        rows.append(user_index[test_users[r]])
        cols.append(film_index[test_films[c]])
        truth.append(R_test[r, c])
imputer = MaskedGaussianMixtureImputer(**PRESET_RATINGS, min_value=1, max_value=5, keep_empty_features=True,
                                       random_state=0).fit(X)
predicted = imputer.transform(X)[rows, cols]
std = imputer.imputation_std(X)[rows, cols]
error = np.abs(predicted - np.array(truth))
deciles = np.clip(np.digitize(std, np.quantile(std, np.linspace(0, 1, 6))) - 1, 0, 4)

fig, ax = plt.subplots(figsize=(6, 4))
ax.plot([std[deciles == k].mean() for k in range(5)],
        [np.sqrt(np.mean(error[deciles == k] ** 2)) for k in range(5)], marker="o", label="test RMSE")
ax.plot([std.min(), std.max()], [std.min(), std.max()], color="grey", linestyle=":", label="RMSE = std")
ax.set(xlabel="posterior standard deviation (quintiles)", ylabel="RMSE of the test ratings",
       title="Test RMSE by quintile of the predicted std")
ax.legend()
fig.tight_layout()
plt.show()
