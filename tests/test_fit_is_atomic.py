"""A fit is all or nothing: an interrupted or failed fit leaves the estimator as it was."""

import io
import sys
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_array_equal
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.utils.validation import check_is_fitted

from skgmmfill import MaskedGaussianMixtureImputer

FAMILY_OPTIONS = {"spherical": {}, "diag": {}, "full": {}, "factor": {"n_factors": 2}}


def table(n_samples, n_features, seed):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n_samples, n_features)) + 3.0 * rng.randint(2, size=(n_samples, 1))
    X[rng.uniform(size=X.shape) < 0.25] = np.nan
    X[:, 0] = np.where(np.isnan(X[:, 0]), 1.0, X[:, 0])  # no empty row
    return X


def as_input(X, sparse):
    if not sparse:
        return X
    rows, cols = np.nonzero(~np.isnan(X))
    return sp.csr_array((X[rows, cols], (rows, cols)), shape=X.shape)


class _InterruptAfterFirstIteration(io.StringIO):
    """Standard output that raises KeyboardInterrupt once EM reports its first iteration."""

    def write(self, text):
        if "Iteration 1\t" in text:
            raise KeyboardInterrupt
        return super().write(text)


def interrupted_fit(imputer, X, monkeypatch):
    imputer.set_params(verbose=1, verbose_interval=1, max_iter=20, tol=0.0)
    monkeypatch.setattr(sys, "stdout", _InterruptAfterFirstIteration())
    with pytest.raises(KeyboardInterrupt):
        imputer.fit(X)
    monkeypatch.undo()


def failed_fit_on_a_warning(imputer, X, monkeypatch):
    imputer.set_params(max_iter=1, tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        with pytest.raises(ConvergenceWarning):
            imputer.fit(X)


INTERRUPTIONS = {"keyboard-interrupt": interrupted_fit, "warning-as-error": failed_fit_on_a_warning}
CASES = [(family, sparse) for family in FAMILY_OPTIONS for sparse in (False, True) if not (family == "full" and sparse)]


@pytest.mark.parametrize("interrupt", INTERRUPTIONS)
@pytest.mark.parametrize("family, sparse", CASES)
def test_an_interrupted_first_fit_leaves_an_unfitted_estimator(family, sparse, interrupt, monkeypatch):
    imputer = MaskedGaussianMixtureImputer(2, covariance_type=family, random_state=0, **FAMILY_OPTIONS[family])
    INTERRUPTIONS[interrupt](imputer, as_input(table(80, 6, 0), sparse), monkeypatch)
    with pytest.raises(NotFittedError):
        check_is_fitted(imputer)
    assert not [name for name in vars(imputer) if name.endswith("_")]


@pytest.mark.parametrize("interrupt", INTERRUPTIONS)
@pytest.mark.parametrize("family, sparse", CASES)
def test_an_interrupted_refit_keeps_the_previous_model(family, sparse, interrupt, monkeypatch):
    X = as_input(table(80, 6, 0), sparse)
    imputer = MaskedGaussianMixtureImputer(2, covariance_type=family, random_state=0, **FAMILY_OPTIONS[family])
    imputer.fit(X)
    before, state = imputer.transform(X), dict(vars(imputer))
    other = as_input(table(90, 7, 1), sparse)  # another feature count
    INTERRUPTIONS[interrupt](imputer, other, monkeypatch)
    assert imputer.n_features_in_ == 6
    assert set(vars(imputer)) == set(state)
    assert_array_equal(imputer.transform(X), before)
    with pytest.raises(ValueError, match="features"):
        imputer.transform(other)


def test_a_refit_removes_what_the_new_parameters_do_not_set():
    X = table(80, 6, 0)
    imputer = MaskedGaussianMixtureImputer(2, covariance_type="factor", n_factors=2, biases=True,
                                           mean_precision_prior=1.0, random_state=0).fit(X)
    assert {"loadings_", "global_mean_", "column_offsets_", "mean_prior_"} <= set(vars(imputer))
    imputer.set_params(covariance_type="diag", n_factors=None, biases=False, mean_precision_prior=None).fit(X)
    assert not {"loadings_", "noise_variances_", "global_mean_", "column_offsets_", "mean_prior_"} & set(vars(imputer))
    assert imputer.covariances_.shape == (2, 6)


def test_a_failed_fit_on_named_columns_keeps_the_previous_names():
    pd = pytest.importorskip("pandas")
    X = table(80, 3, 0)
    imputer = MaskedGaussianMixtureImputer(2, random_state=0).fit(pd.DataFrame(X, columns=["a", "b", "c"]))
    with pytest.raises(ValueError, match="needs at least 50 rows"):
        imputer.set_params(n_components=50).fit(pd.DataFrame(X[:10, :2], columns=["d", "e"]))
    assert list(imputer.feature_names_in_) == ["a", "b", "c"] and imputer.n_features_in_ == 3
