"""The scikit-learn estimator: parameters, validation and the public methods."""

import copy
import math
import warnings
from functools import partial
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from scipy.special import log_ndtr
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import (
    _check_feature_names_in,
    check_array,
    check_is_fitted,
    validate_data,
)

from ._biases import remove_offsets
from ._diag import DiagCovariance
from ._em import STOPPING_RULES, fit_mixture, prepare
from ._factor import FactorCovariance
from ._full import FullCovariance
from ._observed import ObservedEntries
from ._spherical import SphericalCovariance

FAMILIES = {
    family.name: family for family in (SphericalCovariance, DiagCovariance, FullCovariance, FactorCovariance)
}
"""The covariance families by ``covariance_type``; a new family is added here."""

EXCLUSIVE_HYPERPARAMETERS = {
    name: family.name for family in FAMILIES.values() for name in family.exclusive_hyperparameters
}
"""Estimator parameters that only one family uses, and that family's name."""

AUTO_FULL_MAX_FEATURES = 100
AUTO_FULL_ROWS_PER_FEATURE = 10
"""``covariance_type="auto"`` picks "full" for dense input with at most
``AUTO_FULL_MAX_FEATURES`` features and at least ``AUTO_FULL_ROWS_PER_FEATURE``
rows per feature and component; "diag" otherwise."""

# Largest dense array that transform returns for sparse input, and the size of
# the dense blocks that predict_entries and recommend work in (entries).
_MAX_DENSE_OUTPUT = 2**27
_BATCH_ENTRIES = 2**22


PRESET_COURSE = {
    "covariance_type": "spherical",
    "init_params": "random_from_data",
    "min_variance": 0.25,
    "tol": 1e-6,
    "stopping_rule": "relative_gain",
    "max_iter": 1000,
}
"""The model of the MITx 6.86x collaborative-filtering project: spherical
components started from random rows (zeros at their missing entries), a
variance floor of 0.25 (in the ratings' squared units) and the relative
stopping rule ``L_new - L_old <= 1e-6 |L_new|``. ``MaskedGaussianMixtureImputer(K,
**PRESET_COURSE, missing_values=0, random_state=seed)`` reproduces the
course's figures on the Netflix matrix (see the README). Pinned here so that
they do not depend on the estimator's defaults."""


PRESET_RATINGS = {
    "biases": True,
    "bias_shrinkage": 25.0,
    "covariance_type": "factor",
    "n_components": 1,
    "n_factors": 20,
    "loading_precision_prior": 100.0,
    "loading_ard_prior": 2.0,
    "mean_precision_prior": 25.0,
    "noise_variance_prior": 50.0,
    "init_params": "kmeans",
}
"""Parameters we recommend for rating matrices (see the README): user and item
biases, then one factor component (probabilistic matrix factorisation of the
residuals) of at most 20 factors, each factor column's loadings shrunk by its
own precision, estimated from the data (automatic relevance determination)
under a hyperprior worth twice the items, centred on (and never below) 100
ratings' worth, so that the data decide how
many factors they support; the means are shrunk towards the offsets by a prior
worth 25 ratings and the noise variances towards the pooled variance by one
worth 50 (so that an item rated once or twice is predicted about as the bias
model predicts it, and tops no list). Add the rating scale, e.g.
``MaskedGaussianMixtureImputer(**PRESET_RATINGS, min_value=1, max_value=5)``;
tuning over :data:`RATINGS_GRID` by cross-validation gains little."""

RATINGS_GRID = {"n_factors": [10, 20, 30], "loading_ard_prior": [1.0, 2.0, 5.0]}
"""The grid we recommend searching from :data:`PRESET_RATINGS` with
:class:`~sklearn.model_selection.GridSearchCV` and
:func:`~skgmmfill.metrics.make_masked_rmse_scorer`: the most factors allowed
and how firmly their precisions are held near the preset's."""


def _is_nan(value):
    return isinstance(value, Real) and math.isnan(value)


class EmptyFeatureWarning(UserWarning):
    """Some features have no observed value in the data given to ``fit``.

    Issued once per fit. ``warnings.filterwarnings("ignore",
    category=EmptyFeatureWarning)`` silences it, in a ``GridSearchCV`` too
    (scikit-learn passes the filters on to its workers).
    """


_NAMED_EMPTY_FEATURES = 10


def _empty_features_message(empty_features, feature_names):
    """The warning for features without observed values, naming at most ten of
    them: by ``feature_names_in_`` when the data had names (a DataFrame, or
    ``read_ratings(..., as_frame=True)``'s item ids), else by column index."""
    where = np.flatnonzero(empty_features)
    shown = where[:_NAMED_EMPTY_FEATURES]
    names = [repr(str(name)) for name in feature_names[shown]] if feature_names is not None else [str(i) for i in shown]
    more = f" and {where.size - shown.size} more" if where.size > shown.size else ""
    which = "" if feature_names is not None else "column(s) "
    return (
        f"{where.size} of {empty_features.size} feature(s) have no observed value in the data given to fit "
        f"({which}{', '.join(names)}{more}). They are dropped from the output of transform; set "
        "keep_empty_features=True to keep them (filled from the offsets with biases=True, else with 0)."
    )


