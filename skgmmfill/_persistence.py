"""Model files that are data, not code.

A fitted :class:`~skgmmfill.MaskedGaussianMixtureImputer` is saved as a zip
archive in NumPy's ``.npz`` layout: one ``.npy`` member per array, written
and read with ``allow_pickle=False``, and a ``header.json`` member holding the
format version, the library version, the estimator's parameters, the fitted
attributes (numbers and strings in the JSON, arrays by the name of their
member) and optional ids of the features (the items of a rating file).

Reading runs nothing from the file. The JSON can only name the few types
listed in :data:`_TUPLES` and the covariance families of
:data:`~skgmmfill._families.FAMILIES`, every array's dtype and shape are checked
against the header before its data are read, and the assembled model against
itself (each parameter's shape from the number of components and features).
A pickle, another format version, a truncated archive, a missing or extra
array, or an array of the wrong shape or dtype is refused with a
:class:`ModelFileError` naming the file and the problem; a family hyperparameter
added since the file was saved takes its default (None: what the saved model
had), an unknown one is refused. Pickles are refused
unread, since unpickling runs whatever code the file names.
"""

import json
import math
import zipfile
from dataclasses import fields
from numbers import Integral, Real

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ._families import FAMILIES
from ._family import CovarianceFamily, Mixture
from ._fitted import FittedMixture, Standardization
from ._imputer import MaskedGaussianMixtureImputer, _is_fitted_attribute
from ._output import open_output

FORMAT = "skgmmfill-model"
FORMAT_VERSION = 1
HEADER = "header.json"
_MAX_HEADER_BYTES = 64 * 2**20
# Deflate expands at most about 1032-fold: a member declaring more is a forgery.
_MAX_DEFLATE_RATIO = 1100
_PICKLE_PROTOCOL_2_OR_LATER = b"\x80"
_ZIP_MAGIC = b"PK\x03\x04"

_NPY_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}

_TUPLES = {"Mixture": Mixture, "Standardization": Standardization, "tuple": tuple}
"""The tuple types a model file may hold, by the name its header uses."""

_MODEL_STATE = {"_fitted_family": "family", "_mixture": "mixture", "_standardization": "standardization",
                "_offsets": "offsets", "_empty_features": "empty_features"}
"""The fields of the fitted model (:class:`~skgmmfill._fitted.FittedMixture`) by the names a model file
gives them (the estimator's attributes when format version 1 was made)."""


class ModelFileError(ValueError):
    """A file that is not a model this version of skgmmfill can load."""


