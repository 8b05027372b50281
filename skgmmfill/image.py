"""Image reconstruction with a Gaussian-mixture prior on patches (EPLL).

Zoran & Weiss (2011) restore an image ``x`` from measurements
``y = F x + noise`` by minimising the expected patch log-likelihood objective

.. math::

    f(x) = \\frac{\\lambda}{2} \\lVert F x - y \\rVert^2 - \\sum_i \\log p(P_i x),

where ``P_i`` extracts the ``i``-th of the overlapping ``p_h x p_w`` patches,
``p`` is a Gaussian mixture over patches, and
``lambda = p_h p_w / noise_std**2``: every pixel lies in ``p_h p_w`` patches,
so its prior is counted that many times and the data term is weighted to
match, as in the paper.

Half-quadratic splitting gives every patch an auxiliary estimate ``z_i`` and
alternates, for an increasing sequence of ``beta``, two stages (the patch
stage picks a component as Zoran & Weiss do, then both stages solve their
problems exactly):

* the patch stage: with ``v_i = P_i x`` (its mean ``m_i`` removed when the
  prior models mean-removed patches), pick the component ``k`` that explains
  ``v_i`` best as a noisy patch, the largest
  ``pi_k N(v_i - m_i | mu_k, Sigma_k + I / beta)``, and Wiener-filter towards it:
  ``z_i = m_i + mu_k + Sigma_k (Sigma_k + I / beta)^{-1} (v_i - m_i - mu_k)``,
  the minimiser of ``beta/2 ||v_i - z||^2 - log N(z - m_i | mu_k, Sigma_k)``;
* the image stage:
  ``x = argmin lambda/2 ||F x - y||^2 + beta/2 sum_i ||P_i x - z_i||^2``. For a
  pixel mask this is a per-pixel weighted average; for a general linear
  operator, the normal equations
  ``(lambda Re(F^H F) + beta C) x = lambda Re(F^H y) + beta sum_i P_i^T z_i``
  (``C`` the diagonal of patch counts per pixel) are solved by conjugate
  gradients.

The prior is fitted by :class:`~skgmmfill.MaskedGaussianMixtureImputer` with
full covariances, so it can be learnt from complete training images or from
the incomplete observed image itself (patches with missing pixels).
"""

import warnings
from numbers import Integral, Real
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from scipy.linalg import cho_solve, cholesky
from scipy.sparse.linalg import LinearOperator, aslinearoperator, cg
from sklearn.feature_extraction.image import extract_patches_2d
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, check_is_fitted

from ._family import Mixture, log_weights
from ._full import FullCovariance
from ._imputer import MaskedGaussianMixtureImputer
from ._observed import ObservedEntries

__all__ = [
    "PatchPrior",
    "fit_patch_prior",
    "epll_inpaint",
    "epll_reconstruct",
    "inpaint_patches_independently",
    "DEFAULT_GAMMAS",
]

DEFAULT_GAMMAS = (1, 4, 8, 16, 32, 64, 128, 256, 512)
"""Default multipliers of ``beta``, one per outer iteration of the splitting."""


class PatchPrior(NamedTuple):
    """A Gaussian mixture over vectorised image patches.

    Attributes
    ----------
    mixture : MaskedGaussianMixtureImputer
        Fitted with ``covariance_type="full"`` on patches flattened row by row
        (``n_features = p_h * p_w``).
    patch_size : tuple of int
        ``(p_h, p_w)``.
    remove_mean : bool
        Whether the mixture models patches minus their own mean; the mean of
        a patch is then carried through every estimate unchanged.
    """

    mixture: MaskedGaussianMixtureImputer
    patch_size: tuple
    remove_mean: bool


