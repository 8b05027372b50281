"""Full covariance family: component ``j`` is ``N(mu_j, Sigma_j)``.

Exact EM for incomplete data (Ghahramani & Jordan, 1994). For a row with
observed coordinates ``o``, missing ``m`` and ``e_o = x_o - mu_o``, each
component needs

* the marginal density ``N(x_o | mu_o, Sigma_oo)``;
* the completed row ``x_tilde = mu + t``, with the *completed residual*
  ``t_o = e_o`` and ``t_m = Sigma_mo Sigma_oo^{-1} e_o`` (the conditional mean
  of the missing block);
* the conditional covariance ``C``, zero outside the missing block, where it
  is ``Sigma_mm - Sigma_mo Sigma_oo^{-1} Sigma_om``.

Both can be had by factorising whichever block is smaller (the Schur
complement identities), so no row costs more than ``min(o, m)^3``:

* **covariance route** (``o < m``): factorise ``Sigma_oo = L L^T``. With
  ``v = Sigma_oo^{-1} e_o`` embedded in ``d`` coordinates (zero on ``m``),
  ``t = Sigma v``, the Mahalanobis term is ``e_o^T v = ||L^{-1} e_o||^2`` and
  ``C = Sigma - Sigma Q Sigma`` with ``Q`` the embedded ``Sigma_oo^{-1}``.
* **precision route** (``m <= o``, complete rows included): with the
  precision ``P = Sigma^{-1}``, factorise ``P_mm``. Then
  ``t_m = -P_mm^{-1} P_mo e_o``, ``C_mm = P_mm^{-1}``,
  ``log det Sigma_oo = log det Sigma + log det P_mm`` and the Mahalanobis term
  is ``t^T P t``.

The E-step needs only the Cholesky factor of the block and triangular solves
(``O(b^3 / 3 + b^2)`` per row and component for a block of size ``b``); the
block inverses the conditional covariances need are formed only for the
(row, component) pairs that carry responsibility (see :func:`_truncated`).

The E-step's by-products are the M-step's statistics, so one fused pass
(:meth:`FullCovariance.accumulate`) does both. Relative to the current means,
the statistics are ``N_j = sum_u r_uj``, ``A_j = sum_u r_uj t_uj`` and
``S_j = sum_u r_uj (t_uj t_uj^T + C_uj)`` (``r_uj`` the responsibilities);
``sum_u r_uj C_uj`` takes a scatter-add of each row's small block and, for
the covariance route, ``N Sigma - Sigma (sum_u r_uj Q_uj) Sigma``: one
``d x d`` product per component and pass, never per row. Rows are grouped:
a missingness pattern shared by many rows is factorised once for all of them;
other rows are batched by route and block size and factorised in stacked
calls, in chunks of bounded size. Rare block sizes join a batch of a slightly
larger size, their blocks padded with identity rows and columns (exact; see
:func:`_padded_sizes`), and small blocks are factorised by a Cholesky
vectorised across the batch rather than one LAPACK call per matrix (see
:class:`_Roots`): on incomplete data the cost is mostly the number of stacked
calls, not arithmetic. Dense data only.

``covariances`` is the ``(n_components, n_features, n_features)`` array of
the ``Sigma_j``. ``reg_covar`` is a floor, ``Sigma_j - diag(reg_covar)``
positive semi-definite, and the update is the exact maximiser under it (see
:func:`floor_eigenvalues`), so EM never lowers its objective, also on
degenerate data where adding ``reg_covar`` to the diagonal after the update did.
"""

from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from ._family import (
    POSITIVE_OR_AUTO,
    CovarianceFamily,
    Mixture,
    Statistics,
    draw_components,
    log_weights,
    mixture_weights,
    normalize_log_prob,
    variance_floor,
)
from ._observed import DataMoments, row_batches

REG_COVAR_FRACTION = 1e-6
"""``reg_covar="auto"``: the regularisation as a fraction of each feature's variance
(scikit-learn's default ``reg_covar`` on standardised data)."""

# Rows are processed in chunks of at most about this many numbers per
# temporary (component x row x feature, or x block entry), so no temporary
# grows with n * K * d.
_CHUNK_ENTRIES = 2**20

# Rows batched by block size factorise blocks up to this size with a
# vectorised Cholesky (see _Roots), larger ones with LAPACK.
_VECTORISED_CHOLESKY_SIZE = 32

# The fixed price of one vectorised step over a batch of rows, in floating-point
# operations of stacked work (see _padded_sizes).
_STEP_FLOPS = 2**16

# A missingness pattern with at least this many rows is factorised once for
# all its rows; rows of rarer patterns are batched by route and block size and
# factorised row by row in stacked calls.
_SHARED_PATTERN_ROWS = 16


