"""scDeepsort: cell-type annotation with a weighted cell-gene graph network."""

from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.decomposition import PCA
from sklearn.utils._param_validation import HasMethods, Interval
from torch import nn
from torch.nn import functional as F

from skdance.annotation._base import BaseAnnotator
from skdance.nn import (
    TORCH_CONSTRAINTS,
    cell_gene_inputs,
    to_torch_sparse,
    training,
    validation_split,
)
from skdance.preprocessing import normalize_rows
from skdance.utils import (
    check_counts,
    check_no_empty_rows,
    check_random_state_int,
    fill_doc,
)

__all__ = ["ScDeepsort"]


def log_normalize(X, target_sum=1e4):
    """Seurat's ``LogNormalize``: ``log1p(x / total * target_sum)`` per cell.

    Parameters
    ----------
    X : {ndarray, sparse matrix} of shape (n_cells, n_genes)
        Non-negative counts.
    target_sum : float, default=1e4
        Total each cell is scaled to before the logarithm.

    Returns
    -------
    E : scipy.sparse.csr_matrix of shape (n_cells, n_genes), float64
        Log-normalised expression (zeros stay zero).
    """
    E = normalize_rows(sp.csr_matrix(X, dtype=np.float64, copy=True), target_sum)
    E.data = np.log1p(E.data)
    E.eliminate_zeros()
    return E


class ScDeepsortModule(nn.Module):
    """scDeepsort's network: weighted graph aggregation, dense layer, classifier.

    A cell node receives messages from the genes it expresses and from its
    own self loop (paper eq. 13; DANCE's ``AdaptiveSAGE``): the message of
    gene ``j`` is ``beta_j * w_ij * h_j`` with a learnable, shareable
    per-gene confidence ``beta_j``, the self-loop message ``alpha * h_i``;
    messages are averaged, passed through dropout, a linear layer and ReLU,
    then a linear classifier gives the logits.  ``beta`` and ``alpha`` start
    at 1; the linear weights are Xavier-initialised with the ReLU gain.
    """

    def __init__(self, n_genes, in_dim, hidden_dim, n_classes, dropout):
        super().__init__()
        self.beta = nn.Parameter(torch.ones(n_genes))
        self.alpha = nn.Parameter(torch.ones(1))
        self.dropout = nn.Dropout(dropout)
        self.hidden = nn.Linear(in_dim, hidden_dim)
        self.classifier = nn.Linear(hidden_dim, n_classes)
        gain = nn.init.calculate_gain("relu")
        nn.init.xavier_uniform_(self.hidden.weight, gain=gain)
        nn.init.xavier_uniform_(self.classifier.weight, gain=gain)

    def aggregate(self, weights, gene_feats, cell_feats, self_loops, n_in):
        """Mean of the weighted gene messages and the self-loop message.

        Parameters
        ----------
        weights : torch sparse tensor of shape (n_cells, n_genes)
            Normalised gene -> cell edge weights.
        gene_feats : Tensor of shape (n_genes, in_dim)
            Gene node features.
        cell_feats : Tensor of shape (n_cells, in_dim)
            The cells' own node features.
        self_loops : Tensor of shape (n_cells,)
            Self-loop edge weights (1, or 0 without self loops).
        n_in : Tensor of shape (n_cells,)
            Number of incoming edges (genes + self loop).
        """
        genes = torch.sparse.mm(weights, self.beta[:, None] * gene_feats)
        own = self.alpha * self_loops[:, None] * cell_feats
        return (genes + own) / n_in[:, None]

    def forward(self, weights, gene_feats, cell_feats, self_loops, n_in):
        """Class logits of the cells."""
        h = self.aggregate(weights, gene_feats, cell_feats, self_loops, n_in)
        h = F.relu(self.hidden(self.dropout(h)))
        return self.classifier(h)


