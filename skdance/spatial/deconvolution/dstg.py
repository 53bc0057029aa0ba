"""DSTG: a graph convolutional network on pseudo-spots linked to real spots."""

from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import clone
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.extmath import randomized_svd
from torch import nn
from torch.nn import functional as F

from skdance.datasets import make_pseudo_spots
from skdance.graph import MutualNNGraph
from skdance.nn import (
    GCN,
    TORCH_CONSTRAINTS,
    VALIDATION_CONSTRAINTS,
    check_device,
    to_torch_sparse,
    training,
    validation_split,
)
from skdance.preprocessing import HighlyVariableGenes, normalize_rows
from skdance.spatial.deconvolution._base import BaseDeconvolution
from skdance.utils import canonical_row_order, check_random_state_int, fill_doc

__all__ = ["DSTG", "DSTGModule", "cca_embedding"]


def _log_scale(X, clip=10.0):
    """Seurat's LogNormalize (1e4) + ScaleData (z-score per gene, clipped)."""
    X = X.toarray() if sp.issparse(X) else np.asarray(X, dtype=np.float64)
    X = np.log1p(normalize_rows(X, 1e4))
    sd = X.std(axis=0, ddof=1) if X.shape[0] > 1 else np.zeros(X.shape[1])
    X = (X - X.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    return np.clip(X, -clip, clip)


def cca_embedding(A, B, n_components=30, random_state=None):
    """Seurat's CCA embedding of two scaled data sets on the same genes.

    The leading singular vectors of ``A @ B.T`` (cells of ``A`` x cells of
    ``B``) embed the two sets in one space; rows are L2-normalised.

    Parameters
    ----------
    A : ndarray of shape (n_a, n_genes)
        Scaled expression of the first set.
    B : ndarray of shape (n_b, n_genes)
        Scaled expression of the second set.
    n_components : int, default=30
        Canonical vectors (at most ``min(n_a, n_b) - 1``).
    random_state : int or None, default=None
        Seed of the randomized SVD.

    Returns
    -------
    embedding : ndarray of shape (n_a + n_b, n_components)
        Rows of ``A`` then rows of ``B``.
    """
    k = max(1, min(n_components, A.shape[0] - 1, B.shape[0] - 1))
    u, _, vt = randomized_svd(A @ B.T, k, random_state=random_state)
    Z = np.vstack([u, vt.T])
    norms = np.linalg.norm(Z, axis=1, keepdims=True)
    return Z / np.where(norms > 0, norms, 1.0)


class DSTGModule(nn.Module):
    """DSTG's two-layer GCN: dropout, GC, ReLU, dropout, GC (logits).

    A :class:`~skdance.nn.GCN` without biases, Glorot-uniform weights.
    """

    def __init__(self, n_in, hidden_dim, n_out, dropout):
        super().__init__()
        self.gcn = GCN(
            [n_in, hidden_dim, n_out], dropout=dropout, bias=False, init="glorot"
        )

    def forward(self, x, adj):
        """Cell-type logits of every node."""
        return self.gcn(x, adj)


@fill_doc
class DSTG(BaseDeconvolution):
    """DSTG: deconvolution by a GCN on a pseudo-spot / real-spot link graph.

    The method of Song & Su (2021) as DANCE runs it.  Transductive: ``fit``
    stores the reference, ``predict`` trains the network on the spots it is
    given (each call trains anew, on ``device``; nothing of that training is
    stored on the estimator, so there is no ``history_``).

    1. Pseudo-spots: ``n_pseudo_spots`` mixtures of 2-8 reference cells
       (:func:`~skdance.datasets.make_pseudo_spots`), with known proportions.
    2. Genes: the ``n_top_genes`` most variable genes of the reference
       (``seurat_v3``) among those the spots have; pseudo and real spots are
       log-normalised (1e4) and z-scored per gene, each set on its own
       (Seurat's ScaleData, clipped at 10).
    3. Link graph: CCA embedding of the two sets (:func:`cca_embedding`,
       ``n_cc`` vectors, L2-normalised rows), mutual nearest neighbours
       across the sets (``graph``, default ``MutualNNGraph(n_neighbors=5)``),
       self loops, symmetric normalisation (eqs. 74-76).
    4. :class:`DSTGModule` (hidden width ``hidden_dim``) on the scaled
       expression of all nodes; softmax cross-entropy against the pseudo
       spots' proportions on a random ``1 - validation_fraction`` of them
       (eqs. 77-79), Adam; the epoch with the lowest loss on the held-out
       pseudo-spots is kept (training stops early after ``patience`` epochs
       without improvement when ``patience`` is set).  The real spots'
       softmax outputs are the proportions.

    Left out: DSTG's extra edge filter (keeping MNN pairs among the
    ``k_filter`` neighbours on the top CCA-loading genes).

    Parameters
    ----------
    graph : graph builder or None, default=None
        Cross-set builder called as ``fit(Z).transform(Z, batch=...)``; None:
        ``MutualNNGraph(n_neighbors=5)``.
    n_pseudo_spots : int, default=1000
        Pseudo-spots generated from the reference.
    cells_per_spot : tuple of (int, int), default=(2, 8)
        Cells mixed into a pseudo-spot.
    n_top_genes : int, default=2000
        Variable genes used.
    n_cc : int, default=30
        CCA dimensions.
    hidden_dim : int, default=32
        Hidden width of the GCN.
    dropout : float, default=0.0
        Dropout rate.
    learning_rate : float, default=0.005
        {learning_rate}
    weight_decay : float, default=0.0
        {weight_decay}
    max_epochs : int, default=200
        Full-graph epochs.
    validation_fraction : float, default=0.2
        Pseudo-spots held out to pick the epoch (none if it rounds down to 0:
        then every epoch is run and the last one kept).
    patience : int or None, default=None
        Stop after this many epochs without improvement of the validation
        loss; None trains all ``max_epochs`` (the best epoch is kept either
        way).
    device : str or torch.device, default="cpu"
        Where to train (in ``predict``): ``"cpu"``, ``"cuda"``, ``"cuda:N"``
        or ``"mps"``; a ``ValueError`` names an absent device (raised by
        ``fit`` already). The proportions are returned as a CPU array.
    random_state : int, RandomState instance or None, default=None
        Seeds the pseudo-spots, the split, the SVD and the network.
    verbose : int, default=0
        Progress bar with the losses.

    Attributes
    ----------
    classes_ : ndarray of shape (n_types,)
        Cell types (columns of the proportions).
    n_features_in_ : int
        Number of genes seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Gene names seen in ``fit``, when the input had them.

    References
    ----------
    Song & Su (2021), "DSTG: deconvoluting spatial transcriptomics data
    through graph-based artificial intelligence", Briefings in
    Bioinformatics 22(5), bbaa414.

    Examples
    --------
    >>> from skdance.datasets import load_pbmc_4k_subset, make_pseudo_spots
    >>> from skdance.spatial import DSTG
    >>> X, y = load_pbmc_4k_subset()
    >>> spots, props, _ = make_pseudo_spots(X[600:], y[600:], n_spots=40,
    ...                                     random_state=0)
    >>> model = DSTG(n_pseudo_spots=200, max_epochs=20, random_state=0)
    >>> model.fit(X[:600], y[:600]).predict(spots).shape
    (40, 8)
    """

    _parameter_constraints = {
        "graph": [HasMethods(["fit", "transform"]), None],
        "n_pseudo_spots": [Interval(Integral, 2, None, closed="left")],
        "cells_per_spot": [tuple, list],
        "n_top_genes": [Interval(Integral, 1, None, closed="left")],
        "n_cc": [Interval(Integral, 1, None, closed="left")],
        "hidden_dim": [Interval(Integral, 1, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        **VALIDATION_CONSTRAINTS,
        **TORCH_CONSTRAINTS,
    }

    def __init__(
        self,
        *,
        graph=None,
        n_pseudo_spots=1000,
        cells_per_spot=(2, 8),
        n_top_genes=2000,
        n_cc=30,
        hidden_dim=32,
        dropout=0.0,
        learning_rate=0.005,
        weight_decay=0.0,
        max_epochs=200,
        validation_fraction=0.2,
        patience=None,
        device="cpu",
        random_state=None,
        verbose=0,
    ):
        self.graph = graph
        self.n_pseudo_spots = n_pseudo_spots
        self.cells_per_spot = cells_per_spot
        self.n_top_genes = n_top_genes
        self.n_cc = n_cc
        self.hidden_dim = hidden_dim
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.max_epochs = max_epochs
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _fit(self, X, y_idx):
        check_device(self.device)  # training happens in predict: fail early
        self.reference_ = sp.csr_matrix(X)
        self.reference_labels_ = y_idx

    def _genes(self, reference):
        if reference.shape[1] <= self.n_top_genes:
            return np.arange(reference.shape[1])
        hvg = HighlyVariableGenes(n_top_genes=self.n_top_genes, flavor="seurat_v3")
        return np.flatnonzero(hvg.fit(reference).highly_variable_)

    def _predict(self, X, genes, coords):
        # the link graph and the CCA run over the spots passed together: run
        # them in an order that does not depend on how the spots were listed
        order = canonical_row_order(X)
        out = np.empty((X.shape[0], self.classes_.size))
        out[order] = self._predict_ordered(X[order], genes)
        return out

    def _predict_ordered(self, X, genes):
        seed = check_random_state_int(self.random_state)
        reference = self.reference_[:, genes]
        pseudo, props, _ = make_pseudo_spots(
            reference,
            self.reference_labels_,
            n_spots=self.n_pseudo_spots,
            cells_per_spot=self.cells_per_spot,
            random_state=seed,
        )
        used = self._genes(reference)
        A = _log_scale(pseudo[:, used])
        B = _log_scale(X[:, used])
        Z = cca_embedding(A, B, self.n_cc, random_state=seed)
        batch = np.r_[np.zeros(A.shape[0], int), np.ones(B.shape[0], int)]
        builder = (
            MutualNNGraph(n_neighbors=5) if self.graph is None else clone(self.graph)
        )
        links = sp.csr_matrix(builder.fit(Z).transform(Z, batch=batch))
        adj = to_torch_sparse(links, normalize="sym", add_self_loops=True)
        features = torch.from_numpy(np.vstack([A, B]).astype(np.float32))
        targets = torch.from_numpy(props.astype(np.float32))
        n_pseudo = A.shape[0]
        train, valid = validation_split(n_pseudo, self.validation_fraction, seed)
        # trains in predict, which stores nothing on the fitted estimator
        with training(self, seed=seed, store=False) as run:
            trainer = run.trainer
            adj, features, targets = run.to((adj, features, targets))
            train, valid = run.to((torch.from_numpy(train), torch.from_numpy(valid)))
            module = run.place(
                DSTGModule(
                    features.shape[1], self.hidden_dim, props.shape[1], self.dropout
                )
            )
            opt = torch.optim.Adam(
                module.parameters(),
                lr=self.learning_rate,
                weight_decay=self.weight_decay,
            )

            def epoch(_):
                module.train()
                logits = module(features, adj)
                return trainer.step(opt, F.cross_entropy(logits[train], targets[train]))

            def validate():
                module.eval()
                with torch.no_grad():
                    logits = module(features, adj)[valid]
                    return {
                        "valid_loss": F.cross_entropy(logits, targets[valid]).item()
                    }

            trainer.run(
                "train",
                self.max_epochs,
                epoch,
                valid_fn=validate if valid.numel() else None,
                patience=self.patience,
                module=module,
            )
            module.eval()
            with torch.no_grad():
                out = F.softmax(module(features, adj)[n_pseudo:], dim=1)
        return out.cpu().double().numpy()

    def __skdance_tags__(self):
        tags = super().__skdance_tags__()
        tags.transductive = True
        return tags
