"""The EM driver: initialisation, iteration, stopping rule, several
initialisations, warm starts and progress, for every family and every backend.

The driver never reads data itself. It runs on a *data source*, which sums a
function over its row blocks (``reduce``) and hands out chosen rows; in
memory that is :class:`~skgmmfill._observed.ObservedEntries` itself (one
block). Each iteration is

1. ``statistics = source.reduce(family.accumulate(block, mixture))``: the
   fused E-step and sufficient statistics of every block, summed;
2. ``mixture = family.update(statistics, mixture, prior)``: the M-step, from
   the sums alone.

Only the parameters travel to the blocks and only the statistics come back,
so the same loop serves rows in memory, rows in blocks and rows on a cluster.
The family is a :class:`~skgmmfill._family.CovarianceFamily`.
"""

import time
import warnings
from functools import partial
from operator import methodcaller
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from sklearn.cluster import KMeans

from ._biases import fit_offsets, mixture_row_shrinkage, remove_offsets
from ._family import Mixture
from ._fitted import FittedMixture, Standardization, Units, standardized


class ObjectiveDecreaseWarning(RuntimeWarning):
    """EM's objective fell by more than rounding: a bug, reported rather than taken for convergence."""


class EMResult(NamedTuple):
    """Outcome of one run of EM from one initialisation.

    Attributes
    ----------
    mixture : Mixture
        The parameters after the final M-step.
    lower_bound : float
        Mean per-row log-likelihood computed by the final E-step, that is, of
        the parameters *before* the final M-step.
    lower_bounds : list of float
        The mean per-row log-likelihood of every E-step, in order.
    objectives : list of float
        What EM maximised at every E-step: ``lower_bounds``, plus the log prior
        of the parameters divided by ``n_samples`` when there are priors.
    n_iter : int
        Number of E-steps (each followed by one M-step).
    converged : bool
        Whether the stopping rule was met within ``max_iter`` iterations.
    """

    mixture: Mixture
    lower_bound: float
    lower_bounds: list
    objectives: list
    n_iter: int
    converged: bool


class Prepared(NamedTuple):
    """The data as the mixture sees them, and what was estimated on the way.

    Everything here is in the standardised coordinates.

    Attributes
    ----------
    source : data source
        The standardised observed entries, or their residuals after the offsets.
    moments : DataMoments
        Column counts and sums of the standardised observed entries.
    standardization : Standardization
    units : Units
    data_zero : ndarray of shape (n_features,)
        Where the mixture's data had 0 before standardisation: the fill of the
        course's initialisation (0 itself for residuals after offsets).
    offsets : tuple of (float, ndarray) or None
        ``(b, c)``: the global mean and column offsets, with ``biases``.
    bias_shrinkage : tuple of float or None
        ``(lambda_r, lambda_c)``, the ridge strengths of the row and column
        offsets (estimated for ``bias_shrinkage="auto"``), with ``biases``.
    prior : tuple of (float, ndarray) or None
        ``(kappa, m)`` of the conjugate prior on the means.
    residual_moments : DataMoments or None
        With ``residual_moments``: the moments of the residuals, the
        standardised entries less both offsets (with ``biases``; ``moments``
        themselves without).
    """

    source: object
    moments: object
    standardization: Standardization
    units: Units
    data_zero: np.ndarray
    offsets: object
    bias_shrinkage: object
    prior: object
    residual_moments: object = None


def standardization(source, *, biases):
    """The :class:`Standardization` of ``source``: two reductions.

    The first gives column counts, sums and the largest magnitude, the second
    the squared deviations from the location, measured in a power of two
    near that magnitude so that nothing overflows or underflows. A feature
    with no observed entry gets location 0; data without spread, scale 1.
    """
    extent = source.reduce(methodcaller("extent"))
    n_observed = extent.counts.sum()
    if biases:
        location = np.full(len(extent.sums), extent.sums.sum() / n_observed if n_observed else 0.0)
    else:
        location = np.divide(extent.sums, extent.counts, out=np.zeros(len(extent.sums)), where=extent.counts > 0)
    if not np.all(np.isfinite(location)):
        raise ValueError(
            "The observed values are too large to average in floating point "
            f"(largest magnitude {extent.largest:.3g}); rescale the data."
        )
    unit = 2.0 ** np.floor(np.log2(extent.largest)) if extent.largest > 0 else 1.0
    deviations = source.reduce(partial(_squared_deviations, location, unit))
    scale = unit * np.sqrt(deviations / n_observed) if n_observed else 0.0
    return Standardization(location, float(scale) if scale > 0 else 1.0)


