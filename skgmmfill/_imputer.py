"""The scikit-learn estimator, a thin shell: it validates parameters and input
(:mod:`skgmmfill._validation`), fits through the EM driver (:func:`skgmmfill._em.fit_model`)
and delegates every prediction to the :class:`~skgmmfill._fitted.FittedMixture` the fit
made, dask arrays through :mod:`skgmmfill._dask`. The model is described in the user guide."""

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted

from ._em import STOPPING_RULES, fit_model
from ._families import FAMILIES, family_for_data, hyperparameter_constraints
from ._family import POSITIVE_OR_NONE
from ._validation import (
    EmptyFeatureWarning,
    check_entries,
    check_limits,
    check_ranking,
    dask_backend,
    empty_features_message,
    is_nan,
    num_rows,
    observed_entries,
    validate_input,
)


class MaskedGaussianMixtureImputer(TransformerMixin, BaseEstimator):
    r"""Impute missing entries with a Gaussian mixture fitted on the observed entries.

    The mixture is fitted by EM in which each row's likelihood counts only the
    row's observed entries; a missing entry is then filled with its posterior
    mean given the row's observed entries,
    :math:`\hat x_{ul} = \sum_j r_{uj} \mathbb E_j[x_{ul} \mid x_{u,C_u}]`.
    Rows may have any pattern of missing entries, including none. The model,
    its EM and each option's equations are in the :ref:`user guide <model>`.

    Parameters
    ----------
    n_components : int, default=1
        Number of mixture components ``K``.
    covariance_type : {"auto", "spherical", "diag", "full", "factor"}, default="auto"
        Each component's covariance: one variance (``"spherical"``, the
        course's model), one per feature (``"diag"``), a full matrix
        (``"full"``; dense input, up to a few hundred features) or
        :math:`W_j W_j^\top + \operatorname{diag}(\psi_j)` with ``n_factors``
        columns (``"factor"``; dense or sparse). ``"auto"``: ``"full"`` for
        dense input with at most 100 features and ``10 * n_features *
        n_components`` rows or more, else ``"diag"``.
    missing_values : float, default=np.nan
        The marker of missing entries in dense input (NaN, or e.g. 0 for
        unrated entries); in sparse input the unstored entries are missing.
    init_params : {"kmeans", "random_from_data"}, default="kmeans"
        k-means on the standardised rows then one M-step, or ``n_components``
        distinct rows with 0 at their missing entries (the course's rule).
    n_init : int, default=1
        Number of initialisations; the best final objective is kept.
    max_iter : int, default=100
        Maximum number of EM iterations per initialisation.
    tol : float, default=1e-3
        Convergence threshold: EM stops when the mean per-row objective ``L``
        gains at most ``tol`` (``stopping_rule="mean_gain"``, independent of
        units) or ``tol * |L|`` (``"relative_gain"``, the course's rule).
    stopping_rule : {"mean_gain", "relative_gain"}, default="mean_gain"
        See ``tol``.
    min_variance : float or "auto", default="auto"
        Floor on every variance but full's, in squared data units; ``"auto"``:
        1e-3 times the variance of the observed entries.
    reg_covar : float or "auto", default="auto"
        For ``"full"``: a floor that every covariance stays above; ``"auto"``:
        1e-6 times each feature's variance.
    n_factors : int or None, default=None
        For ``"factor"``: the number of factors; None is ``min(10, n_features - 1)``.
    loading_precision_prior, loading_ard_prior, implicit_precision_prior : float or None, default=None
        For ``"factor"``, priors in observations' worth (None: none): on the
        loadings :math:`w_{jl} \sim \mathcal{N}(0, \psi_{jl} I / \beta)`; a
        precision per loading column under a hyperprior worth
        ``loading_ard_prior * n_features`` loadings (automatic relevance
        determination: ``n_factors`` becomes an upper bound); and on the map
        of implicit feedback (which entries a row observes informs its
        factors, as in SVD++).
    noise_variance_prior : float, "auto" or None, default=None
        For ``"factor"``: :math:`\nu` of the inverse-gamma prior on the noise
        variances, :math:`\nu` observations' worth of squared residual
        :math:`s^2` (the pooled variance), so that a feature observed a handful
        of times keeps a noise variance near :math:`s^2`. "auto": :math:`\nu`
        and :math:`s^2` estimated before EM from the features' residual
        variances (after both offsets with ``biases``), by the marginal
        likelihood under which each is :math:`s^2` times an
        :math:`F(n_l - 1, \nu)` variable (empirical Bayes:
        ``noise_variance_prior_``, ``noise_variance_target_``). None: none.
    loading_posterior : {"variational"} or None, default=None
        For ``"factor"``: None fits point (MAP) loadings and means;
        ``"variational"`` gives each feature's loadings and mean a Gaussian
        posterior (variational Bayes), which the factors and the predictive
        spread take into account. Needs ``loading_precision_prior``.
    loading_pattern_prior : float, "auto" or None, default=None
        For ``"factor"``: :math:`\lambda` of the pattern prior, which ties the
        loadings of features observed by the same rows (on rating data: an
        item rated by few users gets loadings like those of the items its
        raters rated); smaller is stronger. "auto": each component's
        :math:`\lambda_j` is estimated by EM from 1 (empirical Bayes:
        ``loading_pattern_strengths_``), so the prior fades where the pattern
        says nothing of the loadings. Needs ``loading_precision_prior``.
    row_offset_factor : bool or None, default=None
        For ``"factor"``: if True, add a factor whose loading is the same number
        :math:`\tau_j` for every feature, a per-row offset
        :math:`\sim \mathcal{N}(0, \tau_j^2)` inferred with the other
        factors rather than before them (on rating data: a user's leaning,
        apart from their tastes); :math:`\tau_j` is fitted by EM
        (``row_offset_scales_``).
    mean_precision_prior : float or None, default=None
        Strength :math:`\kappa` of the prior :math:`\mu_j \sim \mathcal{N}(m, \Sigma_j / \kappa)`
        towards the column means (0 with ``biases``): EM finds the MAP parameters.
    biases : bool, default=False
        Model :math:`x_{ul} = b + r_u + c_l + e_{ul}` with ridge-shrunk offsets
        (user and item biases) and fit the mixture to the residuals.
    bias_shrinkage : float or "auto", default=25.0
        Ridge strength of the offsets, in pseudo-entries at 0; ``"auto"``:
        one for the rows and one for the columns, each the ratio of the
        residuals' variance to the offsets' estimated by empirical Bayes
        (fitted values in ``bias_shrinkage_``).
    sample_posterior : bool, default=False
        :meth:`transform` draws each missing entry from its posterior
        predictive distribution instead of taking its mean; each call anew.
    min_value, max_value : float or array-like of shape (n_features,), default=-np.inf, np.inf
        Bounds on imputed values (observed entries are never changed).
    keep_empty_features : bool, default=False
        Keep features with no observed entry in ``fit`` in the output (else
        dropped, with an :class:`EmptyFeatureWarning`); they are predicted
        from the offsets ``b + r_u`` with ``biases`` (``r_u`` the inferred
        offset with ``row_offset_factor``), else 0.
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisations and posterior draws; an int ``s`` draws the
        rows that the course's ``np.random.seed(s)`` drew.
    warm_start : bool, default=False
        If fitted, ``fit`` continues EM from the fitted parameters.
    verbose, verbose_interval : int, default=0, 10
        1 prints every ``verbose_interval``-th iteration, 2 also times and changes.
    persist : bool, default=True
        For a dask array: keep its row blocks in the workers' memory during
        the fit, or recompute them at every iteration.

    Attributes
    ----------
    covariance_type_ : str
        The covariance type fitted (what ``"auto"`` chose).
    weights_, means_ : ndarray of shape (n_components,), (n_components, n_features)
        Mixing proportions and component means (of the residuals, with ``biases``).
    covariances_ : ndarray
        The variances (spherical, diag) or covariance matrices (full).
    loadings_, noise_variances_ : ndarray
        ``"factor"`` only: :math:`W_j` of shape ``(n_components, n_features,
        n_factors)`` and :math:`\psi_j` of shape ``(n_components, n_features)``.
    row_offset_scales_ : ndarray of shape (n_components,)
        ``"factor"`` with ``row_offset_factor`` only: :math:`\tau_j`, the
        standard deviation of the rows' offsets, in the data's units.
    loading_pattern_strengths_ : ndarray of shape (n_components,)
        ``"factor"`` with ``loading_pattern_prior`` only: each component's
        :math:`\lambda_j` (estimated with "auto"; no units).
    noise_variance_prior_, noise_variance_target_ : float
        ``"factor"`` with ``noise_variance_prior`` only: :math:`\nu` and
        :math:`s^2` of the noise variances' prior (estimated with "auto";
        :math:`s^2` in the data's squared units).
    converged_, n_iter_ : bool, int
        Whether the best run met the stopping rule within ``max_iter``, and its iterations.
    lower_bound_, lower_bounds_ : float, list of float
        Mean per-row log-likelihood of the observed entries in the data's
        units, at the last and at every E-step of the best run.
    map_objectives_ : list of float
        What EM maximised at every E-step (with the log prior); never decreasing.
    mean_prior_ : ndarray of shape (n_features,)
        The centre ``m`` of the prior on the means (with ``mean_precision_prior``).
    global_mean_, column_offsets_ : float, ndarray of shape (n_features,)
        ``b`` and the column offsets :math:`c_l` (with ``biases``).
    bias_shrinkage_ : ndarray of shape (2,)
        The ridge strengths of the row and of the column offsets (with ``biases``).
    n_observed_ : ndarray of int64, shape (n_features,)
        Observed entries of each feature in ``fit``.
    n_features_in_, feature_names_in_ : int, ndarray of shape (n_features,)
        Number of features seen during ``fit``, and their names when ``X`` has string column names.

    See Also
    --------
    sklearn.mixture.GaussianMixture : Gaussian mixture for complete data.
    sklearn.impute.IterativeImputer : Imputation by chained regressions.

    Notes
    -----
    EM runs on standardised data and reports everything in the data's units,
    so results do not depend on units or offsets. With ``biases``, ``score``
    is the log-likelihood of the residuals.

    Examples
    --------
    With full covariances, a missing entry is predicted from the row's other
    entries (here, the second feature is about twice the first):

    >>> import numpy as np
    >>> from skgmmfill import MaskedGaussianMixtureImputer
    >>> X = np.array([[1.0, 2.0], [2.0, 4.1], [3.0, 5.9], [4.0, 8.0], [np.nan, 5.0], [6.0, np.nan]])
    >>> MaskedGaussianMixtureImputer(covariance_type="full").fit_transform(X).round(2)
    array([[ 1.  ,  2.  ],
           [ 2.  ,  4.1 ],
           [ 3.  ,  5.9 ],
           [ 4.  ,  8.  ],
           [ 2.5 ,  5.  ],
           [ 6.  , 11.92]])
    """

    _common_constraints = {
        **dict.fromkeys(("n_components", "n_init", "max_iter", "verbose_interval"),
                        [Interval(Integral, 1, None, closed="left")]),
        **dict.fromkeys(("biases", "sample_posterior", "keep_empty_features", "warm_start", "persist"), ["boolean"]),
        **dict.fromkeys(("min_value", "max_value"), [None, Interval(Real, None, None, closed="both"), "array-like"]),
        "tol": [Interval(Real, 0.0, None, closed="left")],
        "bias_shrinkage": [StrOptions({"auto"}), Interval(Real, 0.0, None, closed="left")],
        "mean_precision_prior": POSITIVE_OR_NONE,
        "missing_values": [Real],
        "init_params": [StrOptions({"random_from_data", "kmeans"})],
        "stopping_rule": [StrOptions(set(STOPPING_RULES))],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    @property
    def _parameter_constraints(self):
        """scikit-learn's parameter constraints: the common ones, and the families' from the registry."""
        return {"covariance_type": [StrOptions({"auto", *FAMILIES})], **hyperparameter_constraints(),
                **self._common_constraints}

    def __init__(self, n_components=1, *, covariance_type="auto", missing_values=np.nan, init_params="kmeans",
                 n_init=1, max_iter=100, tol=1e-3, stopping_rule="mean_gain", min_variance="auto", reg_covar="auto",
                 n_factors=None, loading_precision_prior=None, loading_ard_prior=None, noise_variance_prior=None,
                 implicit_precision_prior=None, loading_posterior=None, loading_pattern_prior=None,
                 row_offset_factor=None, mean_precision_prior=None, biases=False, bias_shrinkage=25.0,
                 sample_posterior=False, min_value=-np.inf, max_value=np.inf, keep_empty_features=False,
                 random_state=None, warm_start=False, verbose=0, verbose_interval=10, persist=True):
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
        self.loading_posterior = loading_posterior
        self.loading_pattern_prior = loading_pattern_prior
        self.row_offset_factor = row_offset_factor
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

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the mixture by EM on the observed entries of ``X``.

        All or nothing: a fit that fails or is interrupted (an error,
        ``KeyboardInterrupt``, a warning turned into an error) leaves the
        estimator as it was, unfitted or with its previous model intact.

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
        return "_model" in vars(self)

    def _fit(self, X):
        """Everything ``fit`` sets, as a dict of attribute values; ``self`` keeps its model."""
        warm = self.warm_start and self.__sklearn_is_fitted__()
        dask = dask_backend(X)
        if dask is not None:
            source, sparse = dask.fit_source(X, self.missing_values, self.n_features_in_ if warm else None,
                                             self.persist)
            fitted = {"n_features_in_": source.n_features}
            if warm and hasattr(self, "feature_names_in_"):
                fitted["feature_names_in_"] = self.feature_names_in_
        else:
            X, missing = validate_input(X, self.missing_values, estimator=self, reset=not warm)
            fitted = {name: getattr(self, name) for name in ("n_features_in_", "feature_names_in_")
                      if hasattr(self, name)}
            source, sparse = observed_entries(X, missing), missing is None
        n_samples, n_features = source.n_samples, fitted["n_features_in_"]
        if n_samples < self.n_components:
            raise ValueError(
                f"n_components={self.n_components} needs at least {self.n_components} rows to fit, but X has "
                f"{n_samples}: lower n_components or give more rows."
            )
        check_limits(self.min_value, self.max_value, n_features)
        family, covariance_type = family_for_data(self.get_params(), (n_samples, n_features), sparse)
        for name, then, now in (("n_components", len(self.means_) if warm else None, self.n_components),
                                ("covariance_type", getattr(self, "covariance_type_", None), covariance_type)):
            if warm and then != now:
                raise ValueError(f"warm_start=True needs the same {name} as the fitted model ({then!r}), got {now!r}.")
        try:
            fit = fit_model(
                source,
                family,
                warm_start=(self._model, self.map_objectives_[-1]) if warm else None,
                random_state=check_random_state(self.random_state),
                **{name: getattr(self, name) for name in _DRIVER_PARAMETERS},
            )
        except np.linalg.LinAlgError as error:
            raise ValueError(
                "Fitting the mixture failed because a covariance is not positive definite (a component "
                f"collapsed onto too few rows); {family.singular_hint}. ({error})"
            ) from error
        result, model = fit.result, fit.model
        if not result.converged:
            warnings.warn(
                "Best performing initialization did not converge. Try different "
                "init parameters, or increase max_iter or tol.",
                ConvergenceWarning,
            )
        if model.empty_features.any() and not self.keep_empty_features:
            warnings.warn(empty_features_message(model.empty_features, fitted.get("feature_names_in_")),
                          EmptyFeatureWarning)
        fitted.update(
            model.attributes(fit.mean_prior),
            covariance_type_=covariance_type,
            converged_=result.converged,
            n_iter_=result.n_iter,
            lower_bound_=result.lower_bound,
            lower_bounds_=result.lower_bounds,
            map_objectives_=result.objectives,
            n_observed_=np.rint(fit.counts).astype(np.int64),
            _model=model,
            _sampling_random_state=check_random_state(self.random_state),
        )
        return fitted

    def _delegate(self, method, X, *, n_columns=None, dtype=None, **options):
        """``method`` of the fitted model on ``X``: validated here, or on each row block where it lives
        for a dask array (see :mod:`skgmmfill._dask`; ``n_columns`` and ``dtype`` lay out its result)."""
        check_is_fitted(self)
        dask = dask_backend(X)
        if dask is not None:
            return dask.apply(self._model, method, X, self.missing_values, self.n_features_in_,
                              n_columns=n_columns, dtype=dtype, **options)
        X, missing = validate_input(X, self.missing_values, estimator=self)
        if "rows" in options:
            options["rows"], options["cols"] = check_entries(options["rows"], options["cols"], X.shape)
        return getattr(self._model, method)(X, missing, **options)

    def _limits(self):
        return check_limits(self.min_value, self.max_value, self.n_features_in_)

    def _n_features_out(self):
        return self.n_features_in_ if self.keep_empty_features else int((~self._model.empty_features).sum())

    def transform(self, X):
        """Fill the missing entries of ``X``.

        Each missing entry becomes its posterior mean given its row's observed
        entries (or a posterior draw, with ``sample_posterior``), clipped to
        ``[min_value, max_value]``. Observed entries are returned unchanged;
        ``X`` itself is not modified.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Missing entries marked by ``missing_values`` (dense) or unstored
            (sparse; above 2**27 entries use :meth:`predict_entries` or :meth:`recommend`).

        Returns
        -------
        X_filled : ndarray of shape (n_samples, n_features_out)
            ``X`` filled, in its dtype; without the features empty during
            ``fit`` unless ``keep_empty_features``.
        """
        check_is_fitted(self)
        random_state = {"random_state": self._sampling_random_state} if self.sample_posterior else {}
        return self._delegate("impute", X, limits=self._limits(), keep_empty_features=self.keep_empty_features,
                              n_columns=self._n_features_out(), **random_state)

    def imputation_std(self, X):
        """Posterior predictive standard deviation of every imputed entry.

        By the law of total variance over the components,
        ``sum_j r_uj (V_j[x_ul | x_{u,o}] + E_j[x_ul | x_{u,o}]^2) - x_hat_ul^2``
        with each component's conditional variance; clipping is not taken into account.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            As in :meth:`transform`.

        Returns
        -------
        std : ndarray of shape (n_samples, n_features_out)
            0 at observed entries and in features empty during ``fit``;
            aligned with the output of :meth:`transform`.
        """
        check_is_fitted(self)
        return self._delegate("imputation_std", X, keep_empty_features=self.keep_empty_features,
                              n_columns=self._n_features_out())

    def predict_entries(self, X, rows, cols):
        """Predicted values at chosen entries, given each row's observed entries.

        Equals ``transform(X)[rows, cols]`` (with ``keep_empty_features=True``
        and ``sample_posterior=False``) without forming the dense output: it
        takes ``O(n_samples * n_components)`` memory plus a bounded batch.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The rows whose observed entries condition the predictions.
        rows, cols : array-like of int, shape (n_entries,)
            Row and column indices of the entries.

        Returns
        -------
        values : ndarray of shape (n_entries,)
            The observed value, or the clipped posterior mean (for a feature
            empty during ``fit``, the offsets ``b + r_u`` with ``biases``, else 0).
        """
        check_is_fitted(self)
        return self._delegate("impute_entries", X, rows=rows, cols=cols, limits=self._limits())

    def recommend(self, X, n=10, *, exclude_observed=True, rank_by="rating", relevant_above=None):
        """The ``n`` best columns of each row: by predicted value, or by expected hits.

        ``rank_by="rating"`` ranks the columns by their predicted ratings
        (posterior means, before clipping, which would tie every prediction
        above ``max_value``) less the uncertainty of each column's mean:

        .. math::

            \\hat x_{ul} - 1.96 \\, s_{ul} / \\sqrt{N_l + \\lambda_c}

        the lower end of a 95 % interval for the mean rating of a column
        observed :math:`N_l` times, with :math:`\\lambda_c` the column offsets'
        shrinkage (``bias_shrinkage_[1]``, 0 without biases): among columns
        predicted alike, the one with more evidence ranks first, so an item
        rated once with five stars does not push aside established ones
        (models saved before :attr:`n_observed_` existed rank by
        :math:`\\hat x_{ul}` alone).
        ``rank_by="hits"`` ranks them by the chance that the row's user both
        rates the item and likes it, what top-N evaluations count:

        .. math::

            \\log(N_l + 1) + \\log \\Phi\\big((\\hat x_{ul} - t) / s_{ul}\\big)

        with :math:`N_l` the feature's observed entries in ``fit``
        (:attr:`n_observed_`), :math:`\\hat x_{ul}` and :math:`s_{ul}` the
        posterior predictive mean and standard deviation and :math:`t` =
        ``relevant_above``: an item rated once with five stars has a wide
        predictive distribution and no popularity, so it tops no list. Rows
        are processed in blocks (memory ``O(n_samples * n + block)``).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The rows to recommend for, with their observed entries.
        n : int, default=10
            Number of columns per row.
        exclude_observed : bool, default=True
            Never recommend a column the row has observed (rated). If False
            (``rank_by="rating"`` only), observed columns compete with their
            observed values.
        rank_by : {"rating", "hits"}, default="rating"
            The ranking rule, as above.
        relevant_above : float, default=None
            :math:`t`, above which a rating counts as liked (``rank_by="hits"``);
            None: the mean of ``X``'s observed entries.

        Returns
        -------
        columns : ndarray of int, shape (n_samples, n)
            Column indices, best first; never a feature empty during ``fit``;
            -1 where fewer than ``n`` columns remain.
        """
        check_is_fitted(self)
        n_observed = getattr(self, "n_observed_", None)
        check_ranking(n, self.n_features_in_, rank_by, exclude_observed, n_observed)
        self._limits()  # validates min_value and max_value
        return self._delegate("recommend", X, n=n, exclude_observed=exclude_observed, rank_by=rank_by,
                              relevant_above=relevant_above, n_observed=n_observed, n_columns=n, dtype=np.intp)

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
        return self._delegate("score_samples", X)

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
        return float(self.score_samples(X).mean())  # computes a reduction on dask input

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
        return self._delegate("predict_proba", X, n_columns=self.n_components)

    def predict(self, X):
        """Most probable component of each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        return self.predict_proba(X).argmax(axis=1)

    def _n_parameters(self):
        n_features = self.means_.shape[1]
        n_parameters = self._model.family.n_parameters(self.n_components, n_features)
        n_parameters += self.n_components - 1
        if self.biases:  # b and the column offsets; row offsets are per-row like responsibilities
            n_parameters += 1 + n_features
        return n_parameters

    def bic(self, X):
        """Bayesian information criterion of the model on ``X`` (lower is better).

        ``BIC = -2 log L + P log n``: ``log L`` the log-likelihood of the observed
        entries of ``X``'s ``n`` rows, ``P`` the free parameters. The course reports ``-BIC / 2``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        bic : float
        """
        n_samples = num_rows(X)
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
        return -2.0 * self.score(X) * num_rows(X) + 2 * self._n_parameters()

    def get_feature_names_out(self, input_features=None):
        """Names of the output features.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Input feature names; by default ``feature_names_in_`` or ``x0, x1, ...``.

        Returns
        -------
        feature_names_out : ndarray of str
            Without the features empty during ``fit`` unless ``keep_empty_features``.
        """
        check_is_fitted(self)
        names = _check_feature_names_in(self, input_features)
        if not self.keep_empty_features:
            names = names[~self._model.empty_features]
        return names

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = is_nan(self.missing_values)
        tags.input_tags.sparse = self.covariance_type == "auto" or FAMILIES[self.covariance_type].supports_sparse
        tags.non_deterministic = self.sample_posterior
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


_DRIVER_PARAMETERS = ("biases", "bias_shrinkage", "mean_precision_prior", "n_components", "init_params", "n_init",
                      "max_iter", "tol", "stopping_rule", "verbose", "verbose_interval")
"""The estimator parameters that go to the EM driver (:func:`~skgmmfill._em.fit_model`) as they are."""

_FITTED_STATE = ("_model", "_sampling_random_state")
"""The private attributes a fit sets, beside the public ones ending in ``_``."""


def _is_fitted_attribute(name):
    return name in _FITTED_STATE or (name.endswith("_") and not name.startswith("_"))
