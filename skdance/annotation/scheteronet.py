"""scHeteroNet: cell-type annotation and novel-type detection on a cell graph."""

import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.preprocessing import LabelEncoder
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted
from torch import nn
from torch.nn import functional as F

from skdance.annotation._base import BaseAnnotator
from skdance.graph import KNNGraph, fit_graph
from skdance.nn import (
    TORCH_CONSTRAINTS,
    FCLayers,
    NormalizedCounts,
    ZINBHeads,
    full_batch_counts,
    normalize_adjacency,
    sparse_matmul,
    to_torch_sparse,
    training,
    validation_split,
    zinb_loss,
)
from skdance.preprocessing import HighlyVariableGenes, filter_genes
from skdance.utils import (
    Widths,
    check_random_state_int,
    fill_doc,
    validate_input,
)

__all__ = ["ScHeteroNet", "ScHeteroNetModule", "heteronet_adjacencies"]


def heteronet_adjacencies(adjacency):
    """Graph operators of scHeteroNet from a cell graph.

    ``A[i, j] != 0`` when cell ``i`` lists cell ``j`` as a neighbour (edge
    weights are ignored: the original's graph is unweighted).  Every cell
    is also linked to itself, and messages flow along ``P = A.T``: a cell
    hears from the cells that list it (PyG's ``edge_index`` direction in the
    original), its self loop kept.  The strict two-hop graph is
    ``P2 = pattern(P @ P) - P`` (0/1; no diagonal, since ``P`` has every
    self loop).

    Parameters
    ----------
    adjacency : sparse matrix of shape (n_cells, n_cells)
        The cell graph, one row per cell listing its neighbours (e.g. a
        :class:`~skdance.graph.KNNGraph` with ``symmetrize=False``).

    Returns
    -------
    one_hop, two_hop : scipy.sparse.csr_matrix of shape (n_cells, n_cells)
        ``D^-1/2 P D^-1/2`` and ``D2^-1/2 P2 D2^-1/2``, each ``D`` from its
        matrix's own row sums (PyG's ``gcn_norm`` without added self loops).
    propagation : scipy.sparse.csr_matrix of shape (n_cells, n_cells)
        ``D^-1 P``: a cell's mean over the cells that list it, itself
        included (the energy belief propagation of the novelty score).

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.annotation.scheteronet import heteronet_adjacencies
    >>> from skdance.graph import KNNGraph
    >>> E = np.array([[0.0], [1.0], [3.0], [7.0]])
    >>> A = KNNGraph(n_neighbors=1, symmetrize=False).fit_transform(E)
    >>> one_hop, two_hop, prop = heteronet_adjacencies(A)
    >>> (prop.toarray() > 0).astype(int)
    array([[1, 1, 0, 0],
           [1, 1, 1, 0],
           [0, 0, 1, 1],
           [0, 0, 0, 1]])
    """
    A = sp.csr_matrix(adjacency, dtype=np.float64, copy=True)
    A.eliminate_zeros()
    A.data[:] = 1.0
    A = A.maximum(sp.identity(A.shape[0], format="csr"))
    P = sp.csr_matrix(A.T)
    two = sp.csr_matrix(P @ P)
    two.data[:] = 1.0
    P2 = sp.csr_matrix(two - P)
    P2.eliminate_zeros()
    return (
        normalize_adjacency(P, mode="sym", add_self_loops=False),
        normalize_adjacency(P2, mode="sym", add_self_loops=False),
        normalize_adjacency(P, mode="row", add_self_loops=False),
    )