def save_model(estimator, file, *, feature_ids=None):
    """Save a fitted imputer to ``file`` as data (``.npz`` plus a JSON header).

    Unlike :mod:`pickle` or :mod:`joblib`, the file holds no code: loading
    it with :func:`load_model` runs nothing from it, so a model file received
    from someone else is as safe to load as a CSV file. The file is written
    as the shell's ``>`` writes (``-`` is standard output; an existing file
    is replaced whole, keeping its permissions).

    Parameters
    ----------
    estimator : MaskedGaussianMixtureImputer
        A fitted imputer.
    file : str or path-like
        Where to write; ``.npz`` is the customary suffix.
    feature_ids : array-like of shape (n_features,), default=None
        Ids of the features to keep with the model, e.g. the item ids of a
        rating file (:func:`~skgmmfill.datasets.read_ratings`); strings or
        integers.

    Examples
    --------
    >>> import numpy as np, os, tempfile
    >>> from skgmmfill import MaskedGaussianMixtureImputer, load_model, save_model
    >>> X = np.array([[1.0, 2.0], [2.0, np.nan], [3.0, 6.1], [4.0, 8.0]])
    >>> imputer = MaskedGaussianMixtureImputer(covariance_type="diag").fit(X)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
    >>> save_model(imputer, path)
    >>> np.array_equal(load_model(path).transform(X), imputer.transform(X))
    True
    """
    check_is_fitted(estimator)
    arrays = {}
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "library_version": _library_version(),
        "estimator": type(estimator).__name__,
        "params": {name: _encode(value, f"params.{name}", arrays)
                   for name, value in estimator.get_params(deep=False).items()},
        "state": {name: _encode(value, name, arrays) for name, value in sorted(_state(estimator).items())},
        "feature_ids": None,
    }
    if feature_ids is not None:
        feature_ids = np.asarray(feature_ids)
        if feature_ids.shape != (estimator.n_features_in_,):
            raise ValueError(f"feature_ids must have shape ({estimator.n_features_in_},), got {feature_ids.shape}.")
        header["feature_ids"] = _encode(feature_ids, "feature_ids", arrays)
    header["arrays"] = {key: {"dtype": array.dtype.str, "shape": list(array.shape)} for key, array in arrays.items()}
    with open_output(file, binary=True) as stream, zipfile.ZipFile(stream, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(HEADER, json.dumps(header, allow_nan=False, indent=1))
        for key, array in arrays.items():
            with archive.open(key + ".npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)


def _state(estimator):
    """The fitted attributes to save, the model's fields under their file names."""
    state = {name: value for name, value in vars(estimator).items() if _is_fitted_attribute(name) and name != "_model"}
    state.update({name: getattr(estimator._model, field) for name, field in _MODEL_STATE.items()})
    return state


def load_model(file, *, return_feature_ids=False):
    """Load an imputer saved by :func:`save_model`; nothing in the file runs.

    Parameters
    ----------
    file : str or path-like
    return_feature_ids : bool, default=False
        Also return the ``feature_ids`` saved with the model (None if none were).

    Returns
    -------
    estimator : MaskedGaussianMixtureImputer
        The fitted imputer, predicting exactly as the saved one did.
    feature_ids : ndarray of shape (n_features,) or None
        Only with ``return_feature_ids``.

    Raises
    ------
    ModelFileError
        If ``file`` is not a model file of this format version, or is damaged:
        the message names the file and what is wrong with it.
    """
    name = f"'{file}'"
    try:
        with open(file, "rb") as stream:
            start = stream.read(4)
            if start.startswith(_PICKLE_PROTOCOL_2_OR_LATER):
                raise ModelFileError(
                    f"{name} is a pickle (a model saved by skgmmfill 0.1, or another program's file); "
                    "unpickling runs code, so it is not read: refit the model and save it again"
                )
            if start != _ZIP_MAGIC:
                raise ModelFileError(f"{name} is not a skgmmfill model file (expected an .npz archive)")
            stream.seek(0)
            with zipfile.ZipFile(stream) as archive:
                header = _read_header(archive, name)
                arrays = _read_arrays(archive, header, name)
    except ModelFileError:
        raise
    except OSError as error:
        raise ModelFileError(f"cannot read {name}: {error.strerror or error}") from error
    except (zipfile.BadZipFile, EOFError, ValueError) as error:  # a truncated or damaged archive
        raise ModelFileError(f"{name} is damaged or truncated: {error}") from error
    try:
        estimator = _assemble(header, arrays)
        feature_ids = _decode(header["feature_ids"], arrays)
        if feature_ids is not None and np.shape(feature_ids) != (estimator.n_features_in_,):
            raise ValueError(f"{np.shape(feature_ids)[0]} feature ids for {estimator.n_features_in_} features")
    except (KeyError, TypeError, ValueError) as error:
        detail = f"no {error}" if isinstance(error, KeyError) else str(error).splitlines()[0]
        raise ModelFileError(f"{name} does not hold a valid model: {detail}") from error
    return (estimator, feature_ids) if return_feature_ids else estimator


# ------------------------------------------------------------------ encoding


def _encode(value, key, arrays):
    """``value`` as JSON; arrays go to ``arrays[key]`` and are named in the JSON."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, Real):
        value = float(value)
        return value if math.isfinite(value) else {"float": repr(value)}
    if isinstance(value, np.ndarray):
        strings = value.dtype == object and all(isinstance(item, str) for item in value.flat)
        if value.dtype.kind not in "biufU" and not strings:
            raise TypeError(f"cannot save {key}: arrays of {value.dtype} are not data a model file holds")
        arrays[key] = value.astype(str) if strings else value
        return {"array": key, "strings": True} if strings else {"array": key}
    if isinstance(value, CovarianceFamily):
        return {"family": value.name,
                "fields": {f.name: _encode(getattr(value, f.name), f"{key}.{f.name}", arrays) for f in fields(value)}}
    if isinstance(value, np.random.RandomState):
        return {"random_state": _encode(value.get_state(), f"{key}.state", arrays)}
    if isinstance(value, list):
        return {"list": [_encode(item, f"{key}.{i}", arrays) for i, item in enumerate(value)]}
    if isinstance(value, tuple):
        kind = type(value).__name__ if hasattr(value, "_fields") else "tuple"
        if _TUPLES.get(kind) is not type(value):
            raise TypeError(f"cannot save {key}: {type(value).__name__} is not among the types a model file holds")
        return {"tuple": kind, "items": [_encode(item, f"{key}.{i}", arrays) for i, item in enumerate(value)]}
    raise TypeError(f"cannot save {key}: {type(value).__name__} is not among the types a model file holds")


def _decode(value, arrays):
    """The inverse of :func:`_encode`; only the types it writes are read."""
    if value is None or isinstance(value, (bool, str, int, float)):
        return value
    tags = set(value) & {"float", "array", "family", "random_state", "list", "tuple"} if isinstance(value, dict) else ()
    if len(tags) != 1:
        raise ValueError(f"{json.dumps(value)[:60]} is not a value a model file holds")
    (tag,) = tags
    if tag == "float":
        if value["float"] not in ("nan", "inf", "-inf"):
            raise ValueError(f"{value['float']!r} is not a float")
        return float(value["float"])
    if tag == "array":
        if value["array"] not in arrays:
            raise ValueError(f"it names an array {value['array']!r} that the file does not hold")
        array = arrays[value["array"]]
        return array.astype(object) if value.get("strings") else array
    if tag == "family":
        if value["family"] not in FAMILIES:
            raise ValueError(f"unknown covariance family {value['family']!r}")
        family = FAMILIES[value["family"]]
        names = {f.name for f in fields(family)}
        # a hyperparameter added since the file was saved takes its default, None: what that model had
        added_since = {f.name for f in fields(family) if f.default is None} - set(value["fields"])
        if set(value["fields"]) | added_since != names:
            raise ValueError(f"the {value['family']} family has the hyperparameters {sorted(names)}")
        return family(**{name: _decode(item, arrays) for name, item in value["fields"].items()})
    if tag == "random_state":
        random_state = np.random.RandomState()
        random_state.set_state(_decode(value["random_state"], arrays))
        return random_state
    if tag == "list":
        return [_decode(item, arrays) for item in value["list"]]
    if value["tuple"] not in _TUPLES:
        raise ValueError(f"unknown tuple type {value['tuple']!r}")
    kind = _TUPLES[value["tuple"]]
    items = [_decode(item, arrays) for item in value["items"]]
    return tuple(items) if kind is tuple else kind(*items)


# ------------------------------------------------------------------- reading


def _read_header(archive, name):
    try:
        info = archive.getinfo(HEADER)
    except KeyError:
        raise ModelFileError(f"{name} is not a skgmmfill model file (no {HEADER} in the archive)") from None
    if info.file_size > _MAX_HEADER_BYTES:
        raise ModelFileError(f"{name}: its {HEADER} declares {info.file_size:,} bytes, more than a model has")
    try:
        header = json.loads(archive.read(HEADER).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelFileError(f"{name}: its {HEADER} is not valid JSON ({error})") from error
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ModelFileError(f"{name} is not a skgmmfill model file (its header names no {FORMAT!r} format)")
    if header.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(
            f"{name} is in model format version {header.get('format_version')!r} (skgmmfill "
            f"{header.get('library_version')}); this skgmmfill {_library_version()} reads version "
            f"{FORMAT_VERSION}: refit the model, or load it with the version that saved it"
        )
    if not isinstance(header.get("arrays"), dict):
        raise ModelFileError(f"{name}: its header lists no arrays")
    return header


def _read_arrays(archive, header, name):
    """Every array the header lists, each checked against it before it is read."""
    declared = {key + ".npy": spec for key, spec in header["arrays"].items()}
    present = set(archive.namelist()) - {HEADER}
    if present - set(declared):
        raise ModelFileError(f"{name} holds array(s) its header does not list: {sorted(present - set(declared))}")
    if set(declared) - present:
        raise ModelFileError(f"{name} lacks array(s) its header lists: {sorted(set(declared) - present)}")
    arrays = {}
    for member, spec in declared.items():
        info = archive.getinfo(member)
        with archive.open(info) as stream:
            version = np.lib.format.read_magic(stream)
            if version not in _NPY_HEADER_READERS:
                raise ModelFileError(f"{name}: array {member} is in .npy format version {version}, "
                                     "which skgmmfill does not write")
            shape, _, dtype = _NPY_HEADER_READERS[version](stream)
        expected_dtype, expected_shape = np.dtype(spec["dtype"]), tuple(spec["shape"])
        if dtype.hasobject or dtype != expected_dtype or shape != expected_shape:
            raise ModelFileError(
                f"{name}: array {member} is {dtype} of shape {shape}, but the header says "
                f"{expected_dtype} of shape {expected_shape}"
            )
        if math.prod(shape) * dtype.itemsize > info.file_size or (
            info.compress_type != zipfile.ZIP_STORED and info.file_size > _MAX_DEFLATE_RATIO * info.compress_size
        ):
            raise ModelFileError(f"{name}: array {member} declares more data than the archive holds")
        with archive.open(info) as stream:
            array = np.lib.format.read_array(stream, allow_pickle=False)
        arrays[member.removesuffix(".npy")] = array
    return arrays


def _assemble(header, arrays):
    if header.get("estimator") != MaskedGaussianMixtureImputer.__name__:
        raise ValueError(f"it holds a {header.get('estimator')!r}, not a MaskedGaussianMixtureImputer")
    params = {name: _decode(value, arrays) for name, value in header["params"].items()}
    estimator = MaskedGaussianMixtureImputer()
    unknown = set(params) - set(estimator.get_params())
    if unknown:
        raise ValueError(f"unknown parameter(s) {sorted(unknown)}")
    estimator.set_params(**params)
    estimator._validate_params()
    state = {name: _decode(value, arrays) for name, value in header["state"].items()}
    strangers = [name for name in state if not (_is_fitted_attribute(name) or name in _MODEL_STATE)]
    if strangers:
        raise ValueError(f"attribute(s) a fit does not set: {strangers}")
    model = {field: state.pop(name) for name, field in _MODEL_STATE.items()}
    _check_consistent(estimator, state, **model)
    bias_shrinkage = None
    if model["offsets"] is not None:  # files saved before bias_shrinkage_ had one number for rows and columns
        bias_shrinkage = tuple(float(value) for value in state.get("bias_shrinkage_", [estimator.bias_shrinkage] * 2))
    vars(estimator).update(state, _model=FittedMixture(bias_shrinkage=bias_shrinkage, **model))
    return estimator


def _check_consistent(estimator, state, family, mixture, standardization, offsets, empty_features):
    """Each fitted parameter's type and shape, from the number of components and features."""
    n_components, n_features = estimator.n_components, state["n_features_in_"]
    if not isinstance(family, CovarianceFamily) or family.name != state["covariance_type_"]:
        raise ValueError(f"its family does not match covariance_type_={state['covariance_type_']!r}")
    if not isinstance(mixture, Mixture) or not isinstance(standardization, Standardization):
        raise ValueError("its parameters are not a mixture and a standardisation")
    expected = {
        "weights": (mixture.weights, (n_components,)),
        "means": (mixture.means, (n_components, n_features)),
        "covariances": (mixture.covariances, family.covariances_shape(n_components, n_features)),
        "location": (standardization.location, (n_features,)),
        "empty features": (empty_features, (n_features,)),
    }
    if "n_observed_" in state:  # absent from files saved before it existed
        expected["observation counts"] = (state["n_observed_"], (n_features,))
    if offsets is not None:
        expected["column offsets"] = (offsets[1], (n_features,))
        if "bias_shrinkage_" in state:
            expected["bias shrinkages"] = (state["bias_shrinkage_"], (2,))
    for what, (array, shape) in expected.items():
        if not isinstance(array, np.ndarray) or array.shape != shape:
            raise ValueError(f"its {what} have shape {np.shape(array)}, expected {shape}")
    if any(array.dtype not in (np.float32, np.float64) for array in mixture):
        raise ValueError("its parameters are not all float32 or float64")
    if empty_features.dtype != bool:
        raise ValueError("its empty-feature mask is not boolean")
    if not all(np.isfinite(array).all() for array in mixture):
        raise ValueError("its parameters are not all finite")


def _library_version():
    from . import __version__

    return __version__