def _squared_deviations(location, unit, block):
    return block.squared_deviations(location, unit)


def prepare(source, *, biases, bias_shrinkage, mean_precision_prior, standardized_as=None, row_offsets_in_model=False,
            residual_moments=False):
    """Standardisation, offsets and the prior's centre, by reductions shared by every backend.

    The data are first standardised (:func:`standardization`, or the given
    one, for a warm start: EM continues in the coordinates it stopped in).
    With ``biases`` the offsets ``(b, c)`` are then fitted (see
    :mod:`skgmmfill._biases`) and the mixture sees the residuals (keeping
    the row offsets where ``row_offsets_in_model``: the family infers them).
    With ``residual_moments`` the moments of the data less both offsets are
    also returned (one more pass over the data; with the row offsets kept, a
    map of the data too).
    The prior ``mu_j ~ N(m, Sigma_j / kappa)`` with
    ``kappa = mean_precision_prior`` centres on the column means of the
    observed entries, or on 0 (the residuals' expected mean) with ``biases``.
    """
    standardized_as = standardization(source, biases=biases) if standardized_as is None else standardized_as
    location, scale = standardized_as
    source = source.map(partial(standardized, standardized_as))
    moments = source.reduce(methodcaller("moments"))
    units = Units(np.log(scale), moments.counts.sum() / moments.n_samples)
    data_zero = np.zeros(len(location)) if biases else -location / scale
    offsets = shrinkage = prior = None
    residuals = moments if residual_moments else None
    if biases:
        global_mean, column_offsets, shrinkage = fit_offsets(source, moments, bias_shrinkage)
        offsets = (global_mean, column_offsets)
        if residual_moments and row_offsets_in_model:  # before the mixture's residuals: one copy of values at a time
            residuals = source.map(partial(_residuals, *offsets, shrinkage[0])).reduce(methodcaller("moments"))
        source = source.map(partial(_residuals, *offsets, mixture_row_shrinkage(shrinkage[0], row_offsets_in_model)))
        if residual_moments and not row_offsets_in_model:  # the mixture's residuals already lack both offsets
            residuals = source.reduce(methodcaller("moments"))
    if mean_precision_prior is not None:
        centre = np.zeros(len(moments.sums)) if biases else moments.column_means()
        prior = (mean_precision_prior, centre.astype(source.dtype))
    return Prepared(source, moments, standardized_as, units, data_zero.astype(source.dtype), offsets, shrinkage,
                    prior, residuals)


def _residuals(global_mean, column_offsets, shrinkage, block):
    return remove_offsets(global_mean, column_offsets, shrinkage, block)[0]


def _uniform_weights(n_components, dtype):
    return np.full(n_components, 1.0 / n_components, dtype=dtype)


def initialize_random_from_data(source, n_components, family, random_state, data_zero=0.0):
    """Start from ``n_components`` distinct rows drawn at random (the course's rule).

    The means are the drawn rows with the data's 0 at their missing entries
    (``data_zero``: where 0 lies in the standardised coordinates), the
    weights are uniform and the covariances follow the family's initial rule
    (:meth:`~skgmmfill._family.CovarianceFamily.initial_covariances`) with
    every missing entry at the data's 0 too, regularised as the family
    regularises every update, so that EM never starts from a zero variance.
    Because 0 is a point in the data's own units, this start depends on
    where the data's origin is; :func:`initialize_kmeans` does not.

    The rows are ``random_state.choice(n_samples, n_components, replace=False)``,
    so ``random_state=np.random.RandomState(seed)`` draws exactly the rows that
    the course's ``np.random.seed(seed)`` drew.
    """
    rows = random_state.choice(source.n_samples, size=n_components, replace=False)
    means = source.dense_rows(rows, data_zero)
    moments = source.reduce(family.moments).filled(data_zero)
    return Mixture(
        weights=_uniform_weights(n_components, source.dtype),
        means=means,
        covariances=family.initial_covariances(moments, means),
    )


