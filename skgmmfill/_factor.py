"""Factor family (a mixture of factor analysers): low-rank plus diagonal covariances.

Component ``j`` generates a row as ``x = mu_j + W_j t + e`` with ``q`` latent
factors ``t ~ N(0, I_q)`` and independent noise ``e ~ N(0, diag(psi_j))``, so
``Sigma_j = W_j W_j^T + diag(psi_j)`` with the loadings ``W_j`` of shape
``(d, q)`` (Ghahramani & Hinton, 1996). Write ``w_l`` for row ``l`` of
``W_j``, ``psi_l`` for its noise variance and ``O = C_u`` for the observed
columns of row ``u``. Given ``x_O``, the factors are Gaussian,
``t | x_O ~ N(A^{-1} b, A^{-1})``, with

* ``A_uj = I_q + sum_{l in O} w_l w_l^T / psi_l`` (their posterior precision),
* ``b_uj = sum_{l in O} w_l (x_ul - mu_l) / psi_l``,

and by Woodbury's identity and the matrix determinant lemma the marginal
log-density of the observed coordinates is

``log N(x_O | mu_O, Sigma_OO) = -1/2 (|O| log 2 pi + sum_O log psi_l
+ sum_O (x_ul - mu_l)^2 / psi_l + log det A_uj - b_uj^T A_uj^{-1} b_uj)``.

Because the noise is diagonal, the missing coordinates are independent of the
observed ones given ``t``, so the conditional distribution of a missing entry
is exactly ``N(mu_l + w_l^T m_uj, psi_l + w_l^T A_uj^{-1} w_l)`` with
``m_uj = A_uj^{-1} b_uj``. Every sum over ``O`` is a product with the mask or
the values: ``A`` for all rows is the mask times the ``d x q(q+1)/2`` packed
outer products ``w_l w_l^T / psi_l``; no ``d x d`` matrix is ever formed, so
the family runs on sparse data with tens of thousands of columns. With one
component it is probabilistic matrix factorisation (Tipping & Bishop, 1999;
with the loading prior below, the model behind regularised matrix
factorisation).

EM treats the factors and the component as the missing data (the missing
entries are integrated out analytically). With the augmented factors
``t~ = (t, 1)`` and ``lambda_l = (w_l, mu_l)``, the M-step for each component
and feature solves one ``(q+1) x (q+1)`` system from

* ``G_l = sum_u r_uj m_ul E[t~ t~^T]`` (``E[t t^T] = A^{-1} + m m^T``),
* ``h_l = sum_u r_uj m_ul x_ul E[t~]``, ``Q_l = sum_u r_uj m_ul x_ul^2``:

``lambda_l = (G_l + D)^{-1} (h_l + D c_l)`` and
``psi_l = (Q_l - 2 lambda_l^T h_l + lambda_l^T G_l lambda_l
+ (lambda_l - c_l)^T D (lambda_l - c_l)) / (n_l + q [beta > 0] + [kappa > 0])``,

where ``n_l = sum_u r_uj m_ul`` and the priors ``w_l ~ N(0, psi_l I / beta)``
(``beta = loading_precision_prior``) and ``mu_l ~ N(m_l, psi_l / kappa)``
(``kappa = mean_precision_prior``) give ``D = diag(beta, ..., beta, kappa)``
and ``c_l = (0, ..., 0, m_l)``; both count as pseudo-observations. With
``loading_ard_prior`` (automatic relevance determination) each component's
loading column ``k`` has its own precision, ``w_lk ~ N(0, psi_l / beta_k)``,
re-estimated before each M-step as the exact maximiser
``beta_k = max(beta, (d + a) / (sum_l w_lk^2 / psi_l + a / beta))`` under the
hyperprior ``p(beta_k) ~ beta_k^(a/2) exp(-a beta_k / (2 beta))`` on
``beta_k >= beta`` (``a = loading_ard_prior * d``): columns the data do not
support are shrunk away, so ``n_factors`` becomes an upper bound, and no
column is shrunk less than ``beta`` says (a precision fitted below it from
MAP loadings would let them overfit). The objective, with each
``beta_k`` at its maximiser, never decreases. The sums
are products of the transposed mask and values with per-row moments, packed
as ``(q+1)(q+2)/2`` numbers.

With ``loading_posterior="variational"`` the loadings and means get a
posterior instead of a point estimate (variational Bayes, factorised as
``q(t_u) q(lambda_l)``; Ghahramani & Beal 2000): given the statistics,
``q(lambda_l) = N((G_l + D)^{-1} (h_l + D c_l), psi_l (G_l + D)^{-1})``, the
same mean as the MAP update, with covariance ``S_l``. The E-step then uses
``E[lambda_l lambda_l^T] = lambda_l lambda_l^T + S_l`` wherever the products of
``w_l`` and ``mu_l`` appear (``A``, ``b`` and the density's constant), so a
row's factors trust the loadings of rarely observed features less; its cost
is unchanged, as the same packed products carry these moments. The new
``psi_l`` adds ``psi_l^old tr((G_l + D) S_l) = (q+1) psi_l^old`` to the squared
residuals (the loadings' degrees of freedom), ARD uses ``E[w_lk^2]`` and needs
no floor, and :meth:`log_prob` is each row's term of the variational lower
bound, which with the priors' expected log densities and the entropy of
``q(lambda)`` (:meth:`log_prior`) never decreases: each step maximises it
over one factor of ``q`` or one parameter.

With ``loading_pattern_prior`` (``lambda``) the loadings' prior also knows
*which* rows observe each feature (SVD++'s insight, on the features' side:
an item's loadings resemble those of the items its raters also rated). Let
``M = N^{-1/2} A N^{-1/2}`` be the features' co-observation matrix
(``A_lm`` rows observing both ``l`` and ``m``, ``N = diag(n_l)``: a cosine
similarity) and ``F`` (``d x r``, ``r = PATTERN_FEATURES``) its leading
eigenvectors scaled by the square roots of their eigenvalues, so
``F F^T ~ M``. Each loading column is ``w_k = F g_k + e_k`` with
``e_k ~ N(0, Psi / beta_k)`` and ``g_k ~ N(0, s^2 / (lambda beta_k) I_r)``:
integrating ``g`` out, ``w_k ~ N(0, Sigma / beta_k)`` with
``Sigma = Psi + (s^2 / lambda) F F^T`` in place of ``Psi``, which ties the
loadings of co-observed features, so that a feature observed once gets
loadings like those of the features its one row also observed. ``g`` is a
missing variable of EM: given the loadings, ``g_k ~ N(m_k, P^{-1} / beta_k)``
with ``P = F^T Psi^{-1} F + (lambda / s^2) I`` and ``m_k = P^{-1} F^T Psi^{-1} w_k``,
so the M-step centres each ``w_l`` on ``F_l m`` (``c_l`` above) and adds
``q F_l P^{-1} F_l^T`` to its squared residuals; ARD's ``sum_l w_lk^2 / psi_l``
becomes ``w_k^T Sigma^{-1} w_k = sum_l w_lk^2 / psi_l - m_k^T P m_k``, and the
prior's log density ``log det Sigma = sum_l log psi_l + log det(s^2 P / lambda)``
(Woodbury), all in ``r x r`` systems. ``F`` comes from a sketch of ``A`` in the
pass that starts the fit (:class:`FactorMoments`), as the loadings do. With
``loading_pattern_prior="auto"`` the data choose ``lambda`` (empirical Bayes):
``v_j = s^2 / lambda_j`` is a parameter of each component, and after the other
parameters each M-step takes one EM step in it with ``g`` missing,
``v_j = sum_k (beta_jk |m_jk|^2 + tr P_j^{-1}) / (q r)``, which raises the
loadings' prior density given them (``beta_jk`` the ARD maximisers for the new
loadings), so the objective still never decreases. Where the pattern says
nothing of the loadings (items picked at random) ``v_j`` falls towards 0 and
the prior is as if absent; where it does, ``v_j`` grows.

With ``row_offset_factor`` each row also has an offset ``tau_j t0``, a
factor ``t0 ~ N(0, 1)`` whose loading ``tau_j`` is the same for every feature,
so ``Sigma_j = tau_j^2 1 1^T + W_j W_j^T + diag(psi_j)`` (a random intercept:
with ``biases`` the mixture sees the data less ``b + c_l`` only, and infers
each user's leaning jointly with their tastes instead of subtracting a ridge
estimate first). The E-step is the one above with ``(tau_j 1, W_j)`` as the
loadings; the M-step is conditional (ECM, Meng & Rubin 1993): ``tau_j``
maximises the expected log-likelihood given ``lambda_l``,
``tau_j = sum_l (h_l0 - G_l0R lambda_l) / psi_l / sum_l G_l00 / psi_l``
(index 0 for ``t0``, ``R`` for ``t~``), then ``lambda_l`` and ``psi_l`` are
updated as above from the statistics of ``x - tau_j t0``
(``h_R - tau_j G_R0``, ``Q - 2 tau_j h_0 + tau_j^2 G_00``), so the objective
still never decreases. ``tau_j`` has no prior and is no loading column for
ARD or the pattern prior.

With ``noise_variance_prior="auto"`` the noise prior's strength ``nu`` and
centre ``s^2`` are estimated from the data before EM (empirical Bayes, as
for moderated variances): if ``psi_l ~ nu s^2 / chi^2_nu``, the sample
variance ``s_l^2`` of the ``n_l`` residuals of feature ``l`` (the data less
the offsets with ``biases``, less the column means without) is ``s^2`` times
an ``F(n_l - 1, nu)`` variable, and :func:`estimated_noise_prior` maximises
that marginal likelihood over ``(nu, s^2)``. Features whose residual
variances differ no more than sampling explains give a large ``nu`` (one
pooled variance); a catalogue of items with truly different noise, a small
one. EM then runs with the estimate fixed, so its objective never decreases.

``covariances`` is the ``(n_components, n_features, width)`` array holding,
after ``tau_j`` (with ``row_offset_factor``),
``W_j`` in its next ``n_factors`` columns, ``psi_j`` in the next, then with
implicit feedback ``C_j`` (``n_factors`` columns) and, when variational, the
packed ``S_l`` (``(q+1)(q+2)/2`` columns), then with the pattern prior ``F``
and ``v_j`` (one column, the same in every row); see :class:`_Parameters`.
"""

