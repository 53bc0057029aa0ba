"""Graph builders: transformers from cells (and side information) to adjacency."""

from skdance.graph._bipartite import CellGeneGraph, GeneCorrelationGraph
from skdance.graph._knn import KNNGraph, MutualNNGraph
from skdance.graph._spatial import RadiusGraph, SpatialGaussianGraph

__all__ = [
    "CellGeneGraph",
    "GeneCorrelationGraph",
    "KNNGraph",
    "MutualNNGraph",
    "RadiusGraph",
    "SpatialGaussianGraph",
]
