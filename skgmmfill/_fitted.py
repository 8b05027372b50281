"""A fitted model in the data's units: the mixture, and the maps between data and model.

EM runs on standardised data (:class:`Standardization`), on the residuals
after user and item offsets with ``biases``, and leaves out features never
observed in ``fit``. :class:`FittedMixture` holds all of that, made once by
the driver (:func:`skgmmfill._em.fit_model`), and answers every question a
prediction asks in the data's units: the forward map of new rows
(:meth:`~FittedMixture.entries`), the inverse map of predictions
(:meth:`~FittedMixture.to_data`), and the posterior, imputations, variances,
draws, log-likelihoods and rankings built on them. Its methods take input
already validated (:func:`~skgmmfill._validation.validate_input`) and are
pure, so the estimator calls them on its data and the Dask backend on each
row block where it lives, with nothing else sent there.
"""

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from scipy.special import log_ndtr

from ._biases import mixture_row_shrinkage, remove_offsets
from ._family import CovarianceFamily, Mixture
from ._observed import row_batches
from ._validation import observed_entries, relevance_threshold, rows_of_entries

MAX_DENSE_OUTPUT = 2**27
"""The largest dense array (entries) that ``transform`` returns for sparse input."""
BATCH_ENTRIES = 2**22
"""The size (entries) of the dense blocks that entry predictions and rankings work in."""
RATING_CAUTION = 1.96
"""``recommend(rank_by="rating")`` ranks by the lower end of a 95 % interval for each column's
mean rating: the predicted rating less 1.96 standard errors ``s_ul / sqrt(N_l + lambda_c)``."""


class Standardization(NamedTuple):
    """The affine map from the data's units to the coordinates EM works in.

    EM sees ``z_ul = (x_ul - location_l) / scale``: each feature centred on
    the mean of its observed entries (with ``biases``, all on the global
    mean, which the offsets model relative to), divided by one global scale,
    the root mean square of the centred observed entries. A shift moves only
    the means and one scale keeps every family in its form, so the model is
    the same; but no sum of squares cancels catastrophically whatever the
    data's offset, and variance floors and stopping rules can be stated
    relative to the data.

    Attributes
    ----------
    location : ndarray of shape (n_features,)
    scale : float
    """

    location: np.ndarray
    scale: float


def standardized(standardization, observed):
    """``observed`` in the coordinates EM works in (the forward map, before offsets)."""
    return observed.shifted(0.0, *standardization)


class Units(NamedTuple):
    """What turns log-densities of the standardised data into the data's units.

    A density in ``z`` is ``scale**n`` times one in ``x`` over ``n``
    coordinates, so a log-density over ``n`` observed coordinates shifts by
    ``-n * log_scale`` (:meth:`log_density`), the mean log-likelihood by
    ``-observed_per_row * log_scale`` and the log prior density of each
    parameter vector by ``-log_scale`` per coordinate.
    """

    log_scale: float = 0.0
    observed_per_row: float = 0.0

    def log_density(self, log_density, n_coordinates):
        """A log-density over ``n_coordinates`` standardised coordinates, in the data's units."""
        return log_density - n_coordinates * self.log_scale