class MaskedGaussianMixtureImputer(TransformerMixin, BaseEstimator):
    r"""Impute missing entries with a Gaussian mixture fitted on the observed entries.

    The mixture is fitted by EM in which each row's likelihood counts only the
    row's observed entries; a missing entry is then filled with the
    posterior-weighted mean of the components given the row's observed
    entries. Rows may have any pattern of missing entries, including none.

    Parameters
    ----------
    n_components : int, default=1
        Number of mixture components ``K``.

    covariance_type : {"auto", "spherical", "diag", "full", "factor"}, default="auto"
        Form of each component's covariance:

        - ``"auto"``: ``"full"`` for dense input with at most 100 features
          and at least ``10 * n_features * n_components`` rows, where the
          correlations between features are worth their cost and can be
          estimated; ``"diag"`` otherwise (sparse input, wide tables such as
          rating matrices, few rows). The choice is stored in
          ``covariance_type_``;
        - ``"spherical"``: one variance per component, shared by all features
          (the course's model);
        - ``"diag"``: one variance per component and feature;
        - ``"full"``: a full covariance matrix per component; a missing entry
          is then imputed by its conditional mean given the row's observed
          entries (exact EM for incomplete data). Dense input only. Each row
          factorises, per component, the smaller of its observed block of the
          covariance and its missing block of the precision matrix, so a row
          with ``o`` observed of ``d`` features costs about
          ``min(o, d - o)**3 / 3`` operations plus products with ``d x d``
          matrices (once for all rows of a frequent missingness pattern).
          Meant for tables of up to a few hundred features; a fit whose
          iterations are slow says so with a warning;
        - ``"factor"``: :math:`W_j W_j^\top + \operatorname{diag}(\psi_j)` with ``n_factors``
          columns in the loadings :math:`W_j` (a mixture of factor analysers):
          correlations between any number of features at a cost linear in
          ``d``, on dense and sparse input. A missing entry is imputed by its
          exact conditional mean, :math:`\mu_{jl} + w_{jl}^\top \mathbb{E}[t \mid x_{u,o}]` with
          :math:`t \mid x_{u,o} \sim \mathcal{N}(A^{-1} b, A^{-1})`,
          :math:`A = I + \sum_{l \in o} w_{jl} w_{jl}^\top / \psi_{jl}` and
          :math:`b = \sum_{l \in o} w_{jl} (x_{ul} - \mu_{jl}) / \psi_{jl}`. With one
          component and ``biases=True``, probabilistic matrix factorisation
          (see ``PRESET_RATINGS``).

    missing_values : float, default=np.nan
        The placeholder for missing entries: ``np.nan``, or a number such as 0
        for a rating matrix whose unrated entries are stored as 0. Every other
        value is observed. When it is a number, NaN in the input is an error.

    init_params : {"kmeans", "random_from_data"}, default="kmeans"
        How the parameters are initialised:

        - ``"kmeans"``: k-means on the standardised rows with missing entries
          replaced by their column's mean (left out for sparse input, which
          comes to about the same after centring), then one M-step from the
          clusters, as :class:`~sklearn.mixture.GaussianMixture` does by
          default. Above 10,000 rows k-means clusters 10,000 evenly spaced
          rows and every row joins its nearest centre, so that the start
          costs a few EM iterations at any scale. It does not depend on the
          data's units or offsets.
        - ``"random_from_data"`` (the course's rule): the means are
          ``n_components`` distinct rows drawn at random, with 0 at their
          missing entries; the weights are uniform; the variances are the mean
          of :math:`(x - \mu_j)^2` over all entries, missing ones counted as 0.
          Because it puts missing entries at the data's 0, it depends on
          where that 0 is: poor for data far from 0.

    n_init : int, default=1
        Number of initialisations; the run with the highest final
        log-likelihood is kept.

    max_iter : int, default=100
        Maximum number of EM iterations (E-step then M-step) per initialisation.

    tol : float, default=1e-3
        Convergence threshold, read by ``stopping_rule``.

    stopping_rule : {"mean_gain", "relative_gain"}, default="mean_gain"
        When EM stops, with ``L`` the mean per-row log-likelihood (plus the
        scaled log prior, with ``mean_precision_prior``) of each E-step:

        - ``"mean_gain"``: after the first E-step with :math:`L_\mathrm{new} - L_\mathrm{old} \le \mathrm{tol}`,
          as :class:`~sklearn.mixture.GaussianMixture`. Rescaling the data
          shifts ``L`` by a constant, so the rule does not depend on units.
        - ``"relative_gain"`` (the course's rule): :math:`L_\mathrm{new} - L_\mathrm{old} \le \mathrm{tol}\,
          |L_\mathrm{new}|`. ``|L|`` changes with the data's units, and so does when
          this rule stops.

    min_variance : float or "auto", default="auto"
        For ``"spherical"``, ``"diag"`` and ``"factor"`` (its noise variances):
        floor on every variance, applied at initialisation and after each
        M-step. It keeps components that collapse onto a single row finite.
        ``"auto"`` is 1e-3 times the variance of the observed entries: each
        feature's own for ``"diag"`` and ``"factor"`` (the pooled one for a
        feature without spread), the pooled variance of all features for
        ``"spherical"``. A number is in the squared units of the data (0.25 is
        the course's value for ratings 1-5). Not used by ``"full"``.

    reg_covar : float or "auto", default="auto"
        For ``"full"``: a floor ``D`` under every covariance, at
        initialisation and in each M-step, so that they stay positive
        definite: :math:`\Sigma_j - D` is kept positive semi-definite by clipping
        the eigenvalues of :math:`D^{-1/2} \Sigma_j D^{-1/2}` at 1, the exact
        M-step under that constraint (as ``min_variance`` is for
        ``"diag"``), so EM never lowers its objective. Unlike
        :class:`~sklearn.mixture.GaussianMixture`, which adds ``reg_covar`` to
        every diagonal, a covariance already above the floor is left as
        estimated. ``"auto"`` is ``D = 1e-6`` times each feature's variance
        (what scikit-learn's absolute 1e-6 is for standardised data); a number
        is in the squared units of the data. Not used by ``"spherical"``,
        ``"diag"`` and ``"factor"``.

    n_factors : int or None, default=None
        For ``"factor"``: the number ``q`` of latent factors, below
        ``n_features``; None takes ``min(10, n_features - 1)``. Setting it
        with another covariance type is an error.

    loading_precision_prior : float or None, default=None
        For ``"factor"``: strength ``beta`` of the prior
        :math:`w_{jl} \sim \mathcal{N}(0, \psi_{jl} I / \beta)` on each feature's loadings, worth
        ``beta`` observations of the feature at 0 (MAP-EM); what keeps
        rarely observed features (items with few ratings) from overfitting.
        None fits the loadings by maximum likelihood. Setting it with another
        covariance type is an error.

    loading_ard_prior : float or None, default=None
        For ``"factor"``, with ``loading_precision_prior``: automatic
        relevance determination. Each component's loading column ``k`` gets
        its own precision, :math:`w_{jlk} \sim \mathcal{N}(0, \psi_{jl} / \beta_{jk})`,
        re-estimated at every M-step under a gamma hyperprior centred on
        ``loading_precision_prior`` (never below it) and worth
        ``loading_ard_prior * n_features`` loadings: columns the data do not
        support are shrunk towards 0, so ``n_factors`` becomes an upper bound
        rather than a choice (2 in :data:`PRESET_RATINGS`; weak hyperpriors
        such as 0.2 can prune every column of sparse data). None: every column has
        ``loading_precision_prior``. Setting it with another covariance type
        is an error.

    noise_variance_prior : float or None, default=None
        For ``"factor"``: strength ``nu`` of a conjugate (inverse-gamma) prior
        on each feature's noise variance, worth ``nu`` observations of the
        feature with the pooled variance :math:`s^2` of all observed entries as
        their squared residual: the MAP update is
        :math:`\psi_{jl} = (R_{jl} + \nu s^2) / (D_{jl} + \nu)` for a feature whose
        observations give the residual sum :math:`R_{jl}` over :math:`D_{jl}` degrees of
        freedom. A feature observed a handful of times (an item rated once)
        then keeps a noise variance near :math:`s^2` instead of one at the floor,
        so its few values neither dominate the factors of the rows that
        observe it nor make its own predictions overconfident. None fits the
        noise variances by maximum likelihood. Setting it with another
        covariance type is an error.

    implicit_precision_prior : float or None, default=None
        For ``"factor"``: implicit feedback, SVD++'s insight that *which*
        entries a row observes (the items a user rated) says something of the
        row. With a number ``lambda``, each row's factors get the prior mean
        :math:`C_j^\top y_u` instead of 0, where :math:`y_u` is the row's indicator of
        observed entries divided by :math:`\sqrt{|O_u|}` and the ``d x q`` map
        :math:`C_j` (``implicit_loadings_``) is learnt by EM under the prior
        :math:`C_j \sim \mathcal{N}(0, I / \lambda)`, at the cost of one more product with the
        pattern per iteration. None: no implicit feedback. Setting it with
        another covariance type is an error.

    mean_precision_prior : float or None, default=None
        Strength ``kappa`` of a prior that shrinks each component's mean
        towards the column means of the data (towards 0, the residuals'
        expected mean, when ``biases=True``), :math:`\mu_j \sim \mathcal{N}(m, \Sigma_j / \kappa)`
        (conjugate, as the mean part of
        :class:`~sklearn.mixture.BayesianGaussianMixture`'s prior, and with
        the same name). EM then finds the MAP parameters; ``kappa`` acts as
        that many pseudo-observations of each feature at its column mean, so a
        component's mean moves away from ``m`` only where it has data. None
        fits by maximum likelihood (the course's model).

    biases : bool, default=False
        If True, model :math:`x_{ul} = b + r_u + c_l + e_{ul}` with a global mean
        ``b``, row offsets :math:`r_u` and column offsets :math:`c_l` (user and item
        biases for ratings) estimated on the observed entries with ridge
        shrinkage ``bias_shrinkage``, and fit the mixture to the residuals
        :math:`e_{ul}`. Every prediction adds the offsets back; a row not seen in fit
        gets its offset from its own observed entries.

    bias_shrinkage : float, default=25.0
        Ridge strength of the offsets, as a number of pseudo-entries at 0:
        :math:`c_l = \sum_u (x_{ul} - b - r_u) / (n_l + \lambda_b)` (:math:`\lambda_b` = ``bias_shrinkage``) and likewise
        for :math:`r_u`. Used only when ``biases=True``.

    sample_posterior : bool, default=False
        If True, :meth:`transform` fills each missing entry with a draw from
        its posterior predictive distribution instead of its mean: for each
        row a component is drawn from the row's responsibilities, then the
        missing entries from that component's Gaussian conditioned on the
        observed ones. Successive calls draw anew from a generator seeded by
        ``random_state`` at ``fit``; imputing several times (or with several
        seeds) gives a multiple imputation.

    min_value : float or array-like of shape (n_features,), default=-np.inf
        Lower bound on imputed values (observed entries are never changed),
        e.g. 1 for ratings 1-5.

    max_value : float or array-like of shape (n_features,), default=np.inf
        Upper bound on imputed values.

    keep_empty_features : bool, default=False
        What to do with features that have no observed entry during ``fit``:
        if False they are dropped from the output of ``transform``; if True
        they are kept. Their missing entries (in ``transform`` and
        :meth:`predict_entries`) are then filled from the offsets alone,
        ``b + r_u`` (the global mean plus the row's offset: a new item's
        rating predicted as the bias model predicts it), with
        ``biases=True``, and with 0 without biases, where nothing is known of
        them. Such features never count in the likelihood, also at
        ``transform``, and :meth:`recommend` never recommends them.

    random_state : int, RandomState instance or None, default=None
        Seeds the draw of initial rows. An int ``s`` reproduces the original
        course code seeded with ``np.random.seed(s)``.

    warm_start : bool, default=False
        If True and the estimator is already fitted, ``fit`` continues EM from
        the fitted parameters, once, ignoring ``n_init``.

    verbose : int, default=0
        0 prints nothing (but warns if one iteration takes over 20 s, with the
        most the fit can take); 1 prints each initialisation and every
        ``verbose_interval``-th iteration with its mean log-likelihood and the
        time per iteration; 2 prints, instead, the time since the last line
        and the change in the objective too.

    verbose_interval : int, default=10
        Number of iterations between progress lines.

    persist : bool, default=True
        For a dask array ``X`` only: keep its row blocks (observed entries,
        standardised) in the workers' memory for the whole fit, or, if False,
        recompute them from their source at every EM iteration, for data
        larger than the cluster's memory (each iteration then reads the data
        again). See "Beyond one machine" in the user guide.

    Attributes
    ----------
    covariance_type_ : str
        The covariance type fitted: ``covariance_type``, or what ``"auto"``
        chose.

    weights_ : ndarray of shape (n_components,)
        Mixing proportions.

    means_ : ndarray of shape (n_components, n_features)
        Component means.

    covariances_ : ndarray
        Component covariances, of shape ``(n_components,)`` (spherical: the
        variances), ``(n_components, n_features)`` (diag: the variances) or
        ``(n_components, n_features, n_features)`` (full). Not set for
        ``"factor"``, whose covariances :math:`W_j W_j^\top + \operatorname{diag}(\psi_j)` are given by
        the next two attributes.

    loadings_ : ndarray of shape (n_components, n_features, n_factors)
        ``"factor"`` only: the loadings :math:`W_j` (up to a rotation of the factors).

    noise_variances_ : ndarray of shape (n_components, n_features)
        ``"factor"`` only: the noise variances ``psi_j``.

    converged_ : bool
        Whether the best run met the stopping rule within ``max_iter``.

    n_iter_ : int
        Number of EM iterations of the best run.

    lower_bound_ : float
        Mean per-row log-likelihood of the observed entries, in the data's
        units, computed by the final E-step of the best run.
        ``lower_bound_ * n_samples`` is the total log-likelihood that the
        course code reports.

    lower_bounds_ : list of float
        ``lower_bound_`` of every E-step of the best run.

    map_objectives_ : list of float
        What EM maximised at every E-step of the best run: ``lower_bounds_``
        plus the log prior of the means and loadings divided by ``n_samples``
        when ``mean_precision_prior``, ``loading_precision_prior`` or
        ``noise_variance_prior`` is set (it
        never decreases; the log-likelihood alone may). Equal to
        ``lower_bounds_`` without a prior.

    mean_prior_ : ndarray of shape (n_features,)
        The means ``m`` the prior shrinks towards: the column means of the
        observed entries, or 0 when ``biases=True``. Only with
        ``mean_precision_prior``.

    global_mean_ : float
        ``b``, the mean of the observed entries. Only with ``biases=True``.

    column_offsets_ : ndarray of shape (n_features,)
        The column offsets :math:`c_l`. Only with ``biases=True``.

    n_observed_ : ndarray of int64, shape (n_features,)
        Number of observed entries of each feature in the data given to
        ``fit`` (an item's number of ratings): the popularity that
        ``recommend(rank_by="hits")`` weighs.

    n_features_in_ : int
        Number of features seen during ``fit``.

    feature_names_in_ : ndarray of shape (n_features,)
        Names of features seen during ``fit``, when ``X`` has string column
        names.

    See Also
    --------
    sklearn.mixture.GaussianMixture : Gaussian mixture for complete data.
    sklearn.impute.IterativeImputer : Imputation by chained regressions.
    sklearn.impute.KNNImputer : Imputation by nearest neighbours.

    Notes
    -----
    For spherical components (the course's model; diag and full follow the
    same pattern, see the user guide), with ``C_u`` the observed columns of
    row ``u`` and ``D_uj`` the squared distance between ``x_u`` and ``mu_j``
    over ``C_u``, EM alternates

    * E-step: ``f_uj = log pi_j - |C_u|/2 log(2 pi sigma_j^2) - D_uj/(2 sigma_j^2)``,
      ``r_uj = exp(f_uj - logsumexp_k f_uk)``; the log-likelihood is
      ``sum_u logsumexp_k f_uk``;
    * M-step: ``pi_j = mean_u r_uj``; for each feature ``l``,
      ``mu_jl = sum_u r_uj [l in C_u] x_ul / sum_u r_uj [l in C_u]`` when the
      denominator is at least 1 (otherwise ``mu_jl`` is kept);
      ``sigma_j^2 = max(sum_u r_uj D_uj / sum_u r_uj |C_u|, min_variance)``
      with the new means.

    A missing entry ``(u, l)`` is imputed as ``sum_j r_uj mu_jl``. All of
    this runs on the standardised data ``(x_ul - a_l) / s`` (column means of
    the observed entries, one global scale; see the user guide), and is
    reported in the data's units. With
    ``biases=True`` all of this applies to the residuals after the offsets, and
    ``score``, ``score_samples`` and ``predict_proba`` are those of the
    residuals; with ``mean_precision_prior`` the reported log-likelihood is
    still the plain log-likelihood of the MAP parameters.

    A row with no observed entry has likelihood 1, responsibilities equal to
    the weights and is filled with the mixture's overall mean. A component
    whose responsibilities all vanish gets weight 0, keeps its mean and
    variance, and takes no further part in the fit or the imputation.

    Examples
    --------
    With full covariances, a missing entry is predicted from the row's other
    entries (here, the second feature is about twice the first):

    >>> import numpy as np
    >>> from skgmmfill import MaskedGaussianMixtureImputer
    >>> X = np.array([[1.0, 2.0], [2.0, 4.1], [3.0, 5.9], [4.0, 8.0], [np.nan, 5.0], [6.0, np.nan]])
    >>> imputer = MaskedGaussianMixtureImputer(covariance_type="full")
    >>> imputer.fit_transform(X).round(2)
    array([[ 1.  ,  2.  ],
           [ 2.  ,  4.1 ],
           [ 3.  ,  5.9 ],
           [ 4.  ,  8.  ],
           [ 2.5 ,  5.  ],
           [ 6.  , 11.92]])
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "covariance_type": [StrOptions({"auto", *FAMILIES})],
        "missing_values": [Real],
        "init_params": [StrOptions({"random_from_data", "kmeans"})],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0.0, None, closed="left")],
        "stopping_rule": [StrOptions(set(STOPPING_RULES))],
        "min_variance": [StrOptions({"auto"}), Interval(Real, 0.0, None, closed="neither")],
        "reg_covar": [StrOptions({"auto"}), Interval(Real, 0.0, None, closed="neither")],
        "n_factors": [None, Interval(Integral, 1, None, closed="left")],
        "loading_precision_prior": [None, Interval(Real, 0.0, None, closed="neither")],
        "loading_ard_prior": [None, Interval(Real, 0.0, None, closed="neither")],
        "noise_variance_prior": [None, Interval(Real, 0.0, None, closed="neither")],
        "implicit_precision_prior": [None, Interval(Real, 0.0, None, closed="neither")],
        "mean_precision_prior": [None, Interval(Real, 0.0, None, closed="neither")],
        "biases": ["boolean"],
        "bias_shrinkage": [Interval(Real, 0.0, None, closed="left")],
        "sample_posterior": ["boolean"],
        "min_value": [None, Interval(Real, None, None, closed="both"), "array-like"],
        "max_value": [None, Interval(Real, None, None, closed="both"), "array-like"],
        "keep_empty_features": ["boolean"],
        "random_state": ["random_state"],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
        "verbose_interval": [Interval(Integral, 1, None, closed="left")],
        "persist": ["boolean"],
    }

    def __init__(
        self,
        n_components=1,
        *,
        covariance_type="auto",
        missing_values=np.nan,
        init_params="kmeans",
        n_init=1,
        max_iter=100,
        tol=1e-3,
        stopping_rule="mean_gain",
        min_variance="auto",
        reg_covar="auto",
        n_factors=None,
        loading_precision_prior=None,
        loading_ard_prior=None,
        noise_variance_prior=None,
        implicit_precision_prior=None,
        mean_precision_prior=None,
        biases=False,
        bias_shrinkage=25.0,
        sample_posterior=False,
        min_value=-np.inf,
        max_value=np.inf,
        keep_empty_features=False,
        random_state=None,
        warm_start=False,
        verbose=0,
        verbose_interval=10,
        persist=True,
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.missing_values = missing_values
        self.init_params = init_params
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.stopping_rule = stopping_rule
        self.min_variance = min_variance
        self.reg_covar = reg_covar
        self.n_factors = n_factors
        self.loading_precision_prior = loading_precision_prior
        self.loading_ard_prior = loading_ard_prior
        self.noise_variance_prior = noise_variance_prior
        self.implicit_precision_prior = implicit_precision_prior
        self.mean_precision_prior = mean_precision_prior
        self.biases = biases
        self.bias_shrinkage = bias_shrinkage
        self.sample_posterior = sample_posterior
        self.min_value = min_value
        self.max_value = max_value
        self.keep_empty_features = keep_empty_features
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.persist = persist

    # ------------------------------------------------------------------ input

    def _validate_input(self, X, *, reset):
        """Validate ``X``; return it with its boolean missing mask (None if sparse)."""
        try:
            X = validate_data(
                self,
                X,
                reset=reset,
                accept_sparse="csr",
                dtype=(np.float64, np.float32),
                ensure_all_finite="allow-nan",
            )
        except ValueError as error:
            if "could not convert" in str(error):
                raise ValueError(
                    f"{type(self).__name__} requires numeric input: {error}"
                ) from error
            raise
        if sp.issparse(X):
            return self._validate_sparse(X), None
        if _is_nan(self.missing_values):
            return X, np.isnan(X)
        if np.isnan(X).any():
            raise ValueError(
                f"Input X contains NaN, but missing_values={self.missing_values!r}"
                " marks the missing entries. Set missing_values=np.nan if NaN "
                "marks them, or remove the NaN."
            )
        return X, X == self.missing_values

    def _validate_sparse(self, X):
        """Check a sparse ``X`` against the convention: stored = observed."""
        X = sp.csr_array(X)
        try:
            X.check_format(full_check=True)
        except ValueError as error:
            raise ValueError(f"Input X is not a valid sparse matrix: {error}") from error
        convention = (
            "In sparse input every stored entry is observed and the missing "
            "entries are the unstored ones"
        )
        if np.isnan(X.data).any():
            raise ValueError(
                f"Input X contains NaN among its stored entries. {convention}, "
                "so leave the missing entries out instead of storing NaN."
            )
        if not _is_nan(self.missing_values) and (X.data == self.missing_values).any():
            raise ValueError(
                f"Input X stores entries equal to missing_values={self.missing_values!r}."
                f" {convention}; remove those entries (for 0: X.eliminate_zeros()) "
                "or set missing_values=np.nan to keep them as observed values."
            )
        if not X.has_canonical_format:
            X = X.copy()
            X.sum_duplicates()
        return X

    def _observed_entries(self, X, missing):
        """The observed entries the mixture sees, and the offset of each row.

        The entries are standardised as in ``fit`` (see
        :class:`~skgmmfill._em.Standardization`) and features empty during
        fit are left out; with ``biases`` the entries are the residuals after
        the offsets, and ``row_offsets`` is ``b + r_u`` for each row of ``X``
        (None without biases), all in the standardised units.
        """
        ignored = getattr(self, "_empty_features", None)
        if missing is None:
            observed = ObservedEntries.from_sparse(X, ignored)
        else:
            keep = ~missing if ignored is None else ~missing & ~ignored
            observed = ObservedEntries.from_dense(X, keep)
        observed = observed.shifted(0.0, *self._standardization)
        if not self.biases:
            return observed, None
        return remove_offsets(*self._offsets, self.bias_shrinkage, observed)

    def _posterior(self, X, missing):
        """Observed entries, row offsets, responsibilities and per-row log-likelihoods.

        The log-likelihoods are densities in the data's units: those of the
        standardised entries minus ``|C_u| log(scale)``.
        """
        observed, row_offsets = self._observed_entries(X, missing)
        resp, log_prob_norm = self._fitted_family.posterior(observed, self._mixture)
        log_prob_norm -= observed.n_observed * np.log(self._standardization.scale)
        return observed, row_offsets, resp, log_prob_norm

    def _in_data_units(self, predictions, row_offsets, rows=slice(None), cols=slice(None)):
        """Predictions of standardised residuals, in place, as values in the data's units.

        Adds the offsets ``b + r_u + c_l`` (with ``biases``), then undoes the
        standardisation: ``location_l + scale * prediction``. ``predictions``
        holds the entries of ``rows x cols``, or the pairs ``(rows[i], cols[i])``
        when 1-D.
        """
        location, scale = self._standardization
        if row_offsets is not None:
            row_part = row_offsets[rows] if predictions.ndim == 1 else row_offsets[rows, np.newaxis]
            predictions += row_part + self._offsets[1][cols]
        predictions *= scale
        predictions += location[cols]
        return predictions

    def _covariance_type(self, shape, sparse):
        """``covariance_type``, with ``"auto"`` resolved for input of this shape."""
        if self.covariance_type != "auto":
            return self.covariance_type
        n_samples, n_features = shape
        enough_rows = n_samples >= AUTO_FULL_ROWS_PER_FEATURE * n_features * self.n_components
        return "full" if not sparse and n_features <= AUTO_FULL_MAX_FEATURES and enough_rows else "diag"

    def _family(self, covariance_type, n_features):
        """The covariance family for ``covariance_type``, with this estimator's hyperparameters."""
        family = FAMILIES[covariance_type]
        for name, owner in EXCLUSIVE_HYPERPARAMETERS.items():
            if owner != covariance_type and getattr(self, name) is not None:
                raise ValueError(
                    f"{name}={getattr(self, name)!r} is used only with covariance_type="
                    f"{owner!r}; got covariance_type={covariance_type!r}. Leave {name}=None."
                )
        family = family(**{name: getattr(self, name) for name in family.hyperparameters})
        return family.for_features(n_features)

    def _limits(self, n_features):
        """``min_value`` and ``max_value`` as arrays of shape ``(n_features,)``."""
        limits = []
        for name, default in (("min_value", -np.inf), ("max_value", np.inf)):
            value = getattr(self, name)
            value = np.asarray(default if value is None else value, dtype=np.float64)
            if value.ndim == 0:
                value = np.full(n_features, value)
            elif value.shape != (n_features,):
                raise ValueError(
                    f"'{name}' should be of shape ({n_features},) when an array-like "
                    f"is provided. Got {value.shape}, instead."
                )
            limits.append(value)
        crossed = np.flatnonzero(limits[0] > limits[1])
        if crossed.size:
            shown = ", ".join(f"feature {l}: {limits[0][l]:g} > {limits[1][l]:g}" for l in crossed[:3])
            raise ValueError(
                f"min_value must not exceed max_value, but it does for {crossed.size} of "
                f"{n_features} feature(s) ({shown}{', ...' if crossed.size > 3 else ''}): swap or correct them."
            )
        return limits

    # -------------------------------------------------------------------- fit

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the mixture by EM on the observed entries of ``X``.

        The fit is all or nothing: the fitted attributes are assigned together
        once EM has finished and every warning has been issued. A fit that
        fails or is interrupted (an error, ``KeyboardInterrupt``, a warning
        turned into an error) leaves the estimator as it was: unfitted, or
        with the previous model, intact and usable. A refit removes the
        fitted attributes that the new parameters do not set.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data with missing entries marked by ``missing_values``.
        y : None
            Ignored.

        Returns
        -------
        self : object
            The fitted imputer.
        """
        previous = dict(vars(self))
        try:
            fitted = self._fit(X)
        except BaseException:
            # validate_data(reset=True) set n_features_in_ and feature_names_in_
            # on the estimator before the fit could fail: undo that too.
            vars(self).clear()
            vars(self).update(previous)
            raise
        for name in [name for name in vars(self) if _is_fitted_attribute(name) and name not in fitted]:
            delattr(self, name)
        vars(self).update(fitted)
        return self

    def __sklearn_is_fitted__(self):
        return "_mixture" in vars(self)

    def _fit(self, X):
        """Everything ``fit`` sets, as a dict of attribute values; ``self`` keeps its model."""
        warm = self.warm_start and self.__sklearn_is_fitted__()
        if is_dask_array(X):
            from ._dask import DaskRows, check_row_partitioned, is_sparse

            X = check_row_partitioned(X, self.n_features_in_ if warm else None)
            fitted = {"n_features_in_": X.shape[1]}
            if warm and hasattr(self, "feature_names_in_"):
                fitted["feature_names_in_"] = self.feature_names_in_
            validator = clone(self)
            validator.n_features_in_ = X.shape[1]
            dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.dtype(np.float64)
            observed = DaskRows.from_array(X, partial(_block_entries, validator), dtype, persist=self.persist)
            sparse = is_sparse(X)
        else:
            X, missing = self._validate_input(X, reset=not warm)
            fitted = {name: getattr(self, name) for name in ("n_features_in_", "feature_names_in_")
                      if hasattr(self, name)}
            sparse = missing is None
            observed = ObservedEntries.from_sparse(X) if sparse else ObservedEntries.from_dense(X, ~missing)
        n_samples = X.shape[0]
        if n_samples < self.n_components:
            raise ValueError(
                f"n_components={self.n_components} needs at least {self.n_components} rows to fit, but X has "
                f"{n_samples}: lower n_components or give more rows."
            )
        if warm and self.means_.shape[0] != self.n_components:
            raise ValueError(
                "warm_start=True needs the same n_components as the fitted model "
                f"({self.means_.shape[0]}), got {self.n_components}."
            )
        self._limits(X.shape[1])
        covariance_type = self._covariance_type(X.shape, sparse)
        if warm and self.covariance_type_ != covariance_type:
            raise ValueError(
                "warm_start=True needs the same covariance_type as the fitted model "
                f"({self.covariance_type_!r}), got {covariance_type!r}."
            )
        family = self._family(covariance_type, X.shape[1])
        if sparse and not family.supports_sparse:
            raise ValueError(
                f"covariance_type={self.covariance_type!r} needs dense input: pass X as a "
                "dense array, or use one of "
                f"{sorted(name for name, f in FAMILIES.items() if f.supports_sparse)} for sparse data."
            )
        prepared = prepare(
            observed,
            biases=self.biases,
            bias_shrinkage=self.bias_shrinkage,
            mean_precision_prior=self.mean_precision_prior,
            standardized=self._standardization if warm else None,
        )
        family = family.for_data(prepared.moments, prepared.standardization.scale, observed.dtype)
        try:
            result = fit_mixture(
                prepared.source,
                family,
                n_components=self.n_components,
                init_params=self.init_params,
                n_init=self.n_init,
                max_iter=self.max_iter,
                tol=self.tol,
                stopping_rule=self.stopping_rule,
                random_state=check_random_state(self.random_state),
                prior=prepared.prior,
                units=prepared.units,
                data_zero=prepared.data_zero,
                warm_start=(self._mixture, self.map_objectives_[-1]) if warm else None,
                verbose=self.verbose,
                verbose_interval=self.verbose_interval,
            )
        except np.linalg.LinAlgError as error:
            raise ValueError(
                "Fitting the mixture failed because a covariance is not positive "
                "definite (a component collapsed onto too few rows); increase "
                f"reg_covar or decrease n_components. ({error})"
            ) from error
        if not result.converged:
            warnings.warn(
                "Best performing initialization did not converge. Try different "
                "init parameters, or increase max_iter or tol.",
                ConvergenceWarning,
            )
        empty_features = prepared.moments.counts == 0
        if empty_features.any() and not self.keep_empty_features:
            warnings.warn(_empty_features_message(empty_features, fitted.get("feature_names_in_")), EmptyFeatureWarning)
        fitted.update(self._fitted_parameters(result.mixture, prepared, family))
        fitted.update(
            covariance_type_=covariance_type,
            converged_=result.converged,
            n_iter_=result.n_iter,
            lower_bound_=result.lower_bound,
            lower_bounds_=result.lower_bounds,
            map_objectives_=result.objectives,
            n_observed_=np.rint(prepared.moments.counts).astype(np.int64),
            _empty_features=empty_features,
            _fitted_family=family,
            _sampling_random_state=check_random_state(self.random_state),
        )
        return fitted

    def _fitted_parameters(self, mixture, prepared, family):
        """The standardised parameters, and those reported in the data's units.

        ``x = location + scale * z``: means (of the residuals, with ``biases``,
        which have no location) map like values; the family converts its
        covariance parameters (variances by ``scale**2``).
        """
        location, scale = prepared.standardization
        dtype = mixture.means.dtype
        mixture_location = 0.0 if self.biases else location
        fitted = {
            "_mixture": mixture,
            "_standardization": prepared.standardization,
            "_offsets": prepared.offsets,
            "weights_": mixture.weights,
            "means_": (mixture_location + scale * mixture.means).astype(dtype),
            **family.fitted_attributes(mixture.covariances, scale),
        }
        if self.biases:
            global_mean, column_offsets = prepared.offsets
            fitted["global_mean_"] = float(location[0] + scale * global_mean)
            fitted["column_offsets_"] = (scale * column_offsets).astype(dtype)
        if prepared.prior is not None:
            fitted["mean_prior_"] = (mixture_location + scale * prepared.prior[1]).astype(dtype)
        return fitted

    # ---------------------------------------------------------------- methods

    def transform(self, X):
        """Fill the missing entries of ``X``.

        Each missing entry ``(u, l)`` becomes its posterior mean given row
        ``u``'s observed entries: ``sum_j r_uj mu_jl`` for spherical and diag
        components, ``sum_j r_uj E_j[x_ul | x_{u,o}]`` for full ones (or a
        posterior draw, with ``sample_posterior=True``), clipped to
        ``[min_value, max_value]``. Observed entries are returned unchanged;
        ``X`` itself is not modified.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data with missing entries marked by ``missing_values`` (dense) or
            left unstored (sparse); the rows need not be those seen in ``fit``.
            The output is dense: for sparse input with more than 2**27 entries
            use :meth:`predict_entries` or :meth:`recommend` instead.

        Returns
        -------
        X_filled : ndarray of shape (n_samples, n_features_out)
            ``X`` with its missing entries filled, in the dtype of ``X``.
            Features with no observed entry during ``fit`` are dropped unless
            ``keep_empty_features`` (then filled with ``b + r_u`` with
            ``biases=True``, else 0; clipped).
        """
        if is_dask_array(X):
            if self.sample_posterior:
                return self._sample_dask_blocks(X)
            return self._on_dask_blocks(X, self.transform, _float_dtype(X), self._n_features_out())
        X, missing, observed, row_offsets, resp = self._dense_output_posterior(X)
        if self.sample_posterior:
            imputed = self._fitted_family.sample(observed, resp, self._mixture, self._sampling_random_state)
        else:
            imputed = self._fitted_family.impute(observed, resp, self._mixture)
        imputed[:, self._empty_features] = 0.0  # no residual: the offsets alone (see keep_empty_features)
        self._in_data_units(imputed, row_offsets)
        np.clip(imputed, *self._limits(X.shape[1]), out=imputed)
        return self._with_observed_entries(X, missing, imputed, "X")

    def imputation_std(self, X):
        """Posterior predictive standard deviation of every imputed entry.

        For a missing entry ``(u, l)``, by the law of total variance over the
        components, ``Var = sum_j r_uj (V_j[x_ul | x_{u,o}] + E_j[x_ul | x_{u,o}]^2)
        - x_hat_ul^2``, where under a spherical or diag component the
        conditional variance is the component's variance of feature ``l`` and
        under a full one the conditional (Schur complement) variance. Clipping
        by ``min_value`` / ``max_value`` is not taken into account.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            As in :meth:`transform`.

        Returns
        -------
        std : ndarray of shape (n_samples, n_features_out)
            The standard deviations; 0 at observed entries and in features
            empty during ``fit``. Aligned with the output of :meth:`transform`.
        """
        if is_dask_array(X):
            return self._on_dask_blocks(X, self.imputation_std, _float_dtype(X), self._n_features_out())
        X, missing, observed, _, resp = self._dense_output_posterior(X)
        variance = self._fitted_family.predictive_variance(observed, resp, self._mixture)
        std = np.sqrt(variance, out=variance)
        std *= self._standardization.scale
        std[:, self._empty_features] = 0.0
        return self._with_observed_entries(X, missing, std, 0.0)

    def _on_dask_blocks(self, X, method, dtype, n_columns=None):
        """``method`` on every row block of the dask array ``X``: a lazy dask
        array with ``n_columns`` columns (1-D if None), computed block by block
        where the blocks live."""
        check_is_fitted(self)
        from ._dask import check_row_partitioned, map_rows

        return map_rows(check_row_partitioned(X, self.n_features_in_), method, dtype, n_columns)

    def _sample_dask_blocks(self, X):
        """Posterior draws for a dask array: block ``i`` draws from its own
        generator, seeded by the ``i``-th of a stream of seeds drawn from the
        estimator's, so a fit's ``random_state`` and the row chunks fix the
        draws, and successive calls draw anew."""
        check_is_fitted(self)
        from ._dask import check_row_partitioned, with_block_seeds

        X = check_row_partitioned(X, self.n_features_in_)
        seeds = self._sampling_random_state.randint(np.iinfo(np.int32).max, size=len(X.chunks[0]))
        return with_block_seeds(X, seeds, partial(_sample_block, self), _float_dtype(X), self._n_features_out())

    def _n_features_out(self):
        return self.n_features_in_ if self.keep_empty_features else int((~self._empty_features).sum())

    def _dense_output_posterior(self, X):
        """Validate ``X`` for a dense output; return it with its posterior."""
        check_is_fitted(self)
        X, missing = self._validate_input(X, reset=False)
        if missing is None and X.shape[0] * X.shape[1] > _MAX_DENSE_OUTPUT:
            raise ValueError(
                f"transform would return a dense {X.shape[0]} x {X.shape[1]} array "
                f"from sparse input (more than {_MAX_DENSE_OUTPUT} entries); use "
                "predict_entries for chosen entries or recommend for the best "
                "entries of each row."
            )
        observed, row_offsets, resp, _ = self._posterior(X, missing)
        return X, missing, observed, row_offsets, resp

    def _with_observed_entries(self, X, missing, filled, observed_values):
        """``filled`` with ``X``'s observed entries (or 0) put back in place.

        ``observed_values`` is ``"X"`` to put back the observed values, ``0.0``
        to zero those entries. Features empty during ``fit`` are then dropped
        unless ``keep_empty_features``.
        """
        if missing is None:
            filled[_row_of_entry(X), X.indices] = X.data if observed_values == "X" else 0.0
        else:
            filled = np.where(missing, filled, X if observed_values == "X" else 0.0)
        if not self.keep_empty_features:
            filled = filled[:, ~self._empty_features]
        return filled

    def predict_entries(self, X, rows, cols):
        """Predicted values at chosen entries, given each row's observed entries.

        Equals ``transform(X)[rows, cols]`` (with ``keep_empty_features=True``
        and ``sample_posterior=False``: these are posterior means, clipped to
        ``[min_value, max_value]``) without forming the dense output: the responsibilities of the rows of
        ``X`` take ``O(n_samples * n_components)`` memory and the entries are
        predicted in batches.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The rows whose observed entries condition the predictions.
        rows, cols : array-like of int, shape (n_entries,)
            Row and column indices of the entries.

        Returns
        -------
        values : ndarray of shape (n_entries,)
            The observed value where the entry is observed, otherwise
            ``sum_j r_uj mu_jl``. A feature empty during ``fit`` (an item
            without training ratings) is predicted as ``keep_empty_features``
            says: from the offsets ``b + r_u`` with ``biases=True``, else 0.
        """
        check_is_fitted(self)
        if is_dask_array(X):
            from ._dask import check_row_partitioned, entries_of_rows

            X = check_row_partitioned(X, self.n_features_in_)
            rows, cols = _check_entries(rows, cols, X.shape)
            return entries_of_rows(X, rows, cols, self.predict_entries, _float_dtype(X))
        X, missing = self._validate_input(X, reset=False)
        rows, cols = _check_entries(rows, cols, X.shape)
        low, high = self._limits(X.shape[1])
        observed, row_offsets, resp, _ = self._posterior(X, missing)
        # Entries of features empty during fit are not in `observed`: X's own pattern tells if they are stored.
        pattern = observed if missing is not None or not self._empty_features.any() else ObservedEntries.from_sparse(X)
        values = np.empty(rows.shape, dtype=X.dtype)
        for batch in _batches(len(rows), _BATCH_ENTRIES // max(1, self.n_components)):
            r, c = rows[batch], cols[batch]
            predicted = self._fitted_family.impute_entries(observed, resp, self._mixture, r, c)
            predicted[self._empty_features[c]] = 0.0  # no residual: the offsets alone
            self._in_data_units(predicted, row_offsets, r, c)
            np.clip(predicted, low[c], high[c], out=predicted)
            if missing is None:
                stored = pattern.lookup(r, c)[0]
                stored_values = np.asarray(X[r, c]).ravel()
            else:
                stored, stored_values = ~missing[r, c], X[r, c]
            values[batch] = np.where(stored, stored_values, predicted)
        return values

    def recommend(self, X, n=10, *, exclude_observed=True, rank_by="rating", relevant_above=None):
        """The ``n`` best columns of each row: by predicted value, or by expected hits.

        ``rank_by="rating"`` ranks the columns by their posterior means
        before clipping to ``[min_value, max_value]`` (clipping would tie
        every prediction above ``max_value``); :meth:`predict_entries` gives
        the clipped values.

        ``rank_by="hits"`` ranks them by the chance that the row's user both
        rates the item and likes it, what top-N evaluations on held-out
        ratings count (precision, recall, NDCG at ``n``):

        .. math::

            \\log(N_l + 1) + \\log \\Phi\\big((\\hat x_{ul} - t) / s_{ul}\\big)

        where :math:`N_l` is the feature's number of observed entries in
        ``fit`` (:attr:`n_observed_`; users rate an item about in proportion to
        its popularity), :math:`\\hat x_{ul}` and :math:`s_{ul}` the
        posterior predictive mean and standard deviation (as
        :meth:`imputation_std`) and :math:`t` = ``relevant_above``. An item
        rated once with five stars has a wide predictive distribution and no
        popularity, so it tops no list; a popular item the model expects the
        user to dislike ranks low.

        Rows are processed in blocks, so the memory used is
        ``O(n_samples * n + block)`` whatever the number of columns.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The rows to recommend for, with their observed entries.
        n : int, default=10
            Number of columns per row.
        exclude_observed : bool, default=True
            Never recommend a column the row has observed (rated). If False,
            observed columns compete with their observed values, so the
            ranking is that of the row of :meth:`transform` (with
            ``rank_by="rating"`` only: hits are counted among unrated items).
        rank_by : {"rating", "hits"}, default="rating"
            The ranking rule, as above.
        relevant_above : float, default=None
            The value :math:`t` above which a rating counts as liked (only
            with ``rank_by="hits"``); None takes the mean of ``X``'s observed
            entries.

        Returns
        -------
        columns : ndarray of int, shape (n_samples, n)
            Column indices, best first. Features empty during ``fit`` are
            never recommended; where fewer than ``n`` columns remain, the row
            is padded with -1.
        """
        check_is_fitted(self)
        if not isinstance(n, Integral) or not 1 <= n <= self.n_features_in_:
            raise ValueError(
                f"n must be an integer in [1, n_features_in_={self.n_features_in_}], "
                f"got {n!r}."
            )
        if rank_by not in ("rating", "hits"):
            raise ValueError(f"rank_by must be 'rating' or 'hits', got {rank_by!r}.")
        if rank_by == "hits" and not exclude_observed:
            raise ValueError("rank_by='hits' ranks the unrated columns: exclude_observed=False needs rank_by='rating'.")
        if rank_by == "hits" and not hasattr(self, "n_observed_"):
            raise ValueError("rank_by='hits' needs n_observed_, which models saved before it existed lack: refit.")
        if is_dask_array(X):
            recommend = partial(self.recommend, n=n, exclude_observed=exclude_observed, rank_by=rank_by,
                                relevant_above=relevant_above)
            return self._on_dask_blocks(X, recommend, np.intp, n)
        X, missing = self._validate_input(X, reset=False)
        self._limits(X.shape[1])  # validates min_value and max_value
        if rank_by == "hits":
            relevant_above = _relevance_threshold(X, missing, relevant_above)
            log_popularity = np.log1p(self.n_observed_)  # the chance of being rated, up to a constant
        observed, row_offsets = self._observed_entries(X, missing)
        columns = np.empty((X.shape[0], n), dtype=np.intp)
        family = self._fitted_family
        for batch in _batches(X.shape[0], _BATCH_ENTRIES // X.shape[1]):
            block = observed.row_block(batch)
            resp, _ = family.posterior(block, self._mixture)
            scores = family.impute(block, resp, self._mixture)
            self._in_data_units(scores, row_offsets, batch)  # not clipped: ties at max_value stay ranked
            if rank_by == "hits":
                std = np.sqrt(family.predictive_variance(block, resp, self._mixture)) * self._standardization.scale
                scores -= relevant_above
                scores /= np.maximum(std, np.finfo(std.dtype).tiny)
                scores = log_ndtr(scores, out=scores)
                scores += log_popularity
            if missing is None:  # the rated entries, from the sparse rows (no dense copy of them)
                rated = X[batch]
                where = (np.repeat(np.arange(rated.shape[0]), np.diff(rated.indptr)), rated.indices)
                scores[where] = -np.inf if exclude_observed else rated.data
            else:
                observed_here = ~missing[batch]
                scores[observed_here] = -np.inf if exclude_observed else X[batch][observed_here]
            scores[:, self._empty_features] = -np.inf
            columns[batch] = best_columns(scores, n)
        return columns

    def score_samples(self, X):
        """Log-likelihood of each row's observed entries.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        log_prob : ndarray of shape (n_samples,)
            ``log p(x_{u,C_u})``; 0 for a row with no observed entry.
        """
        check_is_fitted(self)
        if is_dask_array(X):
            return self._on_dask_blocks(X, self.score_samples, _float_dtype(X))
        X, missing = self._validate_input(X, reset=False)
        return self._posterior(X, missing)[3]

    def score(self, X, y=None):
        """Mean per-row log-likelihood of the observed entries of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : None
            Ignored.

        Returns
        -------
        log_likelihood : float
        """
        mean = self.score_samples(X).mean()
        return float(mean.compute() if is_dask_array(X) else mean)  # a reduction on dask input

    def predict_proba(self, X):
        """Posterior probability of each component given each row's observed entries.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        resp : ndarray of shape (n_samples, n_components)
        """
        check_is_fitted(self)
        if is_dask_array(X):
            return self._on_dask_blocks(X, self.predict_proba, _float_dtype(X), self.n_components)
        X, missing = self._validate_input(X, reset=False)
        return self._posterior(X, missing)[2]

    def predict(self, X):
        """Most probable component of each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        if is_dask_array(X):
            return self._on_dask_blocks(X, self.predict, np.intp)
        return self.predict_proba(X).argmax(axis=1)

    def _n_parameters(self):
        n_features = self.means_.shape[1]
        n_parameters = self._fitted_family.n_parameters(self.n_components, n_features)
        n_parameters += self.n_components - 1
        if self.biases:  # b and the column offsets; row offsets are per-row like responsibilities
            n_parameters += 1 + n_features
        return n_parameters

    def bic(self, X):
        """Bayesian information criterion of the model on ``X`` (lower is better).

        ``BIC = -2 log L + P log n`` with ``log L`` the log-likelihood of the
        observed entries of ``X``, ``n`` its number of rows and ``P`` the number
        of free parameters, ``K d + K + (K - 1)`` for spherical. The course
        reports ``log L - P/2 log n``, which is ``-BIC / 2``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        bic : float
        """
        n_samples = _num_rows(X)
        return -2.0 * self.score(X) * n_samples + self._n_parameters() * np.log(n_samples)

    def aic(self, X):
        """Akaike information criterion of the model on ``X`` (lower is better).

        ``AIC = -2 log L + 2 P``, with ``log L`` and ``P`` as in :meth:`bic`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        aic : float
        """
        return -2.0 * self.score(X) * _num_rows(X) + 2 * self._n_parameters()

    def get_feature_names_out(self, input_features=None):
        """Names of the output features.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Input feature names; by default ``feature_names_in_`` or
            ``x0, x1, ...``.

        Returns
        -------
        feature_names_out : ndarray of str
            The input names, without the features that were empty during
            ``fit`` unless ``keep_empty_features``.
        """
        check_is_fitted(self)
        names = _check_feature_names_in(self, input_features)
        if not self.keep_empty_features:
            names = names[~self._empty_features]
        return names

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = _is_nan(self.missing_values)
        tags.input_tags.sparse = self.covariance_type == "auto" or FAMILIES[self.covariance_type].supports_sparse
        tags.non_deterministic = self.sample_posterior
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


