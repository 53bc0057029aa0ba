"""STdGCN: graph convolutions over an expression graph and a spatial graph."""

import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import NearestNeighbors
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval
from torch import nn
from torch.nn import functional as F

from skdance.graph import MutualNNGraph, spot_spacing, unit_rows
from skdance.nn import (
    TORCH_CONSTRAINTS,
    VALIDATION_CONSTRAINTS,
    check_device,
    clip_gradients_in_step,
    sparse_matmul,
    to_torch_sparse,
    training,
    validation_split,
)
from skdance.spatial.deconvolution._base import BaseDeconvolution
from skdance.utils import canonical_row_order, check_random_state_int, fill_doc

__all__ = [
    "STdGCN",
    "STdGCNModule",
    "logreg_markers",
    "spatial_links",
    "stdgcn_pseudo_spots",
    "within_mutual_nn",
]

# STdGCN's fixed settings (its tutorial's values, not exposed by its code):
# mutual nearest neighbours within the real spots (10) and within the
# pseudo-spots (20), each spot counted among its own neighbours as in
# ``find_mutual_nn``; the spatial graph's 27 nearest spots closer than 2
# spot spacings; the weights of the expression graph's edges (1 / 60: three
# subgraphs x 20) and of the spatial graph's (1 / 20) against the self loop.
N_REAL_NEIGHBORS = 10
N_PSEUDO_NEIGHBORS = 20
N_SPATIAL_NEIGHBORS = 27
SPATIAL_RADIUS = 2.0
EXPRESSION_EDGE_WEIGHT = 1.0 / 60.0
SPATIAL_EDGE_WEIGHT = 1.0 / 20.0
# SGD with Nesterov momentum; ReduceLROnPlateau on the validation loss
MOMENTUM = 0.9
PLATEAU_FACTOR = 0.1
PLATEAU_PATIENCE = 5
# scanpy's normalize_total target
TARGET_SUM = 1e4
# spots at one place: their distance is floored at this many spacings
_MIN_DISTANCE = 0.1


def stdgcn_pseudo_spots(
    y_idx, n_types, n_spots, cells_per_spot=(8, 12), max_types=4, random_state=None
):
    """STdGCN's ``"celltype"`` pseudo-spot sampler, as a mixing matrix.

    Each pseudo-spot draws its number of cells uniformly from
    ``cells_per_spot`` (inclusive) and its number of types uniformly from
    ``1 .. min(max_types, n_types)``; the types are a uniform sample of
    that many distinct types, each cell's type is drawn uniformly among them
    (a drawn type can end up with no cell) and each cell uniformly among the
    reference cells of its type (with replacement across cells).  This
    differs from :func:`~skdance.datasets.make_pseudo_spots`, which draws
    cells (not types) uniformly.

    Parameters
    ----------
    y_idx : ndarray of shape (n_cells,)
        Type index of every reference cell, ``0 .. n_types - 1``.
    n_types : int
        Number of types; every type must have a cell.
    n_spots : int
        Number of pseudo-spots.
    cells_per_spot : tuple of (int, int), default=(8, 12)
        Smallest and largest number of cells in a pseudo-spot.
    max_types : int, default=4
        Most cell types drawn for a pseudo-spot.
    random_state : int, RandomState instance or None, default=None
        Seeds the draws.

    Returns
    -------
    mixer : scipy.sparse.csr_matrix of shape (n_spots, n_cells)
        How many times each reference cell is in each spot: the pseudo-spot
        counts are ``mixer @ X_ref``.
    proportions : ndarray of shape (n_spots, n_types)
        Fractions of each spot's cells of each type.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.spatial.deconvolution.stdgcn import stdgcn_pseudo_spots
    >>> y = np.repeat([0, 1, 2], 5)
    >>> mixer, props = stdgcn_pseudo_spots(y, 3, 4, random_state=0)
    >>> mixer.shape, props.shape
    ((4, 15), (4, 3))
    >>> bool(np.allclose(props.sum(axis=1), 1.0))
    True
    """
    low, high = (int(v) for v in cells_per_spot)
    y_idx = np.asarray(y_idx)
    rng = check_random_state(random_state)
    n_cells = rng.randint(low, high + 1, size=n_spots)
    n_chosen = rng.randint(1, min(max_types, n_types) + 1, size=n_spots)
    # a uniform sample of n_chosen distinct types: the first columns of a
    # random permutation per spot
    perms = np.argsort(rng.random_sample((n_spots, n_types)), axis=1)
    spot = np.repeat(np.arange(n_spots), n_cells)
    slot = np.floor(rng.random_sample(spot.size) * n_chosen[spot]).astype(np.intp)
    cell_type = perms[spot, slot]
    by_type = np.argsort(y_idx, kind="stable")
    sizes = np.bincount(y_idx, minlength=n_types)
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    offset = np.floor(rng.random_sample(spot.size) * sizes[cell_type]).astype(np.intp)
    cells = by_type[starts[cell_type] + offset]
    mixer = sp.csr_matrix(
        (np.ones(spot.size), (spot, cells)), shape=(n_spots, y_idx.size)
    )
    counts = np.zeros((n_spots, n_types))
    np.add.at(counts, (spot, cell_type), 1.0)
    return mixer, counts / n_cells[:, None]