KMEANS_SAMPLE_ROWS = 10_000
"""The k-means start clusters all rows up to this many, else this many evenly
spaced rows; every row is then labelled by the nearest centre in one pass."""


def kmeans_sample(n_samples):
    """The rows the k-means start clusters (see :data:`KMEANS_SAMPLE_ROWS`), or None for all."""
    if n_samples <= KMEANS_SAMPLE_ROWS:
        return None
    return np.linspace(0, n_samples - 1, KMEANS_SAMPLE_ROWS).round().astype(np.intp)


def initialize_kmeans(source, n_components, family, random_state):
    """Start from a k-means partition, like GaussianMixture's default.

    One run of :class:`~sklearn.cluster.KMeans` clusters the standardised
    rows with 0, about each column's observed mean, at the missing entries
    (sparse rows stay sparse, so dense and sparse data start alike): all of
    them up to :data:`KMEANS_SAMPLE_ROWS` rows, else that many evenly spaced
    rows, so that the start costs a few EM iterations at any scale (k-means
    runs to convergence, tens of passes over what it clusters). Every row is
    then labelled by its nearest centre, and these clusters, as hard
    responsibilities, give the parameters by one update, their statistics
    computed block by block; a component falls back to the column means and
    the family's initial covariances wherever it has no observation to
    estimate them from. Every backend clusters the same rows.
    """
    moments = source.reduce(family.moments)
    rows = source.filled_rows(kmeans_sample(source.n_samples))
    # KMeans copies its input only to centre dense data; sparse rows are never modified
    kmeans = KMeans(n_components, n_init=1, random_state=random_state, copy_x=not sp.issparse(rows))
    kmeans.fit(rows)
    means = np.tile(moments.column_means().astype(source.dtype), (n_components, 1))
    fallback = Mixture(
        weights=_uniform_weights(n_components, source.dtype),
        means=means,
        covariances=family.initial_covariances(moments, means),
    )
    statistics = source.reduce(partial(_cluster_statistics, family, kmeans, fallback))
    return family.update(statistics, fallback)


def _cluster_statistics(family, kmeans, mixture, block):
    """A block's statistics with each row's k-means cluster as its responsibility."""
    # argmin_j ||x - c_j||^2 from one product with the centres (not KMeans.predict, whose
    # validation copies a row block of a larger sparse matrix)
    centres = kmeans.cluster_centers_.astype(block.dtype)
    labels = np.argmin(np.einsum("jl,jl->j", centres, centres) - 2.0 * (block.filled_rows() @ centres.T), axis=1)
    resp = np.zeros((block.n_samples, len(mixture.means)), dtype=block.dtype)
    resp[np.arange(block.n_samples), labels] = 1.0
    return family.statistics(block, resp, mixture)


_INITIALIZERS = {"random_from_data": initialize_random_from_data, "kmeans": initialize_kmeans}


STOPPING_RULES = ("mean_gain", "relative_gain")


def objective(lower_bound, mixture, family, prior, n_samples, units=Units()):
    """What EM maximises: the mean log-likelihood, plus the log prior of the
    parameters divided by ``n_samples`` (in the data's units; 0 without priors)."""
    return lower_bound + family.log_prior(mixture, prior, units.log_scale) / n_samples


