"""Diagonal covariance family: component ``j`` is ``N(mu_j, diag(v_j1, ..., v_jd))``.

With the precisions ``p_jl = 1 / v_jl``, the log-density of row ``u``'s
observed entries is

``-1/2 (|C_u| log 2 pi + sum_{l in C_u} log v_jl + sum_{l in C_u} p_jl (x_ul - mu_jl)^2)``,

and expanding the square gives three matrix products with the observed
squared values, values and mask. ``covariances`` is the ``(n_components,
n_features)`` array of variances ``v_jl``.
"""

from dataclasses import dataclass

import numpy as np

from ._family import Mixture, estimate_means, mixture_weights
from ._independent import IndependentFeatures


@dataclass(frozen=True)
class DiagCovariance(IndependentFeatures):
    """One variance per component and feature."""

    name = "diag"

    def n_parameters(self, n_components, n_features):
        return 2 * n_components * n_features

    def covariances_shape(self, n_components, n_features):
        return (n_components, n_features)

    def feature_variances(self, covariances, n_features):
        return covariances

    def initial_covariances(self, moments, means):
        """``v_jl``: the mean over all rows of ``(values_ul - mu_jl)**2``, floored.

        Missing entries count as 0 on both sides: the spherical rule taken
        feature by feature.
        """
        n_samples = moments.n_samples
        variances = (moments.squared_sums - 2.0 * means * moments.sums + n_samples * means**2) / n_samples
        return np.maximum(variances, self.min_variance).astype(means.dtype)

    def log_prob(self, observed, mixture):
        means, variances = mixture.means, mixture.covariances
        precisions = 1.0 / variances
        products = observed.row_products(
            -2.0 * means * precisions,
            means**2 * precisions + np.log(variances),
            squared_coefs=precisions,
        )
        products += observed.n_observed[:, np.newaxis] * np.log(2.0 * np.pi)
        products *= -0.5
        return products

    def update(self, statistics, mixture, prior=None):
        """Means by :func:`~skgmmfill._family.estimate_means` (MAP under ``prior``,
        ``mu_jl ~ N(m_l, v_jl / kappa)``); the variance of feature ``l`` under the
        new means is

        ``v_jl = (Q_jl - 2 mu_jl S_jl + mu_jl^2 W_jl [+ kappa (mu_jl - m_l)^2]) / (W_jl [+ 1])``,

        floored at ``min_variance``; where the denominator is 0 the previous
        ``v_jl`` is kept.
        """
        value_sums, count_sums = statistics.value_sums, statistics.count_sums
        means = estimate_means(value_sums, count_sums, mixture.means, prior)
        residuals = statistics.squared_sums - 2.0 * means * value_sums
        residuals += means**2 * count_sums
        if prior is not None:
            kappa, prior_means = prior
            residuals += kappa * (means - prior_means) ** 2
            count_sums = count_sums + 1.0
        variances = np.divide(residuals, count_sums, out=mixture.covariances.copy(), where=count_sums > 0)
        return Mixture(mixture_weights(statistics), means, np.maximum(variances, self.min_variance))

    def log_mean_prior(self, mixture, prior):
        kappa, prior_means = prior
        means, variances = mixture.means, mixture.covariances
        return float(
            -0.5 * (np.log(2.0 * np.pi * variances / kappa) + kappa * (means - prior_means) ** 2 / variances).sum()
        )