def fit_patch_prior(
    images,
    *,
    patch_size=(8, 8),
    n_components=20,
    remove_mean=True,
    max_patches=None,
    random_state=None,
    **mixture_params,
):
    """Fit a full-covariance Gaussian mixture to the patches of some images.

    Parameters
    ----------
    images : array-like of shape (height, width), or a list or tuple of them
        Grayscale training images. NaN marks a missing pixel: patches with
        missing pixels are used as they are (EM on their observed pixels),
        so the prior can be learnt from the incomplete image to be restored.
    patch_size : tuple of int, default=(8, 8)
        ``(p_h, p_w)``.
    n_components : int, default=20
        Number of mixture components.
    remove_mean : bool, default=True
        Model each patch minus the mean of its observed pixels, as Zoran &
        Weiss do: the mixture then describes texture and edges, not
        brightness.
    max_patches : int or float, default=None
        Patches drawn at random from each image (a float is a fraction of all
        its patches); None takes every patch.
    random_state : int, RandomState instance or None, default=None
        Seeds the choice of patches and the mixture's initialisation.
    **mixture_params
        Passed to :class:`~skgmmfill.MaskedGaussianMixtureImputer`, e.g.
        ``max_iter``, ``tol``, ``reg_covar``, ``init_params``, or ``verbose=1``
        to follow the fit (time per iteration and log-likelihood). By default
        ``init_params="kmeans"`` and ``tol=1e-4``; ``covariance_type`` is
        always ``"full"`` and ``missing_values`` NaN.

    Returns
    -------
    prior : PatchPrior

    Examples
    --------
    >>> import numpy as np
    >>> from skgmmfill.image import fit_patch_prior
    >>> image = np.add.outer(np.arange(12.0), np.arange(12.0)) / 24
    >>> prior = fit_patch_prior(image, patch_size=(4, 4), n_components=2, random_state=0)
    >>> prior.mixture.means_.shape
    (2, 16)
    """
    images = list(images) if isinstance(images, (list, tuple)) else [images]
    if not images:
        raise ValueError("images is empty: give at least one training image.")
    patch_size = _check_patch_size(patch_size)
    rng = check_random_state(random_state)
    patches = []
    for image in images:
        image = _check_image(image, patch_size, "training image")
        seed = rng.randint(np.iinfo(np.int32).max)
        patches.append(_extract(image, patch_size, max_patches=max_patches, random_state=seed))
    patches = np.vstack(patches)
    patches = patches[~np.isnan(patches).all(axis=1)]
    if remove_mean:
        patches = patches - np.nanmean(patches, axis=1, keepdims=True)
    params = {"init_params": "kmeans", "tol": 1e-4, "random_state": random_state}
    params.update(mixture_params, covariance_type="full", missing_values=np.nan)
    mixture = MaskedGaussianMixtureImputer(n_components, **params).fit(patches)
    return PatchPrior(mixture, patch_size, bool(remove_mean))


def inpaint_patches_independently(image, prior):
    """Baseline: fill each patch on its own with the mixture, average the overlaps.

    Every overlapping patch has its missing pixels replaced by their posterior
    mean given the patch's observed pixels (what
    :meth:`MaskedGaussianMixtureImputer.transform` does); each pixel is then
    the average of its estimates. Observed pixels are returned unchanged.

    Parameters
    ----------
    image : array-like of shape (height, width)
        NaN marks the pixels to fill.
    prior : PatchPrior

    Returns
    -------
    filled : ndarray of shape (height, width)
    """
    prior = _check_prior(prior)
    image = _check_image(image, prior.patch_size, "image")
    observed = _observed_pixels(image)
    patches = _extract(image, prior.patch_size)
    offsets = np.zeros((len(patches), 1))
    if prior.remove_mean:
        seen = ~np.isnan(patches).all(axis=1)
        offsets[seen, 0] = np.nanmean(patches[seen], axis=1)
        offsets[~seen, 0] = image[observed].mean()
    filled = prior.mixture.transform(patches - offsets) + offsets
    average = _patch_sums(filled, image.shape, prior.patch_size) / _coverage(image.shape, prior.patch_size)
    return np.where(observed, image, average)