def run_em(
    source,
    mixture,
    family,
    *,
    max_iter,
    tol,
    stopping_rule="mean_gain",
    prior=None,
    units=Units(),
    previous_objective=-np.inf,
    progress=None,
):
    """Alternate E- and M-steps from ``mixture`` until the objective stops rising.

    Each iteration is a fused E-step giving the objective ``L_new`` (the mean
    log-likelihood in the data's units, plus the scaled log prior of the
    parameters: the means' under ``prior``, and the family's own) and the summed statistics, followed by an update,
    the last iteration included. The loop stops after the first E-step with
    ``L_new - L_old <= tol`` (``stopping_rule="mean_gain"``; the gain does
    not depend on the data's units) or ``L_new - L_old <= tol * |L_new|``
    (``"relative_gain"``, the course's rule), or after ``max_iter``
    iterations.

    Every update maximises the objective (or, where a family keeps a
    parameter, does not lower it), so the objective never falls. A fall
    larger than rounding (``sqrt(eps)`` of the data's dtype, relative to
    ``1 + |L|``) is a bug: it is reported by an
    :class:`ObjectiveDecreaseWarning` naming the iteration and the size of the
    fall, once per run, and is never taken for convergence.
    """
    if stopping_rule not in STOPPING_RULES:
        raise ValueError(f"stopping_rule must be one of {STOPPING_RULES}, got {stopping_rule!r}")
    rounding = float(np.sqrt(np.finfo(source.dtype).eps))
    current = previous_objective
    lower_bounds, objectives = [], []
    converged = reported = False
    for n_iter in range(1, max_iter + 1):
        previous = current
        statistics = source.reduce(partial(family.accumulate, mixture=mixture))
        lower_bound = units.log_density(statistics.log_likelihood / statistics.n_samples, units.observed_per_row)
        current = objective(lower_bound, mixture, family, prior, statistics.n_samples, units)
        mixture = family.update(statistics, mixture, prior)
        lower_bounds.append(lower_bound)
        objectives.append(current)
        change = current - previous
        if progress is not None:
            progress.iteration(n_iter, change, current)
        if change < -rounding * (1.0 + abs(current)):
            if not reported:
                reported = True
                warnings.warn(
                    f"EM's objective fell by {-change:.3g} at iteration {n_iter} (from {previous:.10g} "
                    f"to {current:.10g}). EM never lowers it, so this is a bug in skgmmfill; please "
                    "report it with the data's shape and the estimator's parameters.",
                    ObjectiveDecreaseWarning,
                    stacklevel=2,
                )
        elif change <= (tol * abs(current) if stopping_rule == "relative_gain" else tol):
            converged = True
            break
    return EMResult(mixture, lower_bounds[-1], lower_bounds, objectives, n_iter, converged)


def fit_mixture(
    source,
    family,
    *,
    n_components,
    init_params="random_from_data",
    n_init,
    max_iter,
    tol,
    random_state,
    stopping_rule="mean_gain",
    prior=None,
    units=Units(),
    data_zero=0.0,
    warm_start=None,
    verbose=0,
    verbose_interval=10,
):
    """Run EM from ``n_init`` initialisations and keep the best.

    Parameters
    ----------
    source : data source
        :class:`~skgmmfill._observed.ObservedEntries` or another object with
        its ``reduce``, ``dense_rows``, ``filled_rows``, ``n_samples`` and
        ``dtype``.
    family : CovarianceFamily
    init_params : {"random_from_data", "kmeans"}
        The initialisation (:func:`initialize_random_from_data` or
        :func:`initialize_kmeans`).
    random_state : numpy.random.RandomState
        Seeds every initialisation in turn.
    stopping_rule : {"mean_gain", "relative_gain"}
        See :func:`run_em`.
    prior : tuple of (float, ndarray) or None
        ``(kappa, m)``: the conjugate prior ``mu_j ~ N(m, Sigma_j / kappa)`` on
        the means (MAP-EM), or None for maximum likelihood.
    units : Units
        What brings the log-likelihoods of ``source`` to the data's units.
    data_zero : ndarray of shape (n_features,) or float
        The fill of ``"random_from_data"`` (see :func:`initialize_random_from_data`).
    warm_start : tuple of (Mixture, float) or None
        The parameters and final objective of a previous fit: EM continues
        from them, once, instead of initialising ``n_init`` times.

    Returns
    -------
    EMResult
        The run with the highest final objective.
    """
    progress = _Progress(verbose, verbose_interval, max_iter * (1 if warm_start is not None else n_init))
    initialize = _INITIALIZERS[init_params]
    if initialize is initialize_random_from_data:
        initialize = partial(initialize, data_zero=data_zero)
    best = None
    for init in range(1 if warm_start is not None else n_init):
        progress.start(init)
        if warm_start is None:
            mixture = initialize(source, n_components, family, random_state)
            previous_objective = -np.inf
        else:
            mixture, previous_objective = warm_start
        result = run_em(
            source,
            mixture,
            family,
            max_iter=max_iter,
            tol=tol,
            stopping_rule=stopping_rule,
            prior=prior,
            units=units,
            previous_objective=previous_objective,
            progress=progress,
        )
        progress.end(result)
        if best is None or result.objectives[-1] > best.objectives[-1]:
            best = result
    return best


