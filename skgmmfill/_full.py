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


def _conditionals(observed, means, covariances):
    """Per (pattern, component): the rows, their log-densities and completions.

    The factorisations of a pattern are batched over the components; the
    per-row work is one matrix product per component.

    Yields ``(rows, j, missing_cols, log_density, completed, conditional_covariance)``
    where ``completed`` is ``(len(rows), d)`` with the conditional means in the
    missing columns and ``conditional_covariance`` is ``C_mm``.
    """
    n_components, n_features = means.shape
    for cols, rows in observed.patterns:
        missing = np.setdiff1d(np.arange(n_features), cols, assume_unique=True)
        x_observed = observed.values[np.ix_(rows, cols)]
        factors = np.linalg.cholesky(covariances[:, cols][:, :, cols])  # (K, o, o)
        inverse_factors = np.linalg.inv(factors)
        log_dets = 2.0 * np.log(np.diagonal(factors, axis1=1, axis2=2)).sum(axis=1)
        cross = covariances[:, missing][:, :, cols]  # Sigma_mo, (K, m, o)
        regression = cross @ np.swapaxes(inverse_factors, 1, 2) @ inverse_factors  # Sigma_mo Sigma_oo^-1
        conditionals = covariances[:, missing][:, :, missing] - regression @ np.swapaxes(cross, 1, 2)
        for j in range(n_components):
            centred = x_observed - means[j, cols]
            whitened = centred @ inverse_factors[j].T
            log_density = -0.5 * (
                cols.size * np.log(2.0 * np.pi) + log_dets[j] + np.einsum("ij,ij->i", whitened, whitened)
            )
            completed = np.empty((len(rows), n_features), dtype=observed.dtype)
            completed[:, cols] = x_observed
            completed[:, missing] = means[j, missing] + centred @ regression[j].T
            yield rows, j, missing, log_density, completed, conditionals[j]


def log_prob(observed, means, covariances):
    """Log-density of each row's observed entries under each component, ``(n, K)``."""
    log_prob = np.empty((observed.n_samples, len(means)), dtype=observed.dtype)
    for rows, j, _, log_density, _, _ in _conditionals(observed, means, covariances):
        log_prob[rows, j] = log_density
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
    for rows, j, missing, _, completed, conditional in _conditionals(
        observed, means, covariances
    ):
        weights = resp[rows, j]
        first[j] += weights @ completed
        second[j] += (completed * weights[:, np.newaxis]).T @ completed
        second[j][np.ix_(missing, missing)] += weights.sum() * conditional
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


def impute(observed, resp, means, covariances):
    """``x_hat_u = sum_j r_uj x_tilde_uj``: the posterior mean of every entry, ``(n, d)``."""
    imputed = np.zeros(observed.values.shape, dtype=observed.dtype)
    for rows, j, _, _, completed, _ in _conditionals(observed, means, covariances):
        imputed[rows] += resp[rows, j, np.newaxis] * completed
    return imputed


def impute_entries(observed, resp, means, covariances, rows, cols):
    """``x_hat_ul`` at the entries ``(rows[i], cols[i])``."""
    return impute(observed, resp, means, covariances)[rows, cols]


def predictive_variance(observed, resp, means, covariances):
    """``Var[x_ul | x_{u,o}] = sum_j r_uj (C_ujll + x_tilde_ujl^2) - x_hat_ul^2``, ``(n, d)``.

    0 at observed entries (up to rounding, clipped at 0).
    """
    second_moment = np.zeros(observed.values.shape, dtype=observed.dtype)
    for rows, j, missing, _, completed, conditional in _conditionals(
        observed, means, covariances
    ):
        moment = completed**2
        moment[:, missing] += np.diag(conditional)
        second_moment[rows] += resp[rows, j, np.newaxis] * moment
    second_moment -= impute(observed, resp, means, covariances) ** 2
    return np.maximum(second_moment, 0.0, out=second_moment)


def sample(observed, resp, means, covariances, random_state):
    """One draw of every entry from the posterior predictive distribution.

    For each row a component is drawn from its responsibilities, then the
    missing block from that component's conditional Gaussian; observed entries
    are returned as they are.
    """
    drawn = draw_components(resp, random_state)
    samples = np.empty(observed.values.shape, dtype=observed.dtype)
    for rows, j, missing, _, completed, conditional in _conditionals(
        observed, means, covariances
    ):
        chosen = drawn[rows] == j
        if not chosen.any():
            continue
        draws = completed[chosen]
        if missing.size:
            factor = np.linalg.cholesky(conditional)
            noise = random_state.standard_normal(size=(chosen.sum(), missing.size))
            draws[:, missing] += noise @ factor.T
        samples[rows[chosen]] = draws
    return samples
