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
factorisations of a frequent pattern are done once per component; rows of rare
patterns are factorised row by row, batched by their number of observed
entries. ``covariances`` is the
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


# Rows are processed in chunks of at most this many (component x row x feature
# [x observed feature]) numbers, so no temporary grows with n * K * d.
_CHUNK_ENTRIES = 2**20

# A missingness pattern with at least this many rows has its factorisations done
# once for all its rows; rows of rarer patterns are batched by their number of
# observed entries and factorised row by row (many small Cholesky factorisations
# in one call instead of a Python loop over patterns).
_SHARED_PATTERN_ROWS = 16


def _row_groups(observed):
    """``(rows, cols)`` pairs covering every row once.

    ``cols`` is 1-D (the observed columns of a pattern shared by all ``rows``)
    or 2-D of shape ``(len(rows), o)`` (each row's own ``o`` observed
    columns).
    """
    rare = []
    for cols, rows in observed.patterns:
        if len(rows) >= _SHARED_PATTERN_ROWS:
            yield rows, cols
        else:
            rare.append(rows)
    if not rare:
        return
    rows = np.concatenate(rare)
    counts = observed.n_observed[rows].astype(np.intp)
    for count in np.unique(counts):
        group = rows[counts == count]
        yield group, np.nonzero(observed.mask[group])[1].reshape(len(group), count)


