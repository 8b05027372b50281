"""Parameters we recommend: the course's model and the one for rating matrices."""

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
    "bias_shrinkage": "auto",
    "covariance_type": "factor",
    "n_components": 1,
    "n_factors": 20,
    "loading_precision_prior": 100.0,
    "loading_ard_prior": 0.5,
    "loading_posterior": "variational",
    "mean_precision_prior": 25.0,
    "noise_variance_prior": "auto",
    "loading_pattern_prior": "auto",
    "row_offset_factor": True,
    "init_params": "kmeans",
    "max_iter": 200,
}
"""Parameters we recommend for rating matrices (see the README): item
offsets, shrunk as much as the data say (the ratio of the residuals' variance
to the offsets', estimated by empirical Bayes), then one factor component
(probabilistic matrix factorisation of the residuals) in which each user's
offset is a factor of its own, inferred with their tastes
(``row_offset_factor``), and at most 20 other factors whose loadings and means
have a posterior rather than a point estimate (variational Bayes), each factor
column's loadings shrunk by its own precision, estimated from the data
(automatic relevance determination) under a hyperprior worth half the items,
centred on 100 ratings' worth, so that the data decide how many factors they
support; the means are shrunk towards the offsets by a prior worth 25 ratings
and the noise variances towards a common one by a prior whose centre and
strength are estimated from the bias model's residuals (empirical Bayes: as
strong as the items' noise is alike), so that an item rated once or twice is
predicted about as the bias model predicts it, and tops no list; the loadings'
prior ties items rated by the same users (the pattern prior, its strength
estimated from the data: which users rated an item says what its loadings are
like, before its ratings do, where the data show it). Add the rating scale,
e.g. ``MaskedGaussianMixtureImputer(**PRESET_RATINGS, min_value=1, max_value=5)``.
At most 200 EM iterations: on a dense matrix such as the bundled Netflix one
the fit can need more than 100 (the default) to meet ``tol``. Tuning over
:data:`RATINGS_GRID` by cross-validation gains little."""

RATINGS_GRID = {"n_factors": [20, 30]}
"""The grid we recommend searching from :data:`PRESET_RATINGS` with
:class:`~sklearn.model_selection.GridSearchCV` and
:func:`~skgmmfill.metrics.make_masked_rmse_scorer`: the most factors allowed,
the one choice the data we measured disagree on (a dense matrix with many
ratings per user supports more). Two points, so that tuning on 100,000 ratings
takes under a minute on two cores with ``n_jobs=2`` (see the README)."""
