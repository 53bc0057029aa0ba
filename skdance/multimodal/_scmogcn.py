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
cells passed with it.

The three estimators (prediction, matching, joint embedding) train their
networks through one loop, :func:`train_scmognn`.  The pieces other models
can use live in the shared layers: the graph's edge weights and feature
links in :mod:`skdance.graph` (:func:`~skdance.graph.cell_feature_weights`,
:func:`~skdance.graph.gene_set_links`,
:func:`~skdance.graph.correlation_links`), its torch relations and the
GraphSAGE layer in :mod:`skdance.nn` (:func:`~skdance.nn.cell_feature_graph`,
:class:`~skdance.nn.MeanAggregation`, :class:`~skdance.nn.SAGELayer`), and
LSI in :mod:`skdance.preprocessing` (:class:`~skdance.preprocessing.LSI`).
"""

from math import gcd
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
import torch
from scipy.optimize import linear_sum_assignment
from torch import nn
from torch.nn import functional as F

from skdance.nn import FCLayers, SAGELayer

__all__ = [
    "EmbeddingLayout",
    "FeaturePropagation",
    "HeteroGraphEncoder",
    "ScMoGNNEmbeddingModule",
    "ScMoGNNGraphEmbeddingModule",
    "ScMoGNNMatchingModule",
    "ScMoGNNPredictionModule",
    "bipartite_matching",
    "train_scmognn",
]


# -- the trainable network (prediction, joint embedding v2) -------------------
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
    >>> from skdance.multimodal._scmogcn import HeteroGraphEncoder
    >>> from skdance.nn import cell_feature_graph
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
        to_cell : skdance.nn.MeanAggregation
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
    >>> from skdance.multimodal._scmogcn import ScMoGNNGraphEmbeddingModule
    >>> from skdance.nn import cell_feature_graph
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


# -- training (prediction, matching, joint embedding) --------------------------
def train_scmognn(
    run,
    module,
    optimizer,
    loss_fn,
    train,
    *,
    max_epochs,
    batch_size=None,
    weights=None,
    valid=None,
    valid_fn=None,
    monitor="valid_loss",
    patience=None,
    min_batch=1,
    epoch_end=None,
):
    """Train one scMoGNN network: the loop its three tasks share.

    Each epoch puts ``module`` in training mode and takes one optimiser step
    on the whole training set (``batch_size=None``) or one per shuffled
    mini-batch of ``train`` (the fit's generator); the step minimises the
    weighted sum of the losses ``loss_fn`` returns.  After it, the
    validation rows are scored in evaluation mode without gradients, and
    the state of the best epoch by ``monitor`` is restored at the end
    (:meth:`~skdance.nn.Trainer.run`).

    Parameters
    ----------
    run : skdance.nn.TrainingRun
        The fit (from :func:`skdance.nn.training`); its generator shuffles.
    module : torch.nn.Module
        The network, on the run's device.
    optimizer : torch.optim.Optimizer
        Its optimiser.
    loss_fn : callable
        ``loss_fn(idx)`` with ``idx`` a CPU ``LongTensor`` of training rows
        (None on full batch) returns the loss tensor, a dict of unweighted
        loss tensors, or a pair ``(dict, accuracy)``.
    train : ndarray of int
        The training rows.
    max_epochs : int
        Number of epochs.
    batch_size : int or None, default=None
        Rows per step; None: one full-batch step per epoch.
    weights : dict of str to float, default=None
        Weight of each loss of the dict (1 for a loss not named).
    valid : ndarray of int, default=None
        The validation rows; no validation when None or empty.
    valid_fn : callable, default=None
        ``valid_fn(valid)`` returns a dict of validation values with
        ``monitor`` among them, or the validation loss as a float.
    monitor : str, default="valid_loss"
        The validation value to minimise (``"-valid_accuracy"`` maximises).
    patience : int or None, default=None
        Stop after this many epochs without a better ``monitor``.
    min_batch : int, default=1
        Skip mini-batches smaller than this.
    epoch_end : callable, default=None
        ``epoch_end(epoch)`` runs after each epoch's steps (e.g. a
        learning-rate decay).

    Returns
    -------
    best_epoch : int or None
        The epoch whose state was kept when validating, else None.

    Notes
    -----
    Each epoch records ``train_loss`` (the weighted loss, averaged over the
    rows of the steps taken), ``loss_<name>`` (each loss of a dict,
    averaged over the steps) and ``train_accuracy`` (when ``loss_fn``
    returns one), then the values of ``valid_fn``.
    """
    trainer = run.trainer
    weights = {} if weights is None else weights
    train = np.asarray(train)
    sums, counts = {}, {"steps": 0, "rows": 0}
    multi = [False]

    def step_loss(idx):
        out = loss_fn(idx)
        parts, accuracy = out if isinstance(out, tuple) else (out, None)
        counts["steps"] += 1
        counts["rows"] += train.size if idx is None else len(idx)
        if accuracy is not None:
            sums["accuracy"] = sums.get("accuracy", 0.0) + accuracy
        if not isinstance(parts, dict):
            return parts
        multi[0] = True
        for key, value in parts.items():
            sums[key] = sums.get(key, 0.0) + float(value.detach())
        return sum(weights.get(k, 1.0) * v for k, v in parts.items())

    def epoch(index):
        module.train()
        sums.clear()
        counts.update(steps=0, rows=0)
        if batch_size is None:
            loss = trainer.step(optimizer, step_loss(None))
        else:
            loss = trainer.minibatch_epoch(
                optimizer,
                step_loss,
                train.size,
                batch_size,
                run.generator,
                indices=train,
                min_batch=min_batch,
            )
            if 0 < counts["rows"] < train.size:  # per row of the steps taken
                loss = loss * train.size / counts["rows"]
        if epoch_end is not None:
            epoch_end(index)
        steps = max(counts["steps"], 1)
        accuracy = sums.pop("accuracy", None)
        record = {"train_loss": loss}
        if multi[0]:
            record.update({f"loss_{k}": v / steps for k, v in sums.items()})
        if accuracy is not None:
            record["train_accuracy"] = accuracy / steps
        return record

    def validate():
        module.eval()
        with torch.no_grad():
            out = valid_fn(valid)
        return out if isinstance(out, dict) else {"valid_loss": float(out)}

    has_valid = valid is not None and len(valid) > 0 and valid_fn is not None
    return run.run(
        "train",
        max_epochs,
        epoch,
        valid_fn=validate if has_valid else None,
        monitor=monitor,
        patience=patience,
        module=module,
    )