@fill_doc
class ScDeepsort(BaseAnnotator):
    """scDeepsort: a weighted graph neural network over cells and genes.

    The method of Shao et al. (2021) as its code and DANCE's run it:

    1. Expression: Seurat's ``LogNormalize`` (``log1p`` of counts scaled to
       10,000 per cell; ``normalize=True``, else the input is taken as
       already log-normalised).
    2. Graph: the cell-gene graph (``graph``, default
       :class:`~skdance.graph.CellGeneGraph` with ``weight="fraction"`` and
       self loops) links each cell to the genes it expresses; each cell's
       incoming gene-edge weights are rescaled to mean 1
       (``normalize_weight``), self loops weigh 1.
    3. Node features: gene nodes get ``n_components`` principal components of
       the genes in the training cells' expression (PCA of the genes x cells
       matrix); a cell node the expression-weighted mean of its genes'
       features.
    4. Network (:class:`ScDeepsortModule`): one weighted aggregation with the
       shareable per-gene confidences ``beta_j`` and self-loop weight
       ``alpha`` (eq. 13), dropout, ``Linear(n_components, hidden_dim)`` +
       ReLU, linear classifier.
    5. Training: cross-entropy summed over mini-batches of ``batch_size``
       cells, Adam (``learning_rate``, ``weight_decay``), ``max_epochs``
       epochs; ``validation_fraction`` of the training cells is held out and
       the epoch with the best validation accuracy is kept (ties: the later
       epoch), as scDeepsort and DANCE do.

    At ``predict`` the new cells are added to the graph with edges from the
    genes they express (inductive); the gene features and all weights are the
    trained ones, so a cell's prediction does not depend on the other cells
    it is predicted with.

    Differences from the published code, all deliberate: one graph layer
    only (both scDeepsort and DANCE use one; with one layer a cell's output
    depends on its genes and itself, never on other cells, so the whole
    neighbourhood is computed exactly without DGL's neighbour sampler);
    dropout acts on the aggregated features (DANCE's ``AdaptiveSAGE``; the
    original drops the node features before aggregation); the validation
    split is stratified when every class has two or more cells (DANCE draws
    it uniformly); DANCE's "unsure" flag (maximum probability below
    ``2 / n_classes``) is left to the caller via ``predict_proba``.

    Parameters
    ----------
    graph : graph builder or None, default=None
        Builder of the bipartite ``(cells + genes)`` adjacency of the
        log-normalised expression (cloned in ``fit`` and ``predict``); None
        means ``CellGeneGraph(weight="fraction", self_loops=True)``.
    n_components : int, default=400
        Node feature size (gene principal components; scDeepsort's
        ``dense_dim``).  Capped at the number of genes and training cells.
    hidden_dim : int, default=200
        Width of the layer after the aggregation.
    dropout : float, default=0.1
        Dropout rate on the aggregated features.
    learning_rate : float, default=1e-3
        {learning_rate}
    weight_decay : float, default=5e-4
        Adam weight decay (scDeepsort's L2 weight).
    max_epochs : int, default=300
        Training epochs.
    batch_size : int, default=500
        {batch_size}
    validation_fraction : float or None, default=0.2
        Fraction of the training cells held out to pick the best epoch; None
        or 0 trains on every cell and keeps the last epoch.
    normalize : bool, default=True
        Log-normalise counts first; the input must then be counts.  Either
        way the input must be non-negative (it weighs the graph's edges).
    {device}
    random_state : int, RandomState instance or None, default=None
        Seeds the PCA, the validation split, the initialisation, dropout and
        the batch order.
    verbose : int, default=0
        Show a tqdm progress bar with the loss and validation accuracy.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Cell types.
    gene_features_ : ndarray of shape (n_genes, `n_components_`)
        Gene node features (principal components).
    n_components_ : int
        Node feature size used.
    module_ : ScDeepsortModule
        The trained network (on CPU); ``module_.beta`` holds the per-gene
        confidences.
    history_ : list of dict
        One record per training epoch: phase, epoch, train_loss (mean
        cross-entropy per cell), valid_accuracy (with a validation split),
        seconds.
    best_epoch_ : int
        Epoch (0-based) whose weights were kept.
    n_iter_ : int
        Number of epochs run.
    n_features_in_ : int
        Number of genes seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Gene names seen in ``fit``, when the input had them.

    References
    ----------
    Shao et al. (2021), "scDeepSort: a pre-trained cell-type annotation method
    for single-cell transcriptomics using deep learning with a weighted graph
    neural network", Nucleic Acids Research 49(21), e122.

    Examples
    --------
    >>> from skdance.annotation import ScDeepsort
    >>> from skdance.datasets import load_pbmc_4k_subset
    >>> X, y = load_pbmc_4k_subset()
    >>> model = ScDeepsort(n_components=50, random_state=0)
    >>> model.fit(X[::2], y[::2]).score(X[1::2], y[1::2]) > 0.8
    True
    """

    _parameter_constraints = {
        "graph": [HasMethods(["fit_transform"]), None],
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "hidden_dim": [Interval(Integral, 1, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="left"), None],
        "normalize": ["boolean"],
        **TORCH_CONSTRAINTS,
    }

    def __init__(
        self,
        *,
        graph=None,
        n_components=400,
        hidden_dim=200,
        dropout=0.1,
        learning_rate=1e-3,
        weight_decay=5e-4,
        max_epochs=300,
        batch_size=500,
        validation_fraction=0.2,
        normalize=True,
        device="cpu",
        random_state=None,
        verbose=0,
    ):
        self.graph = graph
        self.n_components = n_components
        self.hidden_dim = hidden_dim
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.validation_fraction = validation_fraction
        self.normalize = normalize
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _expression(self, X):
        check_counts(X, whom="ScDeepsort (its input weighs graph edges)")
        check_no_empty_rows(X, whom="ScDeepsort")
        if self.normalize:
            return log_normalize(X)
        E = sp.csr_matrix(X, dtype=np.float64, copy=True)
        E.eliminate_zeros()
        return E

    def _graph_inputs(self, E):
        """Tensors of the cells' in-edges: weights, own features, self loops, degree."""
        inputs = cell_gene_inputs(self.graph, E)
        # a cell's feature: the expression-weighted mean of its genes' features
        cell_feats = inputs.cell_features(self.gene_features_, expression=E)
        return (
            sp.csr_matrix(inputs.edge_weights, dtype=np.float32),
            torch.from_numpy(np.asarray(cell_feats, dtype=np.float32)),
            torch.from_numpy(inputs.self_loops.astype(np.float32)),
            torch.from_numpy(inputs.in_degree.astype(np.float32)),
        )

    def _fit(self, X, y):
        E = self._expression(X)
        seed = check_random_state_int(self.random_state)
        train_idx, val_idx = validation_split(
            y.shape[0], self.validation_fraction, seed, stratify=y
        )
        # gene node features: PCA of the genes over the training cells
        n_comp = min(self.n_components, E.shape[1], train_idx.size)
        genes_by_cells = E[train_idx].T.toarray().astype(np.float32)
        self.gene_features_ = (
            PCA(n_comp, random_state=seed)
            .fit_transform(genes_by_cells)
            .astype(np.float32)
        )
        self.n_components_ = n_comp
        weights, cell_feats, self_loops, n_in = self._graph_inputs(E)
        gene_feats = torch.from_numpy(self.gene_features_)
        with training(self, seed=seed) as run:
            target = run.to(torch.from_numpy(np.asarray(y, dtype=np.int64)))

            def inputs(idx):
                return run.to(
                    (
                        to_torch_sparse(weights[idx]),
                        gene_feats,
                        cell_feats[idx],
                        self_loops[idx],
                        n_in[idx],
                    )
                )

            def loss_fn(idx):
                idx = idx.numpy()
                logits = module(*inputs(idx))
                return F.cross_entropy(logits, target[idx], reduction="sum")

            def valid_fn(valid):
                pred = module(*inputs(valid)).argmax(dim=1)
                accuracy = (pred == target[valid]).double().mean()
                return {"valid_accuracy": float(accuracy)}

            module = run.place(
                ScDeepsortModule(
                    E.shape[1],
                    n_comp,
                    self.hidden_dim,
                    len(self.classes_),
                    self.dropout,
                )
            )
            opt = torch.optim.Adam(
                module.parameters(),
                lr=self.learning_rate,
                weight_decay=self.weight_decay,
            )
            best = run.fit_minibatches(
                opt,
                loss_fn,
                train_idx,
                valid=val_idx,
                valid_fn=valid_fn,
                monitor="-valid_accuracy",
                ties="last",
                batch_size=self.batch_size,
                max_epochs=self.max_epochs,
                reduction="sum",
            )
        self.best_epoch_ = self.max_epochs - 1 if best is None else best

    def _predict_proba(self, X):
        weights, cell_feats, self_loops, n_in = self._graph_inputs(self._expression(X))
        gene_feats = torch.from_numpy(self.gene_features_)
        with torch.no_grad():
            logits = self.module_(
                to_torch_sparse(weights), gene_feats, cell_feats, self_loops, n_in
            )
            return torch.softmax(logits.double(), dim=1).numpy()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True
        return tags

    def __skdance_tags__(self):
        tags = super().__skdance_tags__()
        tags.counts = True
        tags.rejects_empty_cells = "fit"
        return tags
