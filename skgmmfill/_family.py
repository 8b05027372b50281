"""The interface every covariance family implements, and the kernels they share.

A family is a small frozen object holding its own hyperparameters (the
variance floor ``min_variance``, the diagonal regularisation ``reg_covar``, ...),
so it pickles and travels to wherever the data are. It knows how to

* score rows: :meth:`CovarianceFamily.log_prob`, the log-density of each
  row's *observed* coordinates under each component;
* summarise rows: :meth:`CovarianceFamily.statistics`, responsibility-weighted
  sums that are **additive over row blocks** (the statistics of a split of the
  rows add up to those of all of them), and :meth:`CovarianceFamily.accumulate`,
  the fused E-step plus statistics that the EM driver calls once per iteration;
* update: :meth:`CovarianceFamily.update` turns summed statistics into new
  parameters without reading any data;
* predict: the conditional mean (:meth:`~CovarianceFamily.impute`), variance
  and a posterior draw of the missing coordinates.

Families read data only through :class:`~skgmmfill._observed.ObservedEntries`,
never from arrays directly, so a family that declares ``supports_sparse``
runs unchanged on a dense mask and on a sparse pattern. The EM driver
(:mod:`skgmmfill._em`) depends on this module, never on a concrete family, and
the estimator picks a family by name from :data:`FAMILIES`, passing it the
hyperparameters it names in :attr:`CovarianceFamily.hyperparameters`.

Notation: ``n`` rows, ``d`` features, ``K`` components, ``C_u`` the observed
columns of row ``u``, ``r_uj`` the responsibility of component ``j`` for row
``u``, ``pi_j`` the mixture weights.
"""

from dataclasses import dataclass, replace
from numbers import Integral, Real
from typing import ClassVar, NamedTuple

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from ._observed import Sums


POSITIVE_OR_NONE = [None, Interval(Real, 0.0, None, closed="neither")]
"""The constraint on a prior strength: a positive number, or None for no prior."""
POSITIVE_OR_AUTO = [StrOptions({"auto"}), Interval(Real, 0.0, None, closed="neither")]
"""The constraint on a floor: a positive number, or "auto" (relative to the data's variance)."""
COUNT_OR_NONE = [None, Interval(Integral, 1, None, closed="left")]


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


@dataclass(frozen=True)
class Statistics(Sums):
    """What every family's statistics hold; families add their own sums.

    Attributes
    ----------
    n_samples : int
        Number of rows summed over.
    log_likelihood : float
        ``sum_u log p(x_{u,C_u})`` under the parameters the statistics were
        computed with (0 when the responsibilities were given rather than
        computed, as in :meth:`CovarianceFamily.statistics`).
    resp_sums : ndarray of shape (n_components,)
        ``N_j = sum_u r_uj``.
    """

    n_samples: int
    log_likelihood: float
    resp_sums: np.ndarray


