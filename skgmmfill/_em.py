"""The EM driver: initialisation, the E-step, the shared part of the M-step,
the iteration with its stopping rule, several initialisations and warm starts.

The covariance family (:mod:`skgmmfill._spherical`, :mod:`skgmmfill._diag` or
:mod:`skgmmfill._full`) is passed in as a module exposing the same few pure
functions: ``n_parameters``, ``initial_covariances``, ``log_prob``, ``m_step``,
``log_mean_prior``, and for predictions ``impute``, ``impute_entries``,
``predictive_variance`` and ``sample``. Everything here is the same for every
family.

Notation: ``n`` rows, ``d`` features, ``K`` components, ``C_u`` the observed
columns of row ``u``, ``r_uj`` the responsibility of component ``j`` for row
``u``, ``pi_j`` the mixture weights.
"""

import time
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from sklearn.cluster import KMeans


class Mixture(NamedTuple):
    """Parameters of a Gaussian mixture.

    Attributes
    ----------
    weights : ndarray of shape (n_components,)
        Mixing proportions ``pi_j``.
    means : ndarray of shape (n_components, n_features)
        Component means ``mu_j``.
    covariances : ndarray
        The covariance parameters, in the layout of the covariance family
        (shape ``(n_components,)`` for spherical).
    """

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray


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
        of the means divided by ``n_samples`` when there is a prior.
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


def initialize_random_from_data(observed, n_components, family, regularization, random_state):
    """Start from ``n_components`` distinct rows drawn at random.

    The means are the drawn rows as stored, with 0 at their missing entries
    (this is the convention of the original course code), the weights are
    uniform and the covariances follow the family's initial rule, regularised
    as the family regularises every M-step (``regularization``: the variance
    floor ``min_variance`` of spherical and diag, the diagonal addition
    ``reg_covar`` of full), so that EM never starts from a zero variance.

    The rows are ``random_state.choice(n_samples, n_components, replace=False)``,
    so ``random_state=np.random.RandomState(seed)`` draws exactly the rows that
    the course's ``np.random.seed(seed)`` drew.
    """
    rows = random_state.choice(observed.n_samples, size=n_components, replace=False)
    means = observed.dense_rows(rows)
    return Mixture(
        weights=np.full(n_components, 1.0 / n_components, dtype=observed.dtype),
        means=means,
        covariances=family.initial_covariances(observed, means, regularization),
    )


def initialize_kmeans(observed, n_components, family, regularization, random_state):
    """Start from a k-means partition, like GaussianMixture's default.

    One run of :class:`~sklearn.cluster.KMeans` clusters the rows, with each
    missing entry replaced by its column's observed mean (dense data) or left
    out as 0 (sparse data, which filling would densify). The clusters, as hard
    responsibilities, give the parameters by one M-step; a component falls back
    to the column means and the family's initial covariances wherever it has no
    observation to estimate them from.
    """
    counts = observed.column_counts()
    column_means = np.divide(
        observed.column_sums(), counts, out=np.zeros(observed.n_features), where=counts > 0
    ).astype(observed.dtype)
    if observed.is_sparse:
        rows = observed.values
        if rows.nnz < np.iinfo(np.int32).max and rows.indices.dtype != np.int32:
            # KMeans takes only 32-bit sparse indices
            rows = sp.csr_array(
                (rows.data, rows.indices.astype(np.int32), rows.indptr.astype(np.int32)),
                shape=rows.shape,
            )
    else:
        rows = observed.values + (1 - observed.mask) * column_means
    labels = KMeans(n_components, n_init=1, random_state=random_state).fit(rows).labels_
    resp = np.zeros((observed.n_samples, n_components), dtype=observed.dtype)
    resp[np.arange(observed.n_samples), labels] = 1.0
    means = np.tile(column_means, (n_components, 1))
    fallback = Mixture(
        weights=np.full(n_components, 1.0 / n_components, dtype=observed.dtype),
        means=means,
        covariances=family.initial_covariances(observed, means, regularization),
    )
    return m_step(observed, resp, fallback, family, regularization)


