"""Cell clustering estimators."""

from skdance.clustering.leiden import Leiden
from skdance.clustering.louvain import Louvain

__all__ = ["Leiden", "Louvain"]
