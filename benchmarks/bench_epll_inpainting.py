"""EPLL inpainting against its baselines: PSNR and wall time, every row measured in this run.

Images: 128 x 128 grayscale crops of scikit-learn's ``china.jpg`` (values in
[0, 1]), 30 % of the pixels kept at random, Gaussian noise of standard
deviation 0.02 on them. The patch prior (8 x 8 mean-removed patches, 20
full-covariance components) is learnt from parts of ``china.jpg`` that no crop
touches (rows 250 and below, columns 400 and right) and from ``flower.jpg``.

Rows per crop: the mean of the observed pixels; biharmonic inpainting
(scikit-image, if installed: ``pip install scikit-image``); every patch filled
on its own by the masked imputer with overlaps averaged
(``inpaint_patches_independently``); EPLL started from the mean fill
(``epll_inpaint(init="mean")``); EPLL with default settings, started from the
independent fill (its time includes that fill). "vs biharmonic" is the PSNR
gain in dB and the time ratio. Then the same prior learnt from the damaged
crop itself (its own incomplete patches), and EPLL timed on 64 x 64 and
256 x 256 crops.

Run: ``python benchmarks/bench_epll_inpainting.py`` (about 5 minutes on 2 cores).
"""

import time
import warnings

import numpy as np
from sklearn.datasets import load_sample_image
from sklearn.exceptions import ConvergenceWarning

from skgmmfill.image import epll_inpaint, fit_patch_prior, inpaint_patches_independently
from skgmmfill.metrics import psnr

CROPS = [(100, 200), (0, 0), (120, 60)]  # top-left corners; all inside rows < 250, columns < 400
KEPT, NOISE = 0.3, 0.02


def grayscale(name):
    return load_sample_image(name).mean(axis=2) / 255.0


def damage(truth, random_state=0):
    """``truth`` with noise, NaN at the 70 % of pixels that are not kept."""
    rng = np.random.RandomState(random_state)
    kept = rng.uniform(size=truth.shape) < KEPT
    return np.where(kept, truth + NOISE * rng.normal(size=truth.shape), np.nan)


def biharmonic():
    try:
        from skimage.restoration import inpaint_biharmonic
    except ImportError:
        return None
    return lambda image: inpaint_biharmonic(np.nan_to_num(image), np.isnan(image))


def timed(method, image):
    tic = time.perf_counter()
    result = method(image)
    return result, time.perf_counter() - tic


def main():
    china = grayscale("china.jpg")
    tic = time.perf_counter()
    prior = fit_patch_prior(
        [china[250:], china[:, 400:], grayscale("flower.jpg")],
        n_components=20,
        max_patches=10_000,
        random_state=0,
    )
    print(
        f"prior: 30,000 patches, 20 components, fit in {time.perf_counter() - tic:.1f} s "
        f"({prior.mixture.n_iter_} EM iterations)\n"
    )
    methods = {
        "mean of observed": lambda image: np.where(np.isnan(image), np.nanmean(image), image),
        "biharmonic (scikit-image)": biharmonic(),
        "independent patches": lambda image: inpaint_patches_independently(image, prior),
        "EPLL from the mean fill": lambda image: epll_inpaint(image, prior, noise_std=NOISE, init="mean"),
        "EPLL (default)": lambda image: epll_inpaint(image, prior, noise_std=NOISE),
    }
    print(f"{'crop':>10} {'method':<27} {'PSNR dB':>8} {'time s':>7} {'vs biharmonic':>17}")
    for top, left in CROPS:
        truth = china[top : top + 128, left : left + 128]
        image = damage(truth)
        results = {}
        for name, method in methods.items():
            if method is None:
                print(f"{top:>4},{left:<5} {name:<27} {'n/a: scikit-image not installed':>34}")
                continue
            restored, seconds = timed(method, image)
            results[name] = (psnr(truth, restored), seconds)
        reference = results.get("biharmonic (scikit-image)")
        for name, (score, seconds) in results.items():
            ratio = f"{score - reference[0]:+6.2f} dB {seconds / reference[1]:6.1f}x" if reference else ""
            print(f"{top:>4},{left:<5} {name:<27} {score:>8.2f} {seconds:>7.2f} {ratio:>17}")
    top, left = CROPS[0]
    truth = china[top : top + 128, left : left + 128]
    image = damage(truth)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        own, seconds = timed(
            lambda image: fit_patch_prior(image, n_components=10, max_patches=3000, random_state=0), image
        )
    converged = "not converged, " if any(w.category is ConvergenceWarning for w in caught) else ""
    print(
        f"\nprior learnt from the damaged crop {top},{left} itself: 3,000 incomplete patches, "
        f"10 components, fit in {seconds:.1f} s ({converged}{own.mixture.n_iter_} EM iterations)"
    )
    for name, method in [
        ("independent patches", lambda image: inpaint_patches_independently(image, own)),
        ("EPLL (default)", lambda image: epll_inpaint(image, own, noise_std=NOISE)),
    ]:
        restored, seconds = timed(method, image)
        print(f"{top:>4},{left:<5} {name:<27} {psnr(truth, restored):>8.2f} {seconds:>7.2f}")
    print(f"\n{'size':>9} {'EPLL s':>7} {'PSNR dB':>8}")
    for size in (64, 256):
        truth = china[:size, :size]
        restored, seconds = timed(lambda image: epll_inpaint(image, prior, noise_std=NOISE), damage(truth))
        print(f"{size:>4}x{size:<4} {seconds:>7.2f} {psnr(truth, restored):>8.2f}")
    print("\n(the 256 x 256 crop reaches 6 rows into the prior's training rows: timing only)")


if __name__ == "__main__":
    main()
