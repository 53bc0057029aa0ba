"""Cell-side inputs of a graph network on the cell-gene bipartite graph."""

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from skdance.nn._adjacency import mean_one_edge_weights
from skdance.preprocessing._utils import normalize_rows

__all__ = ["CellGeneInputs", "cell_gene_inputs"]


class CellGeneInputs(NamedTuple):
    """The cells' in-edges of a cell-gene graph (see :func:`cell_gene_inputs`)."""

    weights: sp.csr_matrix
    """Gene -> cell edge weights of shape (n_cells, n_genes), as built."""
    edge_weights: sp.csr_matrix
    """The same edges, each cell's weights rescaled to mean 1 with ``edge_norm``."""
    self_loops: np.ndarray
    """Self-loop weight of every cell (0 without one)."""
    in_degree: np.ndarray
    """Incoming edges of every cell: its genes plus its self loop."""

    def cell_features(self, gene_features, expression=None):
        """Expression-weighted mean of every cell's gene features.

        Parameters
        ----------
        gene_features : ndarray of shape (n_genes, n_features)
            Gene node features.
        expression : {ndarray, sparse matrix} of shape (n_cells, n_genes), \
default=None
            Weights of the mean (default: the edge weights as built).

        Returns
        -------
        features : ndarray of shape (n_cells, n_features)
            Cell node features.
        """
        weights = self.weights if expression is None else expression
        return normalize_rows(weights, 1.0) @ gene_features


def cell_gene_inputs(graph, X, *, edge_norm=True):
    """Build the cell-gene graph of ``X`` and return the cells' in-edges.

    The input builder shared by scDeepsort and graph-sc: the bipartite
    ``(n_cells + n_genes)`` adjacency of ``X`` (``graph``, cloned; None means
    ``CellGeneGraph(weight="fraction", self_loops=True)``, both methods'
    graph) is split into the gene -> cell weights and the cells' self loops.

    Parameters
    ----------
    graph : graph builder or None
        Returns the bipartite adjacency of ``X`` from ``fit_transform``.
    X : {ndarray, sparse matrix} of shape (n_cells, n_genes)
        What the builder links (expression).
    edge_norm : bool, default=True
        Rescale each cell's gene-edge weights to mean 1
        (:func:`~skdance.nn.mean_one_edge_weights`; scDeepsort's
        ``normalize_weight``, graph-sc's ``edge_norm``).

    Returns
    -------
    inputs : CellGeneInputs
        ``(weights, edge_weights, self_loops, in_degree)``.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.nn import cell_gene_inputs
    >>> inputs = cell_gene_inputs(None, np.array([[1.0, 3.0], [2.0, 0.0]]))
    >>> inputs.edge_weights.toarray(), inputs.in_degree.tolist()
    (array([[0.5, 1.5],
           [1. , 0. ]]), [3, 2])
    """
    from skdance.graph import CellGeneGraph
    from skdance.graph._fit import fit_graph

    n_cells, n_genes = X.shape
    adj = fit_graph(
        graph,
        CellGeneGraph(weight="fraction", self_loops=True),
        X,
        shape=(n_cells + n_genes,) * 2,
        what="(cells + genes) square adjacency",
    )
    weights = sp.csr_matrix(adj[:n_cells, n_cells:])
    weights.eliminate_zeros()
    self_loops = adj.diagonal()[:n_cells]
    edge_weights = mean_one_edge_weights(weights) if edge_norm else weights
    in_degree = np.diff(edge_weights.indptr) + (self_loops != 0)
    return CellGeneInputs(weights, edge_weights, self_loops, in_degree)
