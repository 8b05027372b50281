"""EPLL image reconstruction: each stage against its own objective, the two image stages, errors."""

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal
from scipy.stats import multivariate_normal
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.image import extract_patches_2d, reconstruct_from_patches_2d

from skgmmfill.image import (
    _coverage,
    _extract,
    _masked_image_stage,
    _patch_stage,
    _patch_sums,
    epll_inpaint,
    epll_reconstruct,
    fit_patch_prior,
    inpaint_patches_independently,
)
from skgmmfill.metrics import psnr

PATCH = (4, 4)


def stripes_and_blobs(shape, random_state):
    """A small test picture: smooth gradients, a few oriented edges, mild texture."""
    rng = np.random.RandomState(random_state)
    rows, cols = np.mgrid[: shape[0], : shape[1]] / max(shape)
    image = 0.5 + 0.2 * np.sin(6 * rows + 3 * cols)
    for _ in range(4):
        angle, offset = rng.uniform(0, np.pi), rng.uniform(0.2, 0.8)
        image += 0.2 * (np.cos(angle) * rows + np.sin(angle) * cols > offset)
    return image + 0.01 * rng.normal(size=shape)


@pytest.fixture(scope="module")
def prior():
    return fit_patch_prior(
        [stripes_and_blobs((40, 40), 0), stripes_and_blobs((40, 40), 1)],
        patch_size=PATCH,
        n_components=4,
        random_state=0,
    )


@pytest.fixture(scope="module")
def scene():
    """``(truth, damaged)``: 40 % of the pixels of a 24 x 28 picture kept, with noise 0.01."""
    rng = np.random.RandomState(5)
    truth = stripes_and_blobs((24, 28), 2)
    damaged = truth + 0.01 * rng.normal(size=truth.shape)
    damaged[rng.uniform(size=truth.shape) > 0.4] = np.nan
    return truth, damaged


def patch_objective(patches, estimates, components, prior, beta):
    """``beta/2 ||v - z||^2 - log pi_k - log N(z - m | mu_k, Sigma_k)`` per patch, computed directly."""
    mixture = prior.mixture
    offsets = patches.mean(axis=1)
    values = []
    for v, z, k, m in zip(patches, estimates, components, offsets):
        gaussian = multivariate_normal(mixture.means_[k], mixture.covariances_[k])
        values.append(beta / 2 * np.sum((v - z) ** 2) - np.log(mixture.weights_[k]) - gaussian.logpdf(z - m))
    return np.array(values)


def image_objective(x, values, observed, patch_estimates, data_weight, beta):
    """``lambda/2 ||M (x - y)||^2 + beta/2 sum_i ||P_i x - z_i||^2``."""
    patches = extract_patches_2d(x, PATCH).reshape(len(patch_estimates), -1)
    return data_weight / 2 * np.sum(observed * (x - values) ** 2) + beta / 2 * np.sum(
        (patches - patch_estimates) ** 2
    )


@pytest.mark.parametrize("beta", [3.0, 100.0, 1e4])
def test_patch_stage_minimises_its_objective(prior, scene, beta):
    truth, _ = scene
    rng = np.random.RandomState(1)
    patches = _extract(truth + 0.05 * rng.normal(size=truth.shape), PATCH)[::7]
    estimates, components = _patch_stage(patches, prior, beta)
    # The component: the likeliest explanation of the noisy, mean-removed patch.
    centred = patches - patches.mean(axis=1, keepdims=True)
    mixture = prior.mixture
    scores = np.column_stack(
        [
            np.log(w) + multivariate_normal(mu, cov + np.eye(16) / beta).logpdf(centred)
            for w, mu, cov in zip(mixture.weights_, mixture.means_, mixture.covariances_)
        ]
    )
    assert_array_equal(components, scores.argmax(axis=1))
    # The estimate: no perturbation lowers the objective for that component.
    best = patch_objective(patches, estimates, components, prior, beta)
    for scale in (1e-3, 1e-2, 1e-1):
        moved = estimates + scale * rng.normal(size=estimates.shape)
        assert np.all(best <= patch_objective(patches, moved, components, prior, beta) + 1e-9)
    # The patch's own value is never better than its estimate.
    assert np.all(best <= patch_objective(patches, patches, components, prior, beta) + 1e-9)


