"""Row and column offsets (user and item biases) estimated on the observed entries.

The model is ``x_ul = b + r_u + c_l + e_ul`` with ridge-shrunk offsets: with
``lambda`` the shrinkage and sums over observed entries only,

* ``b`` is the mean of the observed entries;
* ``c_l = sum_u (x_ul - b - r_u) / (n_l + lambda)``;
* ``r_u = sum_l (x_ul - b - c_l) / (n_u + lambda)``,

alternated a few times from ``r = 0``. A mixture is then fitted to the
residuals ``e_ul``. For rows not seen in fit, ``r_u`` is computed by the same
formula from their own observed entries, so the model applies to new users.
"""

import numpy as np

N_PASSES = 3


def fit_offsets(observed, shrinkage):
    """The offsets ``(b, r, c)`` of the rows and columns of ``observed``.

    Returns
    -------
    global_mean : float
    row_offsets : ndarray of shape (n_samples,)
    column_offsets : ndarray of shape (n_features,)
    """
    n_entries = observed.n_observed.sum()
    global_mean = float(observed.values.sum() / n_entries) if n_entries else 0.0
    column_counts = observed.column_counts()
    column_sums = observed.column_sums() - global_mean * column_counts
    row_offsets = np.zeros(observed.n_samples, dtype=observed.dtype)
    for _ in range(N_PASSES):
        column_offsets = _shrunk_mean(column_sums - observed.mask.T @ row_offsets, column_counts, shrinkage)
        row_offsets = row_offsets_given(observed, global_mean, column_offsets, shrinkage)
    return global_mean, row_offsets, column_offsets.astype(observed.dtype)


def row_offsets_given(observed, global_mean, column_offsets, shrinkage):
    """``r_u = sum_l (x_ul - b - c_l) / (n_u + lambda)`` for each row, shape ``(n_samples,)``."""
    row_sums = np.asarray(observed.values.sum(axis=1)).ravel()
    residual_sums = row_sums - global_mean * observed.n_observed - observed.mask @ column_offsets
    return _shrunk_mean(residual_sums, observed.n_observed, shrinkage).astype(observed.dtype)


def _shrunk_mean(sums, counts, shrinkage):
    """``sums / (counts + shrinkage)``, 0 where there is nothing to average."""
    denominators = counts + shrinkage
    return np.divide(sums, denominators, out=np.zeros(len(sums)), where=denominators > 0)
