"""scMoGNN's graphs and networks, shared by its multimodal estimators.

scMoGNN (Wen et al. 2022) represents a modality as a cell-feature bipartite
graph (DANCE eq. 29: cells linked to the features they express, weighted by
the value; features optionally linked to one another through gene sets) and
learns on it in two ways, both here:

* a trainable heterogeneous graph network (DANCE eqs. 30-33;
  :class:`HeteroGraphEncoder`, :class:`ScMoGNNPredictionModule`): learnt
  feature and cell embeddings, GraphSAGE-style mean aggregation over the
  feature -> cell, cell -> feature and feature -> feature edges, group
  normalisation, GELU, residual concatenation and a weighted sum of the
  layers' cell embeddings; used for modality prediction;
* a parameter-free propagation of one-hot feature identities over the
  same kind of graph (:class:`FeaturePropagation`, DANCE's
  ``cell_feature_propagation``), whose per-layer cell states feed
  multilayer perceptrons; used for modality matching
  (:class:`ScMoGNNMatchingModule`) and joint embedding.

Both are *inductive* here: the feature nodes are computed from the training
cells once, and a new cell's state follows from its edges to them (its
features' states), so the output for a cell does not depend on the other
cells passed with it.  The scipy -> torch conversion of the graphs is done
by :class:`MeanAggregation`.
"""

import os
from collections.abc import Mapping
from math import gcd
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
import torch
from scipy.optimize import linear_sum_assignment
from sklearn.decomposition import TruncatedSVD
from torch import nn
from torch.nn import functional as F

from skdance.graph._bipartite import _CHUNK, correlation_links
from skdance.graph._bipartite import _float_csc as _csc
from skdance.nn import FCLayers, sparse_matmul
from skdance.nn._graph_layers import _csr_tensor
from skdance.preprocessing._utils import normalize_rows

__all__ = [
    "LSI",
    "CellFeatureGraph",
    "EmbeddingLayout",
    "FeaturePropagation",
    "HeteroGraphEncoder",
    "MeanAggregation",
    "SAGELayer",
    "ScMoGNNEmbeddingModule",
    "ScMoGNNGraphEmbeddingModule",
    "ScMoGNNMatchingModule",
    "ScMoGNNPredictionModule",
    "SparseTargetMSE",
    "bipartite_matching",
    "cell_feature_graph",
    "cell_feature_weights",
    "correlation_links",
    "gene_set_links",
    "read_gene_sets",
]

# columns of the feature-feature products done at once (memory ~ p x CHUNK)


# -- graphs (scipy) ----------------------------------------------------------
def cell_feature_weights(X):
    """Cell -> feature edge weights of DANCE eq. 29: ``X`` with zeros dropped.

    Parameters
    ----------
    X : {ndarray, sparse matrix} of shape (n_cells, n_features)
        Values of the modality (any sign).

    Returns
    -------
    weights : scipy.sparse.csr_matrix of shape (n_cells, n_features)
        One edge per non-zero value, weighted by it (float64, sorted indices).

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.multimodal._scmogcn import cell_feature_weights
    >>> cell_feature_weights(np.array([[0.0, 2.0], [1.0, 0.0]])).nnz
    2
    """
    W = sp.csr_matrix(X, dtype=np.float64, copy=True)
    W.sum_duplicates()
    W.eliminate_zeros()
    W.sort_indices()
    return W


def read_gene_sets(gene_sets):
    """Gene sets as a dict ``name -> list of feature names``.

    Parameters
    ----------
    gene_sets : dict or path-like
        A mapping from set name to an iterable of feature names, or the path
        of a GMT file (one set per line, tab-separated: name, description,
        members; the MSigDB and Enrichr format).

    Returns
    -------
    sets : dict of str to list of str
        The sets, in file (or mapping) order.

    Examples
    --------
    >>> from skdance.multimodal._scmogcn import read_gene_sets
    >>> read_gene_sets({"TCR": ("CD3E", "CD3D")})
    {'TCR': ['CD3E', 'CD3D']}
    """
    if isinstance(gene_sets, (str, os.PathLike)):
        sets = {}
        with open(gene_sets, encoding="utf-8") as handle:
            for line in handle:
                parts = line.rstrip("\r\n").split("\t")
                members = [m.strip() for m in parts[2:] if m.strip()]
                if parts[0].strip() and members:
                    sets.setdefault(parts[0].strip(), []).extend(members)
        if not sets:
            raise ValueError(
                f"gene_sets: no gene set found in {os.fspath(gene_sets)!r} (a GMT "
                "file has one set per line: name<TAB>description<TAB>members...)."
            )
        return sets
    if isinstance(gene_sets, Mapping):
        sets = {}
        for name, members in gene_sets.items():
            if isinstance(members, str) or not hasattr(members, "__iter__"):
                raise ValueError(
                    f"gene_sets[{name!r}] must be a list of feature names, got "
                    f"{type(members).__name__}."
                )
            sets[str(name)] = [str(m) for m in members]
        return sets
    raise ValueError(
        "gene_sets must be a dict (set name -> feature names) or the path of a "
        f"GMT file, got {type(gene_sets).__name__}."
    )


def _column_norms(X):
    return np.sqrt(np.asarray(X.multiply(X).sum(axis=0)).ravel())


