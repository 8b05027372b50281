"""Fits and predictions on dask arrays, on a local dask.distributed cluster of two worker processes."""

import os
import pickle
import threading
import time
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal

from skgmmfill import PRESET_COURSE, PRESET_RATINGS, MaskedGaussianMixtureImputer
from skgmmfill.datasets import make_incomplete_mixture, ratings_to_dask_array

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("dask.distributed")

CHUNKINGS = {"one block": (1200,), "three blocks": (400, 400, 400), "uneven": (100, 700, 400)}
CONFIGURATIONS = {
    "course": dict(PRESET_COURSE, n_components=12, random_state=1),
    "diag, biases, prior": dict(PRESET_COURSE, n_components=4, covariance_type="diag", biases=True,
                                mean_precision_prior=10.0, random_state=0),
    "spherical, kmeans, prior": dict(n_components=3, covariance_type="spherical", init_params="kmeans",
                                     mean_precision_prior=100.0, random_state=0, tol=1e-6),
}


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    with distributed.Client(cluster) as client:
        yield client
    cluster.close()


def as_dask(X, rows_per_chunk):
    if sp.issparse(X):
        return da.from_array(sp.csr_array(X), chunks=(rows_per_chunk, X.shape[1]), asarray=False)
    return da.from_array(X, chunks=(rows_per_chunk, X.shape[1]))


