"""Row and column offsets (user and item biases) estimated on the observed entries.

The model is ``x_ul = b + r_u + c_l + e_ul`` with ridge-shrunk offsets: with
``lambda`` the shrinkage and sums over observed entries only,

* ``b`` is the mean of the observed entries;
* ``c_l = sum_u (x_ul - b - r_u) / (n_l + lambda)``;
* ``r_u = sum_l (x_ul - b - c_l) / (n_u + lambda)``,

alternated a few times from ``r = 0`` (the row offsets' ``lambda`` may differ
from the columns'). A mixture is then fitted to the residuals ``e_ul``. The
row offsets are never stored: given ``b`` and ``c``, ``r_u`` follows from row
``u``'s own observed entries, so each pass is one reduction over row blocks
(any backend), and the model applies to new users.

``shrinkage="auto"`` estimates the two ``lambda`` from the data (empirical
Bayes): with ``r_u ~ N(0, sigma_r^2)``, ``c_l ~ N(0, sigma_c^2)`` and
``e_ul ~ N(0, sigma^2)`` the ridge estimates are the offsets' posterior
means, and the variances that maximise the evidence satisfy (MacKay's fixed
point, with ``g_u = n_u / (n_u + lambda_r)`` and ``g_l = n_l / (n_l + lambda_c)``
the offsets' effective numbers of parameters)

* ``sigma_r^2 = sum_u r_u^2 / sum_u g_u``, ``sigma_c^2 = sum_l c_l^2 / sum_l g_l``,
* ``sigma^2 = sum_ul e_ul^2 / (N - sum_u g_u - sum_l g_l)``,

and ``lambda_r = sigma^2 / sigma_r^2``, ``lambda_c = sigma^2 / sigma_c^2``.
They are iterated from ``AUTO_START``, one reduction per step (the offsets'
posteriors taken as independent, as the alternating passes take them), until
the shrinkage factor ``n / (n + lambda)`` of a row and of a column with the
mean number of entries moves by less than ``AUTO_TOLERANCE``, or for
``AUTO_MAX_STEPS`` steps (``lambda`` grows without bound where the offsets
have no variance).
"""

from functools import partial

import numpy as np

N_PASSES = 3
AUTO_START = 25.0
AUTO_MAX_STEPS = 100
AUTO_TOLERANCE = 1e-4
_ROW_SUMS = 4  # the sums over rows that follow the column sums in _evidence_sums' result
_TINY = 1e-12


def fit_offsets(source, moments, shrinkage):
    """The global mean ``b`` and column offsets ``c`` of the rows of ``source``.

    Parameters
    ----------
    source : data source (see :mod:`skgmmfill._em`)
    moments : DataMoments
        The column counts and sums of ``source``.
    shrinkage : float or "auto"
        ``lambda`` of the rows and the columns, or "auto" to estimate each.

    Returns
    -------
    global_mean : float
    column_offsets : ndarray of shape (n_features,)
    shrinkage : tuple of float
        ``(lambda_r, lambda_c)``, those of the rows and of the columns.
    """
    n_entries = moments.counts.sum()
    global_mean = float(moments.sums.sum() / n_entries) if n_entries else 0.0
    shrinkage = (estimated_shrinkage(source, moments, global_mean) if isinstance(shrinkage, str)
                 else (float(shrinkage), float(shrinkage)))
    row_shrinkage, column_shrinkage = shrinkage
    column_sums = moments.sums - global_mean * moments.counts
    column_offsets = _shrunk_mean(column_sums, moments.counts, column_shrinkage)  # first pass: r = 0
    for _ in range(N_PASSES - 1):
        row_parts = source.reduce(partial(_row_offset_column_sums, global_mean, column_offsets, row_shrinkage))
        column_offsets = _shrunk_mean(column_sums - row_parts, moments.counts, column_shrinkage)
    return global_mean, column_offsets.astype(source.dtype), shrinkage


