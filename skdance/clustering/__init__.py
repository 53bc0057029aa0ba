"""Cell clustering estimators."""

from skdance.clustering.leiden import Leiden
from skdance.clustering.louvain import Louvain
from skdance.clustering.scdeepcluster import ScDeepCluster

__all__ = ["Leiden", "Louvain", "ScDeepCluster"]