@dataclass(frozen=True)
class FittedMixture:
    """What a fit found, and the maps between the data's units and the model's.

    Attributes
    ----------
    family : CovarianceFamily
        The covariance family, with its hyperparameters resolved for the data.
    mixture : Mixture
        The parameters, in the standardised coordinates.
    standardization : Standardization
    offsets : tuple of (float, ndarray) or None
        ``(b, c)``: the global mean and column offsets (standardised), with ``biases``.
    bias_shrinkage : tuple of float or None
        ``(lambda_r, lambda_c)``: the ridge strengths of the row and column
        offsets (see :mod:`skgmmfill._biases`), with ``biases``; new rows'
        offsets are shrunk by ``lambda_r``.
    empty_features : ndarray of bool, shape (n_features,)
        Features without an observed entry in ``fit``: the mixture ignores
        them and predicts them from the offsets alone (0 without ``biases``).
    """

    family: CovarianceFamily
    mixture: Mixture
    standardization: Standardization
    offsets: object
    bias_shrinkage: object
    empty_features: np.ndarray

    # -- the two maps ----------------------------------------------------------

    def entries(self, X, missing):
        """The observed entries as the mixture sees them, and each row's offset ``b + r_u``.

        Standardised as in ``fit``, without the features empty then, and with
        ``biases`` the residuals after the offsets; ``row_offsets`` is None
        without biases.
        """
        observed = standardized(self.standardization, observed_entries(X, missing, self.empty_features))
        if self.offsets is None:
            return observed, None
        row_shrinkage = mixture_row_shrinkage(self.bias_shrinkage[0], self.family.models_row_offsets)
        return remove_offsets(*self.offsets, row_shrinkage, observed)

    def empty_feature_residuals(self, observed, resp):
        """What the features empty in ``fit`` add to the offsets ``b + c_l``, per row: the row
        offset that the family infers, with ``biases`` (already in ``b + r_u`` otherwise), else 0."""
        if self.offsets is None or not self.family.models_row_offsets:
            return np.zeros(observed.n_samples)
        return self.family.row_offsets(observed, resp, self.mixture)

    def to_data(self, predictions, row_offsets, rows=slice(None), cols=slice(None)):
        """Predictions of the mixture's coordinates, in place, as values in the data's units.

        Adds the offsets ``b + r_u + c_l`` (with ``biases``), then undoes the
        standardisation: ``location_l + scale * prediction``. ``predictions``
        holds the entries of ``rows x cols``, or the pairs ``(rows[i], cols[i])``
        when 1-D.
        """
        location, scale = self.standardization
        if row_offsets is not None:
            row_part = row_offsets[rows] if predictions.ndim == 1 else row_offsets[rows, np.newaxis]
            predictions += row_part + self.offsets[1][cols]
        predictions *= scale
        predictions += location[cols]
        return predictions

    def attributes(self, mean_prior=None):
        """The fitted parameters in the data's units, by the estimator's attribute names.

        ``x = location + scale * z``: means (of the residuals, with biases,
        which have no location) map like values; the family converts its
        covariance parameters (variances by ``scale**2``).
        """
        location, scale = self.standardization
        dtype = self.mixture.means.dtype
        mixture_location = 0.0 if self.offsets is not None else location
        attributes = {
            "weights_": self.mixture.weights,
            "means_": (mixture_location + scale * self.mixture.means).astype(dtype),
            **self.family.fitted_attributes(self.mixture.covariances, scale),
        }
        if self.offsets is not None:
            global_mean, column_offsets = self.offsets
            attributes["global_mean_"] = float(location[0] + scale * global_mean)
            attributes["column_offsets_"] = (scale * column_offsets).astype(dtype)
            attributes["bias_shrinkage_"] = np.array(self.bias_shrinkage, dtype=np.float64)
        if mean_prior is not None:
            attributes["mean_prior_"] = (mixture_location + scale * mean_prior).astype(dtype)
        return attributes

    # -- what the estimator's methods return -----------------------------------

    def posterior(self, X, missing):
        """Responsibilities ``(n, K)`` and each row's log-likelihood in the data's units."""
        observed, _ = self.entries(X, missing)
        return self._posterior(observed)

    def _posterior(self, observed):
        resp, log_prob_norm = self.family.posterior(observed, self.mixture)
        return resp, Units(np.log(self.standardization.scale)).log_density(log_prob_norm, observed.n_observed)

    def predict_proba(self, X, missing):
        return self.posterior(X, missing)[0]

    def score_samples(self, X, missing):
        return self.posterior(X, missing)[1]

    def impute(self, X, missing, *, limits, keep_empty_features, random_state=None):
        """``X`` with its missing entries filled by their posterior means (or a
        posterior draw from ``random_state``), clipped to ``limits``."""
        observed, row_offsets = self._dense_output(X, missing)
        resp, _ = self._posterior(observed)
        if random_state is None:
            imputed = self.family.impute(observed, resp, self.mixture)
        else:
            imputed = self.family.sample(observed, resp, self.mixture, random_state)
        if self.empty_features.any():  # the offsets alone
            imputed[:, self.empty_features] = self.empty_feature_residuals(observed, resp)[:, np.newaxis]
        self.to_data(imputed, row_offsets)
        np.clip(imputed, *limits, out=imputed)
        return self._with_observed_entries(X, missing, imputed, "X", keep_empty_features)

    def imputation_std(self, X, missing, *, keep_empty_features):
        """The posterior predictive standard deviation of every missing entry (0 at observed ones)."""
        observed, _ = self._dense_output(X, missing)
        resp, _ = self._posterior(observed)
        variance = self.family.predictive_variance(observed, resp, self.mixture)
        std = np.sqrt(variance, out=variance)
        std *= self.standardization.scale
        std[:, self.empty_features] = 0.0
        return self._with_observed_entries(X, missing, std, 0.0, keep_empty_features)

    def impute_entries(self, X, missing, rows, cols, *, limits):
        """The clipped posterior means at ``(rows[i], cols[i])``; observed entries as they are."""
        observed, row_offsets = self.entries(X, missing)
        resp, _ = self._posterior(observed)
        low, high = limits
        values = np.empty(rows.shape, dtype=X.dtype)
        # stored or not, from X's own pattern: features empty in fit are not in `observed`
        pattern = None if missing is not None else _pattern(X)
        n_components = len(self.mixture.weights)
        empty_residuals = None
        if self.empty_features[cols].any():
            empty_residuals = self.empty_feature_residuals(observed, resp)
        for batch in row_batches(len(rows), BATCH_ENTRIES // n_components):
            r, c = rows[batch], cols[batch]
            predicted = self.family.impute_entries(observed, resp, self.mixture, r, c)
            empty = self.empty_features[c]
            if empty_residuals is not None:  # the offsets alone
                predicted[empty] = empty_residuals[r[empty]]
            self.to_data(predicted, row_offsets, r, c)
            np.clip(predicted, low[c], high[c], out=predicted)
            if missing is None:
                stored, stored_values = np.asarray(pattern[r, c]).ravel() != 0, np.asarray(X[r, c]).ravel()
            else:
                stored, stored_values = ~missing[r, c], X[r, c]
            values[batch] = np.where(stored, stored_values, predicted)
        return values

    def recommend(self, X, missing, n, *, exclude_observed, rank_by, relevant_above, n_observed):
        """The ``n`` best columns of each row (see the estimator's ``recommend``), row block by row block."""
        if rank_by == "hits":
            relevant_above = relevance_threshold(X, missing, relevant_above)
            log_popularity = np.log1p(n_observed)  # the chance of being rated, up to a constant
        elif n_observed is not None:  # the standard error of each column's mean: s / sqrt(N_l + lambda_c)
            prior_entries = 0.0 if self.offsets is None else self.bias_shrinkage[1]
            with np.errstate(divide="ignore"):  # a column empty in fit (never recommended) has none
                caution = RATING_CAUTION / np.sqrt(n_observed + prior_entries)
        observed, row_offsets = self.entries(X, missing)
        columns = np.empty((X.shape[0], n), dtype=np.intp)
        family, mixture = self.family, self.mixture
        for batch in row_batches(X.shape[0], BATCH_ENTRIES // X.shape[1]):
            block = observed.row_block(batch)
            resp, _ = family.posterior(block, mixture)
            if rank_by == "rating" and n_observed is None:
                scores, variance = family.impute(block, resp, mixture), None
            else:
                scores, variance = family.predictive_moments(block, resp, mixture)
            self.to_data(scores, row_offsets, batch)  # not clipped: ties at max_value stay ranked
            if variance is not None:
                std = np.sqrt(variance, out=variance)
                std *= self.standardization.scale
            if rank_by == "hits":
                scores -= relevant_above
                scores /= np.maximum(std, np.finfo(std.dtype).tiny)
                scores = log_ndtr(scores, out=scores)
                scores += log_popularity
            elif variance is not None:
                std *= caution
                scores -= std
            if missing is None:  # the rated entries, from the sparse rows (no dense copy of them)
                rated = X[batch]
                scores[rows_of_entries(rated), rated.indices] = -np.inf if exclude_observed else rated.data
            else:
                observed_here = ~missing[batch]
                scores[observed_here] = -np.inf if exclude_observed else X[batch][observed_here]
            scores[:, self.empty_features] = -np.inf
            columns[batch] = best_columns(scores, n)
        return columns

    def _dense_output(self, X, missing):
        if missing is None and X.shape[0] * X.shape[1] > MAX_DENSE_OUTPUT:
            raise ValueError(
                f"transform would return a dense {X.shape[0]} x {X.shape[1]} array from sparse input (more "
                f"than {MAX_DENSE_OUTPUT} entries); use predict_entries for chosen entries or recommend for "
                "the best entries of each row."
            )
        return self.entries(X, missing)

    def _with_observed_entries(self, X, missing, filled, observed_values, keep_empty_features):
        """``filled`` with ``X``'s observed entries (``observed_values="X"``) or 0 put back in
        place; features empty in ``fit`` then dropped unless ``keep_empty_features``."""
        if missing is None:
            filled[rows_of_entries(X), X.indices] = X.data if observed_values == "X" else 0.0
        else:
            filled = np.where(missing, filled, X if observed_values == "X" else 0.0)
        if not keep_empty_features:
            filled = filled[:, ~self.empty_features]
        return filled


def _pattern(X):
    """The stored entries of the CSR array ``X`` as 1 (a stored 0 included), sharing its index arrays."""
    return sp.csr_array((np.ones(X.nnz, dtype=np.int8), X.indices, X.indptr), shape=X.shape)


def best_columns(scores, n):
    """The ``n`` columns of highest score in each row, best first (equal scores in a fixed order); -1 where
    fewer than ``n`` columns score above ``-inf``."""
    top = np.argpartition(scores, -n, axis=1)[:, -n:]
    top_scores = np.take_along_axis(scores, top, axis=1)
    order = np.argsort(-top_scores, axis=1, kind="stable")
    top = np.take_along_axis(top, order, axis=1)
    top[np.take_along_axis(top_scores, order, axis=1) == -np.inf] = -1
    return top
