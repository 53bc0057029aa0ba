"""Run scikit-learn's checks on the estimators that need coordinates.

scikit-learn's checks call ``fit(X)``, ``predict(X)`` and ``transform(X)``
with random data and cannot pass side information, so a spatial estimator
given only ``X`` raises its clear "coords required" ``ValueError`` (tested
on its own in ``tests/test_common.py``).  To run the whole check battery on
the code that does the work, :func:`with_check_coords` returns a test-only
subclass that fills in ``coords`` when the caller gives none: each row's
position is read from that row of ``X`` (its first and last feature), so
permuting or subsetting the rows permutes or subsets the positions with
them, as a user's ``obsm["spatial"]`` would.  Rows that cannot be read as
finite numbers get no coordinates, so bad ``X`` still meets the
estimator's own validation first.  Nothing else is changed: parameters,
tags, validation and fitting are the estimator's own.
"""

import functools
import inspect
import sys

import numpy as np
import scipy.sparse as sp
from sklearn.utils._available_if import available_if
from sklearn.utils._set_output import _SetOutputMixin

__all__ = ["check_coords", "with_check_coords"]

_METHODS = ("fit", "fit_predict", "fit_transform", "predict", "transform")


def check_coords(X):
    """Return 2-D positions of the rows of ``X``, or None if unreadable.

    Parameters
    ----------
    X : array-like or sparse matrix of shape (n_samples, n_features)
        The data a check passes.

    Returns
    -------
    coords : ndarray of shape (n_samples, 2) or None
        ``[X[:, 0], X[:, -1]]`` (``[X[:, 0], 0]`` with one feature); None
        where ``X`` is not a finite 2-D numeric matrix.
    """
    try:
        if sp.issparse(X):
            X = sp.csr_matrix(X)
            cols = [X[:, [0]].toarray().ravel(), X[:, [-1]].toarray().ravel()]
        else:
            X = np.asarray(X, dtype=np.float64)
            if X.ndim != 2 or X.shape[1] == 0:
                return None
            cols = [X[:, 0], X[:, -1]]
    except (TypeError, ValueError, IndexError):
        return None
    coords = np.column_stack(cols).astype(np.float64)
    if X.shape[1] == 1:
        coords[:, 1] = 0.0
    if not np.all(np.isfinite(coords)):
        return None
    return coords


def _filling(method):
    @functools.wraps(method)  # keeps the signature the checks inspect
    def method_with_coords(self, X, *args, coords=None, **kwargs):
        if coords is None:
            coords = check_coords(X)
        return method(self, X, *args, coords=coords, **kwargs)

    return method_with_coords


def with_check_coords(Estimator):
    """Return the subclass of ``Estimator`` that derives missing coordinates.

    The subclass keeps the class name (so check ids and reprs read the
    same) and lives in this module under ``_CheckCoords<name>``, so that
    its instances pickle.

    Parameters
    ----------
    Estimator : type
        A skdance estimator class with ``coords`` in some of its methods.

    Returns
    -------
    subclass : type
        ``Estimator`` whose ``fit``/``predict``/``transform`` (and the
        ``fit_*`` shortcuts) use :func:`check_coords` when given none.
    """
    qualname = f"_CheckCoords{Estimator.__name__}"
    module = sys.modules[__name__]
    if hasattr(module, qualname):
        return getattr(module, qualname)
    namespace = {
        "__module__": __name__,
        "__qualname__": qualname,
        "_derives_check_coords": True,
    }
    for name in _METHODS:
        method = getattr(Estimator, name, None)
        if method is not None and "coords" in inspect.signature(method).parameters:
            filling = _filling(method)
            # a method that exists only sometimes (available_if) stays so
            check = getattr(inspect.getattr_static(Estimator, name), "check", None)
            namespace[name] = available_if(check)(filling) if check else filling
    if issubclass(Estimator, _SetOutputMixin):
        # the estimator's own methods already wrap their output for
        # set_output; wrapping the filling methods again would make an
        # available_if method (fit_transform) always present
        subclass = type(
            Estimator.__name__, (Estimator,), namespace, auto_wrap_output_keys=None
        )
        subclass._sklearn_auto_wrap_output_keys = set(
            Estimator._sklearn_auto_wrap_output_keys
        )
    else:
        subclass = type(Estimator.__name__, (Estimator,), namespace)
    setattr(module, qualname, subclass)
    return subclass
