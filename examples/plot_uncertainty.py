"""
How uncertain is each imputed value?
====================================

``imputation_std`` gives the posterior predictive standard deviation of every
imputed entry: within a component, the conditional variance given the row's
observed entries; across components, the spread of their predictions. On data
drawn from a known mixture with full covariances (30 % of entries hidden), the
entries with a larger predicted standard deviation do have larger errors, and
about 90 % of the hidden values fall within 1.645 standard deviations.
"""

import matplotlib.pyplot as plt
import numpy as np

from skgmmfill import MaskedGaussianMixtureImputer
from skgmmfill.datasets import make_incomplete_mixture

X, X_missing, _ = make_incomplete_mixture(3000, 8, random_state=0)
missing = np.isnan(X_missing)
imputer = MaskedGaussianMixtureImputer(3, covariance_type="full", init_params="kmeans",
                                       random_state=0).fit(X_missing)
error = np.abs(imputer.transform(X_missing) - X)[missing]
std = imputer.imputation_std(X_missing)[missing]

bins = np.quantile(std, np.linspace(0, 1, 11))
which = np.clip(np.digitize(std, bins) - 1, 0, 9)
centres = [std[which == b].mean() for b in range(10)]
rmse = [np.sqrt(np.mean(error[which == b] ** 2)) for b in range(10)]
coverage = np.mean(error <= 1.6448536269514722 * std)

fig, (left, right) = plt.subplots(1, 2, figsize=(9, 4))
left.scatter(std, error, s=2, alpha=0.3)
left.set(xlabel="predicted standard deviation", ylabel="absolute error", title="every hidden entry")
right.plot(centres, rmse, marker="o", label="RMSE in each decile of std")
right.plot([0, max(centres)], [0, max(centres)], color="grey", linestyle=":", label="RMSE = std")
right.set(xlabel="predicted standard deviation", ylabel="RMSE",
          title=f"calibration (90 % interval covers {coverage:.1%})")
right.legend()
fig.tight_layout()
plt.show()
