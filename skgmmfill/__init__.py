"""skgmmfill: fill in missing entries with a Gaussian mixture fitted by EM on the observed entries."""

from ._imputer import PRESET_COURSE, PRESET_RATINGS, RATINGS_GRID, MaskedGaussianMixtureImputer

__all__ = ["MaskedGaussianMixtureImputer", "PRESET_COURSE", "PRESET_RATINGS", "RATINGS_GRID"]
__version__ = "0.1.0"