def gene_set_links(gene_sets, feature_names, X):
    """Feature-feature links of scMoGNN's pathway graph.

    Two features are linked when some gene set holds both; the link is
    weighted by the cosine similarity of their values over the cells of
    ``X`` (DANCE's ``pathway_weight="cos"``, the setting of its GEX -> ADT
    command line).  Links of zero similarity are dropped.

    Parameters
    ----------
    gene_sets : dict or path-like
        See :func:`read_gene_sets`.
    feature_names : array-like of str of shape (n_features,)
        Names of the columns of ``X``.
    X : {ndarray, sparse matrix} of shape (n_cells, n_features)
        Values the similarities are computed from (never densified).

    Returns
    -------
    links : scipy.sparse.csr_matrix of shape (n_features, n_features)
        Symmetric, no self links.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.multimodal._scmogcn import gene_set_links
    >>> X = np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
    >>> gene_set_links({"s": ["a", "b"]}, ["a", "b", "c"], X).toarray().round(3)
    array([[0.   , 0.707, 0.   ],
           [0.707, 0.   , 0.   ],
           [0.   , 0.   , 0.   ]])
    """
    sets = read_gene_sets(gene_sets)
    names = [str(n) for n in feature_names]
    p = len(names)
    index = {}
    for i, name in enumerate(names):
        index.setdefault(name, i)
    rows, cols = [], []
    for members in sets.values():
        idx = np.unique([index[m] for m in members if m in index])
        if idx.size < 2:
            continue
        r, c = np.meshgrid(idx, idx, indexing="ij")
        keep = r != c
        rows.append(r[keep])
        cols.append(c[keep])
    if not rows:
        return sp.csr_matrix((p, p))
    pattern = sp.csr_matrix(
        (
            np.ones(sum(r.size for r in rows)),
            (np.concatenate(rows), np.concatenate(cols)),
        ),
        shape=(p, p),
    )
    pattern.sum_duplicates()
    pattern.sort_indices()
    Xc = _csc(X)
    norms = _column_norms(Xc)
    values = np.empty(pattern.nnz)
    for start in range(0, p, _CHUNK):
        stop = min(start + _CHUNK, p)
        lo, hi = pattern.indptr[start], pattern.indptr[stop]
        if lo == hi:
            continue
        gram = (Xc[:, start:stop].T @ Xc).toarray()  # (chunk, p)
        r = np.repeat(
            np.arange(stop - start), np.diff(pattern.indptr[start : stop + 1])
        )
        c = pattern.indices[lo:hi]
        denom = norms[start + r] * norms[c]
        values[lo:hi] = np.divide(
            gram[r, c], denom, out=np.zeros(hi - lo), where=denom > 0
        )
    links = sp.csr_matrix((values, pattern.indices, pattern.indptr), shape=(p, p))
    links.eliminate_zeros()
    return links


# -- graphs (torch) ----------------------------------------------------------
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
    >>> from skdance.multimodal._scmogcn import SparseTargetMSE
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
    >>> from skdance.multimodal._scmogcn import MeanAggregation
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


# -- the trainable network (prediction) --------------------------------------
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