def normalize_log_prob(weighted_log_prob):
    """Row-wise log-sum-exp and the normalised probabilities, in one pass.

    With ``m_u = max_j f_uj`` and ``e_uj = exp(f_uj - m_u)`` (so no exponent
    exceeds 0 and the largest term is 1),

    ``logsumexp_j f_uj = m_u + log sum_j e_uj`` and ``r_uj = e_uj / sum_k e_uk``.

    Responsibilities below the smallest normal float (about 1e-308 in float64)
    are set to 0: they cannot change any sum of the M-step, and subnormal
    numbers make the matrix products that use them several times slower.

    Parameters
    ----------
    weighted_log_prob : ndarray of shape (n_samples, n_components)
        ``f_uj``; each row has at least one finite entry. Overwritten.

    Returns
    -------
    resp : ndarray of shape (n_samples, n_components)
        ``r_uj``, in the memory of ``weighted_log_prob``.
    log_prob_norm : ndarray of shape (n_samples,)
        ``logsumexp_j f_uj``.
    """
    row_max = weighted_log_prob.max(axis=1)
    weighted_log_prob -= row_max[:, np.newaxis]
    resp = np.exp(weighted_log_prob, out=weighted_log_prob)
    row_sum = resp.sum(axis=1)
    resp /= row_sum[:, np.newaxis]
    resp[resp < np.finfo(resp.dtype).tiny] = 0.0
    return resp, row_max + np.log(row_sum)


def e_step(observed, mixture, family):
    """E-step: responsibilities and per-row log-likelihoods.

    With ``f_uj = log pi_j + log N(x_{u,C_u} | mu_{j,C_u}, Sigma_{j,C_u})``, the
    log-density of row ``u``'s observed entries under component ``j``,

    ``log p(x_{u,C_u}) = logsumexp_j f_uj`` and ``r_uj = exp(f_uj - log p(x_{u,C_u}))``.

    A component of weight 0 gets ``f_uj = -inf`` and so responsibility 0. A row
    with no observed entry has ``log p = 0`` and responsibilities ``pi``.

    Returns
    -------
    resp : ndarray of shape (n_samples, n_components)
    log_prob_norm : ndarray of shape (n_samples,)
    """
    with np.errstate(divide="ignore"):
        log_weights = np.log(mixture.weights)
    weighted_log_prob = family.log_prob(observed, mixture.means, mixture.covariances)
    weighted_log_prob += log_weights
    return normalize_log_prob(weighted_log_prob)


def draw_components(resp, random_state):
    """Draw one component per row from its responsibilities, shape ``(n_samples,)``."""
    cumulative = np.cumsum(resp, axis=1)
    uniform = random_state.uniform(size=(resp.shape[0], 1)) * cumulative[:, -1:]
    return np.minimum((cumulative < uniform).sum(axis=1), resp.shape[1] - 1)


def estimate_means(value_sums, count_sums, previous_means, prior=None, min_count=1.0):
    """M-step for the means, one coordinate at a time.

    Without a prior: ``mu_jl = S_jl / W_jl`` where ``W_jl >= min_count``;
    elsewhere the previous ``mu_jl`` is kept (so a component that sees column
    ``l`` with less than one row's worth of weight does not move its mean
    there). With ``prior = (kappa, m)``: the MAP means
    ``mu_jl = (S_jl + kappa m_l) / (W_jl + kappa)``, which shrink towards ``m``
    where a component has few observations. ``S`` and ``W`` are
    :meth:`ObservedEntries.weighted_sums`.
    """
    if prior is not None:
        kappa, prior_means = prior
        return (value_sums + kappa * prior_means) / (count_sums + kappa)
    updated = count_sums >= min_count
    return np.divide(value_sums, count_sums, out=previous_means.copy(), where=updated)


def m_step(observed, resp, mixture, family, regularization, prior=None):
    """M-step: ``pi_j = (1/n) sum_u r_uj``; means and covariances by the family.

    ``prior`` is None or ``(kappa, m)``: the conjugate prior on the means,
    ``mu_j ~ N(m, Sigma_j / kappa)``, turning the M-step into a MAP step.
    """
    weights = resp.sum(axis=0) / observed.n_samples
    means, covariances = family.m_step(
        observed, resp, mixture.means, mixture.covariances, regularization, prior
    )
    return Mixture(weights, means, covariances)


def objective(lower_bound, mixture, family, prior, n_samples):
    """What EM maximises: the mean log-likelihood, plus the log prior of the
    means divided by ``n_samples`` when there is a prior."""
    if prior is None:
        return lower_bound
    return lower_bound + family.log_mean_prior(mixture.means, mixture.covariances, prior) / n_samples