class ScHeteroNetModule(nn.Module):
    """scHeteroNet's network: embedding, one- and two-hop aggregation, heads.

    ``h0 = ReLU(Linear(genes, hidden))``; ``h1 = [A h0 | A2 h0]`` (the
    normalised one-hop and strict two-hop graphs, no weights);
    ``z = [h0 | h1]`` (``3 * hidden``, the jumping-knowledge concatenation)
    feeds a linear classifier and the ZINB decoder (``decoder_dims`` ReLU
    layers, then :class:`~skdance.nn.ZINBHeads`).  Dropout (rate
    ``dropout``) acts on ``h0`` before the aggregation and on ``h1``, as in
    the original's ``conv_dropout``.
    """

    def __init__(self, n_genes, hidden_dim, n_classes, decoder_dims, dropout=0.0):
        super().__init__()
        self.embed = nn.Linear(n_genes, hidden_dim)
        self.classifier = nn.Linear(3 * hidden_dim, n_classes)
        self.decoder = FCLayers([3 * hidden_dim, *decoder_dims])
        self.heads = ZINBHeads(decoder_dims[-1], n_genes)
        self.dropout = dropout

    def embedding(self, x, graph):
        """``z = [h0 | A h0 | A2 h0]`` of every cell.

        Parameters
        ----------
        x : Tensor of shape (n_cells, n_genes)
            Log-normalised expression.
        graph : tuple of Tensor
            ``(one_hop, one_hop_t, two_hop, two_hop_t)`` sparse operators and
            their transposes.
        """
        one, one_t, two, two_t = graph
        h0 = F.relu(self.embed(x))
        h = F.dropout(h0, self.dropout, self.training)
        h1 = torch.cat(
            [sparse_matmul(one, h, one_t), sparse_matmul(two, h, two_t)], dim=1
        )
        h1 = F.dropout(h1, self.dropout, self.training)
        return torch.cat([h0, h1], dim=1)

    def forward(self, x, graph):
        """Class logits of every cell."""
        return self.classifier(self.embedding(x, graph))


def _graph_tensors(one_hop, two_hop):
    return (
        to_torch_sparse(one_hop),
        to_torch_sparse(one_hop.T.tocsr()),
        to_torch_sparse(two_hop),
        to_torch_sparse(two_hop.T.tocsr()),
    )


def _row_totals(X):
    return np.asarray(X.sum(axis=1), dtype=np.float64).ravel()