@dataclass(frozen=True)
class CovarianceFamily:
    """One covariance family: its hyperparameters and the operations EM needs.

    Subclasses are frozen dataclasses whose fields are their hyperparameters;
    :attr:`hyperparameters` names the estimator parameters that fill them.
    ``covariances`` is always in the family's own layout (see
    :attr:`~Mixture.covariances`).

    Attributes
    ----------
    name : str
        The ``covariance_type`` that selects the family.
    supports_sparse : bool
        Whether the family runs on sparse input (every operation only through
        products with the observed values and mask).
    hyperparameters : tuple of str
        Estimator parameters passed to the constructor, by name.
    exclusive_hyperparameters : tuple of str
        Those of :attr:`hyperparameters` that no other family uses (their
        default is None): setting one for another family is an error.
    fitted_attribute_names : tuple of str
        The estimator attributes that :meth:`fitted_attributes` may set.
    hyperparameter_constraints : dict
        scikit-learn's constraints (``_parameter_constraints``) on the
        estimator parameters of :attr:`hyperparameters`.
    contract_hyperparameters : dict
        Values of the hyperparameters that the family contract test builds
        the family with (small data: 60 rows, 5 features, 3 components).
    singular_hint : str
        What to change when an update meets a singular covariance (the end of
        the fit's error message).
    gaussian_rows : bool
        Whether :meth:`log_prob` is ``log N(x_O | mu_O, Sigma_OO)`` with
        ``Sigma`` from :meth:`dense_covariances`; False where a row's mean
        depends on its pattern or ``log_prob`` is a variational bound.
    models_row_offsets : bool
        Whether the family infers each row's offset itself (:meth:`row_offsets`):
        with ``biases`` the data it sees then keep the row offsets, and
        features empty in ``fit`` are predicted from its estimate.
    needs_residual_moments : bool
        Whether :meth:`for_data` needs the moments of the residuals (the data
        less both offsets with ``biases``, see :func:`~skgmmfill._em.prepare`):
        one more pass over the data.
    """

    name: ClassVar[str]
    supports_sparse: ClassVar[bool] = True
    hyperparameters: ClassVar[tuple] = ()
    exclusive_hyperparameters: ClassVar[tuple] = ()
    fitted_attribute_names: ClassVar[tuple] = ("covariances_",)
    hyperparameter_constraints: ClassVar[dict] = {}
    contract_hyperparameters: ClassVar[dict] = {}
    singular_hint: ClassVar[str] = "decrease n_components"
    gaussian_rows: ClassVar[bool] = True
    models_row_offsets: ClassVar[bool] = False
    needs_residual_moments: ClassVar[bool] = False

    # -- model description ----------------------------------------------------

    def n_parameters(self, n_components, n_features):
        """Free parameters of the means and covariances (weights counted apart)."""
        raise NotImplementedError

    def dense_covariances(self, covariances, n_features):
        """The ``(K, d, d)`` covariance matrices (for tests and small ``d``)."""
        raise NotImplementedError

    def covariances_shape(self, n_components, n_features):
        """The shape of ``covariances`` in this family's layout (checked when a model is loaded)."""
        raise NotImplementedError

    def fitted_attributes(self, covariances, scale):
        """The estimator's attributes describing ``covariances``, in the data's units.

        The data are ``scale`` times the standardised coordinates EM ran in;
        by default ``{"covariances_": scale**2 * covariances}``.
        """
        with np.errstate(over="ignore"):  # data near the largest float: inf, as the float type must
            return {"covariances_": (np.float64(scale) ** 2 * covariances).astype(covariances.dtype)}

    def initial_covariances(self, moments, means):
        """Covariances to start EM from, given :class:`~skgmmfill._observed.DataMoments` and the means.

        The course's rule, taken by each family in its own layout: the mean
        over all rows of ``(values_u - mu_j)(values_u - mu_j)^T``, missing
        entries counting as 0, then regularised as after every update.
        """
        raise NotImplementedError

    def moments(self, observed):
        """The :class:`~skgmmfill._observed.DataMoments` that :meth:`initial_covariances` needs."""
        return observed.moments()

    def for_features(self, n_features):
        """This family for data with ``n_features`` columns, checked before any work.

        Raises ValueError for hyperparameters that cannot fit such data;
        resolves those that depend on it. The default has nothing to check.
        """
        return self

    def for_data(self, moments, scale, dtype, residual_moments=None):
        """This family with its hyperparameters resolved for standardised data.

        EM runs on the data divided by ``scale`` (see
        :class:`~skgmmfill._em.Standardization`), with ``moments`` those of the
        standardised observed entries and, if :attr:`needs_residual_moments`,
        ``residual_moments`` those of their residuals. A hyperparameter given
        as a number is in the data's units and is converted; ``"auto"``
        follows a rule relative to the data (:func:`variance_floor`). Values
        come back in ``dtype``. The default has nothing to resolve.
        """
        return self

    # -- E-step ---------------------------------------------------------------

    def log_prob(self, observed, mixture):
        """``log N(x_{u,C_u} | mu_{j,C_u}, Sigma_{j,C_uC_u})``, shape ``(n, K)``.

        0 for a row with no observed entry.
        """
        raise NotImplementedError

    def posterior(self, observed, mixture):
        """Responsibilities and per-row log-likelihoods (the E-step).

        With ``f_uj = log pi_j + log N(x_{u,C_u} | ...)``,
        ``log p(x_{u,C_u}) = logsumexp_j f_uj`` and
        ``r_uj = exp(f_uj - log p(x_{u,C_u}))``. A component of weight 0 gets
        ``f_uj = -inf`` and so responsibility 0; a row with no observed entry
        gets ``log p = 0`` and responsibilities ``pi``.

        Returns
        -------
        resp : ndarray of shape (n_samples, n_components)
        log_prob_norm : ndarray of shape (n_samples,)
        """
        log_prob = self.log_prob(observed, mixture)
        log_prob += log_weights(mixture.weights)
        return normalize_log_prob(log_prob)

    # -- M-step ---------------------------------------------------------------

    def statistics(self, observed, resp, mixture):
        """Responsibility-weighted sums over the rows of ``observed``.

        Additive over row blocks. ``mixture`` is the current parameters: the
        families whose sums depend on them (conditional expectations) use
        them, and all blocks of one iteration must be given the same.

        Returns
        -------
        Statistics
            With ``log_likelihood = 0``.
        """
        raise NotImplementedError

    def accumulate(self, observed, mixture):
        """One fused pass: E-step, then the statistics of the responsibilities.

        The default is :meth:`posterior` followed by :meth:`statistics`; a
        family whose E-step computes what its statistics need (full) overrides
        it to compute that once.

        Returns
        -------
        Statistics
            With ``log_likelihood = sum_u log p(x_{u,C_u})``.
        """
        resp, log_prob_norm = self.posterior(observed, mixture)
        statistics = self.statistics(observed, resp, mixture)
        return replace(statistics, log_likelihood=float(log_prob_norm.sum(dtype=np.float64)))

    def update(self, statistics, mixture, prior=None):
        """New parameters from summed statistics (the M-step); reads no data.

        ``pi_j = N_j / n``; the means and covariances by the family. ``prior``
        is None or ``(kappa, m)``: the conjugate prior
        ``mu_j ~ N(m, Sigma_j / kappa)`` on the means, making this a MAP step.
        A component with no responsibility keeps its means and covariances.
        """
        raise NotImplementedError

    def log_prior(self, mixture, prior, log_scale=0.0):
        """The log prior density of the parameters, in the data's units.

        ``sum_j log N(mu_j | m, Sigma_j / kappa)`` for ``prior = (kappa, m)``
        (:meth:`log_mean_prior`), 0 without; a family with priors of its own
        adds theirs. The parameters are in standardised coordinates, the data
        ``exp(log_scale)`` times them: each prior coordinate's density gains
        ``-log_scale``.
        """
        if prior is None:
            return 0.0
        n_components, n_features = mixture.means.shape
        return self.log_mean_prior(mixture, prior) - n_components * n_features * log_scale

    def log_mean_prior(self, mixture, prior):
        """``sum_j log N(mu_j | m, Sigma_j / kappa)`` for ``prior = (kappa, m)``."""
        raise NotImplementedError

    # -- predictions ----------------------------------------------------------

    def impute(self, observed, resp, mixture):
        """``x_hat_ul = sum_j r_uj E_j[x_ul | x_{u,C_u}]`` for every entry, ``(n, d)``.

        Observed entries may hold anything: the caller puts them back.
        """
        raise NotImplementedError

    def impute_entries(self, observed, resp, mixture, rows, cols):
        """``x_hat_ul`` at the entries ``(rows[i], cols[i])`` only, shape ``(n_entries,)``."""
        raise NotImplementedError

    def predictive_variance(self, observed, resp, mixture):
        """``Var[x_ul | x_{u,C_u}]`` for every missing entry, ``(n, d)`` (0 where observed).

        By the law of total variance over the components,
        ``sum_j r_uj (V_j[x_ul | x_{u,C_u}] + E_j[x_ul | x_{u,C_u}]^2) - x_hat_ul^2``.
        """
        raise NotImplementedError

    def predictive_moments(self, observed, resp, mixture):
        """``(x_hat, Var)``: :meth:`impute` and :meth:`predictive_variance` together, in one pass
        over the rows where the family can (what ranking by expected hits needs)."""
        return self.impute(observed, resp, mixture), self.predictive_variance(observed, resp, mixture)

    def row_offsets(self, observed, resp, mixture):
        """Each row's offset, ``sum_j r_uj E_j[offset_u | x_{u,C_u}]``, ``(n,)``: only where
        :attr:`models_row_offsets`."""
        raise NotImplementedError

    def sample(self, observed, resp, mixture, random_state):
        """One draw of every missing entry from the posterior predictive, ``(n, d)``.

        For each row a component is drawn from its responsibilities, then the
        missing entries from that component's conditional Gaussian.
        """
        raise NotImplementedError


