"""scMoGNN: modality prediction with a graph network on the cell-feature graph."""

import copy
import os
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions

from skdance.graph import (
    cell_feature_weights,
    correlation_links,
    fit_graph,
    gene_set_links,
)
from skdance.multimodal._paired import MUDATA_CONSTRAINTS
from skdance.multimodal._scmogcn import ScMoGNNPredictionModule, train_scmognn
from skdance.multimodal.prediction._base import BaseModalityPredictor
from skdance.nn import (
    TORCH_CONSTRAINTS,
    VALIDATION_CONSTRAINTS,
    MeanAggregation,
    SparseTargetMSE,
    cell_feature_graph,
    cell_gene_inputs,
    dense_rows,
    stack_rows,
    training,
    validation_split,
)
from skdance.utils import check_random_state_int, fill_doc

__all__ = ["ScMoGNN"]

# cells predicted at once: at most _CHUNK_ROWS, and at most _CHUNK_VALUES
# predicted values (wide outputs such as 25,734 peaks get fewer cells)
_CHUNK_ROWS = 4096
_CHUNK_VALUES = 2**22
# a sparse target whose training block has more values than this is never
# densified: the full-batch loss is computed in closed form
_DENSE_TARGET_MAX = 2**25
# without gene sets (DANCE's pathway file is not available offline) features
# are linked by co-expression at this absolute Pearson correlation
_CORRELATION_THRESHOLD = 0.5


