"""Model files: data only, round trips exact, every kind of damage refused with its own message."""

import io
import json
import pickle
import zipfile

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_array_equal
from sklearn.exceptions import NotFittedError

from skgmmfill import MaskedGaussianMixtureImputer, ModelFileError, load_model, save_model

CONFIGURATIONS = {
    "spherical": dict(covariance_type="spherical"),
    "diag-prior-clipped": dict(covariance_type="diag", mean_precision_prior=2.0, min_value=-1.0, max_value=[9.0] * 5),
    "full": dict(covariance_type="full", reg_covar=1e-3),
    "factor-biases-sampling": dict(covariance_type="factor", n_factors=2, biases=True, sample_posterior=True,
                                   loading_precision_prior=3.0, implicit_precision_prior=1.0),
    "factor-variational-auto-shrinkage": dict(covariance_type="factor", n_factors=2, biases=True,
                                              bias_shrinkage="auto", loading_precision_prior=3.0,
                                              loading_posterior="variational"),
    "factor-offset-pattern-auto": dict(covariance_type="factor", n_factors=2, biases=True, row_offset_factor=True,
                                       loading_precision_prior=3.0, loading_ard_prior=0.5,
                                       loading_pattern_prior="auto", loading_posterior="variational"),
}


def table(dtype=np.float64):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(90, 5)) + 3.0 * rng.randint(2, size=(90, 1))
    X[rng.uniform(size=X.shape) < 0.3] = np.nan
    return X.astype(dtype)


@pytest.fixture
def saved(tmp_path):
    imputer = MaskedGaussianMixtureImputer(2, covariance_type="factor", n_factors=2, biases=True,
                                           random_state=0).fit(table())
    path = tmp_path / "model.npz"
    save_model(imputer, path, feature_ids=["a", "b", "c", "d", "é"])
    return imputer, path


