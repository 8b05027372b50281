"""scikit-learn's estimator checks, over several configurations."""

import numpy as np
import pytest
from sklearn.utils.estimator_checks import (
    check_dataframe_column_names_consistency,
    check_get_feature_names_out_error,
    check_global_output_transform_pandas,
    check_param_validation,
    check_set_output_transform,
    check_set_output_transform_pandas,
    check_transformer_get_feature_names_out,
    check_transformer_get_feature_names_out_pandas,
    parametrize_with_checks,
)

from skgmmfill import MaskedGaussianMixtureImputer

CONFIGURATIONS = [
    MaskedGaussianMixtureImputer(),
    MaskedGaussianMixtureImputer(n_components=3, n_init=2, random_state=0),
    MaskedGaussianMixtureImputer(missing_values=0, n_components=2, random_state=0),
    MaskedGaussianMixtureImputer(
        missing_values=-1, n_components=2, keep_empty_features=True, random_state=0
    ),
]


@parametrize_with_checks(CONFIGURATIONS)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


# Checks that parametrize_with_checks leaves to scikit-learn's own test suite.
EXTRA_CHECKS = [
    check_param_validation,
    check_get_feature_names_out_error,
    check_dataframe_column_names_consistency,
    check_transformer_get_feature_names_out,
    check_transformer_get_feature_names_out_pandas,
    check_set_output_transform,
    check_set_output_transform_pandas,
    check_global_output_transform_pandas,
]


@pytest.mark.parametrize("estimator", CONFIGURATIONS, ids=repr)
@pytest.mark.parametrize("check", EXTRA_CHECKS, ids=lambda check: check.__name__)
def test_feature_names_and_set_output(estimator, check):
    pytest.importorskip("pandas")
    check(type(estimator).__name__, estimator)


def test_pandas_output_keeps_names_and_index():
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(
        {"a": [1.0, np.nan, 3.0, 4.0], "b": [2.0, 2.5, np.nan, 4.5], "c": [np.nan] * 4},
        index=[10, 11, 12, 13],
    )
    imputer = MaskedGaussianMixtureImputer(random_state=0).set_output(transform="pandas")
    out = imputer.fit_transform(X)
    assert list(out.columns) == ["a", "b"]
    assert list(out.index) == [10, 11, 12, 13]
    assert out.notna().all().all()