def _conditionals(observed, means, covariances, with_factors=False, with_density=True):
    """Every row's conditional Gaussians given its observed entries, in chunks.

    With ``L`` the Cholesky factor of ``Sigma_oo`` and ``W = Sigma_{:o} L^{-T}``
    (all features by observed ones), the conditional mean of the whole row is
    ``mu + W L^{-1} (x_o - mu_o)`` (equal to ``x_o`` on the observed block) and
    the conditional covariance, zero outside the missing block, is
    ``Sigma - W W^T``.

    Yields
    ------
    rows : ndarray of int, shape (c,)
    log_density : ndarray of shape (K, c)
        ``log N(x_o | mu_jo, Sigma_joo)``.
    completed : ndarray of shape (K, c, d)
        ``x_tilde``: the observed entries, and the conditional means
        ``mu_jm + Sigma_jmo Sigma_joo^{-1} (x_o - mu_jo)`` at the missing ones.
    factors : ndarray of shape (K, g, d, o) or None
        With ``with_factors``: ``W`` for each row (``g = c``) or once for all
        of them (``g = 1``). None otherwise, and when the rows have no missing
        entry.

    Without ``with_density``, ``log_density`` may be None (for rows with no
    missing entry, which then need no factorisation at all).
    """
    n_components, n_features = means.shape
    for group_rows, cols in _row_groups(observed):
        shared = cols.ndim == 1
        n_cols = cols.shape[-1]
        per_row = n_components * n_features * (1 if shared else max(n_cols, 1))
        chunk_size = max(1, _CHUNK_ENTRIES // per_row)
        if n_cols == n_features and not with_density:
            for start in range(0, len(group_rows), chunk_size):
                rows = group_rows[start : start + chunk_size]
                values = observed.values[rows]
                yield rows, None, np.broadcast_to(values, (n_components, *values.shape)), None
            continue
        def factorise(row_cols):
            inverse_factors, log_dets, columns = _factorise(covariances, row_cols)
            factors = columns @ np.swapaxes(inverse_factors, 2, 3) if with_factors else None
            return inverse_factors, log_dets, columns, factors

        if shared:  # once for all the pattern's rows
            inverse_factors, log_dets, columns, factors = factorise(cols[np.newaxis])
        for start in range(0, len(group_rows), chunk_size):
            rows = group_rows[start : start + chunk_size]
            row_cols = cols if shared else cols[start : start + chunk_size]
            if not shared:
                inverse_factors, log_dets, columns, factors = factorise(row_cols)
            x_observed = observed.values[rows[:, np.newaxis], row_cols]  # (c, o)
            centred = x_observed - _take(means, row_cols)  # (K, c, o)
            whitened = _apply(inverse_factors, centred)  # (K, c, o)
            log_density = -0.5 * (n_cols * np.log(2.0 * np.pi) + log_dets + (whitened**2).sum(axis=2))
            values = observed.values[rows]
            if n_cols == n_features:
                yield rows, log_density, np.broadcast_to(values, (n_components, *values.shape)), None
                continue
            # Sigma_{:o} Sigma_oo^{-1} (x_o - mu_o) = Sigma_{:o} L^{-T} L^{-1} (x_o - mu_o)
            regressed = _apply(columns, _apply(np.swapaxes(inverse_factors, 2, 3), whitened))
            completed = np.where(observed.mask[rows] != 0, values, means[:, np.newaxis, :] + regressed)
            yield rows, log_density, completed, factors


def _factorise(covariances, cols):
    """``L^{-1}``, ``log det Sigma_oo`` and ``Sigma_{:o}`` for each row of ``cols`` (shape ``(g, o)``).

    Shapes ``(K, g, o, o)``, ``(K, g)`` and ``(K, g, d, o)``.
    """
    observed_block = covariances[:, cols[:, :, np.newaxis], cols[:, np.newaxis, :]]  # (K, g, o, o)
    lower = np.linalg.cholesky(observed_block)
    log_dets = 2.0 * np.log(np.diagonal(lower, axis1=2, axis2=3)).sum(axis=2)
    return _lower_inverse(lower), log_dets, np.moveaxis(covariances[:, :, cols], 1, 2)


def _lower_inverse(lower):
    """Inverses of a stack of lower-triangular matrices, by forward substitution.

    One vectorised step per matrix row: for many small matrices this is several
    times faster than ``np.linalg.inv``, which factorises each matrix again.
    """
    size = lower.shape[-1]
    inverse = np.zeros_like(lower)
    diagonal = np.diagonal(lower, axis1=-2, axis2=-1)
    for i in range(size):
        row = -(lower[..., i : i + 1, :i] @ inverse[..., :i, :])[..., 0, :]
        row[..., i] += 1.0
        inverse[..., i, :] = row / diagonal[..., i : i + 1]
    return inverse


def _apply(matrices, vectors):
    """``matrices[j, u] @ vectors[j, u]`` for every component and row, ``(K, c, a)``.

    ``matrices`` is ``(K, g, a, b)`` with ``g`` 1 (shared by the rows: one
    matrix product per component) or ``c``; ``vectors`` is ``(K, c, b)``.
    """
    if matrices.shape[1] == 1:
        return vectors @ np.swapaxes(matrices[:, 0], 1, 2)
    return np.squeeze(matrices @ vectors[..., np.newaxis], axis=-1)


def _take(means, cols):
    """``means`` at ``cols``, shaped ``(K, 1, o)`` for shared columns or ``(K, c, o)``."""
    return means[:, cols] if cols.ndim == 2 else means[:, np.newaxis, cols]


def _weighted_conditional_covariance(weights, covariances, factors):
    """``sum_u w_uj C_uj = (sum_u w_uj) Sigma_j - sum_u w_uj W_uj W_uj^T``, ``(K, d, d)``.

    ``weights`` has shape ``(K, c)``.
    """
    if factors.shape[1] == 1:
        gram = factors[:, 0] @ np.swapaxes(factors[:, 0], 1, 2)
        return weights.sum(axis=1)[:, np.newaxis, np.newaxis] * (covariances - gram)
    scaled = factors * np.sqrt(weights)[:, :, np.newaxis, np.newaxis]
    stacked = np.moveaxis(scaled, 1, 2).reshape(len(factors), factors.shape[2], -1)  # (K, d, c * o)
    return weights.sum(axis=1)[:, np.newaxis, np.newaxis] * covariances - stacked @ np.swapaxes(stacked, 1, 2)


def _conditional_variances(covariances, factors):
    """Diagonals of the ``C_uj``: ``diag(Sigma_j) - sum_o W_uj**2``, ``(K, g, d)``."""
    return np.diagonal(covariances, axis1=1, axis2=2)[:, np.newaxis, :] - (factors**2).sum(axis=3)


def log_prob(observed, means, covariances):
    """Log-density of each row's observed entries under each component, ``(n, K)``."""
    log_prob = np.empty((observed.n_samples, len(means)), dtype=observed.dtype)
    for rows, log_density, _, _ in _conditionals(observed, means, covariances):
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
    for rows, _, completed, factors in _conditionals(
        observed, means, covariances, with_factors=True, with_density=False
    ):
        weights = resp[rows].T  # (K, c)
        weighted = weights[:, :, np.newaxis] * completed  # (K, c, d)
        first += weighted.sum(axis=1)
        second += np.swapaxes(weighted, 1, 2) @ completed
        if factors is not None:
            second += _weighted_conditional_covariance(weights, covariances, factors)
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
    """``sum_j weights[c, j] * per_component[j, c, :]``, shape ``(c, d)``."""
    return np.einsum("cj,jcd->cd", weights, per_component)


def impute(observed, resp, means, covariances):
    """``x_hat_u = sum_j r_uj x_tilde_uj``: the posterior mean of every entry, ``(n, d)``."""
    imputed = np.array(observed.values, dtype=observed.dtype)
    for rows, _, completed, _ in _conditionals(observed, means, covariances):
        if not np.all(observed.mask[rows]):
            imputed[rows] = np.where(observed.mask[rows] != 0, imputed[rows], _mix(resp[rows], completed))
    return imputed


def impute_entries(observed, resp, means, covariances, rows, cols):
    """``x_hat_ul`` at the entries ``(rows[i], cols[i])``."""
    return impute(observed, resp, means, covariances)[rows, cols]


def predictive_variance(observed, resp, means, covariances):
    """``Var[x_ul | x_{u,o}] = sum_j r_uj (C_ujll + x_tilde_ujl^2) - x_hat_ul^2``, ``(n, d)``.

    0 at observed entries; clipped at 0 against rounding.
    """
    variance = np.zeros(observed.values.shape, dtype=observed.dtype)
    for rows, _, completed, factors in _conditionals(observed, means, covariances, with_factors=True):
        if factors is None:
            continue
        weights = resp[rows]
        conditional = np.broadcast_to(_conditional_variances(covariances, factors), completed.shape)
        second_moment = _mix(weights, completed**2 + conditional)
        spread = np.maximum(second_moment - _mix(weights, completed) ** 2, 0.0)
        variance[rows] = np.where(observed.mask[rows] != 0, 0.0, spread)
    return variance


def sample(observed, resp, means, covariances, random_state):
    """One draw of every entry from the posterior predictive distribution.

    For each row a component ``j`` is drawn from its responsibilities, then
    the missing block from ``j``'s conditional Gaussian, by conditioning a
    joint draw (Matheron's rule): with ``z ~ N(mu_j, Sigma_j)``, the missing
    block of ``z + Sigma_{:o} Sigma_oo^{-1} (x_o - z_o)`` has exactly the
    conditional distribution. Observed entries are returned as they are.
    """
    drawn = draw_components(resp, random_state)
    samples = np.array(observed.values, dtype=observed.dtype)
    n_features = means.shape[1]
    roots = np.linalg.cholesky(covariances)
    for group_rows, cols in _row_groups(observed):
        if cols.shape[-1] == n_features:
            continue
        chunk_size = max(1, _CHUNK_ENTRIES // (n_features * cols.shape[-1]))
        for start in range(0, len(group_rows), chunk_size):
            rows = group_rows[start : start + chunk_size]
            noise = random_state.standard_normal(size=(len(rows), n_features))
            for j in np.unique(drawn[rows]):
                chosen = drawn[rows] == j
                these_rows = rows[chosen]
                these_cols = cols[np.newaxis] if cols.ndim == 1 else cols[start : start + chunk_size][chosen]
                joint = means[j] + noise[chosen] @ roots[j].T  # z ~ N(mu_j, Sigma_j)
                inverse_factors, _, columns = _factorise(covariances[j : j + 1], these_cols)
                gathered = np.broadcast_to(these_cols, (len(these_rows), these_cols.shape[1]))
                gap = samples[these_rows[:, np.newaxis], gathered] - np.take_along_axis(joint, gathered, 1)
                whitened = _apply(inverse_factors, gap[np.newaxis])
                whitened = _apply(np.swapaxes(inverse_factors, 2, 3), whitened)  # Sigma_oo^{-1} (x_o - z_o)
                conditioned = joint + _apply(columns, whitened)[0]
                missing = observed.mask[these_rows] == 0
                samples[these_rows] = np.where(missing, conditioned, samples[these_rows])
    return samples
