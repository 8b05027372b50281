"""Full covariance family: component ``j`` is ``N(mu_j, Sigma_j)``.

Exact EM for incomplete data (Ghahramani & Jordan, 1994). For a row with
observed coordinates ``o`` and missing ``m`` the E-step needs, per component,

* the marginal density ``N(x_o | mu_o, Sigma_oo)``;
* the conditional mean of the missing block,
  ``x_hat_m = mu_m + Sigma_mo Sigma_oo^{-1} (x_o - mu_o)``;
* its conditional covariance ``C_mm = Sigma_mm - Sigma_mo Sigma_oo^{-1} Sigma_om``.

With ``x_tilde`` the row completed by ``x_hat_m`` and ``C`` zero outside the
missing block, the M-step is ``mu_j = sum_u r_uj x_tilde_uj / N_j`` and
``Sigma_j = sum_u r_uj (x_tilde_uj x_tilde_uj^T + C_uj) / N_j - mu_j mu_j^T
+ reg_covar I``. Rows are grouped by missingness pattern, so the Cholesky
factorisations are done once per (pattern, component). ``covariances`` is the
``(n_components, n_features, n_features)`` array of the ``Sigma_j``; the
family's regularisation is ``reg_covar``, added to every diagonal. Dense data
only.
"""

import numpy as np

from ._em import draw_components