class HeteroGraphEncoder(nn.Module):
    """scMoGNN's heterogeneous graph network on a cell-feature graph.

    DANCE eqs. 30-32 as in DANCE's ``ScMoGCN`` (``predict_modality``):

    * layer-0 states: a learnt embedding per feature (``nn.Embedding``) and
      one learnt vector shared by every cell (DANCE's ``cell_init="none"``),
      both through a leaky ReLU;
    * layer ``l``: cells ``GELU(GroupNorm(SAGE(cell, features)))`` (eq. 30);
      features ``GELU((1 - a) GroupNorm(SAGE(feature, cells)) + a
      GroupNorm(SAGE(feature, linked features)))`` with ``a =
      link_weight`` (eq. 31; DANCE's ``pathway_aggregation="alpha"``), or
      the first term alone without feature links; dropout after each;
    * from layer 1 on, each node's input is its state concatenated with its
      layer-0 state (``residual="initial"``, DANCE's ``res_cat`` with
      ``initial_residual``) or with its previous state (``"previous"``,
      ``res_cat``); None feeds the state alone.

    Parameters
    ----------
    n_features : int
        Number of feature nodes.
    hidden_dim : int
        Width of every state.
    n_layers : int
        Number of graph layers.
    feature_links : bool, default=False
        Create the feature -> feature layers.
    residual : {"initial", "previous"} or None, default="initial"
        See above.
    dropout : float, default=0.2
        Dropout on every layer's output (DANCE's ``model_dropout``).
    edge_dropout : float, default=0.3
        Edge-weight dropout (DANCE's ``edge_dropout``).
    link_weight : float, default=0.25
        ``a`` above (DANCE's ``pathway_alpha``).

    Examples
    --------
    >>> import numpy as np, torch
    >>> from skdance.multimodal._scmogcn import HeteroGraphEncoder, cell_feature_graph
    >>> graph = cell_feature_graph(np.array([[1.0, 0.0, 2.0], [0.0, 3.0, 1.0]]))
    >>> cells, features_in = HeteroGraphEncoder(3, 8, 2)(graph)
    >>> [tuple(c.shape) for c in cells], [tuple(f.shape) for f in features_in]
    ([(2, 8), (2, 8)], [(3, 8), (3, 16)])
    """

    def __init__(
        self,
        n_features,
        hidden_dim,
        n_layers,
        *,
        feature_links=False,
        residual="initial",
        dropout=0.2,
        edge_dropout=0.3,
        link_weight=0.25,
    ):
        super().__init__()
        if residual not in ("initial", "previous", None):
            raise ValueError(
                f"residual must be 'initial', 'previous' or None, got {residual!r}."
            )
        self.residual = residual
        self.dropout = dropout
        self.edge_dropout = edge_dropout
        self.link_weight = link_weight
        self.n_layers = n_layers
        self.feature_embedding = nn.Embedding(n_features, hidden_dim)
        self.cell_embedding = nn.Parameter(torch.randn(hidden_dim))
        wide = hidden_dim * (1 if residual is None else 2)
        widths = [hidden_dim] + [wide] * (n_layers - 1)
        groups = gcd(4, hidden_dim)

        def norms():
            return nn.ModuleList(nn.GroupNorm(groups, hidden_dim) for _ in widths)

        self.to_cell = nn.ModuleList(SAGELayer(w, hidden_dim) for w in widths)
        self.to_feature = nn.ModuleList(SAGELayer(w, hidden_dim) for w in widths)
        self.cell_norms, self.feature_norms = norms(), norms()
        if feature_links:
            self.feature_to_feature = nn.ModuleList(
                SAGELayer(w, hidden_dim) for w in widths
            )
            self.link_norms = norms()
        else:
            self.feature_to_feature = self.link_norms = None
        self.activation = nn.GELU()

    def _edge_dropout(self):
        return self.edge_dropout if self.training else 0.0

    def _out(self, h):
        return F.dropout(self.activation(h), self.dropout, self.training)

    def _input(self, layer, h, previous, initial):
        if layer == 0 or self.residual is None:
            return h
        base = initial if self.residual == "initial" else previous
        return torch.cat([h, base], dim=1)

    def initial_cells(self, n_cells):
        """Layer-0 cell states (one shared learnt vector)."""
        return F.leaky_relu(self.cell_embedding).expand(n_cells, -1)

    def _cell_step(self, layer, cells_in, features_in, to_cell):
        h = self.to_cell[layer](cells_in, features_in, to_cell, self._edge_dropout())
        return self._out(self.cell_norms[layer](h))

    def _feature_step(self, layer, features_in, cells_in, graph):
        h = self.feature_norms[layer](
            self.to_feature[layer](
                features_in, cells_in, graph.cell_to_feature, self._edge_dropout()
            )
        )
        if self.feature_to_feature is not None and graph.feature_to_feature is not None:
            linked = self.link_norms[layer](
                self.feature_to_feature[layer](
                    features_in,
                    features_in,
                    graph.feature_to_feature,
                    self._edge_dropout(),
                )
            )
            h = (1.0 - self.link_weight) * h + self.link_weight * linked
        return self._out(h)

    def forward(self, graph):
        """Run every layer on ``graph`` (a :class:`CellFeatureGraph`).

        Returns
        -------
        cells : list of torch.Tensor of shape (n_cells, hidden_dim)
            Cell states after each layer.
        features_in : list of torch.Tensor
            The feature inputs of each layer (with the residual
            concatenation): what :meth:`embed_cells` needs for new cells.
        """
        n_cells = graph.feature_to_cell.shape[0]
        f0 = F.leaky_relu(self.feature_embedding.weight)
        c0 = self.initial_cells(n_cells)
        f, c, f_prev, c_prev = f0, c0, f0, c0
        cells, features_in = [], []
        for layer in range(self.n_layers):
            f_in = self._input(layer, f, f_prev, f0)
            c_in = self._input(layer, c, c_prev, c0)
            features_in.append(f_in)
            new_c = self._cell_step(layer, c_in, f_in, graph.feature_to_cell)
            # the last layer's feature states reach no cell: not computed
            new_f = (
                self._feature_step(layer, f_in, c_in, graph)
                if layer < self.n_layers - 1
                else f
            )
            f_prev, c_prev, f, c = f, c, new_f, new_c
            cells.append(c)
        return cells, features_in

    def embed_cells(self, to_cell, features_in):
        """Cell states of new cells from the fitted feature inputs.

        Parameters
        ----------
        to_cell : MeanAggregation
            The new cells' feature -> cell relation (n_new, n_features).
        features_in : list of torch.Tensor
            The feature inputs of each layer, from :meth:`forward` on the
            training graph.

        Returns
        -------
        cells : list of torch.Tensor of shape (n_new, hidden_dim)
        """
        c0 = self.initial_cells(to_cell.shape[0])
        c, c_prev = c0, c0
        cells = []
        for layer in range(self.n_layers):
            c_in = self._input(layer, c, c_prev, c0)
            c_prev, c = c, self._cell_step(layer, c_in, features_in[layer], to_cell)
            cells.append(c)
        return cells


