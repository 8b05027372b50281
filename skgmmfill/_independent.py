"""Predictions shared by the families whose components are independent across
features (spherical and diag): given a component, the missing coordinates of a
row are independent of its observed ones, so the conditional distribution of
``x_ul`` under component ``j`` is just ``N(mu_jl, v_jl)``.

Each function takes ``feature_variances``, the ``(n_components, n_features)``
array ``v_jl`` of the family.
"""

import numpy as np

from ._em import draw_components


def impute(resp, means):
    """``x_hat_ul = E[x_ul | x_{u,C_u}] = sum_j r_uj mu_jl``, shape ``(n, d)``."""
    return resp @ means


def impute_entries(resp, means, rows, cols):
    """``x_hat_ul`` at the entries ``(rows[i], cols[i])`` only."""
    return np.einsum("ij,ij->i", resp[rows], means.T[cols])


def predictive_variance(resp, means, feature_variances):
    """``Var[x_ul | x_{u,C_u}]`` for every entry, shape ``(n, d)``.

    By the law of total variance over the components,
    ``Var = sum_j r_uj (v_jl + mu_jl^2) - x_hat_ul^2``, clipped at 0 against
    rounding.
    """
    second_moment = resp @ (feature_variances + means**2)
    second_moment -= impute(resp, means) ** 2
    return np.maximum(second_moment, 0.0, out=second_moment)


def sample(resp, means, feature_variances, random_state):
    """One draw of every entry from the posterior predictive distribution.

    For each row a component ``z_u`` is drawn from ``r_u.``, then every
    coordinate from ``N(mu_{z_u, l}, v_{z_u, l})``.
    """
    components = draw_components(resp, random_state)
    noise = random_state.standard_normal(size=(resp.shape[0], means.shape[1]))
    return means[components] + np.sqrt(feature_variances[components]) * noise.astype(means.dtype)


def predictions(feature_variances):
    """The prediction functions of a family, with the family's signatures.

    Parameters
    ----------
    feature_variances : callable
        ``feature_variances(covariances, n_features) -> (K, d) array``.

    Returns
    -------
    impute, impute_entries, predictive_variance, sample : callables
        Taking ``(observed, resp, means, covariances, ...)`` like every family.
    """

    def family_impute(observed, resp, means, covariances):
        return impute(resp, means)

    def family_impute_entries(observed, resp, means, covariances, rows, cols):
        return impute_entries(resp, means, rows, cols)

    def family_predictive_variance(observed, resp, means, covariances):
        variances = feature_variances(covariances, means.shape[1])
        return predictive_variance(resp, means, variances)

    def family_sample(observed, resp, means, covariances, random_state):
        variances = feature_variances(covariances, means.shape[1])
        return sample(resp, means, variances, random_state)

    return family_impute, family_impute_entries, family_predictive_variance, family_sample