def _log_normalize(X, totals):
    """Normalise rows to 1e4 and log1p (scanpy's normalize_total, log1p)."""
    X = X.toarray() if sp.issparse(X) else np.array(X, dtype=np.float64)
    scale = np.divide(
        TARGET_SUM,
        totals,
        out=np.zeros_like(totals, dtype=np.float64),
        where=totals > 0,
    )
    return np.log1p(X * scale[:, None])


def _gene_std(X):
    """Per-gene standard deviation (ddof=1, as ``sc.pp.scale``), 0 -> 1."""
    sd = X.std(axis=0, ddof=1) if X.shape[0] > 1 else np.zeros(X.shape[1])
    return np.where(sd > 0, sd, 1.0)


def _zscore(X):
    return (X - X.mean(axis=0)) / _gene_std(X)


def logreg_markers(X_log, y_idx, n_types, n_markers=100):
    """Marker genes by logistic regression (scanpy's ``rank_genes_groups``).

    A multinomial :class:`~sklearn.linear_model.LogisticRegression` with
    scikit-learn's defaults (as scanpy's ``method="logreg"`` calls it) on the
    log-normalised reference; each type's ``n_markers`` genes of largest
    coefficient, pooled.  With two types the one coefficient vector ranks
    the second type's markers and its negative the first's.

    Parameters
    ----------
    X_log : {ndarray, sparse matrix} of shape (n_cells, n_genes)
        Log-normalised reference expression.
    y_idx : ndarray of shape (n_cells,)
        Type index of every cell.
    n_types : int
        Number of types.
    n_markers : int, default=100
        Genes per type.

    Returns
    -------
    genes : ndarray of int
        Sorted indices of the pooled markers.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.spatial.deconvolution.stdgcn import logreg_markers
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1, 2], 20)
    >>> X = rng.random((60, 10))
    >>> X[y == 1, 3] += 3.0
    >>> 3 in logreg_markers(X, y, 3, n_markers=1)
    True
    """
    with warnings.catch_warnings():
        # scanpy runs lbfgs for scikit-learn's default 100 iterations
        warnings.simplefilter("ignore", ConvergenceWarning)
        coef = LogisticRegression().fit(X_log, y_idx).coef_
    scores = np.vstack([-coef[0], coef[0]]) if n_types == 2 else coef
    n = min(n_markers, scores.shape[1])
    top = [np.argsort(-row, kind="stable")[:n] for row in scores]
    return np.unique(np.concatenate(top))


def _neighbours(data, queries, k):
    """Return the indices of the ``k`` cosine-nearest rows of ``data``."""
    unit = unit_rows(data)
    nn = NearestNeighbors(n_neighbors=k).fit(unit)
    return nn.kneighbors(unit_rows(queries), return_distance=False)


def _pairs(rows_of, n_rows, n_cols):
    k = rows_of.shape[1]
    return sp.csr_matrix(
        (np.ones(n_rows * k), (np.repeat(np.arange(n_rows), k), rows_of.ravel())),
        shape=(n_rows, n_cols),
    )


