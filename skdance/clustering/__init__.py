"""Cell clustering estimators."""

from skdance.clustering.graphsc import GraphSC
from skdance.clustering.leiden import Leiden
from skdance.clustering.louvain import Louvain
from skdance.clustering.scdcc import ScDCC, draw_constraint_pairs, make_partial_labels
from skdance.clustering.scdeepcluster import ScDeepCluster
from skdance.clustering.scdsc import ScDSC
from skdance.clustering.sctag import ScTAG

__all__ = [
    "GraphSC",
    "Leiden",
    "Louvain",
    "ScDCC",
    "ScDSC",
    "ScDeepCluster",
    "ScTAG",
    "draw_constraint_pairs",
    "make_partial_labels",
]
