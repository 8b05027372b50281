"""
The course experiment: log-likelihood per EM iteration
======================================================

The course fits mixtures of K spherical Gaussians to the 1200 x 1200 Netflix
rating matrix by EM, counting only each user's rated movies, for seeds 0 to 4.
Here is the log-likelihood after every E-step of each K=12 run: EM never lowers
it, and different starting rows end in different local optima; seed 1 is best
(-1390234.4223, the course's figure).
"""

import matplotlib.pyplot as plt

from skgmmfill import PRESET_COURSE, MaskedGaussianMixtureImputer
from skgmmfill.datasets import load_netflix

X, X_complete = load_netflix(missing_values=0)  # 0 marks an unrated movie

fig, ax = plt.subplots(figsize=(7, 4.5))
for seed in range(5):
    imputer = MaskedGaussianMixtureImputer(12, **PRESET_COURSE, missing_values=0, random_state=seed)
    imputer.fit(X)
    log_likelihood = [value * X.shape[0] for value in imputer.lower_bounds_]
    ax.plot(range(1, len(log_likelihood) + 1), log_likelihood, marker=".",
            label=f"seed {seed}: {log_likelihood[-1]:,.1f} ({imputer.n_iter_} iterations)")
ax.set_xlabel("EM iteration (E-step)")
ax.set_ylabel("log-likelihood of the observed ratings")
ax.set_title("Netflix, K = 12 spherical components")
ax.set_ylim(-1.60e6, -1.38e6)
ax.legend(loc="lower right", fontsize="small")
fig.tight_layout()
plt.show()
