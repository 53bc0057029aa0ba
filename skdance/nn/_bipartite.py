"""Graph networks on cell-feature bipartite graphs: inputs, relations, layers.

Two families of models learn on the graph that links cells to the genes
(features) they express: scDeepsort and graph-sc read their cells' in-edges
(:func:`cell_gene_inputs`); scMoGNN runs GraphSAGE layers
(:class:`SAGELayer`) over the feature -> cell, cell -> feature and
feature -> feature relations, each held as a weighted mean aggregation
(:class:`MeanAggregation`, built together by :func:`cell_feature_graph`).
"""

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn
from torch.nn import functional as F

from skdance.graph import cell_feature_weights
from skdance.nn._adjacency import mean_one_edge_weights
from skdance.nn._graph_layers import _csr_tensor, sparse_matmul
from skdance.preprocessing import normalize_rows

__all__ = [
    "CellFeatureGraph",
    "CellGeneInputs",
    "MeanAggregation",
    "SAGELayer",
    "SparseTargetMSE",
    "cell_feature_graph",
    "cell_gene_inputs",
]


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
    from skdance.graph import CellGeneGraph, fit_graph

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


class SparseTargetMSE:
    """Mean squared error of a linear layer against a sparse target, in closed form.

    For ``Z = H W^T + b`` and a sparse ``Y`` of shape (n, p), with
    ``H1 = [H, 1]`` and ``W1 = [W, b]``::

        sum_ij (Z_ij - Y_ij)^2 = sum((H1^T H1) * (W1^T W1))
                                 - 2 sum(H1 * (Y W1)) + sum(Y^2),

    so neither ``Z`` nor a dense ``Y`` is formed: O(n d^2 + p d^2 + nnz d)
    work instead of O(n p d), and no (n, p) array (e.g. scMoGNN's GEX ->
    ATAC head on 25,734 peaks).  Computed in float64 (the terms cancel);
    the gradient is that of the elementwise loss.

    Parameters
    ----------
    Y : scipy.sparse matrix of shape (n, p)
        The targets.
    device : str or torch.device, default="cpu"
        Where the tensors live.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp, torch
    >>> from skdance.nn import SparseTargetMSE
    >>> Y = sp.random(6, 4, density=0.3, random_state=0, format="csr")
    >>> lin = torch.nn.Linear(3, 4)
    >>> H = torch.randn(6, 3)
    >>> exact = torch.nn.functional.mse_loss(lin(H), torch.tensor(Y.toarray()).float())
    >>> bool(torch.isclose(SparseTargetMSE(Y)(H, lin).float(), exact))
    True
    """

    def __init__(self, Y, device="cpu"):
        Y = sp.csr_matrix(Y, dtype=np.float64)
        Y.sum_duplicates()
        Y_t = Y.T.tocsr()
        device = torch.device(device)

        def tensor(M):
            return _csr_tensor(
                torch.from_numpy(M.indptr.astype(np.int64)).to(device),
                torch.from_numpy(M.indices.astype(np.int64)).to(device),
                torch.from_numpy(M.data).to(device),
                M.shape,
            )

        self.shape = Y.shape
        self.Y, self.Y_t = tensor(Y), tensor(Y_t)
        self.y_sq = float(np.dot(Y.data, Y.data))

    def __call__(self, H, linear):
        """Return the mean of ``(linear(H) - Y)^2`` over all n x p entries."""
        n, p = self.shape
        H1 = torch.cat([H.double(), H.new_ones(n, 1, dtype=torch.float64)], 1)
        W1 = torch.cat([linear.weight, linear.bias[:, None]], 1).double()
        squares = ((H1.T @ H1) * (W1.T @ W1)).sum()
        cross = (H1 * sparse_matmul(self.Y, W1, self.Y_t)).sum()
        return (squares - 2.0 * cross + self.y_sq) / (n * p)