@pytest.mark.parametrize("beta", [1.0, 50.0, 1e4])
def test_masked_image_stage_minimises_its_objective(prior, scene, beta):
    truth, damaged = scene
    rng = np.random.RandomState(2)
    observed = ~np.isnan(damaged)
    values = np.where(observed, damaged, 0.0)
    estimates = _extract(truth, PATCH) + 0.1 * rng.normal(size=(len(_extract(truth, PATCH)), 16))
    data_weight = 16 / 0.01**2
    x = _masked_image_stage(
        _patch_sums(estimates, truth.shape, PATCH),
        _coverage(truth.shape, PATCH),
        values,
        observed,
        data_weight,
        beta,
    )
    best = image_objective(x, values, observed, estimates, data_weight, beta)
    for start in (truth, np.where(observed, damaged, 0.5)):
        assert best <= image_objective(start, values, observed, estimates, data_weight, beta)
    for scale in (1e-4, 1e-2):
        moved = x + scale * rng.normal(size=x.shape)
        assert best <= image_objective(moved, values, observed, estimates, data_weight, beta)


def test_patch_sums_is_the_adjoint_of_extraction_and_matches_scikit_learn():
    rng = np.random.RandomState(3)
    shape, patch_size = (9, 13), (3, 4)
    image = rng.normal(size=shape)
    patches = rng.normal(size=((9 - 2) * (13 - 3), 12))
    # <P x, z> = <x, P^T z>
    assert_allclose(
        np.sum(_extract(image, patch_size) * patches), np.sum(image * _patch_sums(patches, shape, patch_size))
    )
    average = reconstruct_from_patches_2d(patches.reshape(-1, *patch_size), shape)
    assert_allclose(_patch_sums(patches, shape, patch_size) / _coverage(shape, patch_size), average)
    assert_array_equal(_coverage(shape, patch_size), _patch_sums(np.ones_like(patches), shape, patch_size))


def test_extract_keeps_missing_pixels_in_place():
    image = np.arange(30.0).reshape(5, 6)
    image[1, 2] = np.nan
    patches = _extract(image, (2, 2))
    assert_array_equal(np.isnan(patches), extract_patches_2d(np.isnan(image), (2, 2)).reshape(-1, 4))
    assert_array_equal(
        np.nan_to_num(patches), extract_patches_2d(np.nan_to_num(image), (2, 2)).reshape(-1, 4)
    )


def selection_matrix(observed):
    """The pixel mask as a measurement operator: one row per observed pixel."""
    columns = np.flatnonzero(observed.ravel())
    return sp.csr_array(
        (np.ones(columns.size), (np.arange(columns.size), columns)), shape=(columns.size, observed.size)
    )


def test_operator_path_equals_mask_path(prior, scene):
    _, damaged = scene
    observed = ~np.isnan(damaged)
    init = np.where(observed, damaged, np.nanmean(damaged))
    kwargs = {"noise_std": 0.02, "beta": 20.0, "gammas": (1, 4, 16, 64), "init": init}
    by_mask = epll_inpaint(damaged, prior, **kwargs)
    by_operator = epll_reconstruct(
        damaged[observed], selection_matrix(observed), damaged.shape, prior, cg_rtol=1e-12, **kwargs
    )
    assert_allclose(by_operator, by_mask, rtol=1e-8, atol=1e-10)
    # Also given as a dense matrix.
    dense = epll_reconstruct(
        damaged[observed], selection_matrix(observed).toarray(), damaged.shape, prior, cg_rtol=1e-12, **kwargs
    )
    assert_allclose(dense, by_mask, rtol=1e-8, atol=1e-10)