_FITTED_STATE = ("_mixture", "_standardization", "_offsets", "_empty_features", "_fitted_family",
                 "_sampling_random_state")
"""The private attributes a fit sets, beside the public ones ending in ``_``."""


def _is_fitted_attribute(name):
    return name in _FITTED_STATE or (name.endswith("_") and not name.startswith("_"))


def is_dask_array(X):
    """Whether ``X`` is a dask array, decided without importing dask."""
    return type(X).__module__.split(".")[0] == "dask" and hasattr(X, "to_delayed")


def _float_dtype(X):
    """The dtype outputs take for input ``X``: float32 stays, anything else becomes float64."""
    return np.dtype(np.float32) if X.dtype == np.float32 else np.dtype(np.float64)


def _sample_block(estimator, block, seed):
    """``estimator.transform(block)`` drawing from a generator seeded by ``seed``."""
    estimator = copy.copy(estimator)
    estimator._sampling_random_state = np.random.RandomState(seed)
    return estimator.transform(block)


def _block_entries(validator, block):
    """The observed entries of one row block of a dask array, validated as ``fit`` validates."""
    X, missing = validator._validate_input(block, reset=False)
    return ObservedEntries.from_sparse(X) if missing is None else ObservedEntries.from_dense(X, ~missing)


def _num_rows(X):
    return X.shape[0] if hasattr(X, "shape") else len(X)