def epll_inpaint(
    image,
    prior,
    *,
    noise_std=0.01,
    beta=None,
    gammas=DEFAULT_GAMMAS,
    n_inner_iter=3,
    init="independent",
    callback=None,
):
    """Fill the missing pixels of an image by EPLL with half-quadratic splitting.

    The measurement operator is the pixel mask: ``y`` is the image at its
    observed (non-NaN) pixels, each with Gaussian noise of standard deviation
    ``noise_std``. The image stage is then exact and per pixel:
    ``x = (lambda M y + beta S) / (lambda M + beta C)`` with ``M`` the mask,
    ``S = sum_i P_i^T z_i`` and ``C`` the number of patches covering each
    pixel.

    Parameters
    ----------
    image : array-like of shape (height, width)
        The observed pixels; NaN marks the pixels to fill.
    prior : PatchPrior
        From :func:`fit_patch_prior`.
    noise_std : float, default=0.01
        Standard deviation of the noise on the observed pixels, in the
        image's units.
    beta : float, default=None
        Precision ``beta`` of the first patch stage; the stages use
        ``beta * gamma`` for ``gamma`` in ``gammas``. It is about one over
        the variance of the starting image's error: a small start lets the
        prior reshape the start freely, the later stages hold the patches
        ever closer to the image. None takes ``100 / r**2`` from the
        independent fill and ``10 / r**2`` from any other start, ``r`` the
        range of the observed pixels (100 for an image in [0, 1]: patches
        uncertain by about a tenth of the range).
    gammas : sequence of float, default=DEFAULT_GAMMAS
        Increasing positive multipliers of ``beta``, one per outer iteration.
    n_inner_iter : int, default=3
        Patch and image stages run at each ``beta * gamma``.
    init : {"independent", "mean"} or array-like of shape (height, width), \
            default="independent"
        Starting image: ``"independent"`` is
        :func:`inpaint_patches_independently` (every patch filled by the
        prior given its own observed pixels); ``"mean"`` fills the missing
        pixels with the mean of the observed ones.
    callback : callable, default=None
        Called as ``callback(beta, x)`` after every image stage.

    Returns
    -------
    restored : ndarray of shape (height, width)

    Examples
    --------
    >>> import numpy as np
    >>> from skgmmfill.image import epll_inpaint, fit_patch_prior
    >>> image = np.add.outer(np.arange(12.0), np.arange(12.0)) / 24
    >>> prior = fit_patch_prior(image, patch_size=(4, 4), n_components=2, random_state=0)
    >>> damaged = image.copy()
    >>> damaged[5, 5] = np.nan
    >>> restored = epll_inpaint(damaged, prior, noise_std=1e-3)
    >>> print(round(float(restored[5, 5]), 3), round(float(image[5, 5]), 3))
    0.417 0.417
    """
    prior = _check_prior(prior)
    image = _check_image(image, prior.patch_size, "image")
    observed = _observed_pixels(image)
    values = np.where(observed, image, 0.0)
    data_weight = _data_weight(prior, noise_std)
    coverage = _coverage(image.shape, prior.patch_size)
    from_independent = isinstance(init, str) and init == "independent"
    betas = _beta_schedule(beta, gammas, n_inner_iter, image[observed], 100.0 if from_independent else 10.0)
    if from_independent:
        init = inpaint_patches_independently(image, prior)
    elif isinstance(init, str) and init == "mean":
        init = np.where(observed, image, image[observed].mean())
    init = _check_init(init, image.shape)

    def image_stage(patch_sums, beta, x):
        return _masked_image_stage(patch_sums, coverage, values, observed, data_weight, beta)

    return _half_quadratic_splitting(init, prior, image_stage, betas, callback)