class ScMoGNNPredictionModule(nn.Module):
    """scMoGNN for modality prediction: graph encoder, layer readout, linear head.

    ``Z = H W + b`` with ``H = sum_l softmax(w)_l H_c^(l)`` (DANCE eqs. 32-33
    with DANCE's ``weighted_sum`` readout and one readout layer; the ReLU of
    eq. 33 is left to the estimator, as DANCE applies it only when scoring).

    Parameters
    ----------
    n_features : int
        Input features (graph feature nodes).
    n_outputs : int
        Predicted features.
    hidden_dim : int
        Width of the graph states.
    n_layers : int
        Graph layers.
    **encoder_params
        Passed to :class:`HeteroGraphEncoder`.
    """

    def __init__(self, n_features, n_outputs, hidden_dim, n_layers, **encoder_params):
        super().__init__()
        self.encoder = HeteroGraphEncoder(
            n_features, hidden_dim, n_layers, **encoder_params
        )
        self.layer_weights = nn.Parameter(torch.zeros(n_layers))
        self.head = nn.Linear(hidden_dim, n_outputs)

    def mix(self, cells):
        """Return the head's input: the softmax-weighted sum of the cell states."""
        weights = torch.softmax(self.layer_weights, dim=0)
        return sum(w * c for w, c in zip(weights, cells))

    def readout(self, cells):
        """Prediction from the cell states of every layer."""
        return self.head(self.mix(cells))

    def forward(self, graph):
        """Predictions for the graph's cells and the feature inputs per layer."""
        cells, features_in = self.encoder(graph)
        return self.readout(cells), features_in

    def predict_cells(self, to_cell, features_in):
        """Predictions for new cells (see :meth:`HeteroGraphEncoder.embed_cells`)."""
        return self.readout(self.encoder.embed_cells(to_cell, features_in))


# -- parameter-free propagation (matching, joint embedding) -------------------
class LSI:
    """Latent semantic indexing, DANCE's ``lsiTransformer``.

    tf-idf (term frequency: each cell scaled to sum 1; inverse document
    frequency ``n_cells / column sum`` of the training cells), each cell
    scaled to sum 1 again, ``log1p(1e4 x)``, truncated SVD with one more
    component than asked, whose first (depth-like) component is dropped.
    Inputs with negative values (e.g. centred data) skip the tf-idf and the
    log and get the truncated SVD alone, all components kept.  Sparse input
    stays sparse.

    Parameters
    ----------
    n_components : int
        Components returned.
    random_state : int
        Seed of the randomised SVD.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.multimodal._scmogcn import LSI
    >>> X = np.random.default_rng(0).poisson(1.0, (20, 10)).astype(float)
    >>> LSI(3, 0).fit_transform(X).shape
    (20, 3)
    """

    def __init__(self, n_components, random_state):
        self.n_components = n_components
        self.random_state = random_state

    def _tfidf(self, X):
        T = normalize_rows(X, 1.0) @ sp.diags(self.idf_)
        T = sp.csr_matrix(normalize_rows(sp.csr_matrix(T), 1.0))
        T.data = np.log1p(T.data * 1e4)
        return T

    def fit_transform(self, X):
        """Fit on ``X`` (n_cells, n_features) and return its components."""
        X = sp.csr_matrix(X, dtype=np.float64)
        self.tfidf_ = not (X.nnz and X.data.min() < 0)
        extra = int(self.tfidf_)
        self.svd_ = TruncatedSVD(
            self.n_components + extra, random_state=self.random_state
        )
        if not self.tfidf_:
            return self.svd_.fit_transform(X)
        total = np.asarray(X.sum(axis=0)).ravel()
        self.idf_ = np.divide(
            X.shape[0], total, out=np.zeros_like(total), where=total > 0
        )
        return self.svd_.fit_transform(self._tfidf(X))[:, 1:]

    def transform(self, X):
        """Components of new cells."""
        X = sp.csr_matrix(X, dtype=np.float64)
        if not self.tfidf_:
            return self.svd_.transform(X)
        return self.svd_.transform(self._tfidf(X))[:, 1:]


def _standardise(h, guard):
    """DANCE's scalar standardisation ``(h - mean) / std`` (unbiased std).

    With ``guard`` (the raw aggregations), an all-zero-mean ``h`` is only
    centred, as DANCE's ``std if mean != 0 else 1``.
    """
    mean = float(h.mean())
    std = float(h.std(ddof=1)) if h.size > 1 else 1.0
    if (guard and mean == 0) or not np.isfinite(std) or std == 0:
        std = 1.0
    return (h - mean) / std, (mean, std)