def _row_of_entry(X):
    """Row index of each stored entry of a CSR array."""
    return np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))


def best_columns(scores, n):
    """The ``n`` columns of highest score in each row, best first (equal scores in a fixed order); -1 where
    fewer than ``n`` columns score above ``-inf``."""
    top = np.argpartition(scores, -n, axis=1)[:, -n:]
    top_scores = np.take_along_axis(scores, top, axis=1)
    order = np.argsort(-top_scores, axis=1, kind="stable")
    top = np.take_along_axis(top, order, axis=1)
    top[np.take_along_axis(top_scores, order, axis=1) == -np.inf] = -1
    return top


def _relevance_threshold(X, missing, relevant_above):
    """``relevant_above``, or the mean of ``X``'s observed entries when None."""
    if relevant_above is not None:
        if not isinstance(relevant_above, Real) or not np.isfinite(relevant_above):
            raise ValueError(f"relevant_above must be a finite number or None, got {relevant_above!r}.")
        return float(relevant_above)
    values = X.data if missing is None else X[~missing]
    if values.size == 0:
        raise ValueError("X has no observed entries to take the mean of: pass relevant_above.")
    return float(values.mean())


def _batches(n_items, batch_size):
    """Consecutive slices of at most ``batch_size`` items covering ``range(n_items)``."""
    batch_size = max(1, batch_size)
    return [slice(start, min(start + batch_size, n_items)) for start in range(0, n_items, batch_size)]


def _check_entries(rows, cols, shape):
    """Validate entry indices against ``shape``: equal-length 1-D integer arrays in range."""
    rows = check_array(rows, ensure_2d=False, dtype=None, ensure_min_samples=0, input_name="rows")
    cols = check_array(cols, ensure_2d=False, dtype=None, ensure_min_samples=0, input_name="cols")
    for name, index, size in (("rows", rows, shape[0]), ("cols", cols, shape[1])):
        if index.ndim != 1 or (index.dtype.kind not in "iu" and index.size):  # no entries: any dtype
            raise ValueError(f"{name} must be a 1-D array of integers, got {index.dtype} "
                             f"with shape {index.shape}.")
        if index.size and (index.min() < 0 or index.max() >= size):
            raise ValueError(f"{name} must lie in [0, {size}), got values in "
                             f"[{index.min()}, {index.max()}].")
    if rows.shape != cols.shape:
        raise ValueError(f"rows and cols must have the same length, got {len(rows)} and {len(cols)}.")
    return rows.astype(np.intp, copy=False), cols.astype(np.intp, copy=False)