def epll_reconstruct(
    measurements,
    operator,
    image_shape,
    prior,
    *,
    noise_std=0.01,
    beta=None,
    gammas=DEFAULT_GAMMAS,
    n_inner_iter=3,
    init=None,
    callback=None,
    cg_rtol=1e-6,
    cg_maxiter=1000,
):
    """Reconstruct an image from linear measurements ``y = F x + noise`` by EPLL.

    The image stage solves its normal equations
    ``(lambda Re(F^H F) + beta C) x = lambda Re(F^H y) + beta S`` by conjugate
    gradients, started from the current image.

    Parameters
    ----------
    measurements : array-like of shape (n_measurements,)
        ``y``, real or complex (e.g. Fourier samples).
    operator : array-like, sparse matrix or LinearOperator of shape (n_measurements, height * width)
        ``F``, acting on the image flattened row by row. A LinearOperator
        needs ``matvec`` and ``rmatvec`` (the adjoint ``F^H``).
    image_shape : tuple of int
        ``(height, width)``.
    prior : PatchPrior
        From :func:`fit_patch_prior`.
    noise_std : float, default=0.01
        Standard deviation of the noise on each measurement (on each of the
        real and imaginary parts for complex ones).
    beta : float, default=None
        Precision of the first patch stage, as in :func:`epll_inpaint`. None
        takes ``10 / r**2`` with ``r`` the range of the starting image.
    gammas : sequence of float, default=DEFAULT_GAMMAS
        Increasing positive multipliers of ``beta``.
    n_inner_iter : int, default=3
        Patch and image stages run at each ``beta * gamma``.
    init : array-like of shape image_shape, default=None
        Starting image. None starts from ``Re(F^H y)``, which for an operator
        with orthonormal rows (a pixel mask, a subsampled unitary Fourier
        transform) is the zero-filled inverse.
    callback : callable, default=None
        Called as ``callback(beta, x)`` after every image stage.
    cg_rtol : float, default=1e-6
        Relative residual at which each conjugate-gradient solve stops.
    cg_maxiter : int, default=1000
        Most conjugate-gradient iterations per image stage.

    Returns
    -------
    restored : ndarray of shape image_shape
    """
    prior = _check_prior(prior)
    image_shape = _check_image_shape(image_shape, prior.patch_size)
    operator, measurements = _check_operator(operator, measurements, image_shape)
    data_weight = _data_weight(prior, noise_std)
    coverage = _coverage(image_shape, prior.patch_size).ravel()
    n_pixels = coverage.size

    def gram(image, beta):
        return data_weight * np.real(operator.rmatvec(operator.matvec(image))) + beta * coverage * image

    back_projection = np.real(operator.rmatvec(measurements))
    if init is None:
        init = back_projection.reshape(image_shape)
    init = _check_init(init, image_shape)
    betas = _beta_schedule(beta, gammas, n_inner_iter, init)

    def image_stage(patch_sums, beta, x):
        system = LinearOperator((n_pixels, n_pixels), matvec=lambda v: gram(v, beta), dtype=np.float64)
        rhs = data_weight * back_projection + beta * patch_sums.ravel()
        solution, info = cg(system, rhs, x0=x.ravel(), rtol=cg_rtol, atol=0.0, maxiter=cg_maxiter)
        if info > 0:
            warnings.warn(
                f"Conjugate gradients did not reach cg_rtol={cg_rtol} in cg_maxiter={cg_maxiter} "
                f"iterations at beta={beta:g}; raise cg_maxiter or cg_rtol.",
                ConvergenceWarning,
                stacklevel=4,
            )
        return solution.reshape(image_shape)

    return _half_quadratic_splitting(init, prior, image_stage, betas, callback)


# --- the two stages -----------------------------------------------------------


def _half_quadratic_splitting(x, prior, image_stage, betas, callback):
    """Alternate the patch stage and the image stage once per ``beta``."""
    for beta in betas:
        estimates, _ = _patch_stage(_extract(x, prior.patch_size), prior, beta)
        x = image_stage(_patch_sums(estimates, x.shape, prior.patch_size), beta, x)
        if callback is not None:
            callback(beta, x)
    return x


