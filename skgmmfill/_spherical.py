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

import numpy as np

from . import _independent
from ._em import estimate_means


def n_parameters(n_components, n_features):
    """Free parameters of the means and variances (the weights are counted apart)."""
    return n_components * n_features + n_components


def initial_covariances(observed, means, min_variance):
    """Initial variances: the mean over *all* ``n*d`` entries of ``(values - mu_j)**2``.

    Missing entries count as 0 on both sides (the course convention), which is
    ``(sum_u ||values_u||^2 - 2 mu_j . sum_u values_u + n ||mu_j||^2) / (n d)``.
    The result is floored at ``min_variance``.
    """
    n_samples, n_features = observed.n_samples, observed.n_features
    total = (
        observed.squared_norms.sum()
        - 2.0 * (means @ observed.column_sums())
        + n_samples * np.einsum("jl,jl->j", means, means)
    )
    return np.maximum(total / (n_samples * n_features), min_variance).astype(means.dtype)


def squared_distances(observed, means):
    """``D_uj = sum_{l in C_u} (x_ul - mu_jl)^2`` by two matrix products.

    ``D = ||x_{u,C_u}||^2 - 2 values @ mu.T + mask @ (mu**2).T``, clipped at 0
    against rounding.
    """
    distances = observed.row_products(-2.0 * means, means**2)
    distances += observed.squared_norms[:, np.newaxis]
    return np.maximum(distances, 0.0, out=distances)


def log_prob(observed, means, covariances):
    """Log-density of each row's observed entries under each component, ``(n, K)``."""
    distances = squared_distances(observed, means)
    log_norm = observed.n_observed[:, np.newaxis] * np.log(2.0 * np.pi * covariances)
    distances /= covariances
    distances += log_norm
    distances *= -0.5
    return distances


def m_step(observed, resp, means, covariances, min_variance, prior=None):
    """New means and variances from the responsibilities.

    Without a prior, means follow :func:`~skgmmfill._em.estimate_means`. With
    ``prior = (kappa, m)``, the conjugate prior ``mu_j ~ N(m, sigma_j^2 I / kappa)``
    gives the MAP means ``mu_jl = (S_jl + kappa m_l) / (W_jl + kappa)``. The
    variance is the responsibility-weighted mean squared residual per observed
    entry under the *new* means,

    ``sigma_j^2 = (sum_u r_uj D_uj + kappa ||mu_j - m||^2) / (sum_u r_uj |C_u| + d [prior])``,

    computed without another pass over the data from
    ``sum_u r_uj D_uj = sum_u r_uj ||x_{u,C_u}||^2 - 2 mu_j . S_j + (mu_j**2) . W_j``.
    It is floored at ``min_variance``; a component with no weight at all keeps
    its previous variance.
    """
    value_sums, count_sums = observed.weighted_sums(resp)
    means = estimate_means(value_sums, count_sums, means, prior)
    weighted_residuals = (
        resp.T @ observed.squared_norms
        - 2.0 * np.einsum("jl,jl->j", means, value_sums)
        + np.einsum("jl,jl,jl->j", means, means, count_sums)
    )
    weighted_counts = count_sums.sum(axis=1)
    if prior is not None:
        kappa, prior_means = prior
        weighted_residuals += kappa * ((means - prior_means) ** 2).sum(axis=1)
        weighted_counts += means.shape[1]
    variances = np.divide(
        weighted_residuals,
        weighted_counts,
        out=covariances.copy(),
        where=weighted_counts > 0,
    )
    return means, np.maximum(variances, min_variance)


def log_mean_prior(means, covariances, prior):
    """``sum_j log N(mu_j | m, sigma_j^2 I / kappa)`` for ``prior = (kappa, m)``."""
    kappa, prior_means = prior
    n_features = means.shape[1]
    squared = ((means - prior_means) ** 2).sum(axis=1)
    return float(
        -0.5 * (n_features * np.log(2.0 * np.pi * covariances / kappa) + kappa * squared / covariances).sum()
    )


def feature_variances(covariances, n_features):
    """The variance of every feature under every component, ``(K, d)``."""
    return np.repeat(covariances[:, np.newaxis], n_features, axis=1)


impute, impute_entries, predictive_variance, sample = _independent.predictions(feature_variances)