from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np
from scipy.optimize import minimize
from scipy.special import betaln, digamma
from sklearn.utils._param_validation import StrOptions

from ._family import (
    COUNT_OR_NONE,
    POSITIVE_OR_AUTO,
    POSITIVE_OR_NONE,
    CovarianceFamily,
    Mixture,
    Statistics,
    draw_components,
    log_weights,
    mixture_weights,
    normalize_log_prob,
    variance_floor,
)
from ._independent import MIN_VARIANCE_FRACTION
from ._observed import DataMoments, row_batches

DEFAULT_MAX_FACTORS = 10
"""``n_factors=None``: ``min(DEFAULT_MAX_FACTORS, n_features - 1)`` factors."""

# Rows are processed in chunks whose (row, component, q+1, q+1) temporaries
# hold at most about this many numbers.
_CHUNK_ENTRIES = 2**21

# Extra directions of the random sketch that starts the loadings.
_SKETCH_OVERSAMPLING = 10

PATTERN_FEATURES = 30
"""``r``, the leading eigenvectors of the co-observation matrix that the pattern prior uses."""

AUTO_PATTERN_START = 1.0
"""``lambda`` from which ``loading_pattern_prior="auto"`` starts its estimate."""

AUTO_NOISE_PRIOR_LIMITS = (0.1, 1e6)
"""The range of ``nu`` that ``noise_variance_prior="auto"`` searches: at the top,
one pooled noise variance in all but name."""

_NOISE_PRIOR_POLISH_STEPS = 3
_NEWTON_STEP = 1e-5

# The co-observation sketch has this many times PATTERN_FEATURES directions: its
# matrix is normalised only after the pass (by the column counts), so its
# leading eigenvectors need more oversampling than the values' do.
_PATTERN_SKETCH_FACTOR = 4


@dataclass(frozen=True)
class FactorMoments(DataMoments):
    """:class:`~skgmmfill._observed.DataMoments` plus a sketch of the column space.

    Attributes
    ----------
    sketch : ndarray of shape (n_features, n_directions)
        ``V^T V Omega`` with ``V`` the observed values (0 at missing entries)
        and ``Omega`` fixed Gaussian directions (:func:`_sketch_directions`):
        additive over row blocks, it gives the leading principal directions
        that start the loadings (a Nystrom approximation), in one pass.
    pattern_sketch : ndarray of shape (n_features, n_pattern_directions), or 0.0
        ``A Omega`` with ``A = B^T B`` the co-observation counts (``B`` the
        mask), with the pattern prior only: the pattern features
        (:func:`_pattern_features`).
    """

    sketch: object = 0.0
    pattern_sketch: object = 0.0


@dataclass(frozen=True)
class FactorStatistics(Statistics):
    """Sums for factor components.

    Attributes
    ----------
    moment_sums : ndarray of shape (K, d, (q+1)(q+2)/2)
        ``G_jl = sum_u r_uj m_ul E_j[t~ t~^T | x_u]``, upper triangles packed
        row by row; the last entry is ``n_jl = sum_u r_uj m_ul``.
    value_sums : ndarray of shape (K, d, q+1)
        ``h_jl = sum_u r_uj m_ul x_ul E_j[t~ | x_u]``.
    squared_sums : ndarray of shape (K, d)
        ``Q_jl = sum_u r_uj m_ul x_ul^2``.
    implicit_sums : ndarray of shape (K, d, q), or (K, d, 0) without implicit feedback
        ``g_jl = sum_u r_uj y_ul (C_j^T y_u - E_j[t | x_u])``: the gradient in
        ``C_j`` of the factors' expected prior term. With ``y_u`` non-negative
        and ``sum_l y_ul = sqrt(|O_u|)``, ``sum_u r_uj y_u y_u^T`` is at most
        ``diag(n_jl)`` (Gershgorin), so the step
        ``C_j -= (g_j + lambda C_j) / (n_j + lambda)`` row by row lowers that
        term and the ridge together: an exact majorise-minimise step, with no
        ``d x d`` matrix and no second pass.
    """

    moment_sums: np.ndarray
    value_sums: np.ndarray
    squared_sums: np.ndarray
    implicit_sums: np.ndarray


class _Parameters(NamedTuple):
    """The parts of the packed ``covariances`` of one or more components."""

    loadings: np.ndarray  # (..., d, q): W_j
    noise: np.ndarray  # (..., d): psi_j
    implicit: np.ndarray  # (..., d, q) with implicit feedback, else (..., d, 0): C_j
    uncertainty: np.ndarray  # (..., d, (q+1)(q+2)/2) variational, else (..., d, 0): Cov[(w_l, mu_l)], packed
    pattern: np.ndarray  # (..., d, r) with the pattern prior, else (..., d, 0): F, the same for every component
    pattern_variance: np.ndarray  # (..., d, 1) with the pattern prior, else (..., d, 0): v_j = s^2 / lambda_j


class _PatternPosterior(NamedTuple):
    """``q(g)`` of the pattern prior for every component (see the module docstring)."""

    centres: np.ndarray  # (K, d, q): F m_jk, the loadings' prior means
    spreads: np.ndarray  # (K, d): F_l P_j^{-1} F_l^T
    explained: np.ndarray  # (K, q): m_jk^T P_j m_jk
    log_det: np.ndarray  # (K,): log det(s^2 P_j / lambda)
    coefficients: np.ndarray  # (K, r, q): m_jk
    traces: np.ndarray  # (K,): tr P_j^{-1}


class _Factors(NamedTuple):
    """The E-step of a block of rows under every component."""

    log_prob: np.ndarray  # (n, K): log N(x_O | mu_O, Sigma_OO)
    means: np.ndarray  # (n, K, q): m_uj = E_j[t | x_O]
    covariances: np.ndarray  # (n, K, q, q): A_uj^{-1} = Cov_j[t | x_O]
    prior_means: object  # (n, K, q): C_j^T y_u, the factors' prior mean; None without implicit feedback