class FeaturePropagation:
    """Parameter-free propagation over a cell-feature graph (DANCE's scMoGNN).

    DANCE's ``cell_feature_propagation`` (matching and joint embedding):
    feature nodes start as one-hot identities, cells as zeros; each of
    ``n_layers`` layers sums over the weighted edges (``W h_f`` into the
    cells, ``W.T h_c`` into the features), standardises the sums (one
    scalar mean and standard deviation per matrix), mixes them with the
    previous states half and half, and standardises again.  The cell states
    after layers 2..``n_layers`` are returned (``n_features`` columns each).

    Inductive: :meth:`fit_transform` runs on the training cells and keeps
    every layer's feature states and the cells' standardisation constants;
    :meth:`transform` runs new cells through the same steps against them, so
    a training cell gets its training states back and a new cell's states do
    not depend on the other new cells.

    Parameters
    ----------
    n_layers : int, default=4
        Propagation layers (DANCE's ``layers``).
    alpha, beta : float, default=0.5
        Weight of the previous feature / cell states in the mix.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.multimodal._scmogcn import FeaturePropagation
    >>> W = np.random.default_rng(0).normal(size=(30, 5))
    >>> prop = FeaturePropagation(4)
    >>> layers = prop.fit_transform(W)
    >>> len(layers), layers[0].shape
    (3, (30, 5))
    >>> bool(np.allclose(prop.transform(W[:4])[2], layers[2][:4]))
    True
    """

    def __init__(self, n_layers=4, alpha=0.5, beta=0.5):
        self.n_layers = n_layers
        self.alpha = alpha
        self.beta = beta

    def fit_transform(self, W):
        """Propagate over the training cells' weights ``W`` (n_cells, n_features)."""
        W = np.asarray(W, dtype=np.float64)
        n, p = W.shape
        h_f, h_c = np.eye(p), np.zeros((n, p))
        self.feature_states_, self.cell_constants_ = [], []
        out = []
        for _ in range(self.n_layers):
            self.feature_states_.append(h_f)
            sum_c, sum_f = W @ h_f, W.T @ h_c
            sum_f, _ = _standardise(sum_f, guard=True)
            sum_c, first = _standardise(sum_c, guard=True)
            h_f = self.alpha * h_f + (1 - self.alpha) * sum_f
            h_c = self.beta * h_c + (1 - self.beta) * sum_c
            h_f, _ = _standardise(h_f, guard=False)
            h_c, second = _standardise(h_c, guard=False)
            self.cell_constants_.append((first, second))
            out.append(h_c)
        return out[1:]

    def transform(self, W):
        """Propagate new cells (n_new, n_features) against the fitted features."""
        W = np.asarray(W, dtype=np.float64)
        h_c = np.zeros((W.shape[0], W.shape[1]))
        out = []
        for h_f, ((m1, s1), (m2, s2)) in zip(
            self.feature_states_, self.cell_constants_
        ):
            sum_c = (W @ h_f - m1) / s1
            h_c = self.beta * h_c + (1 - self.beta) * sum_c
            h_c = (h_c - m2) / s2
            out.append(h_c)
        return out[1:]


class ScMoGNNMatchingModule(nn.Module):
    """scMoGNN's matching head on propagated cell states (DANCE's ``ScMoGCN``).

    Each modality's input is a softmax-weighted sum of its propagated layers
    (learnt weights); an MLP encoder (Linear, GELU, dropout) maps it to a
    unit-norm embedding; ``S = scale * H1 H2^T`` (DANCE eq. 45 with its
    temperature ``exp(temp)`` as ``scale``).  MLP decoders give the
    translation (one modality's input from the other's embedding) and
    reconstruction losses.

    Parameters
    ----------
    n_inputs : tuple of int
        Input widths of the two modalities.
    n_layers : int
        Propagated layers per modality.
    hidden_dims : tuple of int
        Encoder hidden widths.
    latent_dim : int
        Embedding width.
    dropout : float
        Dropout after each hidden layer.
    logit_scale : float
        ``scale`` above.
    """

    def __init__(
        self, n_inputs, n_layers, hidden_dims, latent_dim, dropout, logit_scale
    ):
        super().__init__()
        self.logit_scale = logit_scale
        self.layer_weights = nn.ParameterList(
            nn.Parameter(torch.zeros(n_layers)) for _ in range(2)
        )

        def mlp(dims):
            return FCLayers(
                dims, activation=nn.GELU, last_activation=False, dropout=dropout
            )

        self.encoders = nn.ModuleList(
            mlp([n, *hidden_dims, latent_dim]) for n in n_inputs
        )
        self.decoders = nn.ModuleList(
            mlp([latent_dim, hidden_dims[-1] if hidden_dims else latent_dim, n])
            for n in n_inputs
        )

    def combine(self, layers, modality):
        """Softmax-weighted sum of a modality's propagated layers."""
        weights = torch.softmax(self.layer_weights[modality], dim=0)
        return sum(w * h for w, h in zip(weights, layers))

    def encode(self, x, modality):
        """Unit-norm embedding of a modality's combined input."""
        return F.normalize(self.encoders[modality](x), dim=1)

    def losses(self, layers1, layers2):
        """Compute the matching, translation and reconstruction losses of paired cells.

        Parameters
        ----------
        layers1, layers2 : list of torch.Tensor
            Propagated layers of the same cells in the two modalities.

        Returns
        -------
        losses : dict of torch.Tensor
            ``matching``: cross-entropy of ``S`` against the identity, both
            directions; ``translation``: MSE of each input decoded from the
            other modality's embedding; ``reconstruction``: MSE of each
            input decoded from its own embedding.
        accuracy : float
            Mean of the forward and backward top-1 matching accuracy.
        """
        x1, x2 = self.combine(layers1, 0), self.combine(layers2, 1)
        e1, e2 = self.encode(x1, 0), self.encode(x2, 1)
        logits = self.logit_scale * e1 @ e2.T
        target = torch.arange(logits.shape[0], device=logits.device)
        matching = F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)
        translation = F.mse_loss(self.decoders[0](e2), x1) + F.mse_loss(
            self.decoders[1](e1), x2
        )
        reconstruction = F.mse_loss(self.decoders[0](e1), x1) + F.mse_loss(
            self.decoders[1](e2), x2
        )
        with torch.no_grad():
            accuracy = 0.5 * (
                float((logits.argmax(1) == target).float().mean())
                + float((logits.argmax(0) == target).float().mean())
            )
        return {
            "matching": matching,
            "translation": translation,
            "reconstruction": reconstruction,
        }, accuracy