def n_parameters(n_components, n_features):
    """Free parameters of the means and covariances (the weights are counted apart)."""
    return n_components * (n_features + n_features * (n_features + 1) // 2)


def initial_covariances(observed, means, reg_covar):
    """Initial covariances: the mean over all rows of ``(values_u - mu_j)(values_u - mu_j)^T``.

    Missing entries count as 0, as in the spherical and diag rules;
    ``reg_covar`` is added to the diagonal.
    """
    n_samples, n_features = observed.values.shape
    second = observed.values.T @ observed.values / n_samples
    column_means = observed.column_sums() / n_samples
    covariances = np.empty((len(means), n_features, n_features), dtype=means.dtype)
    for j, mean in enumerate(means):
        covariances[j] = (
            second - np.outer(mean, column_means) - np.outer(column_means, mean)
            + np.outer(mean, mean)
        )
        covariances[j].flat[:: n_features + 1] += reg_covar
    return covariances


# Rows of a pattern are processed in chunks of at most this many
# (component x row x feature) numbers, so no temporary grows with n * K * d.
_CHUNK_ENTRIES = 2**20


def _conditionals(observed, means, covariances):
    """The conditional Gaussians of every pattern, batched over the components.

    For each missingness pattern the factorisations are done once for all
    components; its rows are then processed in chunks.

    Yields
    ------
    rows : ndarray of int, shape (c,)
    cols, missing : ndarray of int
        The observed and missing columns of the pattern.
    log_density : ndarray of shape (K, c)
        ``log N(x_o | mu_jo, Sigma_joo)``.
    x_observed : ndarray of shape (c, o)
    conditional_means : ndarray of shape (K, c, m)
        ``mu_jm + Sigma_jmo Sigma_joo^{-1} (x_o - mu_jo)``.
    conditional_covariances : ndarray of shape (K, m, m)
        ``Sigma_jmm - Sigma_jmo Sigma_joo^{-1} Sigma_jom``.
    """
    n_components, n_features = means.shape
    chunk_size = max(1, _CHUNK_ENTRIES // (n_components * n_features))
    for cols, pattern_rows in observed.patterns:
        missing = np.setdiff1d(np.arange(n_features), cols, assume_unique=True)
        factors = np.linalg.cholesky(covariances[:, cols][:, :, cols])  # (K, o, o)
        inverse_factors = np.linalg.inv(factors)
        log_dets = 2.0 * np.log(np.diagonal(factors, axis1=1, axis2=2)).sum(axis=1)
        cross = covariances[:, missing][:, :, cols]  # Sigma_mo, (K, m, o)
        regression = cross @ np.swapaxes(inverse_factors, 1, 2) @ inverse_factors
        conditional_covariances = covariances[:, missing][:, :, missing] - regression @ np.swapaxes(
            cross, 1, 2
        )
        for start in range(0, len(pattern_rows), chunk_size):
            rows = pattern_rows[start : start + chunk_size]
            x_observed = observed.values[np.ix_(rows, cols)]
            centred = x_observed - means[:, np.newaxis, cols]  # (K, c, o)
            whitened = centred @ np.swapaxes(inverse_factors, 1, 2)
            log_density = -0.5 * (
                cols.size * np.log(2.0 * np.pi) + log_dets[:, np.newaxis] + (whitened**2).sum(axis=2)
            )
            conditional_means = means[:, np.newaxis, missing] + centred @ np.swapaxes(regression, 1, 2)
            yield rows, cols, missing, log_density, x_observed, conditional_means, conditional_covariances


def log_prob(observed, means, covariances):
    """Log-density of each row's observed entries under each component, ``(n, K)``."""
    log_prob = np.empty((observed.n_samples, len(means)), dtype=observed.dtype)
    for rows, _, _, log_density, _, _, _ in _conditionals(observed, means, covariances):
        log_prob[rows] = log_density.T
    return log_prob


def m_step(observed, resp, means, covariances, reg_covar, prior=None):
    """New means and covariances from the expected sufficient statistics.

    With ``N_j``, ``T1_j = sum_u r_uj x_tilde_uj`` and ``T2_j = sum_u r_uj
    (x_tilde_uj x_tilde_uj^T + C_uj)``: ``mu_j = T1_j / N_j`` and
    ``Sigma_j = T2_j / N_j - mu_j mu_j^T + reg_covar I``. Under ``prior =
    (kappa, m)``, the conjugate prior ``mu_j ~ N(m, Sigma_j / kappa)``,
    ``mu_j = (T1_j + kappa m) / (N_j + kappa)`` and
    ``Sigma_j = (T2_j - T1_j mu_j^T - mu_j T1_j^T + N_j mu_j mu_j^T
    + kappa (mu_j - m)(mu_j - m)^T) / (N_j + 1) + reg_covar I``.
    A component with no responsibility keeps its parameters.
    """
    n_components, n_features = means.shape
    totals = resp.sum(axis=0)
    first = np.zeros((n_components, n_features))
    second = np.zeros((n_components, n_features, n_features))
    for rows, cols, missing, _, x, conditional_means, conditionals in _conditionals(
        observed, means, covariances
    ):
        weights = resp[rows].T[:, :, np.newaxis]  # (K, c, 1)
        weighted_x = np.swapaxes(weights * x, 1, 2)  # (K, o, c)
        weighted_means = np.swapaxes(weights * conditional_means, 1, 2)  # (K, m, c)
        first[:, cols] += weighted_x.sum(axis=2)
        first[:, missing] += weighted_means.sum(axis=2)
        observed_block = weighted_x @ x
        cross_block = weighted_x @ conditional_means
        missing_block = weighted_means @ conditional_means
        missing_block += weights.sum(axis=1)[:, :, np.newaxis] * conditionals
        second[:, cols[:, np.newaxis], cols] += observed_block
        second[:, cols[:, np.newaxis], missing] += cross_block
        second[:, missing[:, np.newaxis], cols] += np.swapaxes(cross_block, 1, 2)
        second[:, missing[:, np.newaxis], missing] += missing_block
    new_means, new_covariances = means.copy(), covariances.copy()
    kappa, prior_means = prior if prior is not None else (0.0, 0.0)
    for j in np.flatnonzero(totals > 0):
        mean = (first[j] + kappa * prior_means) / (totals[j] + kappa)
        scatter = second[j] - np.outer(first[j], mean) - np.outer(mean, first[j])
        scatter += totals[j] * np.outer(mean, mean)
        if prior is not None:
            scatter += kappa * np.outer(mean - prior_means, mean - prior_means)
        new_means[j] = mean
        new_covariances[j] = scatter / (totals[j] + (prior is not None))
        new_covariances[j].flat[:: n_features + 1] += reg_covar
    return new_means, new_covariances


def log_mean_prior(means, covariances, prior):
    """``sum_j log N(mu_j | m, Sigma_j / kappa)`` for ``prior = (kappa, m)``."""
    kappa, prior_means = prior
    total = 0.0
    for mean, covariance in zip(means, covariances):
        factor = np.linalg.cholesky(covariance / kappa)
        whitened = np.linalg.solve(factor, mean - prior_means)
        total += -0.5 * (
            len(mean) * np.log(2.0 * np.pi) + 2.0 * np.log(np.diag(factor)).sum() + whitened @ whitened
        )
    return float(total)


def _mix(weights, per_component):
    """``sum_j weights[c, j] * per_component[j, c, :]``, shape ``(c, m)``."""
    return (weights.T[:, :, np.newaxis] * per_component).sum(axis=0)


def impute(observed, resp, means, covariances):
    """``x_hat_u = sum_j r_uj x_tilde_uj``: the posterior mean of every entry, ``(n, d)``."""
    imputed = np.array(observed.values, dtype=observed.dtype)
    for rows, _, missing, _, _, conditional_means, _ in _conditionals(observed, means, covariances):
        imputed[np.ix_(rows, missing)] = _mix(resp[rows], conditional_means)
    return imputed


def impute_entries(observed, resp, means, covariances, rows, cols):
    """``x_hat_ul`` at the entries ``(rows[i], cols[i])``."""
    return impute(observed, resp, means, covariances)[rows, cols]


def predictive_variance(observed, resp, means, covariances):
    """``Var[x_ul | x_{u,o}] = sum_j r_uj (C_ujll + x_tilde_ujl^2) - x_hat_ul^2``, ``(n, d)``.

    0 at observed entries; clipped at 0 against rounding.
    """
    variance = np.zeros(observed.values.shape, dtype=observed.dtype)
    for rows, _, missing, _, _, conditional_means, conditionals in _conditionals(
        observed, means, covariances
    ):
        weights = resp[rows]
        second_moment = _mix(weights, conditional_means**2)
        second_moment += weights @ np.diagonal(conditionals, axis1=1, axis2=2)
        mean = _mix(weights, conditional_means)
        variance[np.ix_(rows, missing)] = np.maximum(second_moment - mean**2, 0.0)
    return variance


def sample(observed, resp, means, covariances, random_state):
    """One draw of every entry from the posterior predictive distribution.

    For each row a component is drawn from its responsibilities, then the
    missing block from that component's conditional Gaussian; observed entries
    are returned as they are.
    """
    drawn = draw_components(resp, random_state)
    samples = np.array(observed.values, dtype=observed.dtype)
    for rows, _, missing, _, _, conditional_means, conditionals in _conditionals(
        observed, means, covariances
    ):
        if missing.size == 0:
            continue
        for j in np.unique(drawn[rows]):
            chosen = drawn[rows] == j
            noise = random_state.standard_normal(size=(chosen.sum(), missing.size))
            draws = conditional_means[j, chosen] + noise @ np.linalg.cholesky(conditionals[j]).T
            samples[np.ix_(rows[chosen], missing)] = draws
    return samples
