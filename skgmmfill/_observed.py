"""The observed entries of an incomplete matrix, in the form the EM products use.

Every covariance family reads the data only through :class:`ObservedEntries`:
the observed values with zeros at the missing positions, a 0/1 indicator of the
observed positions, and two per-row summaries. All the heavy work of EM is a
matrix product with one of the two ``(n_samples, n_features)`` arrays, so a
family written against this class needs no knowledge of how missingness was
coded, and the same code can later run on a sparse pattern.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ObservedEntries:
    """Observed part of a data matrix ``X`` with ``n`` rows and ``d`` columns.

    Write ``C_u`` for the set of observed columns of row ``u`` and
    ``m_ul = [l in C_u]`` for the observation indicator.

    Attributes
    ----------
    values : ndarray of shape (n_samples, n_features)
        ``m_ul * x_ul``: the observed values, with 0 at every missing entry.
    mask : ndarray of shape (n_samples, n_features)
        ``m_ul`` as 0.0 / 1.0 in the dtype of ``values``.
    n_observed : ndarray of shape (n_samples,)
        ``|C_u|``, the number of observed entries of each row.
    squared_norms : ndarray of shape (n_samples,)
        ``sum_{l in C_u} x_ul**2``, the squared norm of each row's observed part.
    """

    values: np.ndarray
    mask: np.ndarray
    n_observed: np.ndarray
    squared_norms: np.ndarray

    @classmethod
    def from_dense(cls, X, observed):
        """Build the representation from a dense array and its observed mask.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            Floating-point data; entries where ``observed`` is False are ignored
            (they may hold NaN or any placeholder). Never modified.
        observed : ndarray of bool, shape (n_samples, n_features)
            True where the entry of ``X`` is observed.
        """
        values = np.where(observed, X, 0.0).astype(X.dtype, copy=False)
        mask = observed.astype(X.dtype)
        return cls(
            values=values,
            mask=mask,
            n_observed=mask.sum(axis=1),
            squared_norms=np.einsum("ij,ij->i", values, values),
        )

    @property
    def n_samples(self):
        return self.values.shape[0]

    @property
    def n_features(self):
        return self.values.shape[1]

    def weighted_sums(self, resp):
        """Responsibility-weighted sums over rows of the observed entries.

        Parameters
        ----------
        resp : ndarray of shape (n_samples, n_components)
            Responsibilities ``r_uj``.

        Returns
        -------
        value_sums : ndarray of shape (n_components, n_features)
            ``S_jl = sum_u r_uj m_ul x_ul``.
        count_sums : ndarray of shape (n_components, n_features)
            ``W_jl = sum_u r_uj m_ul``, the weighted number of observations
            of column ``l`` that component ``j`` receives.
        """
        return resp.T @ self.values, resp.T @ self.mask