class MeanAggregation:
    """Weighted mean aggregation ``(A h)_i = sum_j w_ij h_j / deg_i``.

    The message passing of DGL's ``SAGEConv(aggregator_type="mean")`` with
    edge weights, which DANCE's scMoGNN uses on every relation: a node
    receives the mean over its in-edges (``deg_i`` = their number) of the
    weighted sources.  Edge dropout (DANCE's ``edge_dropout``) zeroes edge
    weights and rescales the others by ``1 / (1 - p)``; the degrees stay.
    Held as torch CSR tensors with a prebuilt transpose for the gradient.

    Parameters
    ----------
    weights : scipy.sparse matrix of shape (n_dst, n_src)
        Edge weights, one row per receiving node (zeros are not edges).
    device : str or torch.device, default="cpu"
        Where the tensors live.
    dtype : torch.dtype, default=torch.float32
        Type of the weights (that of the features it aggregates).

    Examples
    --------
    >>> import numpy as np, torch
    >>> from skdance.nn import MeanAggregation
    >>> op = MeanAggregation(np.array([[1.0, 3.0], [2.0, 0.0]]))
    >>> op(torch.ones(2, 1)).ravel().tolist()
    [2.0, 2.0]
    """

    def __init__(self, weights, device="cpu", dtype=torch.float32):
        W = cell_feature_weights(weights)
        n_dst, n_src = W.shape
        deg = np.diff(W.indptr)
        rows = np.repeat(np.arange(n_dst), deg)
        values = W.data / np.maximum(deg[rows], 1)
        order = np.lexsort((rows, W.indices))  # CSR order of the transpose
        crow_t = np.zeros(n_src + 1, dtype=np.int64)
        crow_t[1:] = np.cumsum(np.bincount(W.indices, minlength=n_src))
        self.shape = (n_dst, n_src)
        self.nnz = W.nnz
        device = torch.device(device)
        self.crow = torch.from_numpy(W.indptr.astype(np.int64)).to(device)
        self.col = torch.from_numpy(W.indices.astype(np.int64)).to(device)
        self.values = torch.from_numpy(values).to(device=device, dtype=dtype)
        self.crow_t = torch.from_numpy(crow_t).to(device)
        self.col_t = torch.from_numpy(rows[order].astype(np.int64)).to(device)
        self.order = torch.from_numpy(order.astype(np.int64)).to(device)
        self._fixed = None

    def _tensors(self, values):
        return (
            _csr_tensor(self.crow, self.col, values, self.shape),
            _csr_tensor(self.crow_t, self.col_t, values[self.order], self.shape[::-1]),
        )

    def __call__(self, h, edge_dropout=0.0):
        """Aggregate source features ``h`` (n_src, d) into (n_dst, d)."""
        if edge_dropout > 0:
            A, A_t = self._tensors(F.dropout(self.values, edge_dropout, True))
        else:
            if self._fixed is None:
                self._fixed = self._tensors(self.values)
            A, A_t = self._fixed
        return sparse_matmul(A, h, A_t)


class CellFeatureGraph(NamedTuple):
    """The three relations of scMoGNN's graph as mean aggregations."""

    feature_to_cell: MeanAggregation
    """Cells receive from their features, (n_cells, n_features)."""
    cell_to_feature: MeanAggregation
    """Features receive from the cells expressing them, (n_features, n_cells)."""
    feature_to_feature: MeanAggregation | None
    """Features receive from linked features (gene sets), or None."""


def cell_feature_graph(weights, feature_links=None, device="cpu"):
    """Build the relations of scMoGNN's graph (DANCE eq. 29).

    Parameters
    ----------
    weights : scipy.sparse matrix of shape (n_cells, n_features)
        Cell -> feature edge weights (``X`` in eq. 29).
    feature_links : scipy.sparse matrix of shape (n_features, n_features), \
default=None
        Feature -> feature weights (``P`` in eq. 29); None or empty: none.
    device : str or torch.device, default="cpu"
        Where the tensors live.

    Returns
    -------
    graph : CellFeatureGraph
    """
    W = cell_feature_weights(weights)
    links = None
    if feature_links is not None and sp.csr_matrix(feature_links).nnz:
        links = MeanAggregation(feature_links, device)
    return CellFeatureGraph(
        MeanAggregation(W, device), MeanAggregation(W.T.tocsr(), device), links
    )


class SAGELayer(nn.Module):
    """GraphSAGE layer with mean aggregation: ``W_s h_i + W_n mean_j(w_ij h_j) + b``.

    DGL's ``SAGEConv(aggregator_type="mean", norm=None)``, as DANCE's scMoGNN
    uses it on every relation: Xavier-uniform weights with the ReLU gain, a
    zero bias.  The neighbour transform is applied before the aggregation
    (equal by linearity, cheaper when the output is narrower).

    Parameters
    ----------
    in_dim, out_dim : int
        Input and output widths.
    """

    def __init__(self, in_dim, out_dim):
        super().__init__()
        self.lin_self = nn.Linear(in_dim, out_dim, bias=False)
        self.lin_neighbor = nn.Linear(in_dim, out_dim, bias=False)
        self.bias = nn.Parameter(torch.zeros(out_dim))
        self.reset_parameters()

    def reset_parameters(self):
        """DGL's initialisation."""
        gain = nn.init.calculate_gain("relu")
        nn.init.xavier_uniform_(self.lin_self.weight, gain=gain)
        nn.init.xavier_uniform_(self.lin_neighbor.weight, gain=gain)
        nn.init.zeros_(self.bias)

    def forward(self, h_dst, h_src, aggregation, edge_dropout=0.0):
        """Update the receiving nodes ``h_dst`` from the sources ``h_src``."""
        neighbor = aggregation(self.lin_neighbor(h_src), edge_dropout)
        return self.lin_self(h_dst) + neighbor + self.bias