def test_operator_image_stage_solves_its_normal_equations(prior, scene):
    truth, _ = scene
    rng = np.random.RandomState(4)
    operator = rng.normal(size=(200, truth.size)) / np.sqrt(truth.size)
    measurements = operator @ truth.ravel() + 0.01 * rng.normal(size=200)
    seen = []
    epll_reconstruct(
        measurements,
        operator,
        truth.shape,
        prior,
        noise_std=0.01,
        gammas=(1, 10),
        cg_rtol=1e-10,
        callback=lambda beta, x: seen.append((beta, x)),
    )
    # At the last stage, the gradient of lambda/2||Fx - y||^2 + beta/2 sum ||P_i x - z_i||^2 vanishes.
    beta, x = seen[-1]
    _, previous = seen[-2]
    estimates, _ = _patch_stage(_extract(previous, PATCH), prior, beta)
    data_weight = 16 / 0.01**2
    gradient = (
        data_weight * operator.T @ (operator @ x.ravel() - measurements)
        + beta * (_coverage(truth.shape, PATCH) * x - _patch_sums(estimates, truth.shape, PATCH)).ravel()
    )
    rhs = data_weight * operator.T @ measurements + beta * _patch_sums(estimates, truth.shape, PATCH).ravel()
    assert np.linalg.norm(gradient) <= 1e-8 * np.linalg.norm(rhs)


def test_epll_inpaint_improves_on_the_independent_fill_it_starts_from(prior, scene):
    truth, damaged = scene
    original = damaged.copy()
    betas = []
    restored = epll_inpaint(
        damaged, prior, noise_std=0.01, n_inner_iter=2, callback=lambda b, x: betas.append(b)
    )
    assert_array_equal(damaged, original)  # input untouched
    assert restored.shape == truth.shape and np.isfinite(restored).all()
    assert len(betas) == 18 and np.all(np.diff(betas) >= 0)
    independent = inpaint_patches_independently(damaged, prior)
    observed = ~np.isnan(damaged)
    assert_array_equal(independent[observed], damaged[observed])
    mean_fill = np.where(observed, damaged, np.nanmean(damaged))
    assert psnr(truth, restored) > psnr(truth, independent) > psnr(truth, mean_fill) + 3
    from_mean = epll_inpaint(damaged, prior, noise_std=0.01, init="mean")
    assert psnr(truth, from_mean) > psnr(truth, mean_fill) + 3


def test_prior_from_the_incomplete_image_itself(scene):
    _, damaged = scene
    original = damaged.copy()
    prior = fit_patch_prior(damaged, patch_size=PATCH, n_components=2, random_state=0)
    assert_array_equal(damaged, original)
    assert prior.mixture.means_.shape == (2, 16)
    assert prior.remove_mean and prior.patch_size == PATCH
    assert np.isfinite(epll_inpaint(damaged, prior, noise_std=0.01)).all()


def ring(size, radius, width=1.5):
    rows, cols = np.mgrid[:size, :size] - (size - 1) / 2
    return np.exp(-0.5 * ((np.hypot(rows, cols) - radius) / width) ** 2)


