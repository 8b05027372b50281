"""The covariance families by name: the one list a new family joins.

Everything the estimator, the model files, the command line and the family
contract test know of a family comes from its class (see
:class:`~skgmmfill._family.CovarianceFamily`): its name, its hyperparameters
and their constraints, whether it runs on sparse input, what to change when
its fit meets a singular covariance. So a family is added by its own module
and one line here (and, since scikit-learn estimators list their parameters
explicitly, its hyperparameters in the estimator's signature and docstring).
"""

from ._diag import DiagCovariance
from ._factor import FactorCovariance
from ._full import FullCovariance
from ._spherical import SphericalCovariance

FAMILIES = {family.name: family for family in (SphericalCovariance, DiagCovariance, FullCovariance, FactorCovariance)}
"""The covariance families by ``covariance_type``."""

AUTO_FULL_MAX_FEATURES = 100
AUTO_FULL_ROWS_PER_FEATURE = 10
"""``covariance_type="auto"`` picks "full" for dense input with at most
``AUTO_FULL_MAX_FEATURES`` features and at least ``AUTO_FULL_ROWS_PER_FEATURE``
rows per feature and component; "diag" otherwise."""


def exclusive_hyperparameters():
    """Estimator parameters that only one family uses, and that family's name."""
    return {name: family.name for family in FAMILIES.values() for name in family.exclusive_hyperparameters}


def foreign_hyperparameters(params, covariance_type):
    """The names of the parameters in ``params`` set (not None) that only another family than
    ``covariance_type`` uses: an error in the estimator, dropped when the command line's
    ``--covariance-type`` overrides a preset's family."""
    return [name for name, owner in exclusive_hyperparameters().items()
            if owner != covariance_type and params.get(name) is not None]


def hyperparameter_constraints():
    """scikit-learn's constraints on every family's hyperparameters (families sharing one agree on it)."""
    constraints = {}
    for family in FAMILIES.values():
        constraints.update(family.hyperparameter_constraints)
    return constraints


def resolve_covariance_type(covariance_type, shape, sparse, n_components):
    """``covariance_type``, with ``"auto"`` resolved for input of this shape."""
    if covariance_type != "auto":
        return covariance_type
    n_samples, n_features = shape
    enough_rows = n_samples >= AUTO_FULL_ROWS_PER_FEATURE * n_features * n_components
    return "full" if not sparse and n_features <= AUTO_FULL_MAX_FEATURES and enough_rows else "diag"


def make_family(covariance_type, params, n_features):
    """The family named ``covariance_type`` for ``n_features`` features, its
    hyperparameters taken from the estimator parameters ``params``.

    Raises
    ------
    ValueError
        If ``params`` sets a hyperparameter that only another family uses.
    """
    foreign = foreign_hyperparameters(params, covariance_type)
    if foreign:
        name = foreign[0]
        raise ValueError(
            f"{name}={params[name]!r} is used only with covariance_type={exclusive_hyperparameters()[name]!r}; "
            f"got covariance_type={covariance_type!r}. Leave {name}=None."
        )
    family = FAMILIES[covariance_type]
    return family(**{name: params[name] for name in family.hyperparameters}).for_features(n_features)


def family_for_data(params, shape, sparse):
    """The family that the estimator parameters ``params`` choose for data of this shape
    (``"auto"`` resolved), and its name.

    Raises
    ------
    ValueError
        If the family does not run on sparse data and the data are sparse, or
        ``params`` sets another family's hyperparameter.
    """
    covariance_type = resolve_covariance_type(params["covariance_type"], shape, sparse, params["n_components"])
    family = make_family(covariance_type, params, shape[1])
    if sparse and not family.supports_sparse:
        sparse_families = sorted(name for name, family in FAMILIES.items() if family.supports_sparse)
        raise ValueError(
            f"covariance_type={params['covariance_type']!r} needs dense input: pass X as a dense array, or use "
            f"one of {sparse_families} for sparse data."
        )
    return family, covariance_type