# --- shared kernels -------------------------------------------------------------


def log_weights(weights):
    """``log pi_j``, ``-inf`` (without a warning) for a component of weight 0."""
    with np.errstate(divide="ignore"):
        return np.log(weights)


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


def variance_floor(value, fraction, moments, scale, dtype, per_feature):
    """A variance hyperparameter in standardised units.

    A number is in the data's squared units: it becomes ``value / scale**2``.
    ``"auto"`` is ``fraction`` of each feature's variance (``per_feature``;
    a feature without spread takes the pooled variance instead) or of the
    pooled variance of all observed entries, so that it scales with the
    data. Returns a float or an array of shape ``(n_features,)`` in ``dtype``.
    """
    if not isinstance(value, str):
        return float(value) / scale / scale  # not scale**2, which overflows for data near 1e200
    n_observed = moments.counts.sum()
    pooled = float(moments.squared_sums.sum() / n_observed) if n_observed else 1.0
    pooled = pooled if pooled > 0 else 1.0
    if not per_feature:
        return fraction * pooled
    variances = moments.column_variances()
    return (fraction * np.where(variances > 0, variances, pooled)).astype(dtype)


def mixture_weights(statistics):
    """``pi_j = N_j / n`` from summed statistics."""
    return statistics.resp_sums / statistics.n_samples