@dataclass(frozen=True)
class FullMoments(DataMoments):
    """:class:`~skgmmfill._observed.DataMoments` plus the ``d x d`` products that the
    initial covariances need (dense data only).

    Attributes
    ----------
    gram, value_mask_gram, mask_gram : ndarray of shape (n_features, n_features) or 0.0
        ``V^T V``, ``V^T M`` and ``M^T M`` with ``V`` the values (0 at missing
        entries) and ``M`` the mask; after :meth:`filled`, ``gram`` alone.
    """

    gram: object = 0.0
    value_mask_gram: object = 0.0
    mask_gram: object = 0.0

    @classmethod
    def of(cls, observed):
        values, mask = observed.values, observed.mask
        return observed.moments().extended(cls, gram=values.T @ values, value_mask_gram=values.T @ mask,
                                           mask_gram=mask.T @ mask)

    def filled(self, fill):
        """With ``f`` the fill, the filled rows are ``V + (1 - M) diag(f)``, so ``gram`` gains
        ``(s 1^T - V^T M) diag(f)``, its transpose and ``diag(f) (n 1 1^T - c 1^T - 1 c^T + M^T M)
        diag(f)`` (``s`` and ``c`` the column sums and counts); the pairwise products that only
        ``gram`` needs are then spent."""
        fill = np.asarray(fill, dtype=np.float64)
        if not fill.any():
            return self
        cross = (self.sums[:, np.newaxis] - self.value_mask_gram) * fill
        both_missing = self.n_samples - self.counts[:, np.newaxis] - self.counts + self.mask_gram
        gram = self.gram + cross + cross.T + both_missing * np.outer(fill, fill)
        return replace(super().filled(fill), gram=gram, value_mask_gram=0.0, mask_gram=0.0)


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
    reg_covar : float, ndarray of shape (n_features,) or "auto"
        Floor ``D = diag(reg_covar)`` under every covariance, at
        initialisation and in each update: ``Sigma_j - D`` stays positive
        semi-definite (:func:`floor_eigenvalues`), so the covariances stay
        positive definite. ``"auto"`` (resolved by :meth:`for_data`) is
        :data:`REG_COVAR_FRACTION` of each feature's variance.
    """

    reg_covar: object = 1e-6
    name = "full"
    supports_sparse = False
    hyperparameters = ("reg_covar",)
    hyperparameter_constraints = {"reg_covar": POSITIVE_OR_AUTO}
    contract_hyperparameters = {"reg_covar": 1e-6}
    singular_hint = "increase reg_covar or decrease n_components"

    def for_data(self, moments, scale, dtype, residual_moments=None):
        regularization = variance_floor(self.reg_covar, REG_COVAR_FRACTION, moments, scale, dtype, per_feature=True)
        return replace(self, reg_covar=regularization)

    def n_parameters(self, n_components, n_features):
        return n_components * (n_features + n_features * (n_features + 1) // 2)

    def dense_covariances(self, covariances, n_features):
        return covariances

    def covariances_shape(self, n_components, n_features):
        return (n_components, n_features, n_features)

    def moments(self, observed):
        return observed.cached("full moments", lambda: FullMoments.of(observed))

    def initial_covariances(self, moments, means):
        """The mean over all rows of ``(values_u - mu_j)(values_u - mu_j)^T``, floored by ``reg_covar``.

        Missing entries count as 0, as in the spherical and diag rules.
        """
        n_samples = moments.n_samples
        second = moments.gram / n_samples
        column_means = moments.sums / n_samples
        cross = means[:, :, np.newaxis] * column_means
        covariances = second - cross - np.swapaxes(cross, 1, 2) + means[:, :, np.newaxis] * means[:, np.newaxis, :]
        return floor_eigenvalues(covariances, self.reg_covar).astype(means.dtype)

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
        divided by ``N_j`` (``N_j + 1`` under the prior) and floored by
        ``reg_covar`` (:func:`floor_eigenvalues`, the exact maximiser under the
        floor). Centring on ``mu0`` keeps the sums small whatever the data's offset.
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
        covariances = floor_eigenvalues(0.5 * (scatter + np.swapaxes(scatter, 1, 2)), self.reg_covar)
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
        for chunk, marginal, pairs in _pass(observed, mixture, resp):
            if chunk.complete:
                continue
            mixed = np.zeros(chunk.values.shape, dtype=observed.dtype)
            completed = mixture.means[pairs.components] + pairs.residuals
            for k, these in pairs.by_component():
                mixed[pairs.rows[these]] += pairs.weights[these, np.newaxis] * completed[these]
            imputed[chunk.rows] = np.where(chunk.observed, chunk.values, mixed)
        return imputed

    def impute_entries(self, observed, resp, mixture, rows, cols):
        # only the rows holding entries are conditioned on (each once), not every row of `observed`
        unique_rows, positions = np.unique(rows, return_inverse=True)
        return self.impute(observed.row_block(unique_rows), resp[unique_rows], mixture)[positions, cols]

    def predictive_variance(self, observed, resp, mixture):
        """``sum_j r_uj (C_ujll + x_tilde_ujl^2) - x_hat_ul^2``; 0 where observed.

        The diagonal of ``C_uj`` is that of ``P_mm^{-1}`` on the precision
        route and ``diag(Sigma) - diag(Sigma_{:o} Sigma_oo^{-1} Sigma_{o:})`` on
        the covariance route.
        """
        variance = np.zeros(observed.values.shape, dtype=observed.dtype)
        covariances = mixture.covariances
        for chunk, marginal, pairs in _pass(observed, mixture, resp, block_width=mixture.means.shape[1]):
            if chunk.complete:
                continue
            completed = mixture.means[pairs.components] + pairs.residuals
            inverse_roots = pairs.block_inverse_roots
            if chunk.precision_route:  # diag(P_mm^{-1}): column sums of squares of L^{-1}
                conditional = np.zeros_like(completed)
                _put(conditional, pairs.block, (inverse_roots**2).sum(axis=1))
            else:  # diag(Sigma) - column sums of squares of L^{-1} Sigma_{o:}
                # rows o of Sigma, as its columns (Sigma is symmetric); 0 at padding
                rows_of_sigma = _transpose(_take(covariances[pairs.components], pairs.block[..., np.newaxis, :]))
                explained = ((inverse_roots @ rows_of_sigma) ** 2).sum(axis=1)
                conditional = np.diagonal(covariances, axis1=1, axis2=2)[pairs.components] - explained
            first = np.zeros(chunk.values.shape, dtype=observed.dtype)
            second = np.zeros_like(first)
            for k, these in pairs.by_component():
                weights, rows = pairs.weights[these, np.newaxis], pairs.rows[these]
                first[rows] += weights * completed[these]
                second[rows] += weights * (completed[these] ** 2 + conditional[these])
            spread = np.maximum(second - first**2, 0.0)
            variance[chunk.rows] = np.where(chunk.observed, 0.0, spread)
        return variance

    def sample(self, observed, resp, mixture, random_state):
        """Matheron's rule: with a joint draw ``z ~ N(mu_j, Sigma_j)``, the missing
        block of ``z + Sigma_{:o} Sigma_oo^{-1} (x_o - z_o)`` has exactly the
        conditional distribution. That is the completion of the row around
        ``z`` instead of ``mu_j``, computed by either route for the drawn
        component only."""
        drawn = draw_components(resp, random_state)
        samples = np.array(observed.values, dtype=observed.dtype)
        factors = _factors(mixture.covariances)
        roots = np.linalg.cholesky(mixture.covariances)
        means = mixture.means
        n_components = len(means)
        for chunk in _chunks(observed, means.shape[1], n_components):
            if chunk.complete:
                continue
            components = drawn[chunk.rows]
            noise = random_state.standard_normal(size=chunk.values.shape).astype(means.dtype)
            joint = means[components] + np.einsum("cab,cb->ca", roots[components], noise)
            centres = np.broadcast_to(joint, (n_components, *joint.shape))
            marginal = _marginal(chunk, centres, factors)
            chosen = np.zeros((n_components, len(components)), dtype=bool)
            chosen[components, np.arange(len(components))] = True
            pairs = _pairs(chunk, marginal, factors, chosen, chosen.T.astype(means.dtype))
            conditioned = np.empty_like(joint)
            conditioned[pairs.rows] = joint[pairs.rows] + pairs.residuals
            samples[chunk.rows] = np.where(chunk.observed, chunk.values, conditioned)
        return samples


def floor_eigenvalues(covariances, floor):
    """The covariances nearest in likelihood to ``covariances`` with ``Sigma - D`` PSD.

    ``D = diag(floor)``. For a scatter ``S`` of weight ``N``, the maximiser of
    ``-N/2 log det Sigma - 1/2 tr(S Sigma^{-1})`` subject to ``Sigma >= D``
    is, with ``D^{-1/2} (S / N) D^{-1/2} = V diag(lambda) V^T``,
    ``Sigma = D^{1/2} V diag(max(lambda, 1)) V^T D^{1/2}``: the eigenvalues
    relative to the floor clipped at 1 (the constrained Gaussian maximum
    likelihood; a diagonal covariance clipped at ``min_variance`` is its
    special case). Adding ``D`` instead is no maximiser, and on a feature
    without spread it let EM's objective fall. The eigendecomposition runs
    only for components whose covariance is not already above the floor
    (one batched Cholesky tells).
    """
    floor = np.broadcast_to(np.asarray(floor, dtype=np.float64), covariances.shape[1:2])
    if not floor.any():
        return covariances
    diagonal = np.arange(len(floor))
    excess = np.array(covariances, dtype=np.float64)
    excess[:, diagonal, diagonal] -= floor
    below = np.ones(len(covariances), dtype=bool)
    for j, matrix in enumerate(excess):  # K Cholesky factorisations: the common case ends here
        try:
            np.linalg.cholesky(matrix)
            below[j] = False
        except np.linalg.LinAlgError:
            pass
    if not below.any():
        return covariances
    root = np.sqrt(floor)
    relative = covariances[below] / root[:, np.newaxis] / root
    eigenvalues, vectors = np.linalg.eigh(relative)
    clipped = (vectors * np.maximum(eigenvalues, 1.0)[:, np.newaxis, :]) @ np.swapaxes(vectors, 1, 2)
    floored = covariances.copy()
    floored[below] = 0.5 * (clipped + np.swapaxes(clipped, 1, 2)) * root[:, np.newaxis] * root
    return floored


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


def _row_groups(observed, n_components, chunk_rows):
    """``(rows, block, precision_route)`` triples covering every row once.

    A row takes the precision route when it has no more missing entries than
    observed ones; ``block`` is then its missing columns, otherwise its
    observed ones. ``block`` is 1-D for a pattern shared by all ``rows``, 2-D
    ``(len(rows), b)`` for rows batched by route and block size. A batch
    takes rows whose blocks are a little smaller than ``b`` too (see
    :func:`_padded_sizes`); their blocks end in the index ``n_features``,
    which the stacked-array helpers read as an identity row and column of the
    factorised matrix: exact, and far fewer, larger stacked calls.
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
    for route in (True, False):
        on_route = precision_route == route
        padded = _padded_sizes(sizes[on_route], n_components, chunk_rows)
        order = np.argsort(padded, kind="stable")
        route_rows, padded = rare[on_route][order], padded[order]
        bounds = np.flatnonzero(np.diff(padded)) + 1
        for rows in np.split(route_rows, bounds) if len(route_rows) else []:
            block_mask = ~mask[rows] if route else mask[rows]
            yield rows, _left_aligned(block_mask, n_features), route