def test_fourier_reconstruction_improves_on_the_zero_filled_inverse():
    # A prior that knows brightness (no mean removal), learnt from other rings.
    prior = fit_patch_prior(
        [ring(32, r) for r in (3, 5, 8, 9)],
        patch_size=PATCH,
        n_components=4,
        remove_mean=False,
        random_state=0,
    )
    rng = np.random.RandomState(6)
    truth = ring(32, 6)
    sampled = np.union1d(0, np.flatnonzero(rng.uniform(size=truth.size) < 0.3))  # with the total flux
    dft = np.fft.fft2(np.eye(truth.size).reshape(-1, 32, 32), norm="ortho").reshape(truth.size, -1)[sampled]
    noise = rng.normal(size=sampled.size) + 1j * rng.normal(size=sampled.size)
    measurements = dft @ truth.ravel() + 0.01 * noise
    errors = []
    restored = epll_reconstruct(
        measurements,
        dft,
        truth.shape,
        prior,
        noise_std=0.01,
        callback=lambda beta, x: errors.append(np.sqrt(np.mean((x - truth) ** 2))),
    )
    zero_filled = np.real(dft.conj().T @ measurements).reshape(truth.shape)
    assert np.sqrt(np.mean((restored - truth) ** 2)) < 0.5 * np.sqrt(np.mean((zero_filled - truth) ** 2))
    assert np.all(np.diff(errors) < 0)  # the error falls at every stage of the schedule


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda p, img: epll_inpaint(np.ones((3, 30)), p),
            r"patch size \(4, 4\) is larger than the image \(3, 30\)",
        ),
        (lambda p, img: fit_patch_prior(np.ones((3, 30)), patch_size=(4, 4)), r"larger than the image"),
        (lambda p, img: epll_inpaint(np.ones(30), p), "2-D"),
        (lambda p, img: epll_inpaint(np.ones((8, 8, 3)), p), "2-D"),
        (lambda p, img: epll_inpaint(np.full((8, 8), np.nan), p), "no observed pixel"),
        (lambda p, img: epll_inpaint(np.full((8, 8), np.inf), p), "infinity"),
        (lambda p, img: epll_inpaint(img, p, noise_std=0), "noise_std must be a positive"),
        (lambda p, img: epll_inpaint(img, p, gammas=(4, 1)), "gammas must be"),
        (lambda p, img: epll_inpaint(img, p, beta=-1.0), "beta must be"),
        (lambda p, img: epll_inpaint(img, p, n_inner_iter=0), "n_inner_iter"),
        (lambda p, img: epll_inpaint(img, p, init=np.zeros((5, 5))), r"init has shape \(5, 5\)"),
        (lambda p, img: epll_inpaint(img, p, init="zeros"), 'init must be "independent", "mean" or an image'),
        (lambda p, img: epll_inpaint(img, "prior"), "PatchPrior"),
        (lambda p, img: epll_inpaint(img, p._replace(patch_size=(3, 3))), "16 features"),
        (lambda p, img: fit_patch_prior(img, patch_size=(4,)), "pair of positive integers"),
        (lambda p, img: fit_patch_prior([]), "images is empty"),
        (
            lambda p, img: epll_reconstruct(np.ones(5), np.ones((5, 10)), (8, 8), p),
            r"operator has shape \(5, 10\)",
        ),
        (
            lambda p, img: epll_reconstruct(np.ones((5, 1)), np.ones((5, 64)), (8, 8), p),
            "measurements must be 1-D",
        ),
        (lambda p, img: epll_reconstruct(np.ones(5), np.ones((5, 64)), (8, 8, 1), p), "2-D"),
        (lambda p, img: epll_reconstruct(np.ones(5), np.ones((5, 64)), (2, 32), p), "larger than the image"),
        (
            lambda p, img: epll_reconstruct(np.array(list("abcde")), np.ones((5, 64)), (8, 8), p),
            "must be numbers",
        ),
        (lambda p, img: epll_reconstruct(np.full(5, np.nan), np.ones((5, 64)), (8, 8), p), "NaN or infinity"),
        (lambda p, img: inpaint_patches_independently(np.full((8, 8), np.nan), p), "no observed pixel"),
    ],
)
def test_bad_input_gets_a_clear_error(prior, scene, call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call(prior, scene[1])


def test_conjugate_gradients_that_stop_short_warn(prior, scene):
    truth, _ = scene
    operator = np.random.RandomState(7).normal(size=(300, truth.size))
    with pytest.warns(ConvergenceWarning, match="Conjugate gradients did not reach"):
        epll_reconstruct(operator @ truth.ravel(), operator, truth.shape, prior, gammas=(1,), cg_maxiter=2)


def test_fit_patch_prior_passes_verbose_through(capsys):
    fit_patch_prior(stripes_and_blobs((20, 20), 0), patch_size=PATCH, n_components=2, max_iter=3,
                    verbose=1, verbose_interval=1, random_state=0)
    assert "s/iter" in capsys.readouterr().out
