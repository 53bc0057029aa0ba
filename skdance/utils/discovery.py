"""Discover the public estimators of skdance (used by the common tests).

The walk imports the task packages at call time, as scikit-learn's
``all_estimators`` does, so ``skdance.utils`` has no static import of them.
"""

import importlib
import inspect
import pkgutil

from sklearn.base import BaseEstimator

__all__ = ["all_estimators"]

_SKIP = ("tests", "testing", "utils", "nn", "datasets")


def all_estimators():
    """Return ``(name, class)`` pairs of every public skdance estimator.

    Returns
    -------
    list of tuple
        Sorted by name.  Abstract bases (``inspect.isabstract``), private
        names and classes not in their module's ``__all__`` are left out;
        nothing depends on a name suffix.
    """
    import skdance

    found = {}
    for mod_info in pkgutil.walk_packages(skdance.__path__, prefix="skdance."):
        parts = mod_info.name.split(".")
        if any(p.startswith("_") or p in _SKIP for p in parts[1:]):
            continue
        module = importlib.import_module(mod_info.name)
        public = set(getattr(module, "__all__", ()))
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if (
                name in public
                and issubclass(cls, BaseEstimator)
                and cls.__module__.startswith("skdance.")
                and not name.startswith("_")
                and not inspect.isabstract(cls)
            ):
                found[name] = cls
    return sorted(found.items())