def _patch_stage(patches, prior, beta):
    """Choose a component for every patch and Wiener-filter the patch towards it.

    Parameters
    ----------
    patches : ndarray of shape (n_patches, p_h * p_w)
        The current image's patches ``v_i``.
    prior : PatchPrior
    beta : float
        Precision of ``v_i`` as a noisy observation of ``z_i``.

    Returns
    -------
    estimates : ndarray of shape (n_patches, p_h * p_w)
        ``z_i = m_i + mu_k + Sigma_k (Sigma_k + I / beta)^{-1} (v_i - m_i - mu_k)``.
    components : ndarray of int, shape (n_patches,)
        ``k = argmax_j pi_j N(v_i - m_i | mu_j, Sigma_j + I / beta)``.
    """
    mixture = prior.mixture
    means, covariances = mixture.means_, mixture.covariances_
    n_features = means.shape[1]
    offsets = patches.mean(axis=1, keepdims=True) if prior.remove_mean else np.zeros((len(patches), 1))
    centred = patches - offsets
    noisy_covariances = covariances + np.eye(n_features) / beta
    everything = ObservedEntries.from_dense(centred, np.ones(centred.shape, dtype=bool))
    noisy = Mixture(mixture.weights_, means, noisy_covariances)
    log_prob = FullCovariance().log_prob(everything, noisy) + log_weights(mixture.weights_)
    components = np.argmax(log_prob, axis=1)
    estimates = np.empty_like(centred)
    for k in np.unique(components):
        rows = components == k
        # Sigma_k (Sigma_k + I / beta)^{-1} applied to row vectors: (v - mu) @ (Sigma + I/beta)^{-1} Sigma.
        gain = cho_solve((cholesky(noisy_covariances[k], lower=True), True), covariances[k])
        estimates[rows] = means[k] + (centred[rows] - means[k]) @ gain
    return estimates + offsets, components


def _masked_image_stage(patch_sums, coverage, values, observed, data_weight, beta):
    """``argmin_x lambda/2 ||M (x - y)||^2 + beta/2 sum_i ||P_i x - z_i||^2``, per pixel."""
    weight = data_weight * observed
    return (weight * values + beta * patch_sums) / (weight + beta * coverage)


# --- patches ------------------------------------------------------------------


def _extract(image, patch_size, max_patches=None, random_state=None):
    """Overlapping patches of ``image`` as rows ``(n_patches, p_h * p_w)``, NaN kept.

    scikit-learn's extractor refuses NaN, so the values and the holes are
    extracted separately (with the same random positions) and recombined.
    """
    holes = np.isnan(image)
    kwargs = {"max_patches": max_patches, "random_state": random_state}
    values = extract_patches_2d(np.where(holes, 0.0, image), patch_size, **kwargs)
    patches = values.reshape(len(values), -1)
    if holes.any():
        patch_holes = extract_patches_2d(holes, patch_size, **kwargs).reshape(len(values), -1)
        patches[patch_holes] = np.nan
    return patches


def _patch_sums(patches, image_shape, patch_size):
    """``sum_i P_i^T z_i``: every patch added back at its place (the adjoint of extraction).

    The loop runs over the ``p_h * p_w`` offsets inside a patch, each a
    whole-image slice addition; scikit-learn's ``reconstruct_from_patches_2d``
    computes the same average with a Python loop over every patch.
    """
    (height, width), (p_h, p_w) = image_shape, patch_size
    n_h, n_w = height - p_h + 1, width - p_w + 1
    grid = patches.reshape(n_h, n_w, p_h, p_w)
    sums = np.zeros(image_shape)
    for a in range(p_h):
        for b in range(p_w):
            sums[a : a + n_h, b : b + n_w] += grid[:, :, a, b]
    return sums


def _coverage(image_shape, patch_size):
    """Number of overlapping patches that contain each pixel, ``C``."""
    counts = [
        np.minimum.reduce([np.arange(n) + 1, np.full(n, p), np.full(n, n - p + 1), n - np.arange(n)])
        for n, p in zip(image_shape, patch_size)
    ]
    return np.outer(*counts).astype(np.float64)


# --- validation ---------------------------------------------------------------


def _data_weight(prior, noise_std):
    """``lambda = p_h p_w / noise_std**2``."""
    if not isinstance(noise_std, Real) or not noise_std > 0:
        raise ValueError(f"noise_std must be a positive number, got {noise_std!r}.")
    return prior.patch_size[0] * prior.patch_size[1] / noise_std**2