@dataclass(frozen=True)
class FactorCovariance(CovarianceFamily):
    """Low-rank plus diagonal covariances ``W_j W_j^T + diag(psi_j)``.

    Attributes
    ----------
    n_factors : int or None
        ``q``, the number of latent factors; None takes
        ``min(DEFAULT_MAX_FACTORS, n_features - 1)`` (see :meth:`for_features`).
    min_variance : float, ndarray of shape (n_features,) or "auto"
        Floor on every noise variance ``psi_jl``, as for diag.
    loading_precision_prior : float or None
        ``beta`` of the prior ``w_jl ~ N(0, psi_jl I / beta)``: ``beta``
        pseudo-observations pulling each loading row towards 0. None fits the
        loadings by maximum likelihood.
    noise_variance_prior : float, "auto" or None
        ``nu`` of the conjugate prior ``p(psi_jl) ~ psi_jl^(-nu/2)
        exp(-nu s^2 / (2 psi_jl))`` on every noise variance: ``nu``
        pseudo-observations of squared residual ``s^2`` (see
        :attr:`noise_variance_target`), so that a feature observed a handful
        of times keeps a noise variance near ``s^2`` instead of collapsing to
        the floor. "auto": ``nu`` and ``s^2`` estimated from the residuals'
        variances (module docstring; :meth:`for_data` resolves it). None fits
        the noise variances by maximum likelihood.
    noise_variance_target : float or None
        ``s^2``, in the coordinates EM runs in (set by :meth:`for_data`): the
        pooled variance of the observed entries, or with
        ``noise_variance_prior="auto"`` the estimate; 1 if unset, the pooled
        variance of standardised data.
    loading_ard_prior : float or None
        ``a / d`` of the hyperprior on per-column loading precisions (see the
        module docstring); None: every column has ``loading_precision_prior``.
        Needs ``loading_precision_prior``, the precision it is centred on.
    implicit_precision_prior : float or None
        Implicit feedback (SVD++'s insight: *which* features a row observes
        says something of its factors). With ``lambda`` a number, the factors'
        prior mean depends on the row's pattern: ``t_u ~ N(C_j^T y_u, I)``
        with ``y_u`` the row's observed-entry indicator divided by
        ``sqrt(|O_u|)`` and ``C_j`` (``d x q``, 0 at the start) learnt under
        the prior ``C_j ~ N(0, I / lambda)``. None: ``t_u ~ N(0, I)``.
    loading_posterior : {"variational"} or None
        None: the loadings and means are point (MAP) estimates.
        "variational": each feature's ``(w_jl, mu_jl)`` has a Gaussian
        posterior (see the module docstring); needs ``loading_precision_prior``.
    loading_pattern_prior : float, "auto" or None
        ``lambda`` of the pattern prior (see the module docstring): the
        loadings' prior covariance gains ``(s^2 / lambda) F F^T``, so that
        features observed by the same rows get alike loadings; smaller is
        stronger. "auto": ``lambda_j`` of each component estimated by EM,
        from :data:`AUTO_PATTERN_START`. Needs ``loading_precision_prior``.
        None: no pattern prior.
    row_offset_factor : bool or None
        True: a per-row offset ``tau_j t0`` inferred with the factors (see the
        module docstring), ``tau_j`` fitted; None or False: none.
    """

    n_factors: object = None
    min_variance: object = "auto"
    loading_precision_prior: object = None
    loading_ard_prior: object = None
    noise_variance_prior: object = None
    noise_variance_target: object = None
    implicit_precision_prior: object = None
    loading_posterior: object = None
    loading_pattern_prior: object = None
    row_offset_factor: object = None

    name = "factor"
    hyperparameters = (
        "n_factors", "min_variance", "loading_precision_prior", "loading_ard_prior", "noise_variance_prior",
        "implicit_precision_prior", "loading_posterior", "loading_pattern_prior", "row_offset_factor",
    )
    exclusive_hyperparameters = (
        "n_factors", "loading_precision_prior", "loading_ard_prior", "noise_variance_prior",
        "implicit_precision_prior", "loading_posterior", "loading_pattern_prior", "row_offset_factor",
    )
    fitted_attribute_names = ("loadings_", "noise_variances_", "implicit_loadings_", "row_offset_scales_",
                              "loading_pattern_strengths_", "noise_variance_prior_", "noise_variance_target_")
    hyperparameter_constraints = {
        "n_factors": COUNT_OR_NONE,
        "min_variance": POSITIVE_OR_AUTO,
        **dict.fromkeys(("loading_precision_prior", "loading_ard_prior", "implicit_precision_prior"), POSITIVE_OR_NONE),
        "noise_variance_prior": [*POSITIVE_OR_NONE, StrOptions({"auto"})],
        "loading_pattern_prior": [*POSITIVE_OR_NONE, StrOptions({"auto"})],
        "loading_posterior": [None, StrOptions({"variational"})],
        "row_offset_factor": [None, "boolean"],
    }
    contract_hyperparameters = {"min_variance": 1e-3, "n_factors": 2, "loading_precision_prior": 0.5,
                                "noise_variance_prior": 3.0}

    @property
    def _offset_width(self):
        return 1 if self.row_offset_factor else 0

    @property
    def _implicit_width(self):
        return self.n_factors if self.implicit_precision_prior is not None else 0

    @property
    def _variational(self):
        return self.loading_posterior == "variational"

    @property
    def _uncertainty_width(self):
        q = self.n_factors
        return (q + 1) * (q + 2) // 2 if self._variational else 0

    @property
    def _pattern_width(self):
        return PATTERN_FEATURES if self.loading_pattern_prior is not None else 0

    @property
    def _pattern_variance_width(self):
        return 1 if self._pattern_width else 0

    @property
    def _learns_pattern_strength(self):
        return self.loading_pattern_prior == "auto"

    @property
    def gaussian_rows(self):
        """False with implicit feedback (a row's mean depends on its pattern) or variational loadings
        (:meth:`log_prob` is then each row's term of the variational bound)."""
        return not (self._implicit_width or self._variational)

    @property
    def models_row_offsets(self):
        """With ``row_offset_factor``: the offset is the factor ``tau_j t0``."""
        return bool(self._offset_width)

    @property
    def needs_residual_moments(self):
        """With ``noise_variance_prior="auto"``: the estimate needs the residuals' variances."""
        return self.noise_variance_prior == "auto"

    def _split(self, covariances):
        """:class:`_Parameters` of the packed layout ``covariances`` (any leading axes); with
        ``row_offset_factor`` the loadings start with the offset's column ``tau_j``."""
        q = self._offset_width + self.n_factors
        implicit_end = q + 1 + self._implicit_width
        uncertainty_end = implicit_end + self._uncertainty_width
        pattern_end = uncertainty_end + self._pattern_width
        return _Parameters(covariances[..., :q], covariances[..., q], covariances[..., q + 1 : implicit_end],
                           covariances[..., implicit_end:uncertainty_end],
                           covariances[..., uncertainty_end:pattern_end], covariances[..., pattern_end:])

    def _free(self, parameters):
        """``parameters`` with the free loadings only (without the row offset's column)."""
        return parameters._replace(loadings=parameters.loadings[..., self._offset_width:])

    def for_features(self, n_features):
        if self.loading_ard_prior is not None and self.loading_precision_prior is None:
            raise ValueError(
                f"loading_ard_prior={self.loading_ard_prior!r} needs loading_precision_prior, the loading "
                "precision its hyperprior is centred on."
            )
        if self._variational and self.loading_precision_prior is None:
            raise ValueError(
                "loading_posterior='variational' needs loading_precision_prior: without a prior on the "
                "loadings their posterior is improper."
            )
        if self.loading_pattern_prior is not None and self.loading_precision_prior is None:
            raise ValueError(
                f"loading_pattern_prior={self.loading_pattern_prior!r} needs loading_precision_prior: it "
                "widens the loadings' prior along the features' co-observation."
            )
        if n_features < 2:
            raise ValueError(
                "covariance_type='factor' needs at least 2 features (n_factors < n_features), "
                f"got n_features = {n_features}."
            )
        if self.n_factors is None:
            return replace(self, n_factors=min(DEFAULT_MAX_FACTORS, n_features - 1))
        if self.n_factors >= n_features:
            raise ValueError(
                f"n_factors must be smaller than n_features = {n_features}, got n_factors={self.n_factors}."
            )
        return self

    def for_data(self, moments, scale, dtype, residual_moments=None):
        floor = variance_floor(self.min_variance, MIN_VARIANCE_FRACTION, moments, scale, dtype, True)
        if self.noise_variance_prior == "auto":
            strength, target = estimated_noise_prior(residual_moments)
            return replace(self, min_variance=floor, noise_variance_prior=strength, noise_variance_target=target)
        n_observed = moments.counts.sum()
        pooled = float(moments.squared_sums.sum() / n_observed) if n_observed else 1.0
        return replace(self, min_variance=floor, noise_variance_target=pooled if pooled > 0 else 1.0)

    # -- model description ----------------------------------------------------

    def n_parameters(self, n_components, n_features):
        """Means, noise variances and loadings; a rotation ``W_j R`` of the
        loadings gives the same covariance, so ``q(q-1)/2`` of them are not free;
        ``tau_j`` and a learnt ``lambda_j`` of the pattern prior."""
        q = self.n_factors
        per_component = self._offset_width + int(self._learns_pattern_strength)
        return n_components * (2 * n_features + n_features * q - q * (q - 1) // 2 + per_component)

    def covariances_shape(self, n_components, n_features):
        """Loadings, noise variances, the implicit-feedback map, the loadings' and means'
        packed posterior covariances, then the pattern features along the last axis
        (see :class:`_Parameters`)."""
        width = (self._offset_width + self.n_factors + 1 + self._implicit_width + self._uncertainty_width
                 + self._pattern_width + self._pattern_variance_width)
        return (n_components, n_features, width)

    def dense_covariances(self, covariances, n_features):
        loadings, noise = self._split(covariances)[:2]
        return np.einsum("kda,kea->kde", loadings, loadings) + noise[:, :, np.newaxis] * np.eye(n_features)

    def fitted_attributes(self, covariances, scale):
        """``loadings_`` ``(K, d, q)`` and ``noise_variances_`` ``(K, d)`` in the data's units,
        and with implicit feedback ``implicit_loadings_`` ``(K, d, q)`` (the ``C_j``, which map
        patterns to factors and have no units), with ``row_offset_factor`` ``row_offset_scales_``
        ``(K,)``, the standard deviation ``tau_j`` of the rows' offsets, with the pattern prior
        ``loading_pattern_strengths_`` ``(K,)``, its ``lambda_j`` (estimated if "auto"; no units), and
        with the noise prior ``noise_variance_prior_`` and ``noise_variance_target_``, its ``nu`` and
        ``s^2`` (in squared data units; estimated if "auto")."""
        parts = self._split(covariances)
        all_loadings, noise, implicit = parts[:3]
        loadings = all_loadings[..., self._offset_width:]
        with np.errstate(over="ignore"):  # data near the largest float: inf, as the float type must
            variances = (np.float64(scale) ** 2 * noise).astype(noise.dtype)
        fitted = {"loadings_": (scale * loadings).astype(loadings.dtype), "noise_variances_": variances}
        if self._implicit_width:
            fitted["implicit_loadings_"] = implicit.copy()
        if self._offset_width:
            fitted["row_offset_scales_"] = (scale * all_loadings[:, 0, 0]).astype(loadings.dtype)
        if self._pattern_width:
            fitted["loading_pattern_strengths_"] = self._noise_target() / parts.pattern_variance[:, 0, 0].astype(
                np.float64)
        if self.noise_variance_prior is not None:
            fitted["noise_variance_prior_"] = float(self.noise_variance_prior)
            fitted["noise_variance_target_"] = float(np.float64(scale) ** 2 * self._noise_target())
        return fitted

    def moments(self, observed):
        directions = _sketch_directions(observed.n_features, self._n_directions(observed.n_features), observed.dtype)
        sketch = observed.column_sums(observed.values @ directions, "values").T.astype(np.float64)
        pattern_sketch = 0.0
        if self._pattern_width:  # A Omega = B^T (B Omega), B the mask; B Omega in bounded chunks of rows
            directions = _sketch_directions(observed.n_features, self._n_pattern_directions(observed.n_features),
                                            observed.dtype)
            pattern_sketch = np.zeros((observed.n_features, directions.shape[1]))
            for rows in row_batches(observed.n_samples, _CHUNK_ENTRIES // directions.shape[1]):
                block = observed.row_block(rows)
                pattern_sketch += block.column_sums(block.row_products(mask_coefs=directions.T), "mask").T
        base = observed.moments()
        return base.extended(FactorMoments, sketch=sketch, pattern_sketch=pattern_sketch)

    def _n_directions(self, n_features):
        return min(n_features, self.n_factors + _SKETCH_OVERSAMPLING)

    def _n_pattern_directions(self, n_features):
        return min(n_features, _PATTERN_SKETCH_FACTOR * PATTERN_FEATURES)

    def initial_covariances(self, moments, means):
        """Loadings along the leading principal directions, noise for the rest.

        The directions and variances ``lambda_a`` come from the sketch
        (a Nystrom approximation of ``V^T V / n``); with ``sigma^2`` the mean
        variance left over, ``W = U diag(sqrt(max(lambda - sigma^2, lambda / 2)))``
        (the probabilistic-PCA solution, kept away from 0, where EM would stay).
        The noise variances are the diag rule's variances around ``means`` less
        what the loadings explain, at least half of them, floored.
        """
        n = moments.n_samples
        d = len(moments.counts)
        variances = (moments.squared_sums - 2.0 * means * moments.sums + n * means**2) / n
        directions, eigenvalues = _principal_directions(
            moments.sketch, _sketch_directions(d, self._n_directions(d), np.float64), self.n_factors
        )
        eigenvalues = eigenvalues / n
        leftover = max(moments.squared_sums.sum() / n - eigenvalues.sum(), 0.0) / max(d - self.n_factors, 1)
        loadings = directions * np.sqrt(np.maximum(eigenvalues - leftover, 0.5 * eigenvalues))
        noise = np.maximum(variances - (loadings**2).sum(axis=1), 0.5 * variances)
        noise = np.maximum(noise, self.min_variance)
        loadings = np.broadcast_to(loadings, (len(means), d, self.n_factors))
        if self._offset_width:  # tau^2 a tenth of the mean variance: away from 0, where EM would keep it
            offset = np.full((len(means), d, 1), np.sqrt(0.1 * variances.mean()))
            loadings = np.concatenate([offset, loadings], axis=2)
        implicit = np.zeros((len(means), d, self._implicit_width))  # no prior shift until data move it
        noise = np.broadcast_to(noise, (len(means), d))
        # A posterior spread of one more observation than each feature has, until the first M-step.
        spread = noise / (moments.counts / len(means) + 1.0)
        uncertainty = np.zeros((len(means), d, self._uncertainty_width))
        if self._variational:
            uncertainty[..., _packed_diagonal(self.n_factors + 1)] = spread[..., np.newaxis]
        pattern = np.zeros((len(means), d, self._pattern_width))
        pattern_variance = np.zeros((len(means), d, self._pattern_variance_width))
        if self._pattern_width:
            directions = _sketch_directions(d, self._n_pattern_directions(d), np.float64)
            pattern[:] = _pattern_features(moments.pattern_sketch, directions, moments.counts, self._pattern_width)
            strength = AUTO_PATTERN_START if self._learns_pattern_strength else self.loading_pattern_prior
            pattern_variance[:] = self._noise_target() / strength
        return _join(loadings, noise, implicit, uncertainty, pattern, pattern_variance).astype(means.dtype)

    # -- E-step ---------------------------------------------------------------

    def log_prob(self, observed, mixture):
        log_prob = [self._factors(block, mixture).log_prob for _, block in self._chunks(observed, mixture)]
        return np.concatenate(log_prob).astype(observed.dtype)

    def statistics(self, observed, resp, mixture):
        return self._sum_chunks(observed, mixture, resp)

    def accumulate(self, observed, mixture):
        return self._sum_chunks(observed, mixture, None)

    def _sum_chunks(self, observed, mixture, resp):
        """Statistics of every chunk of rows, summed; with ``resp`` None the
        responsibilities (and the log-likelihood) come from the same E-step."""
        total = None
        for rows, block in self._chunks(observed, mixture):
            factors = self._factors(block, mixture)
            log_likelihood = 0.0
            if resp is None:
                block_resp, log_prob_norm = normalize_log_prob(factors.log_prob + log_weights(mixture.weights))
                log_likelihood = float(log_prob_norm.sum(dtype=np.float64))
            else:
                block_resp = resp[rows]
            statistics = self._block_statistics(block, block_resp, factors, log_likelihood)
            total = statistics if total is None else total + statistics
        return total

    def _chunks(self, observed, mixture):
        """``(rows, block)`` pairs covering ``observed`` in bounded chunks of rows."""
        n_components = len(mixture.weights)
        size = max(1, _CHUNK_ENTRIES // (n_components * (self._offset_width + self.n_factors + 1) ** 2))
        if observed.n_samples <= size:
            yield slice(None), observed
            return
        for rows in row_batches(observed.n_samples, size):
            yield rows, observed.row_block(rows)

    def _factors(self, observed, mixture):
        """The posterior of the factors and the marginal log-density, for every row and component."""
        means = mixture.means
        loadings, noise, implicit, uncertainty = self._split(mixture.covariances)[:4]
        n_components, n_features, q = loadings.shape
        n = observed.n_samples
        precisions = 1.0 / noise
        scaled = loadings * precisions[:, :, np.newaxis]  # w_l / psi_l
        width = q * (q + 1) // 2
        # Three products with the data give every sum over the observed
        # columns: the mask's carries the packed E[w_l w_l^T] / psi_l, the
        # E[mu_l w_l] / psi_l of b and the constant part of the density.
        outer, cross, squared_means = self._loading_moments(loadings, means, uncertainty)
        masked = observed.row_products(
            mask_coefs=np.concatenate([
                _stacked(outer * precisions[:, :, np.newaxis]),
                _stacked(-cross * precisions[:, :, np.newaxis]),
                squared_means * precisions + np.log(noise),
                _stacked(implicit),  # C_j^T y_u times sqrt(|O_u|), if any
            ])
        )
        valued = observed.row_products(value_coefs=np.concatenate([_stacked(scaled), -2.0 * means * precisions]))
        squared = observed.row_products(squared_coefs=precisions)
        packed_end, projections_end = n_components * width, n_components * (width + q)
        constants_end = projections_end + n_components
        precision = _unpack(masked[:, :packed_end].reshape(n, n_components, width).astype(np.float64), q)
        precision[..., np.arange(q), np.arange(q)] += 1.0
        projections = (masked[:, packed_end:projections_end] + valued[:, : n_components * q]).reshape(
            n, n_components, q
        )
        prior_means = None
        if self._implicit_width:  # the prior mean m shifts b to b + m; the density gains |m|^2 (below)
            scale = 1.0 / np.sqrt(np.maximum(observed.n_observed, 1))
            prior_means = np.zeros((n, n_components, q))  # the row offset's factor keeps prior mean 0
            prior_means[..., self._offset_width:] = (masked[:, constants_end:] * scale[:, np.newaxis]).reshape(
                n, n_components, q - self._offset_width)
            projections = projections + prior_means
        roots = np.linalg.cholesky(precision)
        covariances = np.linalg.inv(precision)
        factor_means = np.einsum("nkab,nkb->nka", covariances, projections)
        log_prob = (masked[:, projections_end:constants_end] + valued[:, n_components * q :] + squared)
        log_prob = log_prob.astype(np.float64)
        if prior_means is not None:  # with b' = b + m: S - b'^T A^{-1} b' + |m|^2
            log_prob += np.einsum("nka,nka->nk", prior_means, prior_means)
        log_prob += observed.n_observed[:, np.newaxis] * np.log(2.0 * np.pi)
        log_prob += 2.0 * np.log(np.diagonal(roots, axis1=2, axis2=3)).sum(axis=2)
        log_prob -= np.einsum("nka,nka->nk", projections, factor_means)
        log_prob *= -0.5
        return _Factors(log_prob, factor_means, covariances, prior_means)

    def _loading_moments(self, loadings, means, uncertainty):
        """``E[w_l w_l^T]`` (packed upper triangles), ``E[mu_l w_l]`` and ``E[mu_l^2]`` of every
        component and feature: the point values' products, plus their posterior covariance if variational."""
        upper = np.triu_indices(loadings.shape[2])
        outer = loadings[:, :, upper[0]] * loadings[:, :, upper[1]]
        cross = means[:, :, np.newaxis] * loadings
        squared_means = means**2
        if self._variational:  # the row offset's column is fixed: no spread
            o = self._offset_width
            inner, last = _augmented_positions(self.n_factors)
            outer[..., _embedded_positions(self.n_factors, o)] += uncertainty[..., inner]
            cross[..., o:] += uncertainty[..., last[:-1]]
            squared_means = squared_means + uncertainty[..., last[-1]]
        return outer, cross, squared_means

    # -- M-step ---------------------------------------------------------------

    def _block_statistics(self, observed, resp, factors, log_likelihood):
        n, n_components, q = factors.means.shape
        inner, last = _augmented_positions(q)
        # r_uj E[t~ t~^T], packed: E[t t^T] = A^{-1} + m m^T, then m, then 1
        weighted = np.empty((n, n_components, len(inner) + len(last)))
        weighted[..., inner] = _second_moments(factors)
        weighted[..., last[:-1]] = factors.means
        weighted[..., last[-1]] = 1.0
        weighted *= resp[:, :, np.newaxis]
        first = weighted[..., last]  # r_uj E[t~]
        dtype = observed.dtype
        implicit_sums = np.zeros((n_components, observed.n_features, 0))
        if factors.prior_means is not None:
            scale = 1.0 / np.sqrt(np.maximum(observed.n_observed, 1))
            gaps = (factors.prior_means - factors.means)[..., self._offset_width:]
            gaps = gaps * (resp * scale[:, np.newaxis])[:, :, np.newaxis]
            implicit_sums = _unstacked(observed.column_sums(gaps.reshape(n, -1).astype(dtype), "mask"), n_components)
        return FactorStatistics(
            n_samples=n,
            log_likelihood=log_likelihood,
            resp_sums=resp.sum(axis=0),
            moment_sums=_unstacked(observed.column_sums(weighted.reshape(n, -1).astype(dtype), "mask"), n_components),
            value_sums=_unstacked(observed.column_sums(first.reshape(n, -1).astype(dtype), "values"), n_components),
            squared_sums=observed.column_sums(resp, "squared_values"),
            implicit_sums=implicit_sums,
        )

    def update(self, statistics, mixture, prior=None):
        q = self.n_factors
        moments = _unpack(statistics.moment_sums.astype(np.float64), self._offset_width + q + 1)
        value_sums = statistics.value_sums.astype(np.float64)
        squared_sums = statistics.squared_sums.astype(np.float64)
        precision, centre, pattern_spreads = self._prior_terms(prior, mixture)
        all_loadings, previous_noise, implicit, uncertainty, pattern, pattern_variance = self._split(
            mixture.covariances)
        previous_loadings = all_loadings[..., self._offset_width:]
        rows = np.concatenate([previous_loadings, mixture.means[:, :, np.newaxis]], axis=2).astype(np.float64)
        if self._offset_width:  # first tau_j given the rest, then the rest given tau_j (ECM)
            offset_scales = _offset_scales(moments, value_sums, rows, previous_noise, all_loadings[:, 0, 0])
            moments, value_sums, squared_sums = _given_offset(moments, value_sums, squared_sums, offset_scales)
        counts = moments[..., q, q]
        # (j, l) pairs with too little data keep their parameters (a
        # generalised M-step), unless both priors make the system definite.
        solvable = counts >= 1.0 if not precision.all() else np.ones(counts.shape, dtype=bool)
        component, feature = np.nonzero(solvable)
        prior_precision = precision[component]  # diag(D) of each (j, l) pair solved
        lhs = moments[solvable]
        diagonal = np.arange(q + 1)
        lhs[:, diagonal, diagonal] += prior_precision
        rhs = value_sums[solvable] + prior_precision * centre[solvable]
        if self._variational:  # the inverse is the posterior's covariance (below): one factorisation serves both
            inverse = np.linalg.inv(lhs)
            rows[solvable] = np.einsum("iab,ib->ia", inverse, rhs)
        else:
            rows[solvable] = np.linalg.solve(lhs, rhs[:, :, np.newaxis])[:, :, 0]
        deviation = rows[solvable] - centre[solvable]
        residuals = (
            squared_sums[solvable]
            - 2.0 * np.einsum("ia,ia->i", rows[solvable], value_sums[solvable])
            + np.einsum("ia,iab,ib->i", rows[solvable], moments[solvable], rows[solvable])
            + np.einsum("ia,ia,ia->i", deviation, prior_precision, deviation)
        )
        if pattern_spreads is not None:  # E_q(g)[(w - F g)^T diag(beta) (w - F g)] = the centred term + q F P^-1 F^T
            residuals = residuals + q * pattern_spreads[solvable]
        degrees = counts[solvable] + q * (prior_precision[:, 0] > 0) + (prior_precision[:, q] > 0)
        if self._variational:
            # q(lambda_l) = N(lambda_l, psi_l (G_l + D)^{-1}) with the current psi_l; the new psi_l
            # then also pays for that spread: E[residual^2 + prior term] gains psi_l tr(I_{q+1}).
            spread = previous_noise[solvable].astype(np.float64)
            uncertainty = uncertainty.astype(np.float64)
            upper = np.triu_indices(q + 1)
            uncertainty[solvable] = spread[:, np.newaxis] * inverse[:, upper[0], upper[1]]
            residuals = residuals + (q + 1) * spread
        if self.noise_variance_prior is not None:  # nu pseudo-observations of squared residual s^2
            residuals = residuals + self.noise_variance_prior * self._noise_target()
            degrees = degrees + self.noise_variance_prior
        noise = previous_noise.astype(np.float64)
        noise[solvable] = residuals / degrees
        noise = np.maximum(noise, self.min_variance)
        dtype = mixture.means.dtype
        if self.implicit_precision_prior is not None:  # one majorise-minimise step, see FactorStatistics
            step = statistics.implicit_sums + self.implicit_precision_prior * implicit
            implicit = implicit - step / (counts + self.implicit_precision_prior)[:, :, np.newaxis]
        loadings = rows[:, :, :q]
        if self._offset_width:
            offset_column = np.broadcast_to(offset_scales[:, np.newaxis, np.newaxis], loadings.shape[:2] + (1,))
            loadings = np.concatenate([offset_column, loadings], axis=2)
        if self._learns_pattern_strength:
            parameters = _Parameters(rows[:, :, :q], noise, implicit, uncertainty, pattern, pattern_variance)
            pattern_variance = np.broadcast_to(self._pattern_variance_step(parameters)[:, np.newaxis, np.newaxis],
                                               pattern_variance.shape)
        covariances = _join(loadings, noise, implicit, uncertainty, pattern, pattern_variance).astype(dtype)
        return Mixture(mixture_weights(statistics), rows[:, :, q].astype(dtype), covariances)

    def _pattern_variance_step(self, parameters):
        """One EM step in ``v_j`` given the other parameters (free loadings, as posterior means if
        variational), ``g`` missing: ``sum_k (beta_jk |m_jk|^2 + tr P_j^{-1}) / (q r)``, ``(K,)``,
        with ``beta_jk`` the ARD maximisers given them."""
        parameters = parameters._replace(pattern_variance=parameters.pattern_variance.astype(np.float64))
        posterior = self._pattern_posterior(parameters)
        beta = self._loading_precisions(parameters, posterior)
        squares = np.einsum("jk,jrk->j", beta, posterior.coefficients**2)
        n_factors = beta.shape[1]
        return (squares + n_factors * posterior.traces) / (n_factors * self._pattern_width)

    def _prior_terms(self, prior, mixture):
        """``diag(D)`` of each component, ``(K, q+1)``, the centres ``c_jl``, ``(K, d, q+1)``, and with the
        pattern prior ``F_l P_j^{-1} F_l^T``, ``(K, d)`` (else None): with ARD the loading precisions
        are the maximisers for ``mixture``'s loadings, with the pattern prior the loadings' centres
        are ``F m_jk`` under ``q(g)`` given them."""
        q = self.n_factors
        n_components, n_features = mixture.means.shape
        precision = np.zeros((n_components, q + 1))
        centre = np.zeros((n_components, n_features, q + 1))
        spreads = None
        if self.loading_precision_prior is not None:
            parameters = self._free(self._split(mixture.covariances.astype(np.float64)))
            posterior = self._pattern_posterior(parameters)
            precision[:, :q] = self._loading_precisions(parameters, posterior)
            if posterior is not None:
                centre[..., :q], spreads = posterior.centres, posterior.spreads
        if prior is not None:
            precision[:, q], centre[..., q] = prior
        return precision, centre, spreads

    def _pattern_posterior(self, parameters):
        """:class:`_PatternPosterior` given the loadings (their means, if variational), or None
        without the pattern prior: ``r x r`` systems, one per component."""
        if not self._pattern_width:
            return None
        features = parameters.pattern  # (K, d, r)
        weighted = features / parameters.noise[..., np.newaxis]  # Psi^-1 F
        precision = np.einsum("jlr,jls->jrs", weighted, features)
        ratio = 1.0 / parameters.pattern_variance[:, 0, 0]  # lambda_j / s^2
        precision[:, np.arange(self._pattern_width), np.arange(self._pattern_width)] += ratio[:, np.newaxis]
        projections = np.einsum("jlr,jlk->jrk", weighted, parameters.loadings)  # F^T Psi^-1 w_k
        roots = np.linalg.cholesky(precision)
        coefficients = np.linalg.solve(precision, projections)  # m_jk
        covariances = np.linalg.inv(precision)
        return _PatternPosterior(
            centres=np.einsum("jlr,jrk->jlk", features, coefficients),
            spreads=np.einsum("jlr,jrs,jls->jl", features, covariances, features),
            explained=np.einsum("jrk,jrk->jk", coefficients, projections),
            log_det=2.0 * np.log(np.diagonal(roots, axis1=1, axis2=2) / np.sqrt(ratio)[:, np.newaxis]).sum(axis=1),
            coefficients=coefficients,
            traces=np.trace(covariances, axis1=1, axis2=2),
        )

    def _loading_precisions(self, parameters, pattern_posterior):
        """``beta_jk`` of the loading prior, ``(K, q)``: ``loading_precision_prior``,
        or with ARD each column's maximiser ``(d + a) / (sum_l E[w_jlk^2] / psi_jl + a / beta)``,
        at least ``beta`` unless variational (with the pattern prior, less ``m_jk^T P_j m_jk``)."""
        n_components, n_features, q = parameters.loadings.shape
        beta = self.loading_precision_prior
        if self.loading_ard_prior is None:
            return np.full((n_components, q), float(beta))
        a = self.loading_ard_prior * n_features
        spread = self._loading_spread(parameters, pattern_posterior)
        precisions = (n_features + a) / (spread + a / beta)
        # MAP loadings carry no uncertainty, so their small columns look unsupported: floored at beta
        return precisions if self._variational else np.maximum(precisions, beta)

    def _loading_spread(self, parameters, pattern_posterior):
        """``E[w_jk^T Sigma_j^{-1} w_jk]``, ``(K, q)``: ``sum_l E[w_jlk^2] / psi_jl``, less what the
        pattern explains if any (see the module docstring)."""
        spread = np.einsum("jlk,jl->jk", self._squared_loadings(parameters), 1.0 / parameters.noise)
        return spread if pattern_posterior is None else spread - pattern_posterior.explained

    def _squared_loadings(self, parameters):
        """``E[w_jlk^2]``, ``(K, d, q)``: the squared loadings, plus their posterior variances if variational."""
        squared = parameters.loadings**2
        if self._variational:
            squared = squared + parameters.uncertainty[..., _packed_diagonal(self.n_factors + 1)[:-1]]
        return squared

    def _noise_target(self):
        return 1.0 if self.noise_variance_target is None else self.noise_variance_target

    def log_prior(self, mixture, prior, log_scale=0.0):
        """The log prior densities of the means (under ``prior``) and of the
        loadings (under ``loading_precision_prior``), in the data's units,
        plus the noise prior's ``-nu/2 log psi - nu s^2 / (2 psi)`` (up to a
        constant, so that ``nu`` may be any positive number).

        With ``loading_posterior="variational"`` the priors' terms are their
        expectations under ``q(w_l, mu_l)``, and the entropy of ``q`` is added:
        with the row terms, the variational lower bound on the log evidence.
        """
        parameters = self._free(self._split(mixture.covariances.astype(np.float64)))
        loadings, noise, implicit, uncertainty = parameters[:4]
        n_components, n_features, q = loadings.shape
        total = 0.0
        prior_dimensions = 0  # of (w_l, mu_l) under a proper prior, each in the data's units
        if prior is not None:
            kappa, prior_means = prior
            squared_deviation = (mixture.means - prior_means) ** 2
            if self._variational:
                squared_deviation = squared_deviation + uncertainty[..., -1]
            total += -0.5 * float((np.log(2.0 * np.pi * noise / kappa) + kappa * squared_deviation / noise).sum())
            prior_dimensions += 1
        if self.loading_precision_prior is not None:  # w_jk ~ N(0, Sigma_j / beta_jk), Sigma_j = Psi_j (+ pattern)
            pattern_posterior = self._pattern_posterior(parameters)
            beta = self._loading_precisions(parameters, pattern_posterior)
            total += -0.5 * float(
                q * np.log(2.0 * np.pi * noise).sum() - n_features * np.log(beta).sum()
                + (beta * self._loading_spread(parameters, pattern_posterior)).sum()
            )
            if pattern_posterior is not None:  # log det Sigma_j = sum_l log psi_jl + log det(s^2 P_j / lambda)
                total -= 0.5 * q * float(pattern_posterior.log_det.sum())
            prior_dimensions += q
            if self.loading_ard_prior is not None:  # the hyperprior on each beta_jk, up to a constant
                a = self.loading_ard_prior * n_features
                total += 0.5 * a * float((np.log(beta) - beta / self.loading_precision_prior).sum())
        total -= n_components * n_features * prior_dimensions * log_scale
        if self._variational:  # the entropy of q; with the priors' terms, a -KL free of the data's units
            root = np.linalg.cholesky(_unpack(uncertainty, q + 1))
            log_det = 2.0 * np.log(np.diagonal(root, axis1=-2, axis2=-1)).sum()
            total += 0.5 * float(n_components * n_features * (q + 1) * np.log(2.0 * np.pi * np.e) + log_det)
            total += n_components * n_features * prior_dimensions * log_scale
        if self.noise_variance_prior is not None:
            nu = self.noise_variance_prior
            total += -0.5 * nu * float((np.log(noise) + self._noise_target() / noise).sum())
        if self._implicit_width:  # C_j ~ N(0, I / lambda); C maps patterns to factors and has no units
            lam = self.implicit_precision_prior
            total += -0.5 * float(implicit.size * np.log(2.0 * np.pi / lam) + lam * (implicit**2).sum())
        return total

    # -- predictions ----------------------------------------------------------

    def impute(self, observed, resp, mixture):
        """``sum_j r_uj (mu_jl + w_jl^T m_uj)``: one product of the weighted
        factor means ``(n, K q)`` with the stacked loadings ``(K q, d)``."""
        imputed = resp @ mixture.means
        loadings = _stacked(self._split(mixture.covariances).loadings)  # (K q, d)
        for rows, block in self._chunks(observed, mixture):
            factors = self._factors(block, mixture)
            weighted = factors.means * resp[rows][:, :, np.newaxis]
            imputed[rows] += weighted.reshape(block.n_samples, -1).astype(imputed.dtype) @ loadings
        return imputed

    def impute_entries(self, observed, resp, mixture, rows, cols):
        unique_rows, positions = np.unique(rows, return_inverse=True)
        block = observed.row_block(unique_rows)
        factor_means = np.concatenate([self._factors(part, mixture).means for _, part in self._chunks(block, mixture)])
        loadings = self._split(mixture.covariances).loadings
        predicted = np.einsum("ij,ij->i", resp[rows], mixture.means.T[cols])
        weighted = factor_means[positions] * resp[rows][:, :, np.newaxis]
        predicted += np.einsum("ika,kia->i", weighted, loadings[:, cols])
        return predicted

    def predictive_variance(self, observed, resp, mixture):
        return self.predictive_moments(observed, resp, mixture)[1]

    def row_offsets(self, observed, resp, mixture):
        """``sum_j r_uj tau_j E_j[t0 | x_O]`` (``row_offset_factor`` only)."""
        offset_scales = self._split(mixture.covariances).loadings[:, 0, 0].astype(np.float64)
        offsets = np.empty(observed.n_samples)
        for rows, block in self._chunks(observed, mixture):
            offsets[rows] = (self._factors(block, mixture).means[..., 0] * resp[rows]) @ offset_scales
        return offsets

    def predictive_moments(self, observed, resp, mixture):
        """``x_hat`` and ``sum_j r_uj (psi_jl + mu_jl^2 + 2 mu_jl w_jl^T m_uj + w_jl^T E_j[t t^T] w_jl) - x_hat_ul^2``,
        from one posterior of the factors per row.

        The last term is one product of the responsibility-weighted
        ``E_j[t t^T] = A^{-1} + m m^T`` (packed) with the packed ``w_l w_l^T``;
        computed for every entry (the caller zeroes the observed ones). With
        ``loading_posterior="variational"`` the products of ``w_l`` and ``mu_l``
        are their expectations: the loadings' uncertainty widens the spread.
        """
        means = mixture.means
        loadings, noise, _, uncertainty = self._split(mixture.covariances)[:4]
        upper = np.triu_indices(loadings.shape[2])
        doubled = np.where(upper[0] == upper[1], 1.0, 2.0)  # off-diagonal pairs appear twice
        outer, cross, squared_means = self._loading_moments(loadings, means, uncertainty)
        outer, cross = _stacked(outer * doubled), _stacked(2.0 * cross)
        stacked_loadings = _stacked(loadings)
        imputed = resp @ means
        second_moment = resp @ (noise + squared_means)
        for rows, block in self._chunks(observed, mixture):
            factors = self._factors(block, mixture)
            r = resp[rows][:, :, np.newaxis]
            weighted_means = (factors.means * r).reshape(block.n_samples, -1)
            packed = (_second_moments(factors) * r).reshape(block.n_samples, -1)
            imputed[rows] += (weighted_means @ stacked_loadings).astype(imputed.dtype)
            second_moment[rows] += (packed @ outer + weighted_means @ cross).astype(second_moment.dtype)
        second_moment -= imputed**2
        return imputed, np.maximum(second_moment, 0.0, out=second_moment)

    def sample(self, observed, resp, mixture, random_state):
        """A component ``z_u`` per row, factors from ``N(m_uz, A_uz^{-1})``,
        then every coordinate from ``N(mu_zl + w_zl^T t, psi_zl)`` (the
        loadings' posterior means, also when variational)."""
        means = mixture.means
        loadings, noise = self._split(mixture.covariances)[:2]
        n, q = observed.n_samples, loadings.shape[2]
        components = draw_components(resp, random_state)
        factor_noise = random_state.standard_normal(size=(n, q))
        noise_draws = random_state.standard_normal(size=(n, means.shape[1])).astype(means.dtype)
        factors = np.empty((n, q))
        for rows, block in self._chunks(observed, mixture):
            posterior = self._factors(block, mixture)
            picked = components[rows]
            index = np.arange(block.n_samples)
            roots = np.linalg.cholesky(posterior.covariances[index, picked])
            factors[rows] = posterior.means[index, picked] + np.einsum("nab,nb->na", roots, factor_noise[rows])
        draws = np.empty((n, means.shape[1]), dtype=means.dtype)
        for j in range(len(means)):  # a loop over components, not rows
            chosen = components == j
            draws[chosen] = means[j] + (factors[chosen] @ loadings[j].T + np.sqrt(noise[j]) * noise_draws[chosen])
        return draws


# --- layout helpers -------------------------------------------------------------


def _join(loadings, noise, implicit, uncertainty, pattern, pattern_variance):
    """The packed layout of :meth:`FactorCovariance._split`'s parts."""
    return np.concatenate([loadings, noise[..., np.newaxis], implicit, uncertainty, pattern, pattern_variance],
                          axis=-1)


def estimated_noise_prior(moments):
    """``(nu, s^2)`` of the noise variances' prior, by maximum marginal likelihood (empirical Bayes).

    Under ``psi_l ~ nu s^2 / chi^2_nu`` the sample variance ``s_l^2`` of a
    feature's ``n_l`` entries (``moments``: those of the residuals) with
    ``f_l = n_l - 1`` degrees of freedom is ``s^2`` times an ``F(f_l, nu)``
    variable, so ``(nu, s^2)`` maximise

    ``sum_l log F(s_l^2 / s^2; f_l, nu) - log s^2``

    over the features with at least two entries and a positive variance,
    ``nu`` within :data:`AUTO_NOISE_PRIOR_LIMITS` (2-parameter L-BFGS on the
    logarithms, with the gradient). With fewer than two such features there is nothing to
    compare: the prior is worth one observation at their pooled variance.
    """
    counts = moments.counts.astype(np.float64)
    usable = counts >= 2.0
    variances = moments.column_variances()[usable] * counts[usable] / (counts[usable] - 1.0)
    freedom = counts[usable][variances > 0] - 1.0
    variances = variances[variances > 0]
    if len(variances) < 2:
        pooled = float((variances * freedom).sum() / freedom.sum()) if len(variances) else 1.0
        return 1.0, pooled
    half = 0.5 * freedom
    log_variances = np.log(variances)

    def negative_log_likelihood(point):
        """Minus the mean log marginal density, and its gradient in ``(log nu, log s^2)``."""
        log_nu, log_target = point
        nu = np.exp(log_nu)
        ratio = freedom * np.exp(log_variances - log_target) / nu  # f_l s_l^2 / (s^2 nu)
        weight = (half + 0.5 * nu) * ratio / (1.0 + ratio)
        log_density = (half * np.log(freedom / nu) + (half - 1.0) * (log_variances - log_target)
                       - (half + 0.5 * nu) * np.log1p(ratio) - betaln(half, 0.5 * nu) - log_target)
        by_nu = -half - 0.5 * nu * np.log1p(ratio) + weight - 0.5 * nu * (digamma(0.5 * nu) - digamma(half + 0.5 * nu))
        by_target = weight - half
        return -float(log_density.mean()), -np.array([by_nu.mean(), by_target.mean()])

    start = np.array([np.log(10.0), float(log_variances.mean())])
    bounds = [tuple(np.log(AUTO_NOISE_PRIOR_LIMITS)), (None, None)]
    point = minimize(negative_log_likelihood, start, jac=True, method="L-BFGS-B", bounds=bounds,
                     options={"ftol": 1e-15, "gtol": 1e-10}).x
    # The line searches stop wherever the tolerances say, which moves with the order of the
    # sums that made the moments: Newton steps (a central-difference Hessian of the gradient)
    # take every backend to the same optimum, to rounding.
    lower, upper = bounds[0]
    for _ in range(_NOISE_PRIOR_POLISH_STEPS):
        gradient = negative_log_likelihood(point)[1]
        hessian = np.column_stack([
            (negative_log_likelihood(point + step)[1] - negative_log_likelihood(point - step)[1]) / (2.0 * _NEWTON_STEP)
            for step in _NEWTON_STEP * np.eye(2)])
        free = np.array([lower < point[0] < upper, True])
        hessian = 0.5 * (hessian + hessian.T)[np.ix_(free, free)]
        if not np.all(np.linalg.eigvalsh(hessian) > 0):
            break
        point[free] -= np.linalg.solve(hessian, gradient[free])
        point[0] = np.clip(point[0], lower, upper)
    return float(np.exp(point[0])), float(np.exp(point[1]))


def _stacked(per_component):
    """``(K, d, c)`` coefficients as the ``(K c, d)`` rows that one product with the data takes."""
    return per_component.transpose(0, 2, 1).reshape(-1, per_component.shape[1])


def _unstacked(column_sums, n_components):
    """``(K c, d)`` sums back to ``(K, d, c)``."""
    return column_sums.reshape(n_components, -1, column_sums.shape[1]).transpose(0, 2, 1)


def _unpack(packed, size):
    """Symmetric ``(..., size, size)`` matrices from their packed upper triangles."""
    upper = np.triu_indices(size)
    full = np.empty(packed.shape[:-1] + (size, size), dtype=packed.dtype)
    full[..., upper[0], upper[1]] = packed
    full[..., upper[1], upper[0]] = packed
    return full


def _packed_diagonal(size):
    """Positions of the diagonal in a packed upper triangle of ``size x size``."""
    upper = np.triu_indices(size)
    return np.flatnonzero(upper[0] == upper[1])


def _offset_scales(moments, value_sums, rows, noise, previous):
    """``tau_j`` maximising the expected log-likelihood given ``lambda_l = (w_l, mu_l)`` (their
    posterior means, if variational): the row offset's fixed column, with ``t0`` first in
    ``t~ = (t0, t, 1)``, ``sum_l (h_l0 - G_l0R lambda_l) / psi_l / sum_l G_l00 / psi_l``, ``(K,)``;
    ``previous`` where no feature is observed."""
    weights = 1.0 / noise.astype(np.float64)
    explained = np.einsum("jla,jla->jl", moments[..., 0, 1:], rows)
    numerator = np.einsum("jl,jl->j", value_sums[..., 0] - explained, weights)
    denominator = np.einsum("jl,jl->j", moments[..., 0, 0], weights)
    return np.divide(numerator, denominator, out=previous.astype(np.float64), where=denominator > 0)


def _given_offset(moments, value_sums, squared_sums, offset_scales):
    """The statistics of ``x - tau_j t0`` on ``(t, 1)``: what the free columns' M-step regresses."""
    tau = offset_scales[:, np.newaxis]
    reduced_values = value_sums[..., 1:] - tau[..., np.newaxis] * moments[..., 1:, 0]
    reduced_squares = squared_sums - 2.0 * tau * value_sums[..., 0] + tau**2 * moments[..., 0, 0]
    return moments[..., 1:, 1:], reduced_values, reduced_squares


def _embedded_positions(q, offset_width):
    """Where the packed upper triangle of ``q x q`` sits in that of ``(offset_width + q)`` squared,
    past the leading ``offset_width`` rows and columns."""
    upper = np.triu_indices(offset_width + q)
    return np.flatnonzero((upper[0] >= offset_width) & (upper[1] >= offset_width))


def _second_moments(factors):
    """``E_j[t t^T | x_u] = A_uj^{-1} + m_uj m_uj^T``, packed upper triangles, ``(n, K, q(q+1)/2)``."""
    upper = np.triu_indices(factors.means.shape[2])
    means = factors.means
    return factors.covariances[..., upper[0], upper[1]] + means[..., upper[0]] * means[..., upper[1]]


def _augmented_positions(q):
    """Where the packed upper triangle of ``E[t~ t~^T]`` (size ``q+1``) holds
    that of ``E[t t^T]`` (in its own packed order) and its last column."""
    upper = np.triu_indices(q + 1)
    last = upper[1] == q
    return np.flatnonzero(~last), np.flatnonzero(last)


def _sketch_directions(n_features, n_directions, dtype):
    """The fixed Gaussian test directions ``Omega`` of :class:`FactorMoments` (the same in every block)."""
    return np.random.default_rng(0).standard_normal((n_features, n_directions)).astype(dtype)


def _pattern_features(sketch, directions, counts, n_features_kept):
    """``F`` (``d x r``) with ``F F^T`` the rank-``r`` part of ``M = N^{-1/2} A N^{-1/2}``, from
    ``sketch = A Omega``.

    ``sketch`` is also ``M Omega'`` scaled, for the directions ``Omega' = N^{1/2} Omega``:
    ``M Omega' = N^{-1/2} A Omega``, so Nystrom's approximation of ``M`` takes
    both from the one pass. Columns past the sketch's rank stay 0.
    """
    root_counts = np.sqrt(counts)
    inverse_roots = np.divide(1.0, root_counts, out=np.zeros_like(root_counts), where=counts > 0)
    vectors, eigenvalues = _principal_directions(inverse_roots[:, np.newaxis] * sketch,
                                                 root_counts[:, np.newaxis] * directions, n_features_kept)
    features = np.zeros((len(counts), n_features_kept))
    features[:, : len(eigenvalues)] = vectors * np.sqrt(eigenvalues)
    return features


def _principal_directions(sketch, directions, n_factors):
    """The ``n_factors`` leading eigenvectors and eigenvalues of ``V^T V`` from ``Y = V^T V Omega``.

    Nystrom: ``V^T V ~ Y (Omega^T Y)^+ Y^T``; with ``Y = QR`` its eigenpairs
    are those of the small ``R (Omega^T Y)^+ R^T`` carried by ``Q``.
    """
    core = directions.T @ sketch
    core = np.linalg.pinv((core + core.T) / 2.0, hermitian=True, rcond=1e-10)
    basis, triangle = np.linalg.qr(sketch)
    eigenvalues, vectors = np.linalg.eigh(triangle @ core @ triangle.T)
    order = np.argsort(eigenvalues)[::-1][:n_factors]
    return basis @ vectors[:, order], np.maximum(eigenvalues[order], 0.0)
