"""Check skdance estimators: fast instances, expected failures, check data.

scikit-learn's :func:`~sklearn.utils.estimator_checks.check_estimator` runs
generic checks on small random data.  Some do not apply to single-cell
models by design (count models reject the checks' negative values, graph
builders return adjacencies, transductive models depend on the rows passed
together); :func:`expected_failed_checks` returns skdance's table of those,
each with its reason, the same table skdance's own test suite uses.

This package sits above every task package (it builds their estimators);
nothing else in skdance imports it.

Examples
--------
>>> from sklearn.utils.estimator_checks import check_estimator
>>> from skdance.spatial import SpatialDecon
>>> from skdance.testing import expected_failed_checks, fast_instance
>>> est = fast_instance(SpatialDecon)
>>> sorted(expected_failed_checks(est))
['check_estimator_sparse_array', 'check_estimator_sparse_matrix']
>>> _ = check_estimator(est, expected_failed_checks=expected_failed_checks(est))

Estimators that need spot coordinates (``coords=``) cannot get them from
the checks; :func:`with_check_coords` gives the subclass that reads each
row's position from ``X`` so the whole battery runs on the real code path:

>>> from skdance.graph import RadiusGraph
>>> est = with_check_coords(RadiusGraph)(radius=1.0)
>>> sorted(expected_failed_checks(est))
['check_methods_sample_order_invariance', 'check_methods_subset_invariance']

skdance's own common checks fit every discovered estimator as its tags say
on :func:`check_data` (120 real PBMC cells x 150 genes, labels, positions
and a paired second modality): :func:`check_instance` builds it,
:func:`fit_estimator` fits it and :func:`estimator_output` reads its result.
"""

from skdance.testing._coords import check_coords, with_check_coords
from skdance.testing._fitting import (
    CheckData,
    check_data,
    check_instance,
    estimator_output,
    fit_estimator,
)
from skdance.testing._instances import (
    INIT_PARAMS,
    METHOD_FAILED_CHECKS,
    expected_failed_checks,
    fast_instance,
)

__all__ = [
    "INIT_PARAMS",
    "METHOD_FAILED_CHECKS",
    "CheckData",
    "check_coords",
    "check_data",
    "check_instance",
    "estimator_output",
    "expected_failed_checks",
    "fast_instance",
    "fit_estimator",
    "with_check_coords",
]