def assert_same_fit(fitted, reference):
    assert fitted.n_iter_ == reference.n_iter_
    assert_allclose(fitted.lower_bound_, reference.lower_bound_, rtol=1e-10)
    names = [name for name in reference._model.family.fitted_attribute_names if hasattr(reference, name)]
    for name in ("weights_", "means_", *names):
        assert_allclose(getattr(fitted, name), getattr(reference, name), rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("chunking", CHUNKINGS)
@pytest.mark.parametrize("configuration", CONFIGURATIONS)
@pytest.mark.parametrize("container", ["dense NaN", "CSR"])
def test_fit_equals_the_in_memory_fit_on_netflix(client, netflix, chunking, configuration, container):
    X, _ = netflix
    X = sp.csr_array(X) if container == "CSR" else np.where(X == 0, np.nan, X)
    params = CONFIGURATIONS[configuration]
    reference = MaskedGaussianMixtureImputer(**params).fit(X)
    fitted = MaskedGaussianMixtureImputer(**params).fit(as_dask(X, CHUNKINGS[chunking]))
    assert_same_fit(fitted, reference)
    if params.get("biases"):
        assert_allclose(fitted.column_offsets_, reference.column_offsets_, rtol=1e-10)


@pytest.mark.parametrize("chunking", [(3000,), (1000, 1000, 1000), (250, 2500, 250)])
@pytest.mark.parametrize("params", [dict(init_params="kmeans"), dict(init_params="random_from_data",
                                                                       mean_precision_prior=5.0)])
def test_full_fit_equals_the_in_memory_fit(client, chunking, params):
    # "full" needs a table of tens of features, not the 1200 movies
    _, X, _ = make_incomplete_mixture(3000, 12, random_state=0)
    params = dict(params, n_components=3, covariance_type="full", random_state=0, tol=1e-8)
    reference = MaskedGaussianMixtureImputer(**params).fit(X)
    assert_same_fit(MaskedGaussianMixtureImputer(**params).fit(da.from_array(X, chunks=(chunking, 12))), reference)


@pytest.mark.parametrize("container", ["dense NaN", "CSR"])
@pytest.mark.parametrize("offset_factor", [None, True])
def test_factor_fit_equals_the_in_memory_fit_on_netflix(client, netflix, container, offset_factor):
    X, _ = netflix
    X = sp.csr_array(X) if container == "CSR" else np.where(X == 0, np.nan, X)
    params = dict(PRESET_RATINGS, n_components=2, n_factors=3, mean_precision_prior=10.0, implicit_precision_prior=1.0,
                  row_offset_factor=offset_factor, random_state=0)
    reference = MaskedGaussianMixtureImputer(**params).fit(X)
    fitted = MaskedGaussianMixtureImputer(**params).fit(as_dask(X, CHUNKINGS["uneven"]))
    assert_same_fit(fitted, reference)
    X_dask = as_dask(X, CHUNKINGS["three blocks"])
    assert_allclose(fitted.imputation_std(X_dask[:300]).compute(), reference.imputation_std(X[:300]), rtol=1e-8)


@pytest.fixture(scope="module")
def fitted_pair(netflix):
    """An in-memory and a dask fit of the same model, and the data in both forms."""
    X, _ = netflix
    X = np.where(X == 0, np.nan, X)
    params = dict(n_components=4, covariance_type="diag", biases=True, random_state=0, min_value=1, max_value=5)
    X_dask = as_dask(X, (500, 300, 400))
    return MaskedGaussianMixtureImputer(**params).fit(X), X, X_dask


def test_only_the_fitted_model_travels_to_the_blocks(fitted_pair):
    imputer, _, X_dask = fitted_pair
    for lazy in (imputer.transform(X_dask), imputer.predict_entries(X_dask, [0, 700], [1, 2]),
                 imputer.recommend(X_dask, 3, rank_by="hits")):
        tasks = pickle.dumps(dict(lazy.__dask_graph__()))
        assert b"FittedMixture" in tasks and b"MaskedGaussianMixtureImputer" not in tasks


def test_predictions_are_lazy_dask_arrays_equal_to_the_in_memory_ones(client, fitted_pair):
    imputer, X, X_dask = fitted_pair
    for method in ("transform", "imputation_std", "predict_proba", "score_samples", "predict"):
        result = getattr(imputer, method)(X_dask)
        assert isinstance(result, da.Array), method
        assert result.chunks[0] == X_dask.chunks[0]
        assert_allclose(result.compute(), getattr(imputer, method)(X), rtol=1e-12, err_msg=method)
    assert_allclose(imputer.score(X_dask), imputer.score(X), rtol=1e-12)
    rows, cols = np.array([1199, 0, 600, 3, 700]), np.array([0, 5, 1199, 3, 2])
    entries = imputer.predict_entries(X_dask, rows, cols)
    assert isinstance(entries, da.Array)
    assert_allclose(entries.compute(), imputer.predict_entries(X, rows, cols), rtol=1e-12)
    assert_array_equal(imputer.recommend(X_dask, 5).compute(), imputer.recommend(X, 5))


def test_a_dask_fit_predicts_in_memory_too(client, fitted_pair):
    reference, X, X_dask = fitted_pair
    fitted = MaskedGaussianMixtureImputer(**reference.get_params()).fit(X_dask)
    assert_allclose(fitted.transform(X), reference.transform(X), rtol=1e-10)


def test_streaming_every_iteration_gives_the_persisted_fit(client, netflix):
    X, _ = netflix
    params = dict(PRESET_COURSE, n_components=3, missing_values=0, random_state=0)
    persisted = MaskedGaussianMixtureImputer(**params).fit(as_dask(X, 300))
    streamed = MaskedGaussianMixtureImputer(**params, persist=False).fit(as_dask(X, 300))
    assert_same_fit(streamed, persisted)


def test_blocks_are_placed_evenly_and_reduced_on_the_task_thread(client, netflix):
    """Two runs of neighbouring blocks with equal rows, each on its own worker
    (the scheduler alone may put them all on one); a task uses one core."""
    from skgmmfill._dask import DaskRows
    from skgmmfill._observed import ObservedEntries, _available_cores

    X = sp.csr_array(netflix[0])
    source = DaskRows.from_array(as_dask(X, 300), ObservedEntries.from_sparse, np.float64)
    workers = sorted(client.scheduler_info()["workers"])
    assert source.holders == [workers[0]] * 2 + [workers[1]] * 2
    distributed.wait(source.blocks)
    holders = client.who_has(source.blocks)
    assert [holders[block.key][0] for block in source.blocks] == source.holders
    moments = source.reduce(lambda block: block.moments())
    assert_allclose(moments.sums, ObservedEntries.from_sparse(X).moments().sums, rtol=1e-12)
    assert client.submit(_available_cores, pure=False).result() == 1


def test_n_init_and_warm_start_as_in_memory(client, netflix):
    X, _ = netflix
    params = dict(PRESET_COURSE, n_components=4, missing_values=0, random_state=0, n_init=3)
    assert_same_fit(MaskedGaussianMixtureImputer(**params).fit(as_dask(X, 500)),
                    MaskedGaussianMixtureImputer(**params).fit(X))
    warm = dict(params, max_iter=4, warm_start=True)
    in_memory, on_dask = MaskedGaussianMixtureImputer(**warm), MaskedGaussianMixtureImputer(**warm)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(3):
            in_memory.fit(X)
            on_dask.fit(as_dask(X, 500))
    assert_same_fit(on_dask, in_memory)


def test_sample_posterior_is_reproducible_for_a_seed_and_partitioning(client, netflix):
    X, _ = netflix
    X_dask = as_dask(X, 400)
    params = dict(n_components=3, missing_values=0, covariance_type="diag", sample_posterior=True, random_state=7)
    first = MaskedGaussianMixtureImputer(**params).fit(X_dask).transform(X_dask).compute()
    imputer = MaskedGaussianMixtureImputer(**params).fit(X_dask)
    again, other = imputer.transform(X_dask).compute(), imputer.transform(X_dask).compute()
    # (two fits agree to rounding: blocks are summed worker by worker, wherever they live)
    assert_allclose(again, first, rtol=1e-12)
    assert not np.allclose(other, first)
    assert_array_equal(first[X != 0], X[X != 0])


def test_killing_a_worker_mid_fit_gives_the_same_fit(netflix):
    X, _ = netflix
    # 60 iterations whatever happens (about 3 s here): the kill lands mid-fit
    params = dict(PRESET_COURSE, n_components=12, missing_values=0, random_state=1, tol=0.0, max_iter=60)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = MaskedGaussianMixtureImputer(**params).fit(X)
    fitted = MaskedGaussianMixtureImputer(**params)
    outcome = {}
    # a cluster of its own, so that one left broken cannot stall the other tests
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    client = distributed.Client(cluster)

    def fit():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fitted.fit(as_dask(X, 200))
        except Exception as error:
            outcome["error"] = error

    thread = threading.Thread(target=fit, daemon=True)
    try:
        thread.start()
        time.sleep(1.0)
        outcome["fitting when killed"] = thread.is_alive()
        victim = sorted(client.scheduler_info()["workers"])[0]
        # the worker dies before it can answer; its nanny restarts it and its blocks are recomputed
        client.run(os._exit, 1, workers=[victim], on_error="ignore")
        thread.join(timeout=180)
    finally:
        client.close(timeout=30)
        cluster.close(timeout=30)
    assert outcome["fitting when killed"]
    assert not thread.is_alive(), "the fit did not finish within 180 s of a worker's death"
    # a cancelled future here was the common outcome while the parameters were scattered: a copy died with its worker
    assert "error" not in outcome, repr(outcome.get("error"))
    assert_same_fit(fitted, reference)


def test_the_parameters_never_travel_by_the_schedulers_replication(client, netflix):
    # The scheduler replicates over the workers alive when it starts and retries for ever one that dies meanwhile:
    # fits whose parameters were scattered with broadcast=True hung when a worker died at that moment.
    X, _ = netflix
    params = dict(PRESET_COURSE, n_components=3, missing_values=0, random_state=1, max_iter=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        MaskedGaussianMixtureImputer(**params).fit(as_dask(X, 400))
    actions = {event.get("action") for events in client.get_events().values() for _, event in events
               if isinstance(event, dict)}
    assert "scatter" not in actions and not any(str(action).startswith("replicate") for action in actions)


def test_large_parameters_travel_without_dasks_large_graph_warning(client):
    from skgmmfill._dask import _broadcast

    parameters = np.arange(2_000_000, dtype=float)  # 16 MB, over dask's 10 MB threshold
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        shared = _broadcast(parameters)
    assert_array_equal(shared.result(), parameters)
    with pytest.warns(UserWarning, match="Sending large graph"):  # what the filter keeps away
        client.submit(np.negative, parameters, pure=False).result()


def test_bad_dask_input_gets_a_clear_error(client):
    X = da.from_array(np.array([[1.0, np.nan], [2.0, 3.0], [np.nan, 4.0]]), chunks=(2, 2))
    with pytest.raises(ValueError, match="contains NaN, but missing_values=0"):
        MaskedGaussianMixtureImputer(missing_values=0).fit(X)
    fitted = MaskedGaussianMixtureImputer(covariance_type="diag").fit(X)
    with pytest.raises(ValueError, match="expecting 2 features"):
        fitted.transform(da.ones((3, 3), chunks=(2, 3)))
    with pytest.raises(ValueError, match="2-D"):
        MaskedGaussianMixtureImputer().fit(da.ones(3, chunks=2))


def test_ratings_to_dask_array(client):
    pandas = pytest.importorskip("pandas")
    dd = pytest.importorskip("dask.dataframe")
    rng = np.random.RandomState(0)
    frame = pandas.DataFrame({"user": rng.randint(0, 300, 3000) * 7, "item": rng.randint(0, 40, 3000).astype(str),
                              "rating": rng.randint(1, 6, 3000).astype(float)}).drop_duplicates(["user", "item"])
    X, users, items = ratings_to_dask_array(dd.from_pandas(frame, npartitions=3), rows_per_block=64)
    assert X.chunks[0] == (64, 64, 64, 64, 44) and sp.issparse(X._meta)
    assert_array_equal(users, np.unique(frame["user"])) and assert_array_equal(items, np.unique(frame["item"]))
    matrix = X.compute()
    assert matrix.nnz == len(frame)
    assert_array_equal(matrix[np.searchsorted(users, frame["user"]), np.searchsorted(items, frame["item"])],
                       frame["rating"])
    fitted = MaskedGaussianMixtureImputer(2, covariance_type="diag", random_state=0).fit(X)
    assert_same_fit(fitted, MaskedGaussianMixtureImputer(2, covariance_type="diag", random_state=0).fit(matrix))
    doubled = pandas.concat([frame, frame.iloc[:1]])
    with pytest.raises(ValueError, match="more than once"):
        ratings_to_dask_array(dd.from_pandas(doubled, npartitions=2))[0].compute()


@pytest.mark.parametrize("container", ["dense NaN", "CSR"])
def test_a_sampled_kmeans_start_equals_the_in_memory_one(client, netflix, container, monkeypatch):
    """Above KMEANS_SAMPLE_ROWS both backends cluster the same evenly spaced rows
    (the threshold lowered here to 500 of Netflix's 1,200 rows)."""
    from skgmmfill import _em

    monkeypatch.setattr(_em, "KMEANS_SAMPLE_ROWS", 500)
    X, _ = netflix
    X = sp.csr_array(X) if container == "CSR" else np.where(X == 0, np.nan, X)
    params = dict(n_components=4, covariance_type="diag", init_params="kmeans", random_state=0)
    reference = MaskedGaussianMixtureImputer(**params).fit(X)
    assert_same_fit(MaskedGaussianMixtureImputer(**params).fit(as_dask(X, CHUNKINGS["uneven"])), reference)
    monkeypatch.setattr(_em, "KMEANS_SAMPLE_ROWS", 10_000)
    assert MaskedGaussianMixtureImputer(**params).fit(X).lower_bound_ != reference.lower_bound_  # the sample mattered
