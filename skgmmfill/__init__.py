"""skgmmfill: fill in missing entries with a Gaussian mixture fitted by EM on the observed entries."""

from ._imputer import PRESET_COURSE, PRESET_RATINGS, RATINGS_GRID, MaskedGaussianMixtureImputer
from ._persistence import ModelFileError, load_model, save_model

__all__ = ["MaskedGaussianMixtureImputer", "PRESET_COURSE", "PRESET_RATINGS", "RATINGS_GRID",
           "save_model", "load_model", "ModelFileError"]
__version__ = "0.1.0"
