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
from skdance.graph._fit import build_graph, fit_graph
from skdance.graph._igraph import to_igraph
from skdance.graph._knn import KNNGraph, MutualNNGraph, unit_rows
from skdance.graph._pruned import PrunedKNNGraph
from skdance.graph._spatial import (
    MIN_SPATIAL_NEIGHBORS,
    RadiusGraph,
    SpatialGaussianGraph,
    is_regular_array,
    isolated_spots,
    layout_radius_graph,
    spot_spacing,
    warn_isolated,
)

__all__ = [
    "AdaptiveKernelGraph",
    "CellGeneGraph",
    "GeneCorrelationGraph",
    "KNNGraph",
    "MIN_SPATIAL_NEIGHBORS",
    "MutualNNGraph",
    "PrunedKNNGraph",
    "RadiusGraph",
    "SpatialGaussianGraph",
    "build_graph",
    "cell_feature_weights",
    "correlation_links",
    "fit_graph",
    "gene_set_links",
    "is_regular_array",
    "isolated_spots",
    "layout_radius_graph",
    "read_gene_sets",
    "spot_spacing",
    "to_igraph",
    "unit_rows",
    "warn_isolated",
]
