import os

# scikit-learn's array API checks run only when SciPy's array API support is on,
# which must be set before SciPy is first imported.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import numpy as np
import pytest

from skgmmfill import PRESET_COURSE, MaskedGaussianMixtureImputer
from skgmmfill.datasets import load_course_test, load_netflix


@pytest.fixture(scope="session")
def netflix():
    """``(X_incomplete, X_complete)`` with 0 marking the missing ratings."""
    return load_netflix(missing_values=0)


@pytest.fixture(scope="session")
def netflix_fits(netflix):
    """Course fits on Netflix, ``{(K, seed): fitted imputer}``, missing_values=0."""
    X, _ = netflix
    return {
        (k, seed): MaskedGaussianMixtureImputer(k, **PRESET_COURSE, missing_values=0, random_state=seed).fit(X)
        for k in (1, 12)
        for seed in range(5)
    }


@pytest.fixture(scope="session")
def course_test():
    """The course's 20 x 5 test pair with 0 marking the missing entries."""
    return load_course_test(missing_values=0)


@pytest.fixture
def X_nan():
    """A small data set with NaN at 25 % of its entries, none read-only."""
    rng = np.random.RandomState(0)
    centers = np.array([[0.0, 0.0, 0.0, 0.0], [5.0, 5.0, -5.0, 5.0]])
    X = centers[rng.randint(2, size=60)] + rng.normal(size=(60, 4))
    X[rng.uniform(size=X.shape) < 0.25] = np.nan
    return X