@pytest.mark.parametrize("name", CONFIGURATIONS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_saved_model_predicts_exactly_as_the_fitted_one(tmp_path, name, dtype):
    X = table(dtype)
    imputer = MaskedGaussianMixtureImputer(2, random_state=3, **CONFIGURATIONS[name]).fit(X)
    save_model(imputer, tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert repr(loaded.get_params()) == repr(imputer.get_params())
    assert_array_equal(loaded.transform(X), imputer.transform(X))  # draws too: the sampler's state is saved
    assert_array_equal(loaded.score_samples(X), imputer.score_samples(X))
    assert_array_equal(loaded.imputation_std(X), imputer.imputation_std(X))
    assert set(vars(loaded)) == set(vars(imputer))
    for attribute in ("weights_", "means_", "lower_bounds_", "n_iter_", "converged_", "covariance_type_",
                      "row_offset_scales_", "loading_pattern_strengths_"):
        if hasattr(imputer, attribute):
            assert_array_equal(getattr(loaded, attribute), getattr(imputer, attribute))


def test_sparse_predictions_recommendations_and_feature_ids_round_trip(tmp_path):
    rng = np.random.RandomState(1)
    X = sp.random_array((120, 30), density=0.3, random_state=rng, format="csr")
    X.data = np.ceil(5 * X.data)
    imputer = MaskedGaussianMixtureImputer(covariance_type="factor", n_factors=3, biases=True).fit(X)
    ids = np.array([f"item {i}" for i in range(30)])
    save_model(imputer, tmp_path / "m.npz", feature_ids=ids)
    loaded, loaded_ids = load_model(tmp_path / "m.npz", return_feature_ids=True)
    assert_array_equal(loaded_ids, ids)
    assert_array_equal(loaded.recommend(X, 5), imputer.recommend(X, 5))
    rows, cols = rng.randint(120, size=50), rng.randint(30, size=50)
    assert_array_equal(loaded.predict_entries(X, rows, cols), imputer.predict_entries(X, rows, cols))


def test_feature_names_of_a_dataframe_round_trip(tmp_path):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(table(), columns=list("vwxyz"))
    imputer = MaskedGaussianMixtureImputer(random_state=0).fit(frame)
    save_model(imputer, tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert_array_equal(loaded.feature_names_in_, imputer.feature_names_in_)
    assert loaded.feature_names_in_.dtype == object
    assert_array_equal(loaded.transform(frame), imputer.transform(frame))


def test_the_file_is_an_npz_of_plain_arrays_and_a_json_header(saved):
    _, path = saved
    with np.load(path, allow_pickle=False) as arrays:  # NumPy reads it as it reads any .npz
        assert {"_mixture.0", "_mixture.1", "_mixture.2", "means_", "feature_ids"} <= set(arrays.files)
        assert_array_equal(arrays["feature_ids"], ["a", "b", "c", "d", "é"])
    with zipfile.ZipFile(path) as archive:
        header = json.loads(archive.read("header.json"))
    assert header["format"] == "skgmmfill-model" and header["format_version"] == 1
    assert header["params"]["covariance_type"] == "factor"


def test_a_file_saved_before_a_hyperparameter_existed_loads_with_its_default(saved, tmp_path):
    imputer, path = saved

    def as_before(header):  # files saved before loading_pattern_prior existed had neither entry
        del header["state"]["_fitted_family"]["fields"]["loading_pattern_prior"]
        del header["params"]["loading_pattern_prior"]
        return header

    loaded = load_model(rewrite(path, tmp_path / "old.npz", header=as_before))
    assert loaded.loading_pattern_prior is None
    assert_array_equal(loaded.transform(table()), imputer.transform(table()))

    def unknown(header):
        header["state"]["_fitted_family"]["fields"]["min_variance_prior"] = {"float": "nan"}
        return header

    with pytest.raises(ModelFileError, match="the factor family has the hyperparameters"):
        load_model(rewrite(path, tmp_path / "unknown.npz", header=unknown))


def test_saving_needs_a_fitted_model_and_matching_ids(tmp_path):
    with pytest.raises(NotFittedError):
        save_model(MaskedGaussianMixtureImputer(), tmp_path / "m.npz")
    imputer = MaskedGaussianMixtureImputer().fit(table())
    with pytest.raises(ValueError, match=r"feature_ids must have shape \(5,\)"):
        save_model(imputer, tmp_path / "m.npz", feature_ids=["a"])
    assert not (tmp_path / "m.npz").exists()


# ------------------------------------------------------------ damaged files


def rewrite(source, target, *, header=None, members=None):
    """Copy a model archive, passing the header dict (to a dict or raw bytes) and the
    {member: bytes} through edits."""
    with zipfile.ZipFile(source) as archive:
        content = {name: archive.read(name) for name in archive.namelist()}
    parsed = json.loads(content.pop("header.json"))
    parsed = header(parsed) if header else parsed
    content = members(content) if members else content
    with zipfile.ZipFile(target, "w") as archive:
        archive.writestr("header.json", parsed if isinstance(parsed, bytes) else json.dumps(parsed))
        for name, data in content.items():
            archive.writestr(name, data)
    return target


def npy_bytes(array, allow_pickle=False):
    stream = io.BytesIO()
    np.lib.format.write_array(stream, array, allow_pickle=allow_pickle)
    return stream.getvalue()


class PlantingPayload:
    """Unpickling this creates the file at ``path``: what a crafted model file can do."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def damaged(kind, path, tmp_path):
    target = tmp_path / f"{kind}.npz"
    if kind == "truncated":
        target.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif kind == "not-a-model":
        target.write_text("user\titem\trating\n1\t2\t5\n")
    elif kind == "pickle":
        target.write_bytes(pickle.dumps({"format": "skgmmfill-model-1", "estimator": PlantingPayload(str(tmp_path / "planted"))}))
    elif kind == "other-version":
        rewrite(path, target, header=lambda h: {**h, "format_version": 7})
    elif kind == "extra-array":
        rewrite(path, target, members=lambda m: {**m, "extra.npy": npy_bytes(np.zeros(3))})
    elif kind == "missing-array":
        rewrite(path, target, members=lambda m: {k: v for k, v in m.items() if k != "means_.npy"})
    elif kind == "wrong-dtype":
        rewrite(path, target, members=lambda m: {**m, "means_.npy": npy_bytes(np.zeros((2, 5), np.int32))})
    elif kind == "wrong-shape":
        def shrink(header):
            header["arrays"]["_mixture.1"]["shape"] = [2, 4]
            return header
        rewrite(path, target, header=shrink, members=lambda m: {**m, "_mixture.1.npy": npy_bytes(np.zeros((2, 4)))})
    elif kind == "object-array":
        def declare(header):
            header["arrays"]["means_"]["dtype"] = "|O"
            return header
        payload = np.array([PlantingPayload(str(tmp_path / "planted"))] * 10, dtype=object).reshape(2, 5)
        rewrite(path, target, header=declare, members=lambda m: {**m, "means_.npy": npy_bytes(payload, True)})
    elif kind == "header-not-json":
        rewrite(path, target, header=lambda h: b"{not json")
    elif kind == "bomb":
        def huge(header):
            header["arrays"]["means_"]["shape"] = [2, 10**10]
            return header
        fake = np.lib.format.header_data_from_array_1_0(np.zeros((2, 5)))
        fake["shape"] = (2, 10**10)
        stream = io.BytesIO()
        np.lib.format.write_array_header_1_0(stream, fake)
        rewrite(path, target, header=huge, members=lambda m: {**m, "means_.npy": stream.getvalue()})
    elif kind == "unknown-family":
        def rename(header):
            header["state"]["_fitted_family"]["family"] = "os.system"
            return header
        rewrite(path, target, header=rename)
    elif kind == "stranger-attribute":
        rewrite(path, target, header=lambda h: {**h, "state": {**h["state"], "__class__": "list"}})
    return target


DAMAGE = {
    "truncated": "damaged or truncated",
    "not-a-model": "is not a skgmmfill model file",
    "pickle": "is a pickle",
    "other-version": "is in model format version 7",
    "extra-array": "holds array(s) its header does not list: ['extra.npy']",
    "missing-array": "lacks array(s) its header lists: ['means_.npy']",
    "wrong-dtype": "array means_.npy is int32 of shape (2, 5), but the header says float64",
    "wrong-shape": "its means have shape (2, 4), expected (2, 5)",
    "object-array": "array means_.npy is object",
    "header-not-json": "is not valid JSON",
    "bomb": "declares more data than the archive holds",
    "unknown-family": "unknown covariance family 'os.system'",
    "stranger-attribute": "attribute(s) a fit does not set: ['__class__']",
}


@pytest.mark.parametrize("kind", DAMAGE)
def test_each_kind_of_damage_has_its_own_one_line_error(saved, tmp_path, kind):
    _, path = saved
    target = damaged(kind, path, tmp_path)
    with pytest.raises(ModelFileError) as error:
        load_model(target)
    message = str(error.value)
    assert DAMAGE[kind] in message and "\n" not in message and f"'{target}'" in message
    assert not (tmp_path / "planted").exists()  # nothing in the file ran
