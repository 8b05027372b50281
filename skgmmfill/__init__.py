"""skgmmfill: fill in missing entries with a Gaussian mixture fitted by EM on the observed entries."""

from ._imputer import MaskedGaussianMixtureImputer

__all__ = ["MaskedGaussianMixtureImputer"]
__version__ = "0.1.0"