def within_mutual_nn(X, n_neighbors):
    """Cosine mutual nearest neighbours within a set (``intra_exp_adj``).

    Each row counts among its own ``n_neighbors`` nearest (as STdGCN's
    ``find_mutual_nn(X, X)``); the diagonal is then removed.

    Parameters
    ----------
    X : ndarray of shape (n, n_dims)
    n_neighbors : int
        Neighbours, the row itself included (capped at ``n``).

    Returns
    -------
    links : scipy.sparse.csr_matrix of shape (n, n)
        Symmetric 0/1 adjacency without self loops.
    """
    n = X.shape[0]
    A = _pairs(_neighbours(X, X, min(n_neighbors, n)), n, n)
    A = sp.csr_matrix(A.multiply(A.T))
    A.setdiag(0)
    A.eliminate_zeros()
    return A


def spatial_links(coords, n_neighbors=N_SPATIAL_NEIGHBORS, radius=SPATIAL_RADIUS):
    """STdGCN's soft spatial graph (``intra_dist_adj``), in spot spacings.

    Each spot is linked to those of its ``n_neighbors`` nearest spots closer
    than ``radius`` spot spacings (:func:`~skdance.graph.spot_spacing`), with
    weight ``1 / distance`` (distance in spacings, floored at 0.1); the
    graph is symmetric.

    Parameters
    ----------
    coords : ndarray of shape (n_spots, n_dims)
        Spot positions.
    n_neighbors : int, default=27
        Nearest spots considered (capped at ``n_spots - 1``).
    radius : float, default=2.0
        Largest distance (exclusive), in spot spacings.

    Returns
    -------
    links : scipy.sparse.csr_matrix of shape (n_spots, n_spots)
    """
    n = coords.shape[0]
    k = min(n_neighbors, n - 1)
    if k < 1:
        return sp.csr_matrix((n, n))
    dist, ind = NearestNeighbors(n_neighbors=k).fit(coords).kneighbors()
    dist = dist / spot_spacing(coords)
    keep = dist < radius
    rows = np.repeat(np.arange(n), k)[keep.ravel()]
    weights = 1.0 / np.maximum(dist[keep], _MIN_DISTANCE)
    A = sp.csr_matrix((weights, (rows, ind[keep])), shape=(n, n))
    return sp.csr_matrix(A.maximum(A.T))


class _GraphBlock(nn.Module):
    """Graph convolution -> batch norm -> ELU -> dropout (``conGCN``'s layer).

    The convolution's weight is drawn from ``U(-1/sqrt(out), 1/sqrt(out))``
    as STdGCN's ``conGraphConvolutionlayer``; its bias, added after the
    propagation there, is left out: the batch norm that follows subtracts
    any per-feature constant, so the outputs are the same.  The batch norm
    always uses the statistics of the nodes passed (STdGCN's network never
    leaves training mode; the whole graph is one batch).
    """

    def __init__(self, n_in, n_out, dropout):
        super().__init__()
        self.lin = nn.Linear(n_in, n_out, bias=False)
        bound = 1.0 / np.sqrt(n_out)
        nn.init.uniform_(self.lin.weight, -bound, bound)
        self.norm = nn.BatchNorm1d(n_out, track_running_stats=False)
        self.dropout = dropout

    def forward(self, x, adj):
        h = sparse_matmul(adj, self.lin(x), adj_t=adj)  # adj is symmetric
        return F.dropout(F.elu(self.norm(h)), self.dropout, self.training)


class _DenseBlock(nn.Module):
    def __init__(self, n_in, n_out, dropout):
        super().__init__()
        self.lin = nn.Linear(n_in, n_out)
        self.norm = nn.BatchNorm1d(n_out, track_running_stats=False)
        self.dropout = dropout

    def forward(self, x):
        return F.dropout(F.elu(self.norm(self.lin(x))), self.dropout, self.training)


