"""Diagonal covariance family: component ``j`` is ``N(mu_j, diag(v_j1, ..., v_jd))``.

With the precisions ``p_jl = 1 / v_jl``, the log-density of row ``u``'s
observed entries is

``-1/2 (|C_u| log 2 pi + sum_{l in C_u} log v_jl + sum_{l in C_u} p_jl (x_ul - mu_jl)^2)``,

and expanding the square gives three matrix products with the observed
squared values, values and mask. ``covariances`` is the ``(n_components,
n_features)`` array of variances ``v_jl``.
"""

import numpy as np

from . import _independent
from ._em import estimate_means


def n_parameters(n_components, n_features):
    """Free parameters of the means and variances (the weights are counted apart)."""
    return 2 * n_components * n_features


def initial_covariances(observed, means, min_variance):
    """Initial variances: ``v_jl`` is the mean over all rows of ``(values_ul - mu_jl)**2``.

    Missing entries count as 0 on both sides, as in the spherical rule, which
    is that rule taken feature by feature. Floored at ``min_variance``.
    """
    n_samples = observed.n_samples
    variances = (
        observed.column_sums(squared=True)
        - 2.0 * means * observed.column_sums()
        + n_samples * means**2
    ) / n_samples
    return np.maximum(variances, min_variance).astype(means.dtype)


def log_prob(observed, means, covariances):
    """Log-density of each row's observed entries under each component, ``(n, K)``."""
    precisions = 1.0 / covariances
    products = observed.row_products(
        -2.0 * means * precisions,
        means**2 * precisions + np.log(covariances),
        squared_coefs=precisions,
    )
    products += observed.n_observed[:, np.newaxis] * np.log(2.0 * np.pi)
    products *= -0.5
    return products


def m_step(observed, resp, means, covariances, min_variance, prior=None):
    """New means and variances from the responsibilities.

    Means follow :func:`~skgmmfill._em.estimate_means` (MAP means under
    ``prior = (kappa, m)``, the conjugate prior ``mu_jl ~ N(m_l, v_jl / kappa)``).
    With ``Q`` the weighted sums of squared values, the variance of feature
    ``l`` under the new means is

    ``v_jl = (Q_jl - 2 mu_jl S_jl + mu_jl^2 W_jl [+ kappa (mu_jl - m_l)^2]) / (W_jl [+ 1])``,

    floored at ``min_variance``; where the denominator is 0 the previous
    ``v_jl`` is kept.
    """
    value_sums, count_sums = observed.weighted_sums(resp)
    means = estimate_means(value_sums, count_sums, means, prior)
    residuals = observed.weighted_squared_sums(resp) - 2.0 * means * value_sums
    residuals += means**2 * count_sums
    if prior is not None:
        kappa, prior_means = prior
        residuals += kappa * (means - prior_means) ** 2
        count_sums = count_sums + 1.0
    variances = np.divide(residuals, count_sums, out=covariances.copy(), where=count_sums > 0)
    return means, np.maximum(variances, min_variance)


def log_mean_prior(means, covariances, prior):
    """``sum_jl log N(mu_jl | m_l, v_jl / kappa)`` for ``prior = (kappa, m)``."""
    kappa, prior_means = prior
    return float(
        -0.5 * (np.log(2.0 * np.pi * covariances / kappa) + kappa * (means - prior_means) ** 2 / covariances).sum()
    )


def feature_variances(covariances, n_features):
    """The variance of every feature under every component, ``(K, d)``."""
    return covariances


impute, impute_entries, predictive_variance, sample = _independent.predictions(feature_variances)