def bipartite_matching(emb1, emb2, threshold_quantile=0.95):
    """DANCE's bipartite post-processing of scMoGNN's matching scores.

    ``M = softmax_rows(E1 E2^T) + softmax_columns(E1 E2^T)``; entries below
    both their row's and their column's ``threshold_quantile`` quantile are
    removed; a maximum-weight assignment on the remaining entries
    (``scipy.optimize.linear_sum_assignment``; DANCE calls networkx's
    ``minimum_weight_full_matching`` on ``-M``) gives one partner per cell.
    When the kept entries admit no full assignment, the thresholded ``M``
    itself is returned, as DANCE does.

    Parameters
    ----------
    emb1 : ndarray of shape (n_x, d)
        Unit-norm embeddings of the first modality.
    emb2 : ndarray of shape (n_y, d)
        Unit-norm embeddings of the second modality.
    threshold_quantile : float or None, default=0.95
        Quantile below which entries are removed; None keeps every entry.

    Returns
    -------
    matching : scipy.sparse.csr_matrix of shape (n_x, n_y)
        A 0/1 assignment (one 1 per row of the smaller side), or the
        thresholded scores.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.multimodal._scmogcn import bipartite_matching
    >>> E = np.eye(3)
    >>> bipartite_matching(E, E[[2, 0, 1]]).toarray()
    array([[0., 1., 0.],
           [0., 0., 1.],
           [1., 0., 0.]])
    """
    logits = np.asarray(emb1, dtype=np.float64) @ np.asarray(emb2, dtype=np.float64).T
    rows = np.exp(logits - logits.max(axis=1, keepdims=True))
    cols = np.exp(logits - logits.max(axis=0, keepdims=True))
    weights = rows / rows.sum(axis=1, keepdims=True) + cols / cols.sum(
        axis=0, keepdims=True
    )
    if threshold_quantile is None:
        removed = np.zeros(weights.shape, dtype=bool)
    else:
        removed = (
            weights < np.quantile(weights, threshold_quantile, axis=0, keepdims=True)
        ) & (weights < np.quantile(weights, threshold_quantile, axis=1, keepdims=True))
    weights[removed] = 0.0
    try:
        r, c = linear_sum_assignment(np.where(removed, np.inf, -weights))
    except ValueError:  # no full assignment on the kept entries
        return sp.csr_matrix(weights)
    return sp.csr_matrix(
        (np.ones(r.size), (r, c)), shape=weights.shape, dtype=np.float64
    )


# -- joint embedding -----------------------------------------------------------
def _weighted_layers(weights, layers):
    """Softmax-weighted sum of per-layer states (DANCE's layer combination)."""
    w = torch.softmax(weights, dim=0)
    return sum(wi * h for wi, h in zip(w, layers))


class EmbeddingLayout(NamedTuple):
    """Which leading latent dimensions scMoGNN's auxiliary losses act on.

    The latent vector is ``[cell-type logits | regularised | cell cycle |
    free]``; a block of width 0 is absent (its loss is off).
    """

    n_cell_types: int
    """Dimensions read as cell-type logits (cross-entropy)."""
    n_regularized: int
    """Dimensions whose L2 norm is penalised (DANCE: one per batch)."""
    n_cell_cycle: int
    """Dimensions regressed on the cell-cycle scores (MSE)."""

    def slices(self):
        """Return the three blocks as slices of the latent vector."""
        a = self.n_cell_types
        b = a + self.n_regularized
        return slice(0, a), slice(a, b), slice(b, b + self.n_cell_cycle)