def _padded_sizes(sizes, n_components, chunk_rows):
    """The block size each row is batched at: its own, or a little more.

    A batch of block size ``b`` costs about ``b`` vectorised steps per
    stage, whatever its number of rows, and each step has a fixed price (the
    interpreter and NumPy's call overhead: about :data:`_STEP_FLOPS`
    floating-point operations of stacked work). Padding ``r`` rows of size
    ``s`` up to ``b`` costs ``K r (b^3 - s^3)`` more operations. Going down
    from the largest size, a batch takes the next size while padding it is
    cheaper than the steps of a batch of its own, and the batch still fits
    in one chunk (``chunk_rows(b)`` rows; larger batches are cut into chunks
    anyway): rare sizes share stacked calls, frequent ones keep their own.
    Size 0 stays alone.
    """
    values, counts = np.unique(sizes, return_counts=True)
    batch_sizes = values.copy()
    largest = taken = 0
    for i in range(len(values) - 1, -1, -1):  # over the distinct sizes, not the rows
        value, count = int(values[i]), int(counts[i])
        padding = n_components * count * (largest**3 - value**3)
        if not value or not largest or padding > _STEP_FLOPS * value or taken + count > chunk_rows(largest):
            largest, taken = value, 0
        taken += count
        batch_sizes[i] = largest
    return batch_sizes[np.searchsorted(values, sizes)]


