"""Row and column offsets (user and item biases) estimated on the observed entries.

The model is ``x_ul = b + r_u + c_l + e_ul`` with ridge-shrunk offsets: with
``lambda`` the shrinkage and sums over observed entries only,

* ``b`` is the mean of the observed entries;
* ``c_l = sum_u (x_ul - b - r_u) / (n_l + lambda)``;
* ``r_u = sum_l (x_ul - b - c_l) / (n_u + lambda)``,

alternated a few times from ``r = 0``. A mixture is then fitted to the
residuals ``e_ul``. The row offsets are never stored: given ``b`` and ``c``,
``r_u`` follows from row ``u``'s own observed entries, so each pass is one
reduction over row blocks (any backend), and the model applies to new users.
"""

from functools import partial

import numpy as np

N_PASSES = 3


def fit_offsets(source, moments, shrinkage):
    """The global mean ``b`` and column offsets ``c`` of the rows of ``source``.

    Parameters
    ----------
    source : data source (see :mod:`skgmmfill._em`)
    moments : DataMoments
        The column counts and sums of ``source``.
    shrinkage : float

    Returns
    -------
    global_mean : float
    column_offsets : ndarray of shape (n_features,)
    """
    n_entries = moments.counts.sum()
    global_mean = float(moments.sums.sum() / n_entries) if n_entries else 0.0
    column_sums = moments.sums - global_mean * moments.counts
    column_offsets = _shrunk_mean(column_sums, moments.counts, shrinkage)  # first pass: r = 0
    for _ in range(N_PASSES - 1):
        row_parts = source.reduce(partial(_row_offset_column_sums, global_mean, column_offsets, shrinkage))
        column_offsets = _shrunk_mean(column_sums - row_parts, moments.counts, shrinkage)
    return global_mean, column_offsets.astype(source.dtype)


def _row_offset_column_sums(global_mean, column_offsets, shrinkage, block):
    """``sum_u m_ul r_u`` for each column, with ``r_u`` given ``b`` and ``c``."""
    row_offsets = row_offsets_given(block, global_mean, column_offsets, shrinkage)
    return block.column_sums(row_offsets[:, np.newaxis], "mask")[0]


def row_offsets_given(observed, global_mean, column_offsets, shrinkage):
    """``r_u = sum_l (x_ul - b - c_l) / (n_u + lambda)`` for each row, shape ``(n_samples,)``."""
    row_sums = np.asarray(observed.values.sum(axis=1)).ravel()
    residual_sums = row_sums - global_mean * observed.n_observed - observed.mask @ column_offsets
    return _shrunk_mean(residual_sums, observed.n_observed, shrinkage).astype(observed.dtype)


def remove_offsets(global_mean, column_offsets, shrinkage, observed):
    """The residuals ``x_ul - b - r_u - c_l`` of the observed entries, and ``b + r_u``."""
    row_offsets = global_mean + row_offsets_given(observed, global_mean, column_offsets, shrinkage)
    return observed.shifted(row_offsets, column_offsets), row_offsets


def _shrunk_mean(sums, counts, shrinkage):
    """``sums / (counts + shrinkage)``, 0 where there is nothing to average."""
    denominators = counts + shrinkage
    return np.divide(sums, denominators, out=np.zeros(len(sums)), where=denominators > 0)
