"""scikit-learn's estimator checks, over several configurations."""

import numpy as np
import pytest
from sklearn.utils.estimator_checks import (
    check_dataframe_column_names_consistency,
    check_estimator_sparse_array,
    check_estimator_sparse_matrix,
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
    MaskedGaussianMixtureImputer(covariance_type="diag", n_components=2, random_state=0),
    MaskedGaussianMixtureImputer(
        covariance_type="full", n_components=2, init_params="kmeans", random_state=0
    ),
    MaskedGaussianMixtureImputer(covariance_type="factor", n_components=2, random_state=0),
    MaskedGaussianMixtureImputer(
        covariance_type="factor", n_factors=1, loading_precision_prior=1.0, biases=True,
        sample_posterior=True, random_state=0,
    ),
    MaskedGaussianMixtureImputer(
        covariance_type="diag",
        init_params="kmeans",
        sample_posterior=True,
        min_value=-1.0,
        max_value=2.0,
        random_state=0,
    ),
]


# scikit-learn 1.6-1.9 read `classifier_tags.multi_class` in these two checks
# for every estimator with predict_proba that accepts sparse input; for a
# non-classifier `classifier_tags` is None, so the checks raise AttributeError
# after our fit and predict on sparse data have passed.
SKLEARN_SPARSE_CHECK_BUG = (
    "scikit-learn bug: reads classifier_tags.multi_class of a non-classifier "
    "with predict_proba (AttributeError)"
)
SPARSE_CONTAINER_CHECKS = [check_estimator_sparse_array, check_estimator_sparse_matrix]


def expected_failed_checks(estimator):
    if not estimator.__sklearn_tags__().input_tags.sparse:
        return {}  # fit refuses sparse input first, as these checks then expect
    return {check.__name__: SKLEARN_SPARSE_CHECK_BUG for check in SPARSE_CONTAINER_CHECKS}


@parametrize_with_checks(CONFIGURATIONS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


@pytest.mark.parametrize(
    "estimator", [e for e in CONFIGURATIONS if expected_failed_checks(e)], ids=repr
)
@pytest.mark.parametrize("check", SPARSE_CONTAINER_CHECKS, ids=lambda check: check.__name__)
def test_sparse_container_checks_fail_only_on_the_sklearn_bug(estimator, check):
    # The check wraps any exception in an AssertionError; its cause must be
    # exactly the tag lookup, reached after fit, predict and predict_proba ran.
    with pytest.raises(AssertionError) as failure:
        check(type(estimator).__name__, estimator)
    cause = failure.value.__cause__
    assert type(cause) is AttributeError
    assert str(cause) == "'NoneType' object has no attribute 'multi_class'"
    assert cause.__traceback__.tb_next is None  # raised in the check itself


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
