"""Shared torch building blocks (graph conversion now; layers and losses later)."""

from skdance.nn._adjacency import normalize_adjacency, to_edge_index, to_torch_sparse

__all__ = ["normalize_adjacency", "to_edge_index", "to_torch_sparse"]