class Fit(NamedTuple):
    """What :func:`fit_model` returns.

    Attributes
    ----------
    model : FittedMixture
    result : EMResult
        The best run.
    counts : ndarray of shape (n_features,)
        Observed entries per feature.
    mean_prior : ndarray of shape (n_features,) or None
        The centre ``m`` of the prior on the means (standardised), with ``mean_precision_prior``.
    """

    model: FittedMixture
    result: EMResult
    counts: np.ndarray
    mean_prior: object


def fit_model(source, family, *, biases, bias_shrinkage, mean_precision_prior, warm_start=None, **options):
    """Everything a fit does: :func:`prepare`, the family resolved for the data,
    :func:`fit_mixture`, and the :class:`~skgmmfill._fitted.FittedMixture`.

    ``warm_start`` is ``(model, objective)``, a previous fit's model and final
    objective: EM continues from its parameters in its coordinates. The other
    ``options`` are those of :func:`fit_mixture`.
    """
    warm_model = None if warm_start is None else warm_start[0]
    prepared = prepare(
        source,
        biases=biases,
        bias_shrinkage=bias_shrinkage,
        mean_precision_prior=mean_precision_prior,
        standardized_as=None if warm_model is None else warm_model.standardization,
        row_offsets_in_model=family.models_row_offsets,
        residual_moments=family.needs_residual_moments,
    )
    family = family.for_data(prepared.moments, prepared.standardization.scale, source.dtype,
                             prepared.residual_moments)
    result = fit_mixture(
        prepared.source,
        family,
        prior=prepared.prior,
        units=prepared.units,
        data_zero=prepared.data_zero,
        warm_start=None if warm_start is None else (warm_model.mixture, warm_start[1]),
        **options,
    )
    counts = prepared.moments.counts
    model = FittedMixture(family, result.mixture, prepared.standardization, prepared.offsets, prepared.bias_shrinkage,
                          counts == 0)
    return Fit(model, result, counts, None if prepared.prior is None else prepared.prior[1])


class _Progress:
    """Prints EM progress in the manner of scikit-learn's mixtures.

    ``verbose=1`` names each initialisation and prints every
    ``verbose_interval``-th iteration with its mean log-likelihood and the
    time per iteration; ``verbose>=2`` also prints the change in the
    objective and the time since the last line. Silent or not, a fit whose
    first iteration is slow says so with a warning giving the time per
    iteration and the most the fit can take, rather than going quiet for
    minutes.
    """

    slow_iteration_seconds = 20.0

    def __init__(self, verbose, interval, max_iterations):
        self.verbose = verbose
        self.interval = interval
        self.max_iterations = max_iterations
        self._warned = False

    def start(self, init):
        self._init_start = self._iter_start = time.perf_counter()
        self._iter_count = 0
        if self.verbose:
            print(f"Initialization {init}")

    def iteration(self, n_iter, change, lower_bound):
        now = time.perf_counter()
        self._iter_count += 1
        per_iteration = (now - self._init_start) / self._iter_count
        if not self._warned and not self.verbose and per_iteration > self.slow_iteration_seconds:
            self._warned = True
            warnings.warn(
                f"One EM iteration took {per_iteration:.0f} s; up to {self.max_iterations} "
                f"iterations (max_iter x n_init) may take {per_iteration * self.max_iterations / 60:.0f} "
                "min. Pass verbose=1 to follow the progress, or reduce max_iter, n_init or the "
                "number of features.",
                UserWarning,
                stacklevel=5,
            )
        if not self.verbose or n_iter % self.interval:
            return
        if self.verbose == 1:
            print(f"  Iteration {n_iter}\t lower bound {lower_bound:.8g}\t {per_iteration:.3g} s/iter", flush=True)
        else:
            print(
                f"  Iteration {n_iter}\t time lapse {now - self._iter_start:.5f}s"
                f"\t ll change {change:.5g}\t lower bound {lower_bound:.8g}",
                flush=True,
            )
            self._iter_start = now

    def end(self, result):
        if not self.verbose:
            return
        status = "converged" if result.converged else "did not converge"
        elapsed = time.perf_counter() - self._init_start
        print(
            f"Initialization {status}. time lapse {elapsed:.5f}s"
            f"\t lower bound {result.objectives[-1]:.5f}."
        )