def _beta_schedule(beta, gammas, n_inner_iter, start, scale=10.0):
    """``beta * gamma`` for each gamma, each repeated ``n_inner_iter`` times.

    A ``beta`` of None becomes ``scale / r**2`` with ``r`` the range of ``start``.
    """
    gammas = np.asarray(gammas, dtype=np.float64)
    if gammas.ndim != 1 or gammas.size == 0 or not np.all(gammas > 0) or np.any(np.diff(gammas) < 0):
        raise ValueError(
            f"gammas must be a non-empty increasing sequence of positive numbers, got {gammas!r}."
        )
    if not isinstance(n_inner_iter, Integral) or n_inner_iter < 1:
        raise ValueError(f"n_inner_iter must be a positive integer, got {n_inner_iter!r}.")
    if beta is None:
        spread = float(np.ptp(start))
        beta = scale / spread**2 if spread > 0 else scale
    elif not isinstance(beta, Real) or not beta > 0:
        raise ValueError(f"beta must be a positive number or None, got {beta!r}.")
    return np.repeat(beta * gammas, n_inner_iter)


def _check_patch_size(patch_size):
    if (
        not isinstance(patch_size, (tuple, list))
        or len(patch_size) != 2
        or not all(isinstance(p, Integral) and p >= 1 for p in patch_size)
    ):
        raise ValueError(f"patch_size must be a pair of positive integers, got {patch_size!r}.")
    return tuple(int(p) for p in patch_size)


def _check_image_shape(image_shape, patch_size):
    shape = tuple(image_shape)
    if len(shape) != 2:
        raise ValueError(f"Expected a 2-D (grayscale) image, got shape {shape}.")
    if shape[0] < patch_size[0] or shape[1] < patch_size[1]:
        raise ValueError(f"The patch size {patch_size} is larger than the image {shape}.")
    return shape


def _check_image(image, patch_size, name):
    image = np.asarray(image) if not sp.issparse(image) else image
    if np.ndim(image) != 2:
        raise ValueError(f"Expected a 2-D (grayscale) {name}, got an array of shape {np.shape(image)}.")
    image = check_array(
        image, dtype=np.float64, ensure_all_finite="allow-nan", ensure_min_samples=1, input_name=name
    )
    _check_image_shape(image.shape, patch_size)
    return image


def _observed_pixels(image):
    observed = ~np.isnan(image)
    if not observed.any():
        raise ValueError("image has no observed pixel (every pixel is NaN).")
    return observed


def _check_init(init, image_shape):
    if isinstance(init, str):
        raise ValueError(f'init must be "independent", "mean" or an image, got {init!r}.')
    init = check_array(init, dtype=np.float64, input_name="init", copy=True)
    if init.shape != image_shape:
        raise ValueError(f"init has shape {init.shape}, but the image has shape {image_shape}.")
    return init


def _check_prior(prior):
    if not isinstance(prior, PatchPrior):
        raise TypeError(f"prior must be a PatchPrior (from fit_patch_prior), got {type(prior).__name__}.")
    check_is_fitted(prior.mixture)
    if prior.mixture.covariance_type != "full":
        raise ValueError("The prior's mixture must have covariance_type='full'.")
    n_features = prior.patch_size[0] * prior.patch_size[1]
    if prior.mixture.n_features_in_ != n_features:
        raise ValueError(
            f"The prior's mixture has {prior.mixture.n_features_in_} features, but its patch size "
            f"{prior.patch_size} has {n_features} pixels."
        )
    return prior


def _check_operator(operator, measurements, image_shape):
    n_pixels = image_shape[0] * image_shape[1]
    if not isinstance(operator, LinearOperator):
        if not sp.issparse(operator):
            operator = np.asarray(operator)
        if operator.ndim != 2:
            raise ValueError(f"operator must be 2-D, got shape {operator.shape}.")
    operator = aslinearoperator(operator)
    measurements = np.asarray(measurements)
    if measurements.dtype.kind not in "biufc":
        raise ValueError(f"measurements must be numbers, got dtype {measurements.dtype}.")
    if measurements.ndim != 1:
        raise ValueError(f"measurements must be 1-D, got shape {measurements.shape}.")
    if operator.shape != (measurements.size, n_pixels):
        raise ValueError(
            f"operator has shape {operator.shape}, expected (n_measurements, height * width) = "
            f"({measurements.size}, {n_pixels})."
        )
    if not np.all(np.isfinite(measurements)):
        raise ValueError("measurements contain NaN or infinity.")
    return operator, measurements