@fill_doc
class ScHeteroNet(BaseAnnotator):
    """scHeteroNet: a heterophily-aware cell graph network with novelty scores.

    The method of the scHeteroNet paper (2025) as its code
    (``mrbeann/scHeteroNet`` on GitHub) runs it with its README's settings
    (``--use_zinb --use_prop``):

    1. Preprocessing, fitted on the training cells: cell types with fewer
       than ``min_cells_per_type`` cells are left out (the original drops
       types of 10 cells or fewer); genes with fewer than ``min_counts``
       counts are dropped, then cells without counts; ``n_top_genes``
       highly variable genes (scanpy's ``cell_ranger`` flavour, on the
       counts, as the original calls it); each cell is scaled to the median
       total of the training cells and ``log1p``-transformed; size factors
       are a cell's total over that median.
    2. Graph: each cell is linked to its 4 nearest other cells (``graph``;
       Euclidean, on the log-normalised genes) and to itself; the one-hop
       graph and the strict two-hop graph (cells two steps away, not one)
       are each symmetrically normalised (:func:`heteronet_adjacencies`).
    3. Network (:class:`ScHeteroNetModule`): ``h0 = ReLU(Linear(genes,
       hidden_dim))``, ``z = [h0 | A h0 | A2 h0]``, a linear classifier on
       ``z`` and a ZINB decoder on ``z`` (``decoder_dims``, then mean,
       dispersion and dropout heads).
    4. Loss, on the training cells: cross-entropy plus ``zinb_weight``
       times the mean ZINB negative log-likelihood of the raw counts (mean
       scaled by the size factors).  Adam (``learning_rate``,
       ``weight_decay``), ``max_epochs`` full-batch steps;
       ``validation_fraction`` of the training cells stay in the graph
       unlabelled and the weights of the epoch of lowest validation
       cross-entropy are kept (the original reports that epoch).
    5. Novelty score (:meth:`score_samples`): the negative energy
       ``logsumexp(logits)`` of each cell, propagated
       ``propagation_steps`` times over the one-hop graph,
       ``e <- propagation_alpha * e + (1 - propagation_alpha) * D^-1 P e``
       (the README's one-hop energy belief propagation, ``T = 1``).

    The graph is transductive, as in the original: at ``fit`` it links the
    training cells; at ``predict``, ``predict_proba`` and ``score_samples``
    it is rebuilt over the training cells and the cells passed together, and
    the trained network runs on it, so a cell's output depends on the other
    cells passed with it.

    Notes
    -----
    Differences from the original, all deliberate:

    * The original trains once on a graph over every cell of a dataset
      (training, validation, test and the held-out type), with the training
      labels only.  Here the query cells are not seen in ``fit``: the
      network is trained on the reference graph and applied to the graph
      over reference and query, so fitting never depends on the cells to be
      annotated and one fit serves any query.  The same holds for the
      preprocessing (gene filters, highly variable genes and the median
      total are learnt on the training cells and applied to the query).
    * The validation cells are a stratified ``validation_fraction`` of the
      training cells (the original draws 20% of all cells at random, 25% of
      its labelled cells); the rare-type filter reads the training labels
      only.  ``validation_fraction=None`` trains ``max_epochs`` epochs and
      keeps the last (DANCE's port does that).
    * DANCE's port links each cell to 6 cells including itself; the
      original's ``kneighbors_graph(..., 5, include_self=True)`` gives 5,
      which the default graph reproduces (4 neighbours, then the cell
      itself, also when it has an exact duplicate).
    * Counts are used as given (the original rounds them up first); the
      unused third decoder layer of the original is left out (it gets no
      gradient there).
    * With ``normalize=False`` the input is taken as log-normalised
      expression: no count filter, no scaling and no ZINB term (it needs
      counts).

    Parameters
    ----------
    hidden_dim : int, default=32
        Width of the embedding ``h0`` (``z`` has three times it).
    decoder_dims : tuple of int, default=(32, 128)
        Hidden widths of the ZINB decoder, ``z`` side first.
    graph : graph builder or None, default=None
        Builder of the cell graph over the log-normalised expression (cloned
        and fitted in ``fit`` and at prediction); row ``i`` of its adjacency
        lists the neighbours of cell ``i`` (weights are ignored) and every
        cell is then linked to itself.  None means
        ``KNNGraph(n_neighbors=4, symmetrize=False)``: with the cell itself,
        the original's 5 nearest neighbours.
    n_top_genes : int or None, default=4000
        Highly variable genes kept (``cell_ranger`` flavour); None keeps
        all.
    min_counts : int, default=3
        Genes with fewer counts over the training cells are dropped (with
        ``normalize=True``).
    min_cells_per_type : int, default=11
        Cell types with fewer training cells are left out of ``fit`` (with
        a warning) and never predicted; 1 keeps every type.
    dropout : float, default=0.0
        Dropout rate on the embedding before and after the aggregation (the
        original's default is 0).
    zinb_weight : float, default=1e-4
        Weight of the ZINB term; 0 trains the classifier alone.
    learning_rate : float, default=0.01
        {learning_rate}
    weight_decay : float, default=5e-3
        {weight_decay}
    max_epochs : int, default=200
        Full-batch training epochs.
    validation_fraction : float or None, default=0.25
        Fraction of the training cells kept unlabelled in the graph to pick
        the epoch of lowest validation loss; None or 0 keeps the last epoch.
    propagation_steps : int, default=2
        Rounds of energy propagation in :meth:`score_samples` (0: the
        cells' own energies).
    propagation_alpha : float, default=0.3
        Share of a cell's own score kept in each propagation round.
    normalize : bool, default=True
        The input is raw counts: filter, scale and log-transform them and
        fit the ZINB term.  False: the input is log-normalised expression.
    {device}
    random_state : int, RandomState instance or None, default=None
        Seeds the validation split, the initialisation and dropout.
    verbose : int, default=0
        Show a tqdm progress bar with the losses.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Cell types predicted (those kept by ``min_cells_per_type``).
    dropped_classes_ : ndarray
        Cell types of the training labels left out for having too few cells.
    genes_ : ndarray of int
        Indices of the input genes the model reads.
    median_total_ : float or None
        Median total count (over ``genes_``) of the training cells; each cell
        is scaled to it (None with ``normalize=False``).
    reference_ : scipy.sparse.csr_matrix of shape (n_reference, n_genes_used)
        Log-normalised expression of the training cells, linked to the
        query cells at prediction.
    module_ : ScHeteroNetModule
        The trained network (on CPU).
    history_ : list of dict
        One record per epoch: phase, epoch, train_loss, nll, zinb,
        valid_loss (with a validation split), seconds.
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
    "scHeteroNet: A Heterophily-Aware Graph Neural Network for Accurate
    Cell Type Annotation and Novel Cell Detection" (2025); code:
    https://github.com/mrbeann/scHeteroNet.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.annotation import ScHeteroNet
    >>> from skdance.datasets import load_pbmc_4k_subset
    >>> X, y = load_pbmc_4k_subset()
    >>> model = ScHeteroNet(max_epochs=50, random_state=0).fit(X[::2], y[::2])
    >>> model.score(X[1::2], y[1::2]) > 0.8
    True
    >>> model.score_samples(X[1::2]).shape
    (600,)
    """

    _parameter_constraints = {
        "hidden_dim": [Interval(Integral, 1, None, closed="left")],
        "decoder_dims": [Widths()],
        "graph": [HasMethods(["fit_transform"]), None],
        "n_top_genes": [Interval(Integral, 1, None, closed="left"), None],
        "min_counts": [Interval(Real, 0, None, closed="left")],
        "min_cells_per_type": [Interval(Integral, 1, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "zinb_weight": [Interval(Real, 0, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="left"), None],
        "propagation_steps": [Interval(Integral, 0, None, closed="left")],
        "propagation_alpha": [Interval(Real, 0, 1, closed="both")],
        "normalize": ["boolean"],
        **TORCH_CONSTRAINTS,
    }

    def __init__(
        self,
        *,
        hidden_dim=32,
        decoder_dims=(32, 128),
        graph=None,
        n_top_genes=4000,
        min_counts=3,
        min_cells_per_type=11,
        dropout=0.0,
        zinb_weight=1e-4,
        learning_rate=0.01,
        weight_decay=5e-3,
        max_epochs=200,
        validation_fraction=0.25,
        propagation_steps=2,
        propagation_alpha=0.3,
        normalize=True,
        device="cpu",
        random_state=None,
        verbose=0,
    ):
        self.hidden_dim = hidden_dim
        self.decoder_dims = decoder_dims
        self.graph = graph
        self.n_top_genes = n_top_genes
        self.min_counts = min_counts
        self.min_cells_per_type = min_cells_per_type
        self.dropout = dropout
        self.zinb_weight = zinb_weight
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.max_epochs = max_epochs
        self.validation_fraction = validation_fraction
        self.propagation_steps = propagation_steps
        self.propagation_alpha = propagation_alpha
        self.normalize = normalize
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # -- fit ---------------------------------------------------------------
    def fit(self, X, y):
        """Train on labelled reference cells.

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData} of shape (n_cells, n_genes)
            Raw counts (log-normalised expression with ``normalize=False``).
        y : array-like of shape (n_cells,)
            Cell-type labels.

        Returns
        -------
        self : object
            Fitted classifier.
        """
        self._validate_params()
        X, y = validate_input(
            self, X, y, reset=True, counts=self.normalize, ensure_min_samples=2
        )
        check_classification_targets(y)
        types, sizes = np.unique(y, return_counts=True)
        rare = sizes < self.min_cells_per_type
        self.dropped_classes_ = types[rare]
        if rare.any():
            warnings.warn(
                f"ScHeteroNet leaves out {rare.sum()} cell type(s) with fewer "
                f"than min_cells_per_type={self.min_cells_per_type} training "
                f"cells: {types[rare].tolist()[:10]}; they are never predicted.",
                UserWarning,
                stacklevel=2,
            )
        keep = np.isin(y, types[~rare])
        encoder = LabelEncoder().fit(y[keep])
        self.classes_ = encoder.classes_
        if self.classes_.size < 2:
            raise ValueError(
                "ScHeteroNet needs at least 2 cell types in y with "
                f"min_cells_per_type={self.min_cells_per_type} cells or more; "
                f"got {self.classes_.size} such class."
            )
        self._fit(X[keep], encoder.transform(y[keep]))
        return self

    def _top_genes(self, X, genes):
        """Return the ``n_top_genes`` ``cell_ranger`` genes of ``X[:, genes]``."""
        if self.n_top_genes is None or genes.size <= self.n_top_genes:
            return genes
        hvg = HighlyVariableGenes(
            n_top_genes=self.n_top_genes, flavor="cell_ranger", log_normalize=False
        ).fit(X[:, genes])
        return genes[hvg.highly_variable_]

    def _expression(self, X):
        """Log-normalised expression of ``genes_`` (dense float32) and totals."""
        Xg = X[:, self.genes_]
        if not self.normalize:
            E = Xg.toarray() if sp.issparse(Xg) else np.asarray(Xg)
            return E.astype(np.float32), None
        totals = _row_totals(Xg)
        scale = np.divide(
            self.median_total_, totals, out=np.zeros_like(totals), where=totals > 0
        )
        E = sp.csr_matrix(sp.diags(scale) @ sp.csr_matrix(Xg, dtype=np.float64))
        E.data = np.log1p(E.data)
        return E.toarray().astype(np.float32), totals

    def _graph_operators(self, E):
        n = E.shape[0]
        default = KNNGraph(n_neighbors=4, symmetrize=False)
        adjacency = fit_graph(self.graph, default, E, shape=(n, n))
        return heteronet_adjacencies(adjacency)

    def _fit(self, X, y):
        genes = np.arange(X.shape[1])
        if self.normalize:
            # as the original: rare genes, then cells left without counts
            genes = genes[filter_genes(X, min_cells=0, min_counts=self.min_counts)]
            if genes.size == 0:
                raise ValueError(
                    f"ScHeteroNet: no gene has min_counts={self.min_counts} "
                    "counts over the training cells."
                )
            nonempty = _row_totals(X[:, genes]) > 0
            X, y = X[nonempty], y[nonempty]
            if X.shape[0] < 2:
                raise ValueError("ScHeteroNet: fewer than 2 cells have counts.")
        self.genes_ = self._top_genes(X, genes)
        if self.normalize:
            totals = _row_totals(X[:, self.genes_])
            self.median_total_ = float(np.median(totals))
            if self.median_total_ <= 0:
                # more than half the cells have no count on the genes kept
                self.median_total_ = float(totals[totals > 0].mean())
        else:
            self.median_total_ = None
        E, totals = self._expression(X)
        self.reference_ = sp.csr_matrix(E)
        one_hop, two_hop, _ = self._graph_operators(E)
        seed = check_random_state_int(self.random_state)
        train_idx, val_idx = validation_split(
            y.shape[0], self.validation_fraction, seed, stratify=y
        )
        use_zinb = self.normalize and self.zinb_weight > 0
        with training(self, seed=seed) as run:
            module = run.place(
                ScHeteroNetModule(
                    E.shape[1],
                    self.hidden_dim,
                    self.classes_.size,
                    tuple(self.decoder_dims),
                    self.dropout,
                )
            )
            x = run.to(torch.from_numpy(E))
            graph = run.to(_graph_tensors(one_hop, two_hop))
            target = run.to(torch.from_numpy(np.asarray(y, dtype=np.int64)))
            train = run.to(torch.from_numpy(np.asarray(train_idx, dtype=np.int64)))
            valid = run.to(torch.from_numpy(np.asarray(val_idx, dtype=np.int64)))
            if use_zinb:
                counts = sp.csr_matrix(X[:, self.genes_][train_idx], dtype=np.float32)
                sf = (totals[train_idx] / self.median_total_).astype(np.float32)
                data = NormalizedCounts(counts, None, sf, None, None)
                counts = full_batch_counts(data, run.device)
                sf = run.to(torch.from_numpy(sf))
            opt = torch.optim.Adam(
                module.parameters(),
                lr=self.learning_rate,
                weight_decay=self.weight_decay,
            )

            def epoch(_):
                module.train()
                z = module.embedding(x, graph)[train]
                nll = F.cross_entropy(module.classifier(z), target[train])
                loss, zinb = nll, 0.0
                if use_zinb:
                    zinb = zinb_loss(module.heads, module.decoder(z), counts, sf)
                    loss = nll + self.zinb_weight * zinb
                    zinb = float(zinb.detach())
                value = run.trainer.step(opt, loss)
                return {"train_loss": value, "nll": float(nll.detach()), "zinb": zinb}

            def validate():
                module.eval()
                with torch.no_grad():
                    logits = module(x, graph)[valid]
                    return {"valid_loss": float(F.cross_entropy(logits, target[valid]))}

            best = run.run(
                "train",
                self.max_epochs,
                epoch,
                valid_fn=validate if len(val_idx) else None,
                module=module,
            )
        self.best_epoch_ = self.max_epochs - 1 if best is None else best

    # -- predict -----------------------------------------------------------
    def _query_logits(self, X):
        """Logits of the query cells and the propagation operator of the graph."""
        E, _ = self._expression(X)
        both = np.vstack([self.reference_.toarray(), E])
        one_hop, two_hop, propagation = self._graph_operators(both)
        with torch.no_grad():
            logits = self.module_(
                torch.from_numpy(both), _graph_tensors(one_hop, two_hop)
            )
        return logits.double(), propagation

    def _check_predict_input(self, X):
        check_is_fitted(self)
        return validate_input(self, X, reset=False, counts=self.normalize)

    def _predict_proba(self, X):
        logits, _ = self._query_logits(X)
        n_ref = self.reference_.shape[0]
        return torch.softmax(logits[n_ref:], dim=1).numpy()

    def score_samples(self, X):
        """Novelty score of each cell: its propagated negative energy.

        ``logsumexp`` of the cell's logits (the negative energy at
        temperature 1), propagated ``propagation_steps`` times over the
        one-hop graph of the reference and query cells.  As in
        scikit-learn's outlier detectors, lower means more abnormal: cells
        of a type absent from the training labels tend to score lower than
        cells of the known types.

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData} of shape (n_cells, n_genes)
            Expression on the same genes as in ``fit``.

        Returns
        -------
        scores : ndarray of shape (n_cells,)
            The propagated negative energy of each cell.
        """
        logits, propagation = self._query_logits(self._check_predict_input(X))
        e = torch.logsumexp(logits, dim=1).numpy()
        alpha = self.propagation_alpha
        for _ in range(self.propagation_steps):
            e = alpha * e + (1.0 - alpha) * (propagation @ e)
        return np.asarray(e[self.reference_.shape[0] :], dtype=np.float64)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = self.normalize
        return tags

    def __skdance_tags__(self):
        tags = super().__skdance_tags__()
        tags.counts = self.normalize
        tags.transductive = True
        return tags
