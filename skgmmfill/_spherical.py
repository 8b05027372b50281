"""Spherical covariance family: component ``j`` is ``N(mu_j, sigma_j^2 I)``.

This is the model of the original course. With ``D_uj`` the squared distance
between row ``u`` and ``mu_j`` over the row's observed columns ``C_u``,

``log N(x_{u,C_u} | mu_{j,C_u}, sigma_j^2 I) = -|C_u|/2 log(2 pi sigma_j^2) - D_uj / (2 sigma_j^2)``,

so the dimension in the normaliser is the row's own number of observed
entries. Everything is computed from matrix products with the observed
values and the observation mask (see :class:`~skgmmfill._observed.ObservedEntries`);
no ``n x K x d`` array is ever formed.

``covariances`` is the vector of variances ``sigma_j^2``, shape ``(n_components,)``.
"""

from dataclasses import dataclass

import numpy as np

from ._family import Mixture, estimate_means, mixture_weights
from ._independent import IndependentFeatures


@dataclass(frozen=True)
class SphericalCovariance(IndependentFeatures):
    """One variance per component, shared by all features."""

    name = "spherical"
    per_feature_floor = False  # one variance for all features: floored relative to the pooled variance

    def n_parameters(self, n_components, n_features):
        return n_components * n_features + n_components

    def covariances_shape(self, n_components, n_features):
        return (n_components,)

    def feature_variances(self, covariances, n_features):
        return np.repeat(covariances[:, np.newaxis], n_features, axis=1)

    def _squared_sums(self, observed, resp):
        return resp.T @ observed.squared_norms

    def initial_covariances(self, moments, means):
        """The mean over *all* ``n*d`` entries of ``(values - mu_j)**2``, floored.

        Missing entries count as 0 on both sides (the course convention), which
        is ``(sum_u ||values_u||^2 - 2 mu_j . sum_u values_u + n ||mu_j||^2) / (n d)``.
        """
        n_samples, n_features = moments.n_samples, means.shape[1]
        total = (
            moments.squared_sums.sum()
            - 2.0 * (means @ moments.sums)
            + n_samples * np.einsum("jl,jl->j", means, means)
        )
        return np.maximum(total / (n_samples * n_features), self.min_variance).astype(means.dtype)

    def log_prob(self, observed, mixture):
        variances = mixture.covariances
        distances = squared_distances(observed, mixture.means)
        log_norm = observed.n_observed[:, np.newaxis] * np.log(2.0 * np.pi * variances)
        distances /= variances
        distances += log_norm
        distances *= -0.5
        return distances

    def update(self, statistics, mixture, prior=None):
        """Means by :func:`~skgmmfill._family.estimate_means`; then the variances.

        The variance is the responsibility-weighted mean squared residual per
        observed entry under the *new* means,

        ``sigma_j^2 = (sum_u r_uj D_uj + kappa ||mu_j - m||^2) / (sum_u r_uj |C_u| + d [prior])``,

        from ``sum_u r_uj D_uj = sum_u r_uj ||x_{u,C_u}||^2 - sum_l (2 mu_jl S_jl - mu_jl^2 W_jl)``.
        It is floored at ``min_variance``; a component with no weight at all
        keeps its previous variance.
        """
        value_sums, count_sums = statistics.value_sums, statistics.count_sums
        means = estimate_means(value_sums, count_sums, mixture.means, prior)
        weighted_residuals = (
            statistics.squared_sums
            - 2.0 * np.einsum("jl,jl->j", means, value_sums)
            + np.einsum("jl,jl,jl->j", means, means, count_sums)
        )
        weighted_counts = count_sums.sum(axis=1)
        if prior is not None:
            kappa, prior_means = prior
            weighted_residuals += kappa * ((means - prior_means) ** 2).sum(axis=1)
            weighted_counts += means.shape[1]
        variances = np.divide(
            weighted_residuals, weighted_counts, out=mixture.covariances.copy(), where=weighted_counts > 0
        )
        return Mixture(mixture_weights(statistics), means, np.maximum(variances, self.min_variance))

    def log_mean_prior(self, mixture, prior):
        kappa, prior_means = prior
        means, variances = mixture.means, mixture.covariances
        squared = ((means - prior_means) ** 2).sum(axis=1)
        return float(
            -0.5 * (means.shape[1] * np.log(2.0 * np.pi * variances / kappa) + kappa * squared / variances).sum()
        )


def squared_distances(observed, means):
    """``D_uj = sum_{l in C_u} (x_ul - mu_jl)^2`` by two matrix products.

    ``D = ||x_{u,C_u}||^2 - 2 values @ mu.T + mask @ (mu**2).T``, clipped at 0
    against rounding.
    """
    distances = observed.row_products(-2.0 * means, means**2)
    distances += observed.squared_norms[:, np.newaxis]
    return np.maximum(distances, 0.0, out=distances)