def estimated_shrinkage(source, moments, global_mean):
    """``(lambda_r, lambda_c)`` by the evidence's fixed point for the offsets' and residuals' variances
    (module docstring)."""
    counts = moments.counts
    n_entries = counts.sum()
    column_sums = moments.sums - global_mean * counts
    seen = counts > 0
    if seen.sum() < 2:
        return AUTO_START, AUTO_START
    row_shrinkage = column_shrinkage = AUTO_START
    column_offsets = _shrunk_mean(column_sums, counts, column_shrinkage)
    for _ in range(AUTO_MAX_STEPS):
        sums = source.reduce(partial(_evidence_sums, global_mean, column_offsets, row_shrinkage))
        row_parts, (squared_offsets, row_weight, n_rows, residual_squares) = sums[:-_ROW_SUMS], sums[-_ROW_SUMS:]
        if n_rows < 2:
            break
        column_weight = (counts / (counts + column_shrinkage)).sum()
        noise = residual_squares / max(n_entries - row_weight - column_weight, _TINY)
        row_variance = squared_offsets / max(row_weight, _TINY)
        column_variance = (column_offsets[seen] ** 2).sum() / max(column_weight, _TINY)
        previous = np.array([row_shrinkage, column_shrinkage])
        row_shrinkage, column_shrinkage = noise / max(row_variance, _TINY), noise / max(column_variance, _TINY)
        column_offsets = _shrunk_mean(column_sums - row_parts, counts, column_shrinkage)
        # converged when the shrinkage factors n / (n + lambda) of a typical row and column stop moving
        typical = np.array([n_entries / n_rows, n_entries / seen.sum()])
        factors = typical / (typical + np.array([row_shrinkage, column_shrinkage]))
        if np.all(np.abs(factors - typical / (typical + previous)) <= AUTO_TOLERANCE):
            break
    return float(row_shrinkage), float(column_shrinkage)


def _row_offset_column_sums(global_mean, column_offsets, row_shrinkage, block):
    """``sum_u m_ul r_u`` for each column, with ``r_u`` given ``b`` and ``c``."""
    return _column_sums_of(block, row_offsets_given(block, global_mean, column_offsets, row_shrinkage))


def _evidence_sums(global_mean, column_offsets, row_shrinkage, block):
    """:func:`_row_offset_column_sums`, then four sums over the rows: ``r_u^2``,
    ``n_u / (n_u + lambda_r)``, the number of rows with entries, and the squared residuals
    ``(x_ul - b - r_u - c_l)^2``."""
    n_observed = block.n_observed.astype(np.float64)
    residual_sums = _residual_sums(block, global_mean, column_offsets)
    row_offsets = _shrunk_mean(residual_sums, n_observed, row_shrinkage)
    # sum (x - b - c_l - r_u)^2 = sum (x - b - c_l)^2 - 2 r_u sum (x - b - c_l) + n_u r_u^2
    shifted = global_mean + column_offsets.astype(np.float64)
    centred_squares = (float(block.squared_norms.sum(dtype=np.float64))
                       - 2.0 * float(np.sum(block.values @ shifted)) + float(np.sum(block.mask @ shifted**2)))
    residual_squares = centred_squares - 2.0 * row_offsets @ residual_sums + n_observed @ row_offsets**2
    return np.concatenate([
        _column_sums_of(block, row_offsets),
        [row_offsets @ row_offsets, (n_observed / (n_observed + row_shrinkage)).sum(), (n_observed > 0).sum(),
         residual_squares],
    ])


def _column_sums_of(block, row_offsets):
    """``sum_u m_ul r_u`` for each column, in float64."""
    return block.column_sums(row_offsets[:, np.newaxis].astype(block.dtype), "mask")[0].astype(np.float64)


def _residual_sums(observed, global_mean, column_offsets):
    """``sum_l (x_ul - b - c_l)`` over each row's observed entries."""
    row_sums = np.asarray(observed.values.sum(axis=1), dtype=np.float64).ravel()
    return row_sums - global_mean * observed.n_observed - observed.mask @ column_offsets


def row_offsets_given(observed, global_mean, column_offsets, shrinkage):
    """``r_u = sum_l (x_ul - b - c_l) / (n_u + lambda)`` for each row, shape ``(n_samples,)``."""
    residual_sums = _residual_sums(observed, global_mean, column_offsets)
    return _shrunk_mean(residual_sums, observed.n_observed, shrinkage).astype(observed.dtype)


def mixture_row_shrinkage(row_shrinkage, row_offsets_in_model):
    """``lambda_r`` of the row offsets removed before the mixture: infinite (``r_u = 0``) where the
    family infers each row's offset itself."""
    return np.inf if row_offsets_in_model else row_shrinkage


def remove_offsets(global_mean, column_offsets, shrinkage, observed):
    """The residuals ``x_ul - b - r_u - c_l`` of the observed entries, and ``b + r_u``."""
    row_offsets = global_mean + row_offsets_given(observed, global_mean, column_offsets, shrinkage)
    return observed.shifted(row_offsets, column_offsets), row_offsets


def _shrunk_mean(sums, counts, shrinkage):
    """``sums / (counts + shrinkage)``, 0 where there is nothing to average."""
    denominators = counts + shrinkage
    return np.divide(sums, denominators, out=np.zeros(len(sums)), where=denominators > 0)
