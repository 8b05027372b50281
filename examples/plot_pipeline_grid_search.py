"""
A Pipeline and GridSearchCV on a table with values removed at random
====================================================================

The diabetes table shipped with scikit-learn (442 patients, 10 measurements),
with 30 % of its values removed at random. A ``StandardScaler`` (which passes
NaN through) feeds the imputer; ``GridSearchCV`` chooses the covariance type and
the number of components with the masked-RMSE scorer, which reports errors in
the units of the table. The tuned imputer is compared with scikit-learn's on
the removed values.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skgmmfill import MaskedGaussianMixtureImputer
from skgmmfill.metrics import make_masked_rmse_scorer, rmse

X = load_diabetes().data
rng = np.random.RandomState(0)
missing = rng.uniform(size=X.shape) < 0.3
X_missing = np.where(missing, np.nan, X)

pipeline = make_pipeline(StandardScaler(),
                         MaskedGaussianMixtureImputer(init_params="kmeans", random_state=0))
search = GridSearchCV(
    pipeline,
    {"maskedgaussianmixtureimputer__covariance_type": ["diag", "full"],
     "maskedgaussianmixtureimputer__n_components": [1, 2]},
    scoring=make_masked_rmse_scorer(),
    cv=3,
).fit(X_missing)
print("chosen:", search.best_params_)

scaler = search.best_estimator_[0]
results = {
    "mean": SimpleImputer().fit_transform(X_missing),
    "KNN": KNNImputer().fit_transform(X_missing),
    "GMM (tuned)": scaler.inverse_transform(search.best_estimator_.transform(X_missing)),
}
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    results["iterative"] = IterativeImputer(random_state=0).fit_transform(X_missing)
scores = {name: rmse(X, filled, mask=missing) for name, filled in results.items()}

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.barh(list(scores), list(scores.values()), color=["grey", "grey", "tab:blue", "grey"])
ax.set(xlabel="RMSE on the removed values", title="diabetes table, 30 % removed")
for y, value in enumerate(scores.values()):
    ax.text(value, y, f" {value:.4f}", va="center")
ax.set_xlim(0, max(scores.values()) * 1.25)
fig.tight_layout()
plt.show()