class ScMoGNNEmbeddingModule(nn.Module):
    """scMoGNN's joint-embedding autoencoder on propagated states (DANCE's v1).

    DANCE's ``joint_embedding/scmogcn.py`` ``ScMoGCN``: the input is a learnt
    softmax-weighted sum of the propagated layers (both modalities'
    states side by side); the encoder is ``Linear -> GELU -> BatchNorm1d
    -> Dropout`` per hidden width and a final ``Linear`` to the latent
    vector ``Z`` (the embedding); the decoder is ``Linear -> ReLU ->
    Linear`` (width: the first hidden width) with a final ReLU when
    ``output_relu``.  The auxiliary losses read the leading dimensions of
    ``Z`` (:class:`EmbeddingLayout`, DANCE eqs. 48-49).

    Parameters
    ----------
    n_inputs : int
        Width of the propagated states.
    n_layers : int
        Number of propagated layers combined.
    hidden_dims : tuple of int
        Encoder hidden widths (DANCE: 150, 120, 100).
    latent_dim : int
        Width of ``Z`` (DANCE: 61).
    dropout : float
        Dropout after every hidden layer (DANCE: 0.3).
    layout : EmbeddingLayout
        Latent blocks the auxiliary losses use.
    output_relu : bool, default=True
        End the decoder with a ReLU (DANCE).

    Examples
    --------
    >>> import torch
    >>> from skdance.multimodal._scmogcn import (
    ...     EmbeddingLayout, ScMoGNNEmbeddingModule)
    >>> module = ScMoGNNEmbeddingModule(6, 2, (8,), 4, 0.0, EmbeddingLayout(2, 0, 0))
    >>> layers = torch.randn(2, 5, 6)
    >>> module.encode(layers).shape
    torch.Size([5, 4])
    >>> parts = module.losses(layers, cell_types=torch.tensor([0, 1, 0, 1, 1]))
    >>> sorted(parts)
    ['cell_type', 'reconstruction']
    """

    def __init__(
        self,
        n_inputs,
        n_layers,
        hidden_dims,
        latent_dim,
        dropout,
        layout,
        output_relu=True,
    ):
        super().__init__()
        self.layout = EmbeddingLayout(*layout)
        self.layer_weights = nn.Parameter(torch.zeros(n_layers))
        blocks, width = [], n_inputs
        for h in hidden_dims:
            blocks += [nn.Linear(width, h), nn.GELU(), nn.BatchNorm1d(h)]
            blocks.append(nn.Dropout(dropout))
            width = h
        blocks.append(nn.Linear(width, latent_dim))
        self.encoder = nn.Sequential(*blocks)
        mid = hidden_dims[0] if hidden_dims else latent_dim
        decoder = [nn.Linear(latent_dim, mid), nn.ReLU(), nn.Linear(mid, n_inputs)]
        if output_relu:
            decoder.append(nn.ReLU())
        self.decoder = nn.Sequential(*decoder)

    def combine(self, layers):
        """Input of the encoder: the weighted sum of ``layers`` (n_layers, n, p)."""
        return _weighted_layers(self.layer_weights, layers)

    def encode(self, layers):
        """Embedding ``Z`` of the cells whose propagated ``layers`` are given."""
        return self.encoder(self.combine(layers))

    def forward(self, layers):
        """Return the combined input, the embedding and the reconstruction."""
        x = self.combine(layers)
        z = self.encoder(x)
        return x, z, self.decoder(z)

    def losses(self, layers, cell_types=None, cell_cycle=None):
        """Compute DANCE's losses of a mini-batch (unweighted).

        Parameters
        ----------
        layers : torch.Tensor of shape (n_layers, n_cells, n_inputs)
            Propagated states of the cells.
        cell_types : torch.LongTensor of shape (n_cells,), default=None
            Cell-type codes (the cell-type loss needs them).
        cell_cycle : torch.Tensor of shape (n_cells, n_cell_cycle), default=None
            Cell-cycle scores (the cell-cycle loss needs them).

        Returns
        -------
        losses : dict of torch.Tensor
            ``reconstruction``: MSE of the combined input (DANCE's target,
            not detached); ``cell_type``: cross-entropy of the cell-type
            block; ``regularization``: ``0.01`` times the sum over cells of
            the regularised block's L2 norm; ``cell_cycle``: MSE of the
            cell-cycle block.  Only the losses whose block and data exist.
        """
        x, z, recon = self(layers)
        types, regular, cycle = self.layout.slices()
        out = {"reconstruction": F.mse_loss(recon, x)}
        if self.layout.n_cell_types and cell_types is not None:
            out["cell_type"] = F.cross_entropy(z[:, types], cell_types)
        if self.layout.n_regularized:
            out["regularization"] = torch.linalg.norm(z[:, regular], dim=1).sum() * 0.01
        if self.layout.n_cell_cycle and cell_cycle is not None:
            out["cell_cycle"] = F.mse_loss(z[:, cycle], cell_cycle)
        return out


