"""
Choosing the number of components: BIC against cross-validated RMSE
===================================================================

Two ways to choose K on the Netflix matrix. BIC trades the log-likelihood of
the observed ratings against the number of parameters, ``K d + K + (K - 1)``;
the masked-RMSE scorer hides a fifth of each held-out user's ratings, imputes
them, and measures the error, so it asks directly how well missing ratings are
predicted. With 1200 means per component, BIC's penalty is heavy, and the two
criteria need not agree.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import KFold, cross_val_score

from skgmmfill import PRESET_COURSE, MaskedGaussianMixtureImputer
from skgmmfill.datasets import load_netflix
from skgmmfill.metrics import make_masked_rmse_scorer

X, _ = load_netflix()  # NaN marks an unrated movie
candidates = [1, 2, 4, 8, 12]
bic, cv_rmse = [], []
for n_components in candidates:
    imputer = MaskedGaussianMixtureImputer(n_components, **PRESET_COURSE, random_state=1)
    bic.append(imputer.fit(X).bic(X))
    scores = cross_val_score(imputer, X, scoring=make_masked_rmse_scorer(),
                             cv=KFold(3, shuffle=True, random_state=0))
    cv_rmse.append(-scores.mean())

fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.8))
left.plot(candidates, bic, marker="o")
left.set(xlabel="K", ylabel="BIC (lower is better)", title="BIC on all users")
right.plot(candidates, cv_rmse, marker="o", color="tab:orange")
right.set(xlabel="K", ylabel="RMSE on hidden ratings", title="3-fold masked-RMSE CV")
for axis, values in ((left, bic), (right, cv_rmse)):
    best = candidates[int(np.argmin(values))]
    axis.axvline(best, color="grey", linestyle=":")
fig.tight_layout()
plt.show()