class STdGCNModule(nn.Module):
    """STdGCN's ``conGCN``: an expression branch and a spatial branch.

    Each branch is two graph blocks (convolution, batch norm, ELU) of width
    ``hidden_dim`` over its own graph; their outputs are concatenated and
    pass two dense blocks of width ``hidden_dim`` and a linear layer to the
    cell types; the output is log-probabilities.

    Parameters
    ----------
    n_in : int
        Input features.
    hidden_dim : int
        Width of every hidden layer.
    n_out : int
        Cell types.
    dropout : float, default=0.0
        Dropout after every hidden activation.
    """

    def __init__(self, n_in, hidden_dim, n_out, dropout=0.0):
        super().__init__()
        self.expression = nn.ModuleList(
            [
                _GraphBlock(n_in, hidden_dim, dropout),
                _GraphBlock(hidden_dim, hidden_dim, dropout),
            ]
        )
        self.spatial = nn.ModuleList(
            [
                _GraphBlock(n_in, hidden_dim, dropout),
                _GraphBlock(hidden_dim, hidden_dim, dropout),
            ]
        )
        self.head = nn.Sequential(
            _DenseBlock(2 * hidden_dim, hidden_dim, dropout),
            _DenseBlock(hidden_dim, hidden_dim, dropout),
            nn.Linear(hidden_dim, n_out),
        )

    def forward(self, x, adj_expression, adj_spatial):
        """Log-proportions of every node."""
        h_exp, h_sp = x, x
        for block in self.expression:
            h_exp = block(h_exp, adj_expression)
        for block in self.spatial:
            h_sp = block(h_sp, adj_spatial)
        return F.log_softmax(self.head(torch.cat([h_exp, h_sp], dim=1)), dim=1)


def _kl_mean(log_p, target):
    """``nn.KLDivLoss(reduction="mean")``: the mean over all entries."""
    return F.kl_div(log_p, target, reduction="sum") / target.numel()