def _left_aligned(block_mask, n_features):
    """The columns where ``block_mask`` is True, per row, left-aligned and padded with ``n_features``."""
    rows, columns = np.nonzero(block_mask)
    slots = np.cumsum(block_mask, axis=1)[rows, columns] - 1
    width = int(slots.max()) + 1 if len(slots) else 0
    aligned = np.full((len(block_mask), width), n_features, dtype=np.intp)
    aligned[rows, slots] = columns
    return aligned


def _takes_precision_route(n_seen, n_features):
    """Whether to factorise the missing block of the precision (no larger than the observed one)."""
    return 2 * n_seen >= n_features


def _chunks(observed, n_features, n_components, block_width=0):
    """The row groups cut into :class:`_Chunk` of bounded size.

    ``block_width`` is the width of an extra per-row ``(b, block_width)``
    temporary a caller makes (the conditional variances).
    """

    def chunk_rows(size):
        return max(1, _CHUNK_ENTRIES // (n_components * max(n_features, size * max(size, block_width))))

    for rows, block, precision_route in _row_groups(observed, n_components, chunk_rows):
        chunk_size = chunk_rows(block.shape[-1])
        for batch in row_batches(len(rows), chunk_size):
            these = rows[batch]
            yield _Chunk(
                rows=these,
                values=observed.values[these],
                observed=observed.mask[these] != 0,
                block=block if block.ndim == 1 else block[batch],
                precision_route=precision_route,
            )


# --- the two phases of one chunk ------------------------------------------------------


class _Marginal(NamedTuple):
    """Phase 1, for every component: what the E-step needs.

    ``residuals`` is ``(K, c, d)``: the completed residuals ``x_tilde - centre``
    on the precision route; on the covariance route ``e`` (0 at the missing
    entries, which phase 2 fills). ``roots`` holds the Cholesky factors of the
    factorised blocks (a :class:`_Roots`; None for complete rows), and
    ``whitened`` ``L^{-1} e_o`` on the covariance route.
    """

    log_density: np.ndarray  # (K, c)
    residuals: np.ndarray
    roots: "_Roots | None"
    whitened: object


class _Pairs(NamedTuple):
    """Phase 2, for the (component, row) pairs that carry weight.

    Sorted by component. ``block`` is ``(b,)`` (shared) or ``(A, b)``;
    ``block_inverse_roots`` ``(A, b, b)`` is ``L^{-1}`` of each pair's block
    (None for complete rows).
    """

    components: np.ndarray  # (A,)
    rows: np.ndarray  # (A,), positions in the chunk
    weights: np.ndarray  # (A,)
    residuals: np.ndarray  # (A, d)
    block: np.ndarray
    block_inverse_roots: object

    def by_component(self):
        """``(k, slice)`` for each component present, in order."""
        return _component_slices(self.components)


def _marginal(chunk, centres, factors):
    """Log-densities of the observed entries under every component.

    Only Cholesky factorisations and triangular solves: ``O(b^3 / 3 + b^2)``
    per row and component, plus products with ``d x d`` matrices shared by
    all rows. ``centres`` is ``(K, d)`` (the means) or ``(K, c, d)`` (a centre
    per row, for sampling; the log-densities are then meaningless).
    """
    centres = centres[:, np.newaxis, :] if centres.ndim == 2 else centres
    n_components, n_rows = len(centres), len(chunk.rows)
    residuals = chunk.values - chunk.observed * centres  # e on observed entries, 0 on missing
    n_seen = chunk.observed.sum(axis=1)
    block = chunk.block
    roots = whitened = None
    if chunk.precision_route:
        log_dets = np.broadcast_to(factors.log_dets[:, np.newaxis], (n_components, n_rows))
        if block.shape[-1]:
            projected = _take(residuals @ factors.precisions, block)  # (P e)_m
            roots = _Roots.factorise(factors.precisions, block)  # P_mm = L L^T
            _put(residuals, block, -roots.solve_upper(roots.solve_lower(projected)))  # r_m = -P_mm^{-1} (P e)_m
            log_dets = log_dets + roots.log_dets()
        whitened_full = residuals @ np.swapaxes(factors.inverse_roots, 1, 2)  # L_Sigma^{-1} r
        mahalanobis = np.einsum("kcd,kcd->kc", whitened_full, whitened_full)
    else:
        roots = _Roots.factorise(factors.covariances, block)  # Sigma_oo = L L^T
        whitened = roots.solve_lower(_take(residuals, block))  # L^{-1} e_o
        mahalanobis = np.einsum("kcb,kcb->kc", whitened, whitened)
        log_dets = np.broadcast_to(roots.log_dets(), (n_components, n_rows))
    log_density = -0.5 * (n_seen * np.log(2.0 * np.pi) + log_dets + mahalanobis)
    return _Marginal(log_density, residuals, roots, whitened)


def _pairs(chunk, marginal, factors, active, weights):
    """Completed residuals and block inverses for the ``active`` ``(K, c)`` pairs.

    The inverses cost ``O(b^3)`` per pair, so they are formed only where a
    responsibility is nonzero (responsibilities under the smallest normal
    float are 0, see :func:`~skgmmfill._family.normalize_log_prob`): the
    result is exact, and well-separated components make most pairs inactive.
    ``weights`` is ``(c, K)``.
    """
    components, rows = np.nonzero(active)
    block = chunk.block if chunk.shared else chunk.block[rows]
    residuals = marginal.residuals[components, rows]
    inverse_roots = None
    if marginal.roots is not None:
        inverse_roots = marginal.roots.inverses(components, rows)
    if not chunk.precision_route:
        # r = Sigma v with v = Sigma_oo^{-1} e_o = L^{-T} (L^{-1} e_o), embedded
        solved = np.einsum("aji,aj->ai", inverse_roots, marginal.whitened[components, rows])
        embedded = np.zeros_like(residuals)
        _put(embedded, block, solved)
        missing = ~chunk.observed[rows]
        for k, these in _component_slices(components):
            completed = embedded[these] @ factors.covariances[k]
            residuals[these] = np.where(missing[these], completed, residuals[these])
    return _Pairs(components, rows, weights[rows, components], residuals, block, inverse_roots)


def _component_slices(components):
    """``(k, slice)`` of each run of equal values in the sorted ``components``."""
    bounds = np.flatnonzero(np.diff(components)) + 1
    starts = np.concatenate([[0], bounds])
    stops = np.concatenate([bounds, [len(components)]])
    return [(int(components[a]), slice(a, b)) for a, b in zip(starts, stops) if b > a]


def _truncated(resp):
    """Responsibilities below the float type's epsilon set to 0, each row renormalised.

    The statistics of a (row, component) pair cost ``O(b^3)`` (a block
    inverse), and with separated components most pairs carry a responsibility
    like 1e-50: adding such a pair cannot change a sum that holds any
    ordinary row, so it is left out (a truncated E-step). Parameters move by
    a relative amount of the order of epsilon; log-likelihoods are exact.
    """
    negligible = resp < np.finfo(resp.dtype).eps
    if not negligible.any():
        return resp
    kept = np.where(negligible, 0.0, resp)
    kept /= kept.sum(axis=1, keepdims=True)
    return kept


def _pass(observed, mixture, resp, block_width=0):
    """``(chunk, marginal, pairs)`` for every chunk, with given responsibilities (predictions)."""
    factors = _factors(mixture.covariances)
    n_components, n_features = mixture.means.shape
    for chunk in _chunks(observed, n_features, n_components, block_width):
        marginal = _marginal(chunk, mixture.means, factors)
        weights = resp[chunk.rows]
        yield chunk, marginal, _pairs(chunk, marginal, factors, weights.T > 0, weights)


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
    # the weighted block matrices, by route: C_mm (precision) and Q (covariance),
    # one row and column wider for the padding (see _scatter_add)
    block_sums = np.zeros((2, n_components, n_features + 1, n_features + 1), accumulator)
    covariance_route_totals = np.zeros(n_components, accumulator)  # sum_u r_uj over that route's rows
    log_likelihood = 0.0
    weights_log = log_weights(mixture.weights)
    for chunk in _chunks(observed, n_features, n_components):
        marginal = _marginal(chunk, means, factors)
        if not need_statistics:
            log_prob[chunk.rows] = marginal.log_density.T
            continue
        if resp is None:
            chunk_resp, log_prob_norm = normalize_log_prob(marginal.log_density.T + weights_log)
            log_likelihood += float(log_prob_norm.sum(dtype=np.float64))
        else:
            chunk_resp = resp[chunk.rows]
        chunk_resp = _truncated(chunk_resp)
        pairs = _pairs(chunk, marginal, factors, chunk_resp.T > 0, chunk_resp)
        totals += chunk_resp.sum(axis=0)
        for k, these in pairs.by_component():
            weighted = pairs.residuals[these] * pairs.weights[these, np.newaxis]
            residual_sums[k] += weighted.sum(axis=0)
            scatter_sums[k] += weighted.T @ pairs.residuals[these]
        if chunk.complete:
            continue
        blocks = _transpose(pairs.block_inverse_roots) @ pairs.block_inverse_roots  # P_mm^{-1} or Sigma_oo^{-1}
        _scatter_add(block_sums[int(not chunk.precision_route)], pairs, blocks)
        if not chunk.precision_route:
            covariance_route_totals += chunk_resp.sum(axis=0)
    if not need_statistics:
        return log_prob, None
    conditional_sums, precision_sums = block_sums[:, :, :n_features, :n_features]
    # covariance route: sum_u r_uj C_uj = N Sigma - Sigma (sum_u r_uj Q_uj) Sigma
    covariances = factors.covariances
    scatter_sums += conditional_sums
    scatter_sums += covariance_route_totals[:, np.newaxis, np.newaxis] * covariances
    scatter_sums -= covariances @ precision_sums @ covariances
    return None, FullStatistics(
        n_samples=observed.n_samples,
        log_likelihood=log_likelihood,
        resp_sums=totals.astype(observed.dtype),
        residual_sums=residual_sums,
        scatter_sums=scatter_sums,
    )


# --- small stacked-array helpers ---------------------------------------------------


def _block(matrices, block, pairs_last=False):
    """``matrices[j][block, block]`` for shared (``(b,)``) or per-row (``(c, b)``) columns: ``(K, g, b, b)``.

    With ``pairs_last``, per-row blocks come as ``(b, b, c, K)``. A padding
    index (``n_features``, see :func:`_row_groups`) gives an identity row and
    column, so a factorisation and its inverse leave the padded slots alone.
    """
    n_components, n_features = matrices.shape[:2]
    if block.ndim == 1:
        return matrices[:, block[:, np.newaxis], block][:, np.newaxis]
    rows, slots = np.nonzero(block == n_features)
    safe = np.where(block < n_features, block, 0)
    flat = safe[:, :, np.newaxis] * n_features + safe[:, np.newaxis, :]  # one gather, not three
    if pairs_last:
        gathered = np.take(matrices.reshape(n_components, -1).T, np.transpose(flat, (1, 2, 0)), axis=0)
        gathered[slots, :, rows] = 0.0
        gathered[:, slots, rows] = 0.0
        gathered[slots, slots, rows] = 1.0
        return gathered
    gathered = np.take(matrices.reshape(n_components, -1), flat, axis=1)  # faster than fancy indexing
    gathered[:, rows, slots, :] = 0.0
    gathered[:, rows, :, slots] = 0.0
    gathered[:, rows, slots, slots] = 1.0
    return gathered


def _take(vectors, block):
    """``vectors[..., u, block_u]`` for ``(..., c, d)`` vectors: ``(..., c, b)``, 0 at padding.

    ``block`` broadcasts against ``vectors`` in all but the last axis.
    """
    if block.ndim == 1:
        return vectors[..., block]
    n_features = vectors.shape[-1]
    kept = block < n_features
    shape = (*np.broadcast_shapes(vectors.shape[:-1], block.shape[:-1]), block.shape[-1])
    gathered = np.take_along_axis(vectors, np.broadcast_to(np.where(kept, block, 0), shape), axis=-1)
    return gathered if kept.all() else np.where(kept, gathered, 0.0)


def _put(vectors, block, values):
    """``vectors[..., u, block_u] = values[..., u]`` in place; padding slots are skipped."""
    if block.ndim == 1:
        vectors[..., block] = values
        return
    rows, slots = np.nonzero(block < vectors.shape[-1])
    vectors[..., rows, block[rows, slots]] = values[..., rows, slots]


def _scatter_add(matrices, pairs, blocks):
    """``matrices[k][block, block] += weight * block_matrix`` for every pair.

    ``matrices`` is ``(K, d + 1, d + 1)``: the last row and column collect
    (and drop) the padding. ``blocks`` is ``(A, b, b)``. For shared columns
    the weights of each component are summed first; otherwise one unbuffered
    add puts every pair's block where its own columns say.
    """
    width = matrices.shape[-1]
    block = pairs.block
    if block.ndim == 1:
        for k, these in pairs.by_component():
            # the pairs of one component share its block matrix
            matrices[k][block[:, np.newaxis], block] += pairs.weights[these].sum() * blocks[these.start]
        return
    row_starts = (block + (pairs.components * width)[:, np.newaxis]) * width  # (A, b)
    flat = row_starts[:, :, np.newaxis] + block[:, np.newaxis, :]
    np.add.at(matrices.reshape(-1), flat.ravel(), (blocks * pairs.weights[:, np.newaxis, np.newaxis]).ravel())


class _Roots(NamedTuple):
    """Cholesky factors ``L`` of one chunk's blocks, for every (component, row) pair.

    Two layouts, one interface. Blocks of rows batched by size are
    factorised by a vectorised Cholesky when small (``b <= 32``): ``b``
    steps over arrays ``(b, b, c, K)`` with the pairs last, faster than
    LAPACK's per-matrix calls, whose fixed cost dominates for small matrices
    (the substitutions and the inverses then run on the same layout, where
    every step is contiguous). Larger blocks and shared patterns go to
    ``np.linalg.cholesky`` on ``(K, g, b, b)`` (``g`` is 1 for a shared
    pattern).
    """

    factors: np.ndarray
    pairs_last: bool

    @classmethod
    def factorise(cls, matrices, block):
        """The Cholesky factors of ``matrices[k][block_u, block_u]``."""
        if block.ndim == 1 or not 0 < block.shape[1] <= _VECTORISED_CHOLESKY_SIZE:
            return cls(np.linalg.cholesky(_block(matrices, block)), pairs_last=False)
        stacked = _block(matrices, block, pairs_last=True)
        size = stacked.shape[0]
        roots = stacked.reshape(size, size, -1)  # factorised in place: the gathered copy is ours
        for j in range(size):
            done = roots[j, :j]
            pivot = np.sqrt(roots[j, j] - np.einsum("kn,kn->n", done, done))
            roots[j, j] = pivot
            roots[j + 1 :, j] -= np.einsum("ikn,kn->in", roots[j + 1 :, :j], done)
            roots[j + 1 :, j] /= pivot
            roots[j, j + 1 :] = 0.0
        return cls(stacked, pairs_last=True)

    def log_dets(self):
        """``log det(L L^T)``: ``(K, g)``."""
        if self.pairs_last:
            return 2.0 * np.log(np.diagonal(self.factors, axis1=0, axis2=1)).sum(axis=-1).T
        return 2.0 * np.log(np.diagonal(self.factors, axis1=2, axis2=3)).sum(axis=2)

    def solve_lower(self, rhs):
        """``L^{-1} y`` for ``y`` ``(K, c, b)``, by forward substitution (``O(b^2)`` per pair)."""
        return self._substitute(rhs, upper=False)

    def solve_upper(self, rhs):
        """``L^{-T} y``, by back substitution."""
        return self._substitute(rhs, upper=True)

    def _substitute(self, rhs, upper):
        # matrix[i] is row i of L, or of L^T (column i of L), as a view
        size = rhs.shape[-1]
        if self.pairs_last:
            roots = self.factors.reshape(size, size, -1)  # (b, b, c K)
            matrix = np.swapaxes(roots, 0, 1) if upper else roots
            diagonal = np.diagonal(roots).T
            rhs = np.ascontiguousarray(np.transpose(rhs, (2, 1, 0))).reshape(size, -1)  # (b, c K)
        else:
            roots = self.factors[:, 0] if self.factors.shape[1] == 1 else self.factors  # (K, [c,] b, b)
            matrix = np.moveaxis(roots, -1 if upper else -2, 0)  # (b, K, [c,] b)
            diagonal = np.moveaxis(np.diagonal(self.factors, axis1=2, axis2=3), -1, 0)  # (b, K, g)
            rhs = np.moveaxis(rhs, -1, 0)  # (b, K, c)
            product = "kj,jkc->kc" if roots.ndim == 3 else "kcj,jkc->kc"
        solution = np.empty_like(rhs)
        for i in range(size - 1, -1, -1) if upper else range(size):
            done = slice(i + 1, size) if upper else slice(0, i)
            if self.pairs_last:
                known = np.einsum("jn,jn->n", matrix[i, done], solution[done])
            else:
                known = np.einsum(product, matrix[i][..., done], solution[done])
            solution[i] = (rhs[i] - known) / diagonal[i]
        if self.pairs_last:
            return np.transpose(solution.reshape(size, *self.factors.shape[2:]), (2, 1, 0))
        return np.moveaxis(solution, 0, -1)

    def inverses(self, components, rows):
        """``L^{-1}`` for the pairs ``(components[a], rows[a])``: ``(A, b, b)``.

        A shared pattern inverts one factor per component.
        """
        if self.pairs_last:
            return np.ascontiguousarray(np.moveaxis(_stacked_lower_inverse(self.factors[:, :, rows, components]), -1, 0))
        if self.factors.shape[1] == 1:
            return _lower_inverse(self.factors[:, 0])[components]
        return _lower_inverse(self.factors[components, rows])


def _factors(covariances):
    """Cholesky-based inverse, inverse root and log-determinant of each ``Sigma_j``."""
    roots = np.linalg.cholesky(covariances)
    inverse_roots = np.tril(np.linalg.inv(roots))  # one batched call; tril drops rounding above the diagonal
    precisions = np.swapaxes(inverse_roots, 1, 2) @ inverse_roots
    log_dets = 2.0 * np.log(np.diagonal(roots, axis1=1, axis2=2)).sum(axis=1)
    return _Factors(covariances, precisions, inverse_roots, log_dets)


def _lower_inverse(lower):
    """Inverses of a stack ``(..., b, b)`` of lower-triangular matrices.

    Blocked: with ``L = [[A, 0], [C, D]]``, ``L^{-1} = [[A^{-1}, 0],
    [-D^{-1} C A^{-1}, D^{-1}]]``, so most of the work is stacked matrix
    products; blocks of up to 16 rows by :func:`_stacked_lower_inverse`. For
    many small matrices this is several times faster than ``np.linalg.inv``,
    which factorises each matrix again.
    """
    size = lower.shape[-1]
    if size <= 16:
        return np.moveaxis(_stacked_lower_inverse(np.moveaxis(lower, (-2, -1), (0, 1))), (0, 1), (-2, -1))
    half = size // 2
    upper_left = _lower_inverse(lower[..., :half, :half])
    lower_right = _lower_inverse(lower[..., half:, half:])
    inverse = np.zeros_like(lower)
    inverse[..., :half, :half] = upper_left
    inverse[..., half:, half:] = lower_right
    inverse[..., half:, :half] = -(lower_right @ (lower[..., half:, :half] @ upper_left))
    return inverse


def _stacked_lower_inverse(lower):
    """Inverses of lower-triangular matrices stacked last, ``(b, b, ...)``.

    Forward substitution, one vectorised step per row over all matrices at
    once (contiguous when the matrices are the last axes).
    """
    size = lower.shape[0]
    inverse = np.zeros_like(lower)
    diagonal = np.diagonal(lower, axis1=0, axis2=1)  # (..., b)
    for i in range(size):
        inverse[i, :i] = -np.einsum("k...,kj...->j...", lower[i, :i], inverse[:i, :i]) / diagonal[..., i]
        inverse[i, i] = 1.0 / diagonal[..., i]
    return inverse


def _transpose(matrices):
    return np.swapaxes(matrices, -1, -2)