@fill_doc
class ScMoGNN(BaseModalityPredictor):
    """scMoGNN: predict a modality with a graph network on cells and features.

    The modality-prediction model of Wen et al. (2022) as in DANCE
    (``predict_modality/scmogcn.py``, DANCE eqs. 29-33):

    1. Graph (eq. 29): cells and input features are nodes; a cell is linked
       to every feature with a non-zero value, weighted by the value (the
       ``graph`` builder); features are linked to one another through gene
       sets (``gene_sets``: features in a common set, weighted by the cosine
       similarity of their values over the training cells, DANCE's
       ``pathway_weight="cos"``).  DANCE reads MSigDB's hallmark sets
       (``h.all.v7.4``), which no offline package ships; without
       ``gene_sets`` the features are linked by co-expression instead
       (``feature_graph``, default: the links of
       :class:`~skdance.graph.GeneCorrelationGraph` at ``|r| >= 0.5``,
       computed without densifying ``X``), or not at all
       (``feature_graph="drop"``, the setting of DANCE's example scripts,
       whose pathway flag is off unless given).
    2. Network (eqs. 30-32; :class:`~skdance.multimodal._scmogcn.
       HeteroGraphEncoder`, of :class:`~skdance.nn.SAGELayer` layers): a
       learnt embedding per feature and one learnt vector for every cell;
       ``n_layers`` heterogeneous layers of GraphSAGE mean aggregation
       over feature -> cell, cell -> feature and feature -> feature edges,
       group normalisation, GELU, dropout and edge dropout, the feature
       links mixed in with weight ``link_weight``; residual concatenation
       with the initial states (``residual="initial"``, DANCE's GEX -> ADT
       command line) or the previous ones; the cell states of all layers
       summed with learnt softmax weights.
    3. Head (eq. 33): a linear layer; mean squared error on the training
       cells; AdamW, full batch (``batch_size=None``; an int trains on
       sub-graphs of that many cells with all features, DANCE's
       ``sampling`` mode without its feature sampling).  DANCE applies a
       ReLU to the output when it scores; ``output_relu`` does so in
       ``predict``.
    4. Early stopping as DANCE: ``validation_fraction`` of the training
       cells stay in the graph but their targets are held out; the weights
       of the epoch with the lowest validation RMSE are kept.

    Transductive in DANCE (the test cells are nodes of the training graph),
    inductive here: ``predict`` gives each new cell the states that the
    fitted network computes from its edges to the trained feature nodes (the
    feature states of every layer, kept after ``fit``), so a cell's
    prediction depends only on its own values and on the training cells; a
    training cell gets its training prediction back.  DANCE's inductive
    mode does the same but re-runs the whole graph with the test cells
    added.

    Units: ``X`` and ``Y`` are used as given (DANCE trains on the
    competition's log-normalised GEX, CLR ADT, binary ATAC); ``Y`` is
    predicted in its own units.  Sparse ``X`` stays sparse (it is the edge
    list); targets are densified for the training cells.

    Deliberate differences from DANCE: no batch-label cell features
    (DANCE's ``BatchFeature``: ``fit`` takes no side information); no
    learning-rate decay (DANCE's starts after 1,200 epochs); DANCE
    early-stops only after epoch 1,500 with a patience of 200, here
    ``patience`` counts from the start.

    Parameters
    ----------
    graph : graph builder or None, default=None
        Builder of the cell-feature graph: its ``fit_transform(X)`` returns
        the ``(n_cells + n_features)`` square bipartite adjacency, whose
        cell -> feature block gives the edge weights (e.g.
        ``CellGeneGraph(weight="fraction")``).  None: ``X`` itself (every
        non-zero value an edge weighted by it; the same edges as
        ``CellGeneGraph(weight="expression")``, any sign allowed).
    gene_sets : dict, path-like or None, default=None
        Gene sets for the feature links: a dict (set name -> feature names)
        or a GMT file.  Needs feature names (a DataFrame or AnnData ``X``).
    feature_graph : graph builder, "drop" or None, default=None
        Feature links when ``gene_sets`` is None: a builder whose
        ``fit_transform(X)`` returns the ``(n_features, n_features)``
        adjacency (e.g. ``GeneCorrelationGraph(threshold=0.3)``); None:
        co-expression links at ``|r| >= 0.5`` (see above); ``"drop"``: no
        feature links.
    hidden_dim : int, default=64
        Width of the node states (DANCE: 48 by default, 256 in its GEX ->
        ADT command line).
    n_layers : int, default=4
        Graph layers (DANCE's ``conv_layers``).
    residual : {"initial", "previous"} or None, default="initial"
        Concatenate each layer's input with the initial or the previous
        states, or not at all.
    dropout : float, default=0.2
        Dropout on every layer's output (DANCE's ``model_dropout``).
    edge_dropout : float, default=0.3
        Edge-weight dropout (DANCE's ``edge_dropout``).
    link_weight : float, default=0.25
        Weight of the feature links in the feature update (DANCE's
        ``pathway_alpha``).
    output_relu : bool or "auto", default="auto"
        Clip predictions at 0 (DANCE scores ``ReLU(Z)``); ``"auto"`` clips
        when every training target is non-negative.
    max_epochs : int, default=500
        Training epochs.
    learning_rate : float, default=1e-2
        AdamW learning rate (DANCE).
    weight_decay : float, default=1e-5
        AdamW weight decay (DANCE).
    batch_size : int or None, default=None
        Training cells per step; None: the whole graph (DANCE's default).
    validation_fraction : float, default=0.15
        Fraction of the cells whose targets are held out for early stopping
        (DANCE: 0.15); 0 trains on all and keeps the last epoch.
    patience : int or None, default=50
        Stop after this many epochs without a lower validation RMSE; None
        runs ``max_epochs``.
    {device} {mudata_mods}
    random_state : int, RandomState instance or None, default=None
        Seeds the split, the initialisation and the dropout.
    {verbose}

    Attributes
    ----------
    module_ : ScMoGNNPredictionModule
        The trained network (on the CPU, eval mode).
    feature_states_ : list of ndarray
        Input feature states of each layer on the training graph (eval
        mode), from which ``predict`` embeds new cells.
    feature_links_ : scipy.sparse.csr_matrix of shape (n_features, n_features)
        The feature -> feature links used (empty when none).
    output_relu_ : bool
        Whether predictions are clipped at 0.
    history_ : list of dict
        One record per epoch: phase ("train"), epoch, train_loss (MSE),
        valid_loss (RMSE of the held-out cells) when cells are held out,
        seconds.
    best_epoch_ : int or None
        Epoch whose weights were kept; None without validation.
    n_iter_ : int
        Epochs run.
    n_features_in_ : int
        Number of input features.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Input feature names, when ``X`` had them.
    n_features_mod2_ : int
        Number of predicted features.
    feature_names_mod2_ : ndarray of shape (`n_features_mod2_`,)
        Predicted feature names, when ``Y`` had them.

    See Also
    --------
    skdance.multimodal.matching.scmogcn.ScMoGNNMatcher : scMoGNN for matching.

    References
    ----------
    Wen, Ding, Jin, Wang, Xie & Tang (2022), "Graph Neural Networks for
    Multimodal Single-Cell Data Integration", KDD 2022.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.multimodal.prediction.scmogcn import ScMoGNN
    >>> rng = np.random.default_rng(0)
    >>> X = rng.poisson(1.0, size=(60, 20)).astype(float)
    >>> Y = X[:, :5] * 2.0 + rng.normal(scale=0.1, size=(60, 5))
    >>> model = ScMoGNN(hidden_dim=16, n_layers=2, max_epochs=10,
    ...                 random_state=0).fit(X[:50], Y[:50])
    >>> model.predict(X[50:]).shape
    (10, 5)
    """

    _parameter_constraints = {
        **MUDATA_CONSTRAINTS,
        "graph": [HasMethods(["fit_transform"]), None],
        "gene_sets": [dict, str, os.PathLike, None],
        "feature_graph": [HasMethods(["fit_transform"]), StrOptions({"drop"}), None],
        "hidden_dim": [Interval(Integral, 1, None, closed="left")],
        "n_layers": [Interval(Integral, 1, None, closed="left")],
        "residual": [StrOptions({"initial", "previous"}), None],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "edge_dropout": [Interval(Real, 0, 1, closed="left")],
        "link_weight": [Interval(Real, 0, 1, closed="both")],
        "output_relu": ["boolean", StrOptions({"auto"})],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
        **VALIDATION_CONSTRAINTS,
        **TORCH_CONSTRAINTS,
    }

    def __init__(
        self,
        *,
        graph=None,
        gene_sets=None,
        feature_graph=None,
        hidden_dim=64,
        n_layers=4,
        residual="initial",
        dropout=0.2,
        edge_dropout=0.3,
        link_weight=0.25,
        output_relu="auto",
        max_epochs=500,
        learning_rate=1e-2,
        weight_decay=1e-5,
        batch_size=None,
        validation_fraction=0.15,
        patience=50,
        device="cpu",
        mudata_mods=None,
        random_state=None,
        verbose=0,
    ):
        self.graph = graph
        self.gene_sets = gene_sets
        self.feature_graph = feature_graph
        self.hidden_dim = hidden_dim
        self.n_layers = n_layers
        self.residual = residual
        self.dropout = dropout
        self.edge_dropout = edge_dropout
        self.link_weight = link_weight
        self.output_relu = output_relu
        self.max_epochs = max_epochs
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.device = device
        self.mudata_mods = mudata_mods
        self.random_state = random_state
        self.verbose = verbose

    # -- graph ---------------------------------------------------------------
    def _edge_weights(self, X):
        """Cell -> feature weights of ``X`` (n_cells, n_features)."""
        if self.graph is None:
            return cell_feature_weights(X)
        return cell_feature_weights(cell_gene_inputs(self.graph, X, edge_norm=False)[0])

    def _feature_links(self, X):
        p = X.shape[1]
        if self.gene_sets is not None:
            names = getattr(self, "feature_names_in_", None)
            if names is None:
                raise ValueError(
                    "ScMoGNN: gene_sets name features, so X must carry feature "
                    "names (a pandas DataFrame or an AnnData); got a matrix "
                    "without names."
                )
            links = gene_set_links(self.gene_sets, names, X)
            if links.nnz == 0:
                raise ValueError(
                    "ScMoGNN: no two features of X share a gene set (or every "
                    "shared pair has zero similarity); check that the gene set "
                    "members use X's feature names, or pass gene_sets=None."
                )
            return links
        if isinstance(self.feature_graph, str):  # "drop"
            return sp.csr_matrix((p, p))
        if self.feature_graph is None:
            return correlation_links(X, _CORRELATION_THRESHOLD)
        links = fit_graph(
            self.feature_graph, None, X, shape=(p, p), what="feature adjacency"
        )
        links = sp.csr_matrix(links, dtype=np.float64)
        links.setdiag(0)
        links.eliminate_zeros()
        return links

    # -- fit -----------------------------------------------------------------
    def _fit(self, X, Y):
        seed = check_random_state_int(self.random_state)
        with training(self, seed=seed) as run:
            self._train(run, X, Y)

    def _train(self, run, X, Y):
        device = run.device
        W = self._edge_weights(X)
        self.feature_links_ = self._feature_links(X)
        low = float(Y.min())
        self.output_relu_ = low >= 0 if self.output_relu == "auto" else self.output_relu
        n = X.shape[0]
        train, valid = validation_split(n, self.validation_fraction, run.seed)
        train = np.sort(train)
        full = cell_feature_graph(W, self.feature_links_, device)
        links = full.feature_to_feature
        full_batch = self.batch_size is None or self.batch_size >= train.size
        sparse_target = sp.issparse(Y) and train.size * Y.shape[1] > _DENSE_TARGET_MAX
        if full_batch:
            if sparse_target:
                target = SparseTargetMSE(Y[train], device)
            else:
                y_train = torch.from_numpy(
                    np.ascontiguousarray(dense_rows(Y, train), dtype=np.float32)
                ).to(device)
            train_t = torch.from_numpy(train).to(device)
        module = ScMoGNNPredictionModule(
            X.shape[1],
            Y.shape[1],
            self.hidden_dim,
            self.n_layers,
            feature_links=links is not None,
            residual=self.residual,
            dropout=self.dropout,
            edge_dropout=self.edge_dropout,
            link_weight=self.link_weight,
        )
        with torch.no_grad():  # start at the training mean (DANCE: at 0)
            module.head.bias.copy_(torch.from_numpy(_column_means(Y, train)))
        module = run.place(module)
        optimizer = torch.optim.AdamW(
            module.parameters(),
            lr=self.learning_rate,
            weight_decay=self.weight_decay,
        )

        def loss_of(idx):
            if idx is None:  # the whole graph, the training cells' targets
                if sparse_target:
                    cells, _ = module.encoder(full)
                    return target(module.mix(cells)[train_t], module.head)
                pred, _ = module(full)
                return torch.nn.functional.mse_loss(pred[train_t], y_train)
            idx = np.sort(idx.numpy())  # the sub-graph of the batch's cells
            graph = cell_feature_graph(W[idx], None, device)._replace(
                feature_to_feature=links
            )
            pred, _ = module(graph)
            batch_target = torch.from_numpy(
                np.ascontiguousarray(dense_rows(Y, idx), dtype=np.float32)
            ).to(device)
            return torch.nn.functional.mse_loss(pred, batch_target)

        valid_t = torch.from_numpy(valid).to(device)

        def validate(_):
            cells, _ = module.encoder(full)
            h = module.mix(cells)[valid_t]
            return {"valid_loss": self._rmse_rows(module.head, h, Y, valid)}

        self.best_epoch_ = train_scmognn(
            run,
            module,
            optimizer,
            loss_of,
            train,
            max_epochs=self.max_epochs,
            batch_size=None if full_batch else self.batch_size,
            valid=valid,
            valid_fn=validate,
            patience=self.patience,
        )
        module.eval()
        with torch.no_grad():
            _, features_in = module.encoder(full)
        self.feature_states_ = [f.cpu().numpy() for f in features_in]

    def _rmse_rows(self, head, h, Y, rows):
        """RMSE of ``head(h)`` (post-processed) against ``Y[rows]``, in row chunks."""
        total = 0.0
        chunk = _chunk_rows(Y.shape[1])
        for start in range(0, rows.size, chunk):
            stop = start + chunk
            pred = self._finish(head(h[start:stop]))
            block = Y[rows[start:stop]]
            if sp.issparse(block):  # sum (pred - y)^2 without densifying y
                block = sp.csr_matrix(block, dtype=np.float64)
                total += float(
                    (pred * pred).sum()
                    - 2.0 * block.multiply(pred).sum()
                    + block.multiply(block).sum()
                )
            else:
                total += float(((pred - block) ** 2).sum())
        return float(np.sqrt(total / (rows.size * Y.shape[1])))

    def _finish(self, pred):
        """Output post-processing: tensor -> float64 array, clipped at 0 if asked."""
        pred = pred.detach().cpu().numpy().astype(np.float64, copy=False)
        return np.maximum(pred, 0.0, out=pred) if self.output_relu_ else pred

    # -- predict -------------------------------------------------------------
    def _predict(self, X):
        W = self._edge_weights(X)
        # in float64: float32 products of different row counts round
        # differently, and a cell's prediction should not depend on the
        # cells predicted with it (inputs and weights are float32 values)
        module = copy.deepcopy(self.module_).double()
        features_in = [torch.from_numpy(f).double() for f in self.feature_states_]

        def block(start, stop):
            to_cell = MeanAggregation(W[start:stop], dtype=torch.float64)
            return self._finish(module.predict_cells(to_cell, features_in))

        with torch.no_grad():
            return stack_rows(block, W.shape[0], _chunk_rows(self.n_features_mod2_))


def _chunk_rows(n_outputs):
    """Cells per chunk when ``n_outputs`` values are predicted for each."""
    return max(1, min(_CHUNK_ROWS, _CHUNK_VALUES // max(n_outputs, 1)))


def _column_means(Y, rows):
    """Mean of every column of ``Y`` over ``rows`` (float32), sparse or dense."""
    if sp.issparse(Y):
        total = np.asarray(sp.csr_matrix(Y[rows], dtype=np.float64).sum(axis=0))
        return (total.ravel() / max(rows.size, 1)).astype(np.float32)
    total = np.zeros(Y.shape[1])
    for start in range(0, rows.size, _CHUNK_ROWS):
        block = np.asarray(Y[rows[start : start + _CHUNK_ROWS]], dtype=np.float64)
        total += block.sum(axis=0)
    return (total / max(rows.size, 1)).astype(np.float32)
