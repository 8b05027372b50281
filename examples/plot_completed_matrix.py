"""
The rating matrix before and after completion
=============================================

Left, the incomplete Netflix matrix (white: unrated); right, the same matrix
filled by the best K=12 mixture of the course. Users are sorted by their most
likely component, so the blocks of similar taste show, and movies by their
mean rating.
"""

import matplotlib.pyplot as plt
import numpy as np

from skgmmfill import PRESET_COURSE, MaskedGaussianMixtureImputer
from skgmmfill.datasets import load_netflix

X, _ = load_netflix()
imputer = MaskedGaussianMixtureImputer(12, **PRESET_COURSE, random_state=1).fit(X)
X_filled = imputer.transform(X)

users = np.lexsort((np.nanmean(X, axis=1), imputer.predict(X)))
movies = np.argsort(np.nanmean(X, axis=0))
fig, axes = plt.subplots(1, 2, figsize=(10, 4.8), sharey=True)
for axis, matrix, title in ((axes[0], X, "observed ratings"), (axes[1], X_filled, "completed")):
    image = axis.imshow(matrix[np.ix_(users, movies)], aspect="auto", cmap="viridis",
                        vmin=1, vmax=5, interpolation="nearest")
    axis.set(title=title, xlabel="movies (by mean rating)")
axes[0].set_ylabel("users (by most likely component)")
fig.colorbar(image, ax=axes, label="rating", shrink=0.8)
plt.show()