@fill_doc
class STdGCN(BaseDeconvolution):
    """STdGCN: deconvolution by graph convolutions on expression and space.

    The method of Li et al. (2024).  Transductive: ``fit`` stores the
    reference, ``predict`` trains the network on the spots it is given, with
    their coordinates (each call trains anew, on ``device``; nothing of that
    training is stored on the estimator).

    1. Markers: a logistic regression of the types on the log-normalised
       reference (scanpy's ``rank_genes_groups(method="logreg")``), the
       ``n_markers`` genes of largest coefficient per type, pooled
       (:func:`logreg_markers`), among the genes the spots have.
    2. Pseudo-spots: ``n_pseudo_spots`` mixtures of ``cells_per_spot``
       reference cells from 1 to ``max_types_per_spot`` types
       (:func:`stdgcn_pseudo_spots`), with known proportions.  Real and
       pseudo-spots are normalised to 1e4 on the shared genes and
       log-transformed, then restricted to the markers.
    3. Expression graph: mutual nearest neighbours (cosine, 20) between real
       and pseudo-spots (``graph``) on the first ``n_components``
       principal components of both sets together (z-scored per gene, at
       most half the markers), plus mutual nearest neighbours within the
       real spots (10) and within the pseudo-spots (20) on their own
       z-scored markers; edge weight 1/60, self loops, symmetric
       normalisation.
    4. Spatial graph between the real spots: each of the 27 nearest spots
       closer than 2 spot spacings (:func:`~skdance.graph.spot_spacing`),
       weight ``1 / distance`` in spacings, times 1/20, self loops (the only
       edges of the pseudo-spots), symmetric normalisation
       (:func:`spatial_links`).
    5. :class:`STdGCNModule` (width ``min(hidden_dim, n_markers_kept // 2)``)
       on the log-normalised markers divided by their standard deviation
       over all nodes; KL divergence to the pseudo-spots' proportions on a
       random ``1 - validation_fraction`` of them; SGD (Nesterov momentum
       0.9, ``learning_rate``, ``weight_decay``), gradient norm clipped to
       ``max_grad_norm``, the learning rate divided by 10 after 5 epochs
       without improvement of the validation loss; training stops after
       ``patience`` epochs without improvement of the validation loss
       rounded to 4 decimals.  The real spots' output of the epoch with the
       best validation loss is the proportions.

    Parameters
    ----------
    graph : graph builder or None, default=None
        Builder of the real-to-pseudo link graph, called as
        ``fit(Z).transform(Z, batch=...)`` on the principal components
        (only its links between the two sets are used); None:
        ``MutualNNGraph(n_neighbors=20, metric="cosine")``.
    n_markers : int, default=100
        Marker genes per type.
    n_pseudo_spots : int, default=30000
        Pseudo-spots generated from the reference.
    cells_per_spot : tuple of (int, int), default=(8, 12)
        Cells mixed into a pseudo-spot.
    max_types_per_spot : int, default=4
        Most cell types mixed into a pseudo-spot.
    n_components : int, default=30
        Principal components of the real-to-pseudo link graph.
    hidden_dim : int, default=80
        Width of the hidden layers (capped at half the markers kept).
    dropout : float, default=0.0
        Dropout after every hidden activation.
    learning_rate : float, default=0.2
        Initial learning rate of SGD.
    weight_decay : float, default=3e-4
        SGD weight decay.
    max_grad_norm : float or None, default=1.0
        Clip the gradients' total norm; None: no clipping.
    max_epochs : int, default=3000
        Full-graph epochs (the most).
    validation_fraction : float, default=0.1
        Pseudo-spots held out for the learning-rate schedule, early stopping
        and the choice of the epoch (none if it rounds down to 0: the
        schedule then watches the training loss and the last epoch is
        kept).
    patience : int or None, default=20
        Stop after this many epochs without improvement of the rounded
        validation loss; None trains all ``max_epochs``.
    {spatial_key}
    device : str or torch.device, default="cpu"
        Where to train (in ``predict``): ``"cpu"``, ``"cuda"``, ``"cuda:N"``
        or ``"mps"``; a ``ValueError`` names an absent device (raised by
        ``fit`` already). The proportions are returned as a CPU array.
    random_state : int, RandomState instance or None, default=None
        Seeds the pseudo-spots, the split, the PCA and the network.
    {verbose}

    Attributes
    ----------
    classes_ : ndarray of shape (n_types,)
        Cell types (columns of the proportions).
    {n_features_in_}
    {feature_names_in_}

    See Also
    --------
    DSTG : A GCN on a link graph of pseudo and real spots, without space.
    CARD : Deconvolution with a spatial prior on the proportions.

    Notes
    -----
    Differences from the original (``luoyuanlab/stdgcn``, its tutorial's
    settings):

    - The proportions are the output of the epoch with the best (rounded)
      validation loss; STdGCN returns the output of the last epoch run
      (``patience`` epochs later, the learning rate by then cut by the
      plateau schedule).  DANCE's port does as STdGCN.
    - Spatial distances are in spot spacings, so the 2-spacing radius means
      the same on any coordinate scale; STdGCN compares raw coordinates
      with 2 (its tutorial's ST array has unit spacing).
    - The validation pseudo-spots are a random 10%, not the last 10% (the
      pseudo-spots are random either way); early stopping counts
      ``patience`` epochs without improvement (STdGCN stops one epoch
      earlier).
    - DANCE's port drops the per-set z-scoring before the within-set
      neighbour search; it is kept here, as in STdGCN.
    - Markers are chosen among the genes the spots share with the reference,
      after normalising the reference on those genes (STdGCN normalises on
      all reference genes and fails when a marker is missing from the
      spots); with two types the negative coefficients rank the first
      type's markers (scanpy ranks only one group).
    - The batch-removal, autoencoder and Wilcoxon-marker options of
      STdGCN's code are left out (its tutorial uses none of them).

    References
    ----------
    Li, Luo et al. (2024), "STdGCN: spatial transcriptomic cell-type
    deconvolution using graph convolutional networks", Genome Biology 25,
    206.

    Examples
    --------
    >>> from skdance.datasets import load_pbmc_4k_subset, make_pseudo_spots
    >>> from skdance.spatial import STdGCN
    >>> X, y = load_pbmc_4k_subset()
    >>> spots, props, coords = make_pseudo_spots(X[600:], y[600:], n_spots=40,
    ...                                          random_state=0)
    >>> model = STdGCN(n_pseudo_spots=200, max_epochs=20, random_state=0)
    >>> model.fit(X[:600], y[:600]).predict(spots, coords=coords).shape
    (40, 8)
    """

    _requires_coords = True

    _parameter_constraints = {
        "graph": [HasMethods(["fit", "transform"]), None],
        "n_markers": [Interval(Integral, 1, None, closed="left")],
        "n_pseudo_spots": [Interval(Integral, 2, None, closed="left")],
        "cells_per_spot": [tuple, list],
        "max_types_per_spot": [Interval(Integral, 1, None, closed="left")],
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "hidden_dim": [Interval(Integral, 1, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "max_grad_norm": [Interval(Real, 0, None, closed="neither"), None],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        **VALIDATION_CONSTRAINTS,
        "spatial_key": [str],
        **TORCH_CONSTRAINTS,
    }

    def __init__(
        self,
        *,
        graph=None,
        n_markers=100,
        n_pseudo_spots=30000,
        cells_per_spot=(8, 12),
        max_types_per_spot=4,
        n_components=30,
        hidden_dim=80,
        dropout=0.0,
        learning_rate=0.2,
        weight_decay=3e-4,
        max_grad_norm=1.0,
        max_epochs=3000,
        validation_fraction=0.1,
        patience=20,
        spatial_key="spatial",
        device="cpu",
        random_state=None,
        verbose=0,
    ):
        self.graph = graph
        self.n_markers = n_markers
        self.n_pseudo_spots = n_pseudo_spots
        self.cells_per_spot = cells_per_spot
        self.max_types_per_spot = max_types_per_spot
        self.n_components = n_components
        self.hidden_dim = hidden_dim
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.max_grad_norm = max_grad_norm
        self.max_epochs = max_epochs
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.spatial_key = spatial_key
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _fit(self, X, y_idx):
        low, high = self.cells_per_spot if len(self.cells_per_spot) == 2 else (0, -1)
        if not 1 <= int(low) <= int(high):
            raise ValueError(
                "cells_per_spot must be (low, high) with 1 <= low <= high, got "
                f"{self.cells_per_spot!r}."
            )
        check_device(self.device)  # training happens in predict: fail early
        self.reference_ = sp.csr_matrix(X)
        self.reference_labels_ = y_idx

    def _predict(self, X, genes, coords):
        coords = np.asarray(coords, dtype=np.float64)
        # the graphs and the PCA run over the spots passed together: run them
        # in an order that does not depend on how the spots were listed
        keys = sp.hstack([sp.csr_matrix(X), sp.csr_matrix(coords)], format="csr")
        order = canonical_row_order(keys)
        out = np.empty((X.shape[0], self.classes_.size))
        out[order] = self._predict_ordered(X[order], coords[order], genes)
        return out

    def _inputs(self, X, coords, genes, seed):
        """Features, the two normalised graphs and the pseudo-spot targets."""
        n_types = self.classes_.size
        reference = self.reference_[:, genes]
        ref_totals = np.asarray(reference.sum(axis=1)).ravel()
        markers = logreg_markers(
            sp.csr_matrix(_log_normalize(reference, ref_totals)),
            self.reference_labels_,
            n_types,
            self.n_markers,
        )
        mixer, props = stdgcn_pseudo_spots(
            self.reference_labels_,
            n_types,
            self.n_pseudo_spots,
            self.cells_per_spot,
            self.max_types_per_spot,
            random_state=seed,
        )
        pseudo = _log_normalize(mixer @ reference[:, markers], mixer @ ref_totals)
        totals = np.asarray(X.sum(axis=1)).ravel()
        real = _log_normalize(X[:, markers], totals)
        n_genes = markers.size
        both = np.vstack([real, pseudo])
        # real-to-pseudo links on the PCA of both sets, z-scored together
        k = max(1, min(self.n_components, n_genes // 2))
        solver = "arpack" if k < min(both.shape) else "full"
        k = min(k, min(both.shape))
        Z = PCA(k, svd_solver=solver, random_state=seed).fit_transform(_zscore(both))
        n_real = real.shape[0]
        batch = np.r_[np.zeros(n_real, int), np.ones(pseudo.shape[0], int)]
        builder = (
            MutualNNGraph(n_neighbors=20, metric="cosine")
            if self.graph is None
            else clone(self.graph)
        )
        links = sp.csr_matrix(builder.fit(Z).transform(Z, batch=batch))
        link = links[:n_real, n_real:]
        expression = sp.bmat(
            [
                [within_mutual_nn(_zscore(real), N_REAL_NEIGHBORS), link],
                [link.T, within_mutual_nn(_zscore(pseudo), N_PSEUDO_NEIGHBORS)],
            ],
            format="csr",
        )
        space = sp.block_diag(
            [spatial_links(coords), sp.csr_matrix((pseudo.shape[0],) * 2)],
            format="csr",
        )
        adj_exp = to_torch_sparse(
            expression * EXPRESSION_EDGE_WEIGHT, normalize="sym", add_self_loops=True
        )
        adj_sp = to_torch_sparse(
            space * SPATIAL_EDGE_WEIGHT, normalize="sym", add_self_loops=True
        )
        features = (both / _gene_std(both)).astype(np.float32)
        return features, adj_exp, adj_sp, props.astype(np.float32), n_genes

    def _predict_ordered(self, X, coords, genes):
        seed = check_random_state_int(self.random_state)
        features, adj_exp, adj_sp, props, n_genes = self._inputs(X, coords, genes, seed)
        n_real = X.shape[0]
        train, valid = validation_split(props.shape[0], self.validation_fraction, seed)
        train, valid = train + n_real, valid + n_real
        targets = torch.from_numpy(
            np.vstack([np.zeros((n_real, props.shape[1]), np.float32), props])
        )
        hidden = max(1, min(self.hidden_dim, n_genes // 2))
        # trains in predict, which stores nothing on the fitted estimator
        with training(self, seed=seed, store=False) as run:
            trainer = run.trainer
            features, adj_exp, adj_sp, targets = run.to(
                (torch.from_numpy(features), adj_exp, adj_sp, targets)
            )
            train, valid = run.to((torch.from_numpy(train), torch.from_numpy(valid)))
            module = run.place(
                STdGCNModule(features.shape[1], hidden, props.shape[1], self.dropout)
            )
            opt = torch.optim.SGD(
                module.parameters(),
                lr=self.learning_rate,
                momentum=MOMENTUM,
                nesterov=True,
                weight_decay=self.weight_decay,
            )
            clip_gradients_in_step(opt, module, self.max_grad_norm)
            plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
                opt, mode="min", factor=PLATEAU_FACTOR, patience=PLATEAU_PATIENCE
            )
            has_valid = valid.numel() > 0
            state = {"best": np.inf, "out": None, "valid": None}

            def epoch(_):
                # STdGCN's loop: one forward pass gives the training loss,
                # the validation loss and the real spots' output of the
                # weights before this epoch's step
                module.train()
                log_p = module(features, adj_exp, adj_sp)
                loss = _kl_mean(log_p[train], targets[train])
                watched = loss.detach()
                if has_valid:
                    watched = _kl_mean(log_p[valid], targets[valid]).detach()
                    rounded = float(torch.round(watched, decimals=4))
                    state["valid"] = {
                        "valid_loss": float(watched),
                        "valid_loss_rounded": rounded,
                    }
                    if rounded < state["best"]:
                        state["best"] = rounded
                        state["out"] = log_p[:n_real].detach().clone()
                else:
                    state["out"] = log_p[:n_real].detach().clone()
                value = trainer.step(opt, loss)
                plateau.step(float(watched))
                return {"train_loss": value, "learning_rate": opt.param_groups[0]["lr"]}

            trainer.run(
                "train",
                self.max_epochs,
                epoch,
                valid_fn=(lambda: state["valid"]) if has_valid else None,
                monitor="valid_loss_rounded",
                patience=self.patience,
            )
            out = state["out"].exp()
        return out.cpu().double().numpy()

    def __skdance_tags__(self):
        tags = super().__skdance_tags__()
        tags.transductive = True
        return tags
