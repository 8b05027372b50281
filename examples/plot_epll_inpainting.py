"""
Inpainting an image from 30 % of its pixels
===========================================

A 128 x 128 grayscale crop of scikit-learn's ``china.jpg`` keeps 30 % of its
pixels, chosen at random, each with a little Gaussian noise (standard
deviation 0.02 on a [0, 1] scale). A Gaussian-mixture prior on 8 x 8 patches
(mean removed, full covariances) is learnt from other parts of the picture
and from ``flower.jpg``.

Three ways to fill the rest, from the same prior: fill every overlapping
patch on its own with the masked imputer and average the overlaps
(:func:`~skgmmfill.image.inpaint_patches_independently`), and EPLL
(:func:`~skgmmfill.image.epll_inpaint`), which asks all the patches at once to
be likely while agreeing with each other and with the observed pixels.
Biharmonic inpainting (scikit-image) is shown too when it is installed.
``benchmarks/bench_epll_inpainting.py`` measures the same on three crops. The
prior (20 components, 30,000 patches) takes most of this example's minute; with
fewer patches or components EPLL and the independent fill come out level.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_sample_image

from skgmmfill.image import epll_inpaint, fit_patch_prior, inpaint_patches_independently
from skgmmfill.metrics import psnr


def grayscale(name):
    return load_sample_image(name).mean(axis=2) / 255.0


china = grayscale("china.jpg")
truth = china[100:228, 200:328]
rng = np.random.RandomState(0)
kept = rng.uniform(size=truth.shape) < 0.3
damaged = np.where(kept, truth + 0.02 * rng.normal(size=truth.shape), np.nan)

# The prior never sees the crop: rows 250 and below, columns 400 and right, and another image.
prior = fit_patch_prior(
    [china[250:], china[:, 400:], grayscale("flower.jpg")], n_components=20, max_patches=10_000, random_state=0
)

results = {
    "mean of observed pixels": np.where(kept, damaged, np.nanmean(damaged)),
    "independent patches": inpaint_patches_independently(damaged, prior),
    "EPLL": epll_inpaint(damaged, prior, noise_std=0.02),
}
try:
    from skimage.restoration import inpaint_biharmonic
except ImportError:
    pass
else:
    results["biharmonic (scikit-image)"] = inpaint_biharmonic(np.nan_to_num(damaged), ~kept)
for name, image in results.items():
    print(f"{name:<26} PSNR {psnr(truth, image):.2f} dB")

panels = [("truth", truth), ("observed (30 %)", np.where(kept, damaged, 0.0))]
panels += [(f"{name}\n{psnr(truth, image):.2f} dB", image) for name, image in results.items()]
fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 3.1))
for axis, (title, image) in zip(axes, panels):
    axis.imshow(image, cmap="gray", vmin=0, vmax=1)
    axis.set_title(title, fontsize=9)
    axis.set_xticks([])
    axis.set_yticks([])
fig.tight_layout()
plt.show()