def run_em(
    observed,
    mixture,
    family,
    *,
    max_iter,
    tol,
    regularization,
    prior=None,
    previous_objective=-np.inf,
    progress=None,
):
    """Alternate E- and M-steps from ``mixture`` until the relative change is small.

    Each iteration is an E-step giving the objective ``L_new`` (the mean
    log-likelihood, plus the scaled log prior of the means under ``prior``)
    followed by an M-step, the last iteration included. The loop stops after
    the first E-step with ``L_new - L_old <= tol * |L_new|`` (a relative
    tolerance), or after ``max_iter`` iterations.
    """
    current = previous_objective
    lower_bounds, objectives = [], []
    converged = False
    for n_iter in range(1, max_iter + 1):
        previous = current
        resp, log_prob_norm = e_step(observed, mixture, family)
        lower_bound = float(log_prob_norm.mean(dtype=np.float64))
        current = objective(lower_bound, mixture, family, prior, observed.n_samples)
        mixture = m_step(observed, resp, mixture, family, regularization, prior)
        lower_bounds.append(lower_bound)
        objectives.append(current)
        change = current - previous
        if progress is not None:
            progress.iteration(n_iter, change, current)
        if change <= tol * abs(current):
            converged = True
            break
    return EMResult(mixture, lower_bounds[-1], lower_bounds, objectives, n_iter, converged)


_INITIALIZERS = {"random_from_data": initialize_random_from_data, "kmeans": initialize_kmeans}


def fit_mixture(
    observed,
    family,
    *,
    n_components,
    init_params="random_from_data",
    n_init,
    max_iter,
    tol,
    regularization,
    random_state,
    prior=None,
    warm_start=None,
    verbose=0,
    verbose_interval=10,
):
    """Run EM from ``n_init`` initialisations and keep the best.

    Parameters
    ----------
    observed : ObservedEntries
    family : module
        The covariance family.
    regularization : float
        The family's variance regularisation (see
        :func:`initialize_random_from_data`).
    init_params : {"random_from_data", "kmeans"}
        The initialisation (:func:`initialize_random_from_data` or
        :func:`initialize_kmeans`).
    random_state : numpy.random.RandomState
        Seeds every initialisation in turn.
    prior : tuple of (float, ndarray) or None
        ``(kappa, m)``: the conjugate prior ``mu_j ~ N(m, Sigma_j / kappa)`` on
        the means (MAP-EM), or None for maximum likelihood.
    warm_start : tuple of (Mixture, float) or None
        The parameters and final objective of a previous fit: EM continues
        from them, once, instead of initialising ``n_init`` times.

    Returns
    -------
    EMResult
        The run with the highest final objective.
    """
    progress = _Progress(verbose, verbose_interval)
    best = None
    for init in range(1 if warm_start is not None else n_init):
        progress.start(init)
        if warm_start is None:
            mixture = _INITIALIZERS[init_params](
                observed, n_components, family, regularization, random_state
            )
            previous_objective = -np.inf
        else:
            mixture, previous_objective = warm_start
        result = run_em(
            observed,
            mixture,
            family,
            max_iter=max_iter,
            tol=tol,
            regularization=regularization,
            prior=prior,
            previous_objective=previous_objective,
            progress=progress,
        )
        progress.end(result)
        if best is None or result.objectives[-1] > best.objectives[-1]:
            best = result
    return best


class _Progress:
    """Prints EM progress in the manner of scikit-learn's mixtures.

    ``verbose=1`` names each initialisation and every ``verbose_interval``-th
    iteration; ``verbose>=2`` adds, for each such iteration, the time since the
    last line, the change in mean log-likelihood and the mean log-likelihood.
    """

    def __init__(self, verbose, interval):
        self.verbose = verbose
        self.interval = interval

    def start(self, init):
        if self.verbose:
            print(f"Initialization {init}")
            self._init_start = self._iter_start = time.perf_counter()

    def iteration(self, n_iter, change, lower_bound):
        if self.verbose and n_iter % self.interval == 0:
            if self.verbose == 1:
                print(f"  Iteration {n_iter}")
            else:
                now = time.perf_counter()
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
        if self.verbose == 1:
            print(f"Initialization {status}.")
        else:
            elapsed = time.perf_counter() - self._init_start
            print(
                f"Initialization {status}. time lapse {elapsed:.5f}s"
                f"\t lower bound {result.objectives[-1]:.5f}."
            )
