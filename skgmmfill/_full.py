"""Full covariance family: component ``j`` is ``N(mu_j, Sigma_j)``.

Exact EM for incomplete data (Ghahramani & Jordan, 1994). For a row with
observed coordinates ``o``, missing ``m`` and ``e_o = x_o - mu_o``, each
component needs

* the marginal density ``N(x_o | mu_o, Sigma_oo)``;
* the completed row ``x_tilde = mu + r``, with the *completed residual*
  ``r_o = e_o`` and ``r_m = Sigma_mo Sigma_oo^{-1} e_o`` (the conditional mean
  of the missing block);
* the conditional covariance ``C``, zero outside the missing block, where it
  is ``Sigma_mm - Sigma_mo Sigma_oo^{-1} Sigma_om``.

Both can be had by factorising whichever block is smaller (the Schur
complement identities), so no row costs more than ``min(o, m)^3``:

* **covariance route** (``o < m``): factorise ``Sigma_oo = L L^T``. With
  ``v = Sigma_oo^{-1} e_o`` embedded in ``d`` coordinates (zero on ``m``),
  ``r = Sigma v``, the Mahalanobis term is ``e_o^T v`` and
  ``C = Sigma - Sigma Q Sigma`` with ``Q`` the embedded ``Sigma_oo^{-1}``.
* **precision route** (``m <= o``, complete rows included): with the
  precision ``P = Sigma^{-1}``, factorise ``P_mm``. Then
  ``r_m = -P_mm^{-1} P_mo e_o``, ``C_mm = P_mm^{-1}``,
  ``log det Sigma_oo = log det Sigma + log det P_mm`` and the Mahalanobis term
  is ``r^T P r``.

The E-step's by-products are the M-step's statistics, so one fused pass
(:meth:`FullCovariance.accumulate`) does both. Relative to the current means,
the statistics are ``N_j``, ``A_j = sum_u r_uj r_uj`` (sic: responsibility
times completed residual) and ``S_j = sum_u r_uj (r_uj r_uj^T + C_uj)``;
``sum_u r_uj C_uj`` takes a scatter-add of each row's small block and, for
the covariance route, ``N Sigma - Sigma (sum_u r_uj Q_uj) Sigma``: one
``d x d`` product per component and pass, never per row. Rows are grouped:
a missingness pattern shared by many rows is factorised once for all of them;
other rows are batched by route and block size and factorised in stacked
calls, in chunks of bounded size. Dense data only.

``covariances`` is the ``(n_components, n_features, n_features)`` array of
the ``Sigma_j``; ``reg_covar`` is added to every diagonal.
"""

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy.linalg import solve_triangular

from ._family import (
    CovarianceFamily,
    Mixture,
    Statistics,
    draw_components,
    log_weights,
    mixture_weights,
    normalize_log_prob,
)

# Rows are processed in chunks of at most about this many numbers per
# temporary (component x row x feature, or x block entry), so no temporary
# grows with n * K * d.
_CHUNK_ENTRIES = 2**20

# A missingness pattern with at least this many rows is factorised once for
# all its rows; rows of rarer patterns are batched by route and block size and
# factorised row by row in stacked calls.
_SHARED_PATTERN_ROWS = 16


@dataclass(frozen=True)
class FullStatistics(Statistics):
    """Sums for full components, relative to the means they were computed with.

    Attributes
    ----------
    residual_sums : ndarray of shape (K, d)
        ``A_j = sum_u r_uj (x_tilde_uj - mu_j)``.
    scatter_sums : ndarray of shape (K, d, d)
        ``S_j = sum_u r_uj ((x_tilde_uj - mu_j)(x_tilde_uj - mu_j)^T + C_uj)``.
    """

    residual_sums: np.ndarray
    scatter_sums: np.ndarray


class _Factors(NamedTuple):
    """Per-component quantities every row group reuses."""

    covariances: np.ndarray  # (K, d, d)
    precisions: np.ndarray  # (K, d, d)
    inverse_roots: np.ndarray  # (K, d, d), L^{-1} with Sigma = L L^T
    log_dets: np.ndarray  # (K,)