class ScMoGNNGraphEmbeddingModule(nn.Module):
    """scMoGNN's graph joint embedding (DANCE's ``scmogcnv2.py``).

    A :class:`HeteroGraphEncoder` on the cell-feature graph of both
    modalities' features (no feature links), the cell states of its layers
    summed with learnt softmax weights (DANCE's ``weighted_sum`` readout):
    that sum ``H`` is the embedding.  The decoder (DANCE's two readout
    layers: ``Linear -> GELU -> Dropout -> Linear``) reconstructs every
    input feature from ``H`` concatenated with the cell's one-hot batch
    (DANCE's decoder input; no batch block without batches).  With cell
    types or cell-cycle scores, linear heads read the first ``head_dims``
    dimensions of ``H`` (DANCE's ``c_decoder`` and ``cc_decoder`` on 20).

    Parameters
    ----------
    n_features : int
        Feature nodes (both modalities).
    hidden_dim : int
        Width of the node states and of ``H`` (DANCE: 56).
    n_layers : int
        Graph layers (DANCE's ``conv_layers``: 3).
    n_batches : int
        Width of the one-hot batch fed to the decoder (0: none).
    dropout : float
        Dropout of the graph layers and the decoder (DANCE: 0.4).
    edge_dropout : float
        Edge-weight dropout (DANCE: 0).
    residual : {"initial", "previous"} or None
        See :class:`HeteroGraphEncoder` (DANCE: ``"previous"``).
    n_cell_types : int, default=0
        Classes of the cell-type head (0: no head).
    n_cell_cycle : int, default=0
        Outputs of the cell-cycle head (0: no head).
    head_dims : int, default=20
        Leading dimensions of ``H`` the heads read.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from skdance.multimodal._scmogcn import (
    ...     ScMoGNNGraphEmbeddingModule, cell_feature_graph)
    >>> graph = cell_feature_graph(np.array([[1.0, 0.0, 2.0], [0.0, 3.0, 1.0]]))
    >>> module = ScMoGNNGraphEmbeddingModule(3, 8, 2, 0, 0.0, 0.0, "previous")
    >>> h, features_in = module(graph)
    >>> tuple(h.shape), tuple(module.decode(h).shape)
    ((2, 8), (2, 3))
    """

    def __init__(
        self,
        n_features,
        hidden_dim,
        n_layers,
        n_batches,
        dropout,
        edge_dropout,
        residual,
        n_cell_types=0,
        n_cell_cycle=0,
        head_dims=20,
    ):
        super().__init__()
        self.n_batches = n_batches
        self.head_dims = min(head_dims, hidden_dim)
        self.encoder = HeteroGraphEncoder(
            n_features,
            hidden_dim,
            n_layers,
            residual=residual,
            dropout=dropout,
            edge_dropout=edge_dropout,
        )
        self.layer_weights = nn.Parameter(torch.zeros(n_layers))
        width = hidden_dim + n_batches
        self.decoder = nn.Sequential(
            nn.Linear(width, width),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(width, n_features),
        )
        self.cell_type_head = (
            nn.Linear(self.head_dims, n_cell_types) if n_cell_types else None
        )
        self.cell_cycle_head = (
            nn.Linear(self.head_dims, n_cell_cycle) if n_cell_cycle else None
        )

    def readout(self, cells):
        """Embedding ``H``: the weighted sum of the layers' cell states."""
        return _weighted_layers(self.layer_weights, cells)

    def forward(self, graph):
        """Embedding of the graph's cells and the feature inputs per layer."""
        cells, features_in = self.encoder(graph)
        return self.readout(cells), features_in

    def embed_cells(self, to_cell, features_in):
        """Embedding of new cells (see :meth:`HeteroGraphEncoder.embed_cells`)."""
        return self.readout(self.encoder.embed_cells(to_cell, features_in))

    def decode(self, h, batch_onehot=None):
        """Reconstructed features from ``H`` (and the one-hot batches)."""
        if self.n_batches:
            h = torch.cat([h, batch_onehot], dim=1)
        return self.decoder(h)

    def losses(self, h, targets, batch_onehot=None, cell_types=None, cell_cycle=None):
        """Compute DANCE's v2 losses of cells with embedding ``h`` (unweighted).

        The reconstruction error is computed without forming the
        reconstruction: with ``A`` the decoder's last hidden layer and
        ``(W, b)`` its output layer, ``sum (A W^T + b - T)^2`` expands into
        ``A (W^T W) A^T``, ``b`` and ``T W`` terms, so the cost grows with
        the non-zeros of the target ``T`` and the number of features times
        the width squared, not with cells x features (25,000 ATAC peaks).

        Parameters
        ----------
        h : torch.Tensor of shape (n_cells, hidden_dim)
            Embedding.
        targets : tuple of 2 torch.Tensor
            The cells' input features of mod1 (n_cells, p1) and mod2
            (n_cells, p2), ``p1 + p2 = n_features``; dense or sparse COO.
        batch_onehot : torch.Tensor of shape (n_cells, n_batches), default=None
            One-hot batches (when the module has a batch block).
        cell_types : torch.LongTensor of shape (n_cells,), default=None
            Cell-type codes, for the cell-type head.
        cell_cycle : torch.Tensor of shape (n_cells, n_cell_cycle), default=None
            Cell-cycle scores, for the cell-cycle head.

        Returns
        -------
        losses : dict of torch.Tensor
            ``reconstruction``: ``0.5 MSE(mod1) + 0.5 MSE(mod2)``;
            ``cell_type``: cross-entropy of the cell-type head;
            ``cell_cycle``: MSE of the cell-cycle head (the last two when
            the heads and their data exist).
        """
        if self.n_batches:
            h_in = torch.cat([h, batch_onehot], dim=1)
        else:
            h_in = h
        hidden = self.decoder[:-1](h_in)
        last = self.decoder[-1]
        start, reconstruction = 0, 0.0
        for target in targets:
            stop = start + target.shape[1]
            reconstruction = reconstruction + 0.5 * _linear_mse(
                hidden, last.weight[start:stop], last.bias[start:stop], target
            )
            start = stop
        out = {"reconstruction": reconstruction}
        head = h[:, : self.head_dims]
        if self.cell_type_head is not None and cell_types is not None:
            out["cell_type"] = F.cross_entropy(self.cell_type_head(head), cell_types)
        if self.cell_cycle_head is not None and cell_cycle is not None:
            out["cell_cycle"] = F.mse_loss(self.cell_cycle_head(head), cell_cycle)
        return out


def _linear_mse(A, weight, bias, target):
    """``mean((A weight^T + bias - target)^2)`` without the (n, p) product.

    ``target`` is dense or sparse COO; the sums are expanded (see
    :meth:`ScMoGNNGraphEmbeddingModule.losses`).
    """
    n, p = A.shape[0], weight.shape[0]
    if not target.is_sparse:
        return F.mse_loss(F.linear(A, weight, bias), target)
    target = target.coalesce()
    gram = weight.T @ weight
    shift = weight.T @ bias
    square = (A @ gram * A).sum() + 2.0 * (A @ shift).sum() + n * (bias @ bias)
    cross = (A * torch.sparse.mm(target, weight)).sum()
    cross = cross + torch.sparse.mm(target, bias[:, None]).sum()
    total = (target.values() ** 2).sum()
    return (square - 2.0 * cross + total) / (n * p)
