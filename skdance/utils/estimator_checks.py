"""Run scikit-learn's estimator checks on skdance estimators yourself.

scikit-learn's :func:`~sklearn.utils.estimator_checks.check_estimator` runs
generic checks on small random data.  Some do not apply to single-cell
models by design (count models reject the checks' negative values, graph
builders return adjacencies, transductive models depend on the rows passed
together); :func:`expected_failed_checks` returns skdance's table of those,
each with its reason, the same table skdance's own test suite uses.

Examples
--------
>>> from sklearn.utils.estimator_checks import check_estimator
>>> from skdance.spatial import SpatialDecon
>>> from skdance.utils.estimator_checks import expected_failed_checks, fast_instance
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
"""

__all__ = ["expected_failed_checks", "fast_instance", "with_check_coords"]

from skdance.utils._test_common.coords import with_check_coords  # noqa: E402


def expected_failed_checks(estimator):
    """Return the scikit-learn checks ``estimator`` is expected to fail.

    Parameters
    ----------
    estimator : estimator instance
        A skdance estimator.

    Returns
    -------
    checks : dict of str to str
        Check name (as :func:`~sklearn.utils.estimator_checks.check_estimator`
        names it) to the reason it does not apply; empty when every check
        passes.  The table holds for the fast parameters of
        :func:`fast_instance`; other parameters may fail further checks
        (e.g. ``ACTINN(normalize=True)`` rejects the checks' negative
        values with a clear error).
    """
    from skdance.utils._test_common.instance_generator import (
        _get_expected_failed_checks,
    )

    return _get_expected_failed_checks(estimator)


def fast_instance(Estimator):
    """Return ``Estimator`` built with fast parameters (tiny nets, few epochs).

    Parameters
    ----------
    Estimator : type
        A public skdance estimator class.

    Returns
    -------
    estimator : Estimator
        The instance skdance's common tests check.
    """
    from skdance.utils._test_common.instance_generator import _construct_instance

    return _construct_instance(Estimator)
