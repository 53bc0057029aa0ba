"""Conversion of scipy adjacencies to igraph (Leiden, Louvain, scGNN)."""

import numpy as np
import scipy.sparse as sp

__all__ = ["to_igraph"]


def to_igraph(adj):
    """Undirected weighted ``igraph.Graph`` of a symmetric scipy adjacency.

    The upper triangle's entries (diagonal excluded) become the edges, their
    values the ``"weight"`` attribute.
    """
    import igraph

    upper = sp.triu(sp.csr_matrix(adj), k=1).tocoo()
    graph = igraph.Graph(
        n=adj.shape[0], edges=np.column_stack([upper.row, upper.col]), directed=False
    )
    graph.es["weight"] = upper.data.astype(np.float64)
    return graph
