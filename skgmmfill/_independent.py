"""What the families with independent features (spherical and diag) share.

Given a component, the missing coordinates of a row are then independent of
its observed ones, so the conditional distribution of ``x_ul`` under
component ``j`` is just ``N(mu_jl, v_jl)``: predictions need only the
``(K, d)`` array ``v_jl`` of :meth:`IndependentFeatures.feature_variances`.
Their statistics are the same responsibility-weighted sums of the observed
values, counts and squares, all matrix products with the observed entries.
"""

from dataclasses import dataclass, replace

import numpy as np

from ._family import POSITIVE_OR_AUTO, CovarianceFamily, Statistics, draw_components, variance_floor

MIN_VARIANCE_FRACTION = 1e-3
"""``min_variance="auto"``: the floor as a fraction of the data's variance."""


@dataclass(frozen=True)
class IndependentStatistics(Statistics):
    """Sums for spherical and diag components.

    Attributes
    ----------
    value_sums : ndarray of shape (K, d)
        ``S_jl = sum_u r_uj m_ul x_ul``.
    count_sums : ndarray of shape (K, d)
        ``W_jl = sum_u r_uj m_ul``.
    squared_sums : ndarray of shape (K, d), or (K,) for spherical
        ``Q_jl = sum_u r_uj m_ul x_ul**2`` (spherical needs only its sum over
        ``l``, one product cheaper on sparse data).
    """

    value_sums: np.ndarray
    count_sums: np.ndarray
    squared_sums: np.ndarray


@dataclass(frozen=True)
class IndependentFeatures(CovarianceFamily):
    """Base of the families whose components have diagonal covariances.

    Attributes
    ----------
    min_variance : float, ndarray of shape (n_features,) or "auto"
        Floor on every variance, at initialisation and after each update; it
        keeps components that collapse onto a single row finite. ``"auto"``
        (resolved by :meth:`for_data`) is :data:`MIN_VARIANCE_FRACTION` of the
        data's variance: each feature's for diag, the pooled one for spherical.
    """

    min_variance: object = 0.25
    hyperparameters = ("min_variance",)
    hyperparameter_constraints = {"min_variance": POSITIVE_OR_AUTO}
    contract_hyperparameters = {"min_variance": 1e-3}
    per_feature_floor = True

    def for_data(self, moments, scale, dtype, residual_moments=None):
        floor = variance_floor(
            self.min_variance, MIN_VARIANCE_FRACTION, moments, scale, dtype, self.per_feature_floor
        )
        return replace(self, min_variance=floor)

    def feature_variances(self, covariances, n_features):
        """The variance ``v_jl`` of every feature under every component, ``(K, d)``."""
        raise NotImplementedError

    def dense_covariances(self, covariances, n_features):
        variances = self.feature_variances(covariances, n_features)
        return variances[:, :, np.newaxis] * np.eye(n_features)

    def statistics(self, observed, resp, mixture):
        value_sums, count_sums = observed.weighted_sums(resp)
        return IndependentStatistics(
            n_samples=observed.n_samples,
            log_likelihood=0.0,
            resp_sums=resp.sum(axis=0),
            value_sums=value_sums,
            count_sums=count_sums,
            squared_sums=self._squared_sums(observed, resp),
        )

    def _squared_sums(self, observed, resp):
        return observed.weighted_squared_sums(resp)

    def impute(self, observed, resp, mixture):
        return resp @ mixture.means

    def impute_entries(self, observed, resp, mixture, rows, cols):
        return np.einsum("ij,ij->i", resp[rows], mixture.means.T[cols])

    def predictive_variance(self, observed, resp, mixture):
        """``sum_j r_uj (v_jl + mu_jl^2) - x_hat_ul^2``, clipped at 0 against rounding.

        Computed for every entry; the caller zeroes the observed ones.
        """
        means = mixture.means
        variances = self.feature_variances(mixture.covariances, means.shape[1])
        second_moment = resp @ (variances + means**2)
        second_moment -= (resp @ means) ** 2
        return np.maximum(second_moment, 0.0, out=second_moment)

    def sample(self, observed, resp, mixture, random_state):
        """A component ``z_u`` per row, then every coordinate from ``N(mu_{z_u l}, v_{z_u l})``."""
        means = mixture.means
        variances = self.feature_variances(mixture.covariances, means.shape[1])
        components = draw_components(resp, random_state)
        noise = random_state.standard_normal(size=(resp.shape[0], means.shape[1]))
        return means[components] + np.sqrt(variances[components]) * noise.astype(means.dtype)