@dataclass(frozen=True)
class FullCovariance(CovarianceFamily):
    """A full covariance matrix per component.

    Attributes
    ----------
    reg_covar : float
        Added to the diagonal of every covariance at initialisation and after
        each update, so that they stay positive definite.
    """

    reg_covar: float = 1e-6
    name = "full"
    supports_sparse = False
    hyperparameters = ("reg_covar",)

    def n_parameters(self, n_components, n_features):
        return n_components * (n_features + n_features * (n_features + 1) // 2)

    def dense_covariances(self, covariances, n_features):
        return covariances

    def moments(self, observed):
        return observed.moments(with_gram=True)

    def initial_covariances(self, moments, means):
        """The mean over all rows of ``(values_u - mu_j)(values_u - mu_j)^T`` plus ``reg_covar I``.

        Missing entries count as 0, as in the spherical and diag rules.
        """
        n_samples, n_features = moments.n_samples, means.shape[1]
        second = moments.gram / n_samples
        column_means = moments.sums / n_samples
        cross = means[:, :, np.newaxis] * column_means
        covariances = second - cross - np.swapaxes(cross, 1, 2) + means[:, :, np.newaxis] * means[:, np.newaxis, :]
        covariances += self.reg_covar * np.eye(n_features)
        return covariances.astype(means.dtype)

    # -- E-step and statistics -------------------------------------------------

    def log_prob(self, observed, mixture):
        log_prob, _ = _sweep(observed, mixture, need_statistics=False)
        return log_prob

    def statistics(self, observed, resp, mixture):
        return _sweep(observed, mixture, resp=resp)[1]

    def accumulate(self, observed, mixture):
        return _sweep(observed, mixture)[1]

    def update(self, statistics, mixture, prior=None):
        """``mu_j = (T1_j + kappa m) / (N_j + kappa)`` and the scatter around it.

        With ``T1_j = N_j mu0_j + A_j`` and ``delta_j = mu_j - mu0_j`` (``mu0``
        the means the statistics were computed with), the scatter is
        ``S_j - A_j delta_j^T - delta_j A_j^T + N_j delta_j delta_j^T``, plus
        ``kappa (mu_j - m)(mu_j - m)^T`` under the prior; ``Sigma_j`` is it
        divided by ``N_j`` (``N_j + 1`` under the prior), plus ``reg_covar I``.
        Centring on ``mu0`` keeps the sums small whatever the data's offset.
        """
        totals, residual_sums = statistics.resp_sums, statistics.residual_sums
        old_means = mixture.means
        kappa, prior_means = prior if prior is not None else (0.0, old_means)
        live = totals > 0
        denominators = np.where(live, totals + kappa, 1.0)[:, np.newaxis]
        shifts = (residual_sums + kappa * (prior_means - old_means)) / denominators
        cross = residual_sums[:, :, np.newaxis] * shifts[:, np.newaxis, :]
        scatter = statistics.scatter_sums - cross - np.swapaxes(cross, 1, 2)
        scatter += totals[:, np.newaxis, np.newaxis] * shifts[:, :, np.newaxis] * shifts[:, np.newaxis, :]
        means = old_means + shifts
        if prior is not None:
            gap = means - prior_means
            scatter += kappa * gap[:, :, np.newaxis] * gap[:, np.newaxis, :]
        scatter /= np.where(live, totals + (prior is not None), 1.0)[:, np.newaxis, np.newaxis]
        covariances = 0.5 * (scatter + np.swapaxes(scatter, 1, 2))
        covariances += self.reg_covar * np.eye(old_means.shape[1])
        covariances = np.where(live[:, np.newaxis, np.newaxis], covariances, mixture.covariances)
        means = np.where(live[:, np.newaxis], means, old_means)
        dtype = old_means.dtype
        return Mixture(mixture_weights(statistics), means.astype(dtype), covariances.astype(dtype))

    def log_mean_prior(self, mixture, prior):
        kappa, prior_means = prior
        factors = _factors(mixture.covariances / kappa)
        whitened = np.einsum("jab,jb->ja", factors.inverse_roots, mixture.means - prior_means)
        n_features = mixture.means.shape[1]
        return float(
            -0.5 * (n_features * np.log(2.0 * np.pi) + factors.log_dets + (whitened**2).sum(axis=1)).sum()
        )

    # -- predictions -------------------------------------------------------------

    def impute(self, observed, resp, mixture):
        """``x_hat_u = sum_j r_uj x_tilde_uj``; observed entries as stored."""
        imputed = np.array(observed.values, dtype=observed.dtype)
        factors = _factors(mixture.covariances)
        for chunk in _chunks(observed, mixture.means.shape[1], len(mixture.means)):
            if chunk.complete:
                continue
            completed = mixture.means[:, np.newaxis, :] + _complete(chunk, mixture.means, factors).residuals
            imputed[chunk.rows] = np.where(chunk.observed, chunk.values, _mix(resp[chunk.rows], completed))
        return imputed

    def impute_entries(self, observed, resp, mixture, rows, cols):
        return self.impute(observed, resp, mixture)[rows, cols]

    def predictive_variance(self, observed, resp, mixture):
        """``sum_j r_uj (C_ujll + x_tilde_ujl^2) - x_hat_ul^2``; 0 where observed.

        The diagonal of ``C_uj`` is that of ``P_mm^{-1}`` on the precision
        route and ``diag(Sigma) - diag(Sigma_{:o} Sigma_oo^{-1} Sigma_{o:})`` on
        the covariance route.
        """
        variance = np.zeros(observed.values.shape, dtype=observed.dtype)
        factors = _factors(mixture.covariances)
        means = mixture.means
        for chunk in _chunks(observed, means.shape[1], len(means), block_width=means.shape[1]):
            if chunk.complete:
                continue
            completion = _complete(chunk, means, factors)
            completed = means[:, np.newaxis, :] + completion.residuals
            conditional = _conditional_variances(chunk, completion, factors)
            weights = resp[chunk.rows]
            second_moment = _mix(weights, completed**2 + conditional)
            spread = np.maximum(second_moment - _mix(weights, completed) ** 2, 0.0)
            variance[chunk.rows] = np.where(chunk.observed, 0.0, spread)
        return variance

    def sample(self, observed, resp, mixture, random_state):
        """Matheron's rule: with a joint draw ``z ~ N(mu_j, Sigma_j)``, the missing
        block of ``z + Sigma_{:o} Sigma_oo^{-1} (x_o - z_o)`` has exactly the
        conditional distribution. That is the completion of the row around
        ``z`` instead of ``mu_j``, computed by either route."""
        drawn = draw_components(resp, random_state)
        samples = np.array(observed.values, dtype=observed.dtype)
        factors = _factors(mixture.covariances)
        roots = np.linalg.cholesky(mixture.covariances)
        means = mixture.means
        for chunk in _chunks(observed, means.shape[1], len(means)):
            if chunk.complete:
                continue
            components = drawn[chunk.rows]
            noise = random_state.standard_normal(size=chunk.values.shape).astype(means.dtype)
            joint = means[components] + np.einsum("cab,cb->ca", roots[components], noise)
            # complete around the draw: centres (K, c, d) with the draw in every slot
            centres = np.broadcast_to(joint, (len(means), *joint.shape))
            completed = joint + _complete(chunk, centres, factors).residuals[components, np.arange(len(components))]
            samples[chunk.rows] = np.where(chunk.observed, chunk.values, completed)
        return samples


# --- row groups and chunks ------------------------------------------------------------


class _Chunk(NamedTuple):
    """Rows processed together, all with the same route and block size."""

    rows: np.ndarray  # (c,)
    values: np.ndarray  # (c, d), 0 at missing entries
    observed: np.ndarray  # (c, d) bool
    block: np.ndarray  # (b,) shared by the rows, or (c, b): the factorised block's columns
    precision_route: bool  # block = missing columns (factorise P_mm), else observed ones (Sigma_oo)

    @property
    def shared(self):
        return self.block.ndim == 1

    @property
    def complete(self):
        return self.precision_route and self.block.shape[-1] == 0


def _row_groups(observed):
    """``(rows, block, precision_route)`` triples covering every row once.

    A row takes the precision route when it has no more missing entries than
    observed ones; ``block`` is then its missing columns, otherwise its
    observed ones. ``block`` is 1-D for a pattern shared by all ``rows``, 2-D
    ``(len(rows), b)`` for rows batched by route and block size.
    """
    mask = observed.dense_mask()
    n_features = observed.n_features
    labels, counts = observed.pattern_labels
    frequent = counts[labels] >= _SHARED_PATTERN_ROWS
    shared_rows = np.flatnonzero(frequent)
    shared_rows = shared_rows[np.argsort(labels[shared_rows], kind="stable")]
    bounds = np.flatnonzero(np.diff(labels[shared_rows])) + 1
    for rows in np.split(shared_rows, bounds) if len(shared_rows) else []:
        seen = mask[rows[0]]
        precision_route = bool(_takes_precision_route(seen.sum(), n_features))
        yield rows, np.flatnonzero(~seen if precision_route else seen), precision_route
    rare = np.flatnonzero(~frequent)
    n_seen = observed.n_observed[rare].astype(np.intp)
    precision_route = _takes_precision_route(n_seen, n_features)
    sizes = np.where(precision_route, n_features - n_seen, n_seen)
    keys = 2 * sizes + precision_route
    order = np.argsort(keys, kind="stable")
    rare, keys = rare[order], keys[order]
    bounds = np.flatnonzero(np.diff(keys)) + 1
    for rows, group_keys in zip(np.split(rare, bounds), np.split(keys, bounds)) if len(rare) else []:
        size, route = divmod(int(group_keys[0]), 2)
        block_mask = ~mask[rows] if route else mask[rows]
        yield rows, np.nonzero(block_mask)[1].reshape(len(rows), size), bool(route)


def _takes_precision_route(n_seen, n_features):
    """Whether to factorise the missing block of the precision (no larger than the observed one)."""
    return 2 * n_seen >= n_features


def _chunks(observed, n_features, n_components, block_width=0):
    """The row groups cut into :class:`_Chunk` of bounded size.

    ``block_width`` is the width of an extra per-row ``(b, block_width)``
    temporary a caller makes (the conditional variances).
    """
    for rows, block, precision_route in _row_groups(observed):
        size = block.shape[-1]
        per_row = n_components * max(n_features, size * max(size, block_width))
        chunk_size = max(1, _CHUNK_ENTRIES // per_row)
        for start in range(0, len(rows), chunk_size):
            these = rows[start : start + chunk_size]
            yield _Chunk(
                rows=these,
                values=observed.values[these],
                observed=observed.mask[these] != 0,
                block=block if block.ndim == 1 else block[start : start + chunk_size],
                precision_route=precision_route,
            )


# --- the completion of one chunk ----------------------------------------------------


class _Completion(NamedTuple):
    """One chunk's conditionals under every component.

    ``block_inverse_roots`` is ``L_b^{-1}`` for the factorised block
    (``P_mm`` or ``Sigma_oo``), shape ``(K, g, b, b)`` with ``g`` 1 (shared)
    or ``c``; None for complete rows.
    """

    log_density: np.ndarray  # (K, c)
    residuals: np.ndarray  # (K, c, d): x_tilde - centre
    block_inverse_roots: object


def _factors(covariances):
    """Cholesky-based inverse, inverse root and log-determinant of each ``Sigma_j``."""
    roots = np.linalg.cholesky(covariances)
    eye = np.eye(covariances.shape[-1], dtype=covariances.dtype)
    inverse_roots = np.stack([solve_triangular(root, eye, lower=True) for root in roots])
    precisions = np.swapaxes(inverse_roots, 1, 2) @ inverse_roots
    log_dets = 2.0 * np.log(np.diagonal(roots, axis1=1, axis2=2)).sum(axis=1)
    return _Factors(covariances, precisions, inverse_roots, log_dets)


def _complete(chunk, centres, factors):
    """Log-densities of the observed entries and the completed residuals.

    ``centres`` is ``(K, d)`` (the means) or ``(K, c, d)`` (a centre per row,
    for sampling); the log-densities are only meaningful for the means.
    """
    centres = centres[:, np.newaxis, :] if centres.ndim == 2 else centres
    n_components, n_rows, n_features = len(centres), *chunk.values.shape
    residuals = chunk.values - chunk.observed * centres  # e on observed entries, 0 on missing
    n_seen = chunk.observed.sum(axis=1)
    block = chunk.block
    size = block.shape[-1]
    if chunk.precision_route:
        log_dets = np.broadcast_to(factors.log_dets[:, np.newaxis], (n_components, n_rows))
        inverse_roots = None
        if size:
            projected = residuals @ factors.precisions  # P e, (K, c, d)
            roots = np.linalg.cholesky(_block(factors.precisions, block))  # P_mm = L L^T
            inverse_roots = _lower_inverse(roots)
            # r_m = -P_mm^{-1} (P e)_m
            solved = _apply(_transpose(inverse_roots), _apply(inverse_roots, _take(projected, block)))
            _put(residuals, block, -solved)
            log_dets = log_dets + _log_det(roots)
        whitened = residuals @ np.swapaxes(factors.inverse_roots, 1, 2)  # L^{-1} r
        mahalanobis = np.einsum("kcd,kcd->kc", whitened, whitened)
    else:
        roots = np.linalg.cholesky(_block(factors.covariances, block))  # Sigma_oo = L L^T
        inverse_roots = _lower_inverse(roots)
        whitened = _apply(inverse_roots, _take(residuals, block))  # L^{-1} e_o
        mahalanobis = np.einsum("kcb,kcb->kc", whitened, whitened)
        log_dets = np.broadcast_to(_log_det(roots), (n_components, n_rows))
        embedded = np.zeros_like(residuals)
        _put(embedded, block, _apply(_transpose(inverse_roots), whitened))  # v = Sigma_oo^{-1} e_o
        completed = embedded @ factors.covariances  # Sigma v
        residuals = np.where(chunk.observed, residuals, completed)
    log_density = -0.5 * (n_seen * np.log(2.0 * np.pi) + log_dets + mahalanobis)
    return _Completion(log_density, residuals, inverse_roots)


def _sweep(observed, mixture, resp=None, need_statistics=True):
    """One pass over the rows: log-densities and (optionally) the statistics.

    With ``resp`` None the responsibilities are computed chunk by chunk from
    the log-densities (the fused E-step); otherwise they are given.

    Returns
    -------
    log_prob : ndarray of shape (n, K) or None
        Only when ``need_statistics`` is False.
    statistics : FullStatistics or None
        Only when ``need_statistics``.
    """
    means = mixture.means
    n_components, n_features = means.shape
    factors = _factors(mixture.covariances)
    log_prob = None if need_statistics else np.empty((observed.n_samples, n_components), observed.dtype)
    accumulator = np.float64 if observed.dtype == np.float64 else np.float32
    totals = np.zeros(n_components, accumulator)
    residual_sums = np.zeros((n_components, n_features), accumulator)
    scatter_sums = np.zeros((n_components, n_features, n_features), accumulator)
    # sum_u r_uj Q_uj and sum_u r_uj over the covariance route's rows
    precision_sums = np.zeros_like(scatter_sums)
    covariance_route_totals = np.zeros(n_components, accumulator)
    log_likelihood = 0.0
    weights_log = log_weights(mixture.weights)
    for chunk in _chunks(observed, n_features, n_components):
        completion = _complete(chunk, means, factors)
        if not need_statistics:
            log_prob[chunk.rows] = completion.log_density.T
            continue
        if resp is None:
            chunk_resp, log_prob_norm = normalize_log_prob(completion.log_density.T + weights_log)
            log_likelihood += float(log_prob_norm.sum(dtype=np.float64))
        else:
            chunk_resp = resp[chunk.rows]
        weights = chunk_resp.T  # (K, c)
        residuals = completion.residuals
        totals += weights.sum(axis=1)
        residual_sums += np.einsum("kc,kcd->kd", weights, residuals)
        scatter_sums += np.swapaxes(residuals * weights[:, :, np.newaxis], 1, 2) @ residuals
        if chunk.complete:
            continue
        inverse_roots = completion.block_inverse_roots
        blocks = _transpose(inverse_roots) @ inverse_roots  # P_mm^{-1} or Sigma_oo^{-1}
        if chunk.precision_route:
            _scatter_add(scatter_sums, chunk.block, blocks, weights)  # the C_mm blocks
        else:
            _scatter_add(precision_sums, chunk.block, blocks, weights)
            covariance_route_totals += weights.sum(axis=1)
    if not need_statistics:
        return log_prob, None
    # covariance route: sum_u r_uj C_uj = N Sigma - Sigma (sum_u r_uj Q_uj) Sigma
    covariances = factors.covariances
    scatter_sums += covariance_route_totals[:, np.newaxis, np.newaxis] * covariances
    scatter_sums -= covariances @ precision_sums @ covariances
    return None, FullStatistics(
        n_samples=observed.n_samples,
        log_likelihood=log_likelihood,
        resp_sums=totals.astype(observed.dtype),
        residual_sums=residual_sums,
        scatter_sums=scatter_sums,
    )


def _conditional_variances(chunk, completion, factors):
    """Diagonals of the ``C_uj`` (0 at observed entries), ``(K, c, d)``."""
    inverse_roots = completion.block_inverse_roots
    n_components, (n_rows, n_features) = len(factors.covariances), chunk.values.shape
    variances = np.zeros((n_components, n_rows, n_features), chunk.values.dtype)
    if chunk.precision_route:  # diag(P_mm^{-1}) = column sums of squares of L^{-1}
        on_block = np.broadcast_to((inverse_roots**2).sum(axis=2), (n_components, n_rows, chunk.block.shape[-1]))
        _put(variances, chunk.block, on_block)
        return variances
    # diag(Sigma) - column sums of squares of L^{-1} Sigma_{o:}
    block = chunk.block
    rows_of_sigma = (
        factors.covariances[:, block][:, np.newaxis]
        if chunk.shared
        else factors.covariances[:, block]  # (K, c, b, d)
    )
    explained = ((inverse_roots @ rows_of_sigma) ** 2).sum(axis=2)
    variances = np.diagonal(factors.covariances, axis1=1, axis2=2)[:, np.newaxis, :] - explained
    return np.where(chunk.observed, 0.0, variances)


# --- small stacked-array helpers ---------------------------------------------------


def _block(matrices, block):
    """``matrices[j][block, block]`` for shared (``(b,)``) or per-row (``(c, b)``) columns: ``(K, g, b, b)``."""
    if block.ndim == 1:
        return matrices[:, block[:, np.newaxis], block][:, np.newaxis]
    return matrices[:, block[:, :, np.newaxis], block[:, np.newaxis, :]]


def _take(vectors, block):
    """``vectors[j, u, block_u]``, shape ``(K, c, b)``."""
    if block.ndim == 1:
        return vectors[..., block]
    return np.take_along_axis(vectors, np.broadcast_to(block, (len(vectors), *block.shape)), axis=2)


def _put(vectors, block, values):
    """``vectors[j, u, block_u] = values[j, u]`` in place."""
    if block.ndim == 1:
        vectors[..., block] = values
    else:
        np.put_along_axis(vectors, np.broadcast_to(block, values.shape), values, axis=2)


def _scatter_add(matrices, block, blocks, weights):
    """``matrices[j][block_u, block_u] += sum_u weights[j, u] * blocks[j, u]``.

    ``blocks`` is ``(K, g, b, b)``; for shared columns (``g = 1``) the rows'
    weights are summed first, otherwise each row's block is added where its
    own columns say, by one ``bincount`` over all components.
    """
    n_components, n_features = matrices.shape[:2]
    if block.ndim == 1:
        matrices[:, block[:, np.newaxis], block] += weights.sum(axis=1)[:, np.newaxis, np.newaxis] * blocks[:, 0]
        return
    flat = block[:, :, np.newaxis] * n_features + block[:, np.newaxis, :]  # (c, b, b)
    flat = flat + (np.arange(n_components) * n_features**2)[:, np.newaxis, np.newaxis, np.newaxis]
    weighted = blocks * weights[:, :, np.newaxis, np.newaxis]
    matrices += np.bincount(flat.ravel(), weighted.ravel(), minlength=matrices.size).reshape(matrices.shape)


def _log_det(roots):
    """``log det`` of ``L L^T`` for a stack of Cholesky factors ``(K, g, b, b)``: ``(K, g)``."""
    return 2.0 * np.log(np.diagonal(roots, axis1=2, axis2=3)).sum(axis=2)


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


def _transpose(matrices):
    return np.swapaxes(matrices, -1, -2)


def _apply(matrices, vectors):
    """``matrices[j, u] @ vectors[j, u]`` for every component and row, ``(K, c, a)``.

    ``matrices`` is ``(K, g, a, b)`` with ``g`` 1 (shared by the rows: one
    matrix product per component) or ``c``; ``vectors`` is ``(K, c, b)``.
    """
    if matrices.shape[1] == 1:
        return vectors @ np.swapaxes(matrices[:, 0], 1, 2)
    return np.squeeze(matrices @ vectors[..., np.newaxis], axis=-1)


def _mix(weights, per_component):
    """``sum_j weights[c, j] * per_component[j, c, :]``, shape ``(c, d)``."""
    return np.einsum("cj,jcd->cd", weights, per_component)
