"""Graph builders: transformers from cells (and side information) to adjacency."""

from skdance.graph._adaptive import AdaptiveKernelGraph
from skdance.graph._bipartite import (
    CellGeneGraph,
    GeneCorrelationGraph,
    cell_feature_weights,
    correlation_links,
    gene_set_links,
    read_gene_sets,
)
from skdance.graph._knn import KNNGraph, MutualNNGraph
from skdance.graph._pruned import PrunedKNNGraph
from skdance.graph._spatial import RadiusGraph, SpatialGaussianGraph

__all__ = [
    "AdaptiveKernelGraph",
    "CellGeneGraph",
    "GeneCorrelationGraph",
    "KNNGraph",
    "MutualNNGraph",
    "PrunedKNNGraph",
    "RadiusGraph",
    "SpatialGaussianGraph",
    "cell_feature_weights",
    "correlation_links",
    "gene_set_links",
    "read_gene_sets",
]
