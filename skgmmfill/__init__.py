"""skgmmfill: fill in missing entries with a Gaussian mixture fitted by EM on the observed entries."""

import importlib

__all__ = ["MaskedGaussianMixtureImputer", "EmptyFeatureWarning", "PRESET_COURSE", "PRESET_RATINGS", "RATINGS_GRID",
           "save_model", "load_model", "ModelFileError"]
__version__ = "0.1.0"

_HOMES = {
    "MaskedGaussianMixtureImputer": "._imputer", "EmptyFeatureWarning": "._validation", "PRESET_COURSE": "._presets",
    "PRESET_RATINGS": "._presets", "RATINGS_GRID": "._presets", "save_model": "._persistence", "load_model": "._persistence",
    "ModelFileError": "._persistence",
}


def __getattr__(name):
    """The public names, imported on first use (PEP 562): ``import skgmmfill`` and the
    command line's ``--version`` and ``--help`` do not wait for scikit-learn."""
    if name in _HOMES:
        value = getattr(importlib.import_module(_HOMES[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_HOMES])
