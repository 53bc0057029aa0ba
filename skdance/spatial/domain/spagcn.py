"""SpaGCN: graph convolution on a Gaussian spot graph, then DEC clustering."""

import copy
import math
import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import clone
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from torch import nn

from skdance.clustering import Leiden, Louvain
from skdance.graph import (
    KNNGraph,
    SpatialGaussianGraph,
    fit_graph,
    isolated_spots,
    to_igraph,
    warn_isolated,
)
from skdance.nn import (
    TORCH_CONSTRAINTS,
    GraphConv,
    StopTraining,
    check_device,
    kl_clustering_loss,
    target_distribution,
    training,
)
from skdance.preprocessing import filter_genes, normalize_rows, row_sums
from skdance.spatial.domain._base import BaseSpatialDomain
from skdance.utils import check_random_state_int, fill_doc

__all__ = ["SpaGCN", "SpaGCNModule", "histology_coords", "refine_domains"]

# SpaGCN's refinement window: the spot and its 6 (Visium) or 4 (ST) nearest
_SHAPES = {"hexagon": 6, "square": 4}
# a spot receiving at most this weight from all the others (against its own
# 1) is isolated: its convolved features are its own to three digits
_ISOLATED_WEIGHT = 1e-3


class SpaGCNModule(nn.Module):
    """One graph convolution and SpaGCN's Student-t soft assignment.

    ``h = A (x W) + b`` (SpaGCN's ``simple_GC_DEC``: the bias is added after
    the propagation, and ``A`` is the un-normalised Gaussian kernel with
    its unit self weights), then
    ``q_ij ∝ (1 + ||h_i - mu_j||² / alpha) ** -(alpha + 1)``.  The exponent
    is SpaGCN's code (``q ** (alpha + 1) / 2`` on ``1 / (1 + d² / alpha)``),
    not DEC's ``-(alpha + 1) / 2``.  The centres ``mu`` are a buffer: SpaGCN
    builds its optimiser before it creates them, so they stay where the
    initial clustering puts them.

    Parameters
    ----------
    in_dim : int
        Number of input features (principal components).
    hidden_dim : int
        Width of the convolution's output (SpaGCN: ``in_dim``).
    alpha : float, default=0.2
        Degrees of freedom of the Student-t kernel.
    """

    def __init__(self, in_dim, hidden_dim, alpha=0.2):
        super().__init__()
        self.conv = GraphConv(in_dim, hidden_dim, bias=False)
        self.bias = nn.Parameter(torch.empty(hidden_dim))
        self.alpha = alpha
        self.register_buffer("centers", None)
        self.reset_parameters()

    def reset_parameters(self):
        """Draw ``W`` and ``b`` from U(-1/sqrt(hidden_dim), 1/sqrt(hidden_dim))."""
        bound = 1.0 / math.sqrt(self.bias.shape[0])
        nn.init.uniform_(self.conv.lin.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def embed(self, x, adj=None):
        """Graph convolution ``adj @ (x W) + b``.

        With ``adj=None``, ``x`` is the propagated input ``adj @ x``: the
        input of SpaGCN's single linear convolution is fixed, so ``A x`` is
        computed once and every epoch costs ``(A x) W`` (the same product).
        """
        if adj is None:
            return self.conv.lin(x) + self.bias
        return self.conv(x, adj) + self.bias

    def assign(self, h):
        """Soft assignment of embeddings ``h`` to the centres (rows sum to 1)."""
        dist2 = (h.unsqueeze(1) - self.centers).square().sum(dim=2)
        q = torch.pow(1.0 + dist2 / self.alpha, -(self.alpha + 1.0))
        return q / q.sum(dim=1, keepdim=True)

    def forward(self, x, adj=None):
        """Return the embedding and the soft assignment ``(h, q)``."""
        h = self.embed(x, adj)
        return h, self.assign(h)


def refine_domains(labels, coords, shape="hexagon"):
    """SpaGCN's label refinement on the spots' nearest neighbours.

    Each spot is looked at with its ``k`` nearest spots (``k = 6`` for
    ``"hexagon"``, Visium's lattice; ``4`` for ``"square"``, the original ST
    array).  When fewer than ``k / 2`` of these ``k + 1`` spots share the
    spot's domain and more than ``k / 2`` share another one, the spot moves
    to that majority domain.  All spots are decided from the input labels
    (one simultaneous pass, as SpaGCN's ``refine``).

    Parameters
    ----------
    labels : array-like of shape (n_spots,)
        Domain of each spot.
    coords : array-like of shape (n_spots, n_dims)
        Spot positions (only the first two columns are used).
    shape : {"hexagon", "square"}, default="hexagon"
        Neighbourhood size, see above.

    Returns
    -------
    refined : ndarray of shape (n_spots,)
        Refined domains (same values as ``labels``).

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.spatial.domain.spagcn import refine_domains
    >>> coords = np.array([[x, y] for x in range(3) for y in range(3)], float)
    >>> labels = np.array([0, 0, 0, 0, 1, 0, 0, 0, 0])
    >>> refine_domains(labels, coords, shape="square")
    array([0, 0, 0, 0, 0, 0, 0, 0, 0])
    """
    if shape not in _SHAPES:
        raise ValueError(f"shape must be one of {sorted(_SHAPES)}, got {shape!r}.")
    labels = np.asarray(labels)
    coords = np.asarray(coords, dtype=np.float64)[:, :2]
    n = labels.shape[0]
    k = min(_SHAPES[shape], n - 1)
    if k < 1:
        return labels.copy()
    values, codes = np.unique(labels, return_inverse=True)
    # each spot's k nearest other spots (itself excluded), then itself
    neighbours = NearestNeighbors(n_neighbors=k).fit(coords).kneighbors()[1]
    window = np.column_stack([np.arange(n), neighbours])
    counts = np.zeros((n, values.size), dtype=np.int64)
    np.add.at(counts, (np.repeat(np.arange(n), k + 1), codes[window].ravel()), 1)
    own = counts[np.arange(n), codes]
    flip = (own < k / 2) & (counts.max(axis=1) > k / 2)
    refined = codes.copy()
    refined[flip] = counts[flip].argmax(axis=1)
    return values[refined]


def histology_coords(coords, image, *, beta=49, alpha=1.0):
    """Add SpaGCN's histology coordinate to the spots' pixel positions.

    SpaGCN (Hu et al. 2021) places each spot in 3-D: its two pixel
    coordinates and ``z``, the mean colour of a ``beta x beta`` pixel
    square around the spot (the RGB channels averaged with weights equal to
    their variances across spots), standardised and scaled to
    ``alpha * max(std(x), std(y))``.  Pass the result as ``coords`` to
    :class:`SpaGCN`; its Gaussian graph then links spots that are close
    *and* look alike.  (The refinement uses the first two columns only.)

    Parameters
    ----------
    coords : array-like of shape (n_spots, 2)
        Spot positions in the pixels of ``image``, as (x, y) = (column, row)
        (the ``obsm["spatial"]`` convention of scanpy and squidpy; scale
        full-resolution positions to the image first).
    image : array-like of shape (height, width, 3)
        The histology image (H&E), RGB.
    beta : int, default=49
        Side of the pixel square averaged around each spot.
    alpha : float, default=1.0
        Weight of the histology coordinate relative to space.

    Returns
    -------
    coords3 : ndarray of shape (n_spots, 3)
        ``(x, y, z)``.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.spatial.domain.spagcn import histology_coords
    >>> image = np.zeros((20, 20, 3)); image[:, 10:] = 255
    >>> histology_coords([[2, 5], [15, 5]], image, beta=3).round(1)
    array([[ 2. ,  5. , -6.5],
           [15. ,  5. ,  6.5]])
    """
    coords = np.asarray(coords, dtype=np.float64)
    image = np.asarray(image)
    if coords.ndim != 2 or coords.shape[1] != 2:
        raise ValueError(f"coords must have 2 columns (x, y), got {coords.shape}.")
    if image.ndim != 3 or image.shape[2] < 3:
        raise ValueError(f"image must be (height, width, 3) RGB, got {image.shape}.")
    half = round(beta / 2)
    height, width = image.shape[:2]
    cols, rows = np.rint(coords).astype(np.int64).T
    colour = np.empty((coords.shape[0], 3))
    for i, (r, c) in enumerate(zip(rows, cols)):
        patch = image[
            max(0, r - half) : min(height, r + half + 1),
            max(0, c - half) : min(width, c + half + 1),
            :3,
        ]
        if patch.size == 0:
            raise ValueError(f"spot {i} at (x={c}, y={r}) lies outside the image.")
        colour[i] = patch.reshape(-1, 3).mean(axis=0)
    var = colour.var(axis=0)
    if var.sum() == 0:
        raise ValueError("The image has the same colour at every spot.")
    grey = colour @ var / var.sum()
    z = (grey - grey.mean()) / grey.std() if grey.std() > 0 else grey * 0.0
    z = z * coords.std(axis=0).max() * alpha
    return np.column_stack([coords, z])


@fill_doc
class SpaGCN(BaseSpatialDomain):
    """SpaGCN: spatial domains by a graph convolution and DEC clustering.

    The method of Hu et al. (2021), as its code (``SpaGCN`` 1.2) and DANCE
    run it:

    1. Expression: genes detected in fewer than ``min_cells`` spots and
       genes named ``ERCC...`` / ``MT-...`` are dropped, counts are scaled
       to the median spot total (``normalize_per_cell``) and ``log1p``-ed,
       and ``n_components`` principal components are the node features.
    2. Graph (``spatial_graph``): every pair of spots is linked with weight
       ``exp(-d² / (2 l²))`` (self weight 1; DANCE eq. 60), the length scale
       ``l`` chosen so that the mean total weight a spot receives from the
       others is ``p`` (SpaGCN's ``search_l``;
       :class:`~skdance.graph.SpatialGaussianGraph`).  By default distances
       are measured in the spots' nearest-spot distances where the layout
       is irregular (the builder's ``local_scaling``), so that no cell of a
       single-cell-resolution section is left without neighbours (on Visium
       and ST arrays the kernel is SpaGCN's); spots that receive at most
       1e-3 from all the others (e.g. with a too small ``length_scale``) are
       named in a warning.
       With a histology image, pass 3-column coordinates from
       :func:`histology_coords`; without one (the default) the distance is
       spatial only.
    3. One graph convolution ``h = A (x W) + b`` (width ``n_components``, no
       activation); the initial clusters are Louvain communities of ``h``
       (10-neighbour UMAP graph, as ``scanpy``), or k-means (20 restarts).
       With ``resolution=None`` the Louvain resolution is searched for
       ``n_clusters`` as SpaGCN's ``search_res`` does: start at 0.4, step
       0.1 towards the target, halve the step on overshoot, count the
       clusters of a ``search_max_epochs`` training run (no labels used).
    4. DEC iterations (eqs. 61-63): Student-t soft assignments ``q`` to the
       centres (means of ``h`` per initial cluster, kept fixed as in
       SpaGCN's code), target ``P`` recomputed every ``update_interval``
       epochs, Adam on ``KL(P||Q)``; training stops once fewer than ``tol``
       of the spots change domain between consecutive epochs (checked after
       target updates) or after ``max_epochs``.
    5. Optionally (``refine=True``, DANCE's benchmark setting) each spot
       takes the majority domain of its 6 (hexagon) or 4 (square) nearest
       spots when its own domain is in the minority there
       (:func:`refine_domains`).

    Transductive: the graph links the spots passed together; ``transform``
    embeds the spots it is given over their own graph with the fitted
    length scale, normalisation, PCA and convolution.

    Memory and time: as in SpaGCN the kernel is evaluated over all pairs
    of spots (``n_spots²`` float64 values: 106 MB for a 3,639-spot Visium
    slice, 20 GB at 50,000 spots), 50 times during the length-scale search,
    which dominates the fit time.  The convolution's input is fixed, so
    ``A x`` is computed once and each epoch costs ``(A x) W`` (the same
    product, in another order).

    Parameters
    ----------
    n_clusters : int
        Number of domains: the target of the resolution search, or of
        k-means.
    spatial_graph : graph builder or None, default=None
        Builder of the spot graph (cloned in ``fit``); it receives the
        spots and their coordinates.  A
        :class:`~skdance.graph.SpatialGaussianGraph` without a
        ``length_scale`` has its width searched on the training spots from
        its ``p`` (stored as ``length_scale_`` and kept for ``transform``).
        None: ``SpatialGaussianGraph(p=0.5, local_scaling=True,
        search_steps=50)``: SpaGCN's recommended ``p`` (DANCE's script uses
        0.05 on distances that include the histology coordinate) and its
        50 bisection steps, with the kernel adapted to the layout
        (``local_scaling``): each pair's distance is divided by the larger
        of the two spots' nearest-spot distances in spot spacings.  On a
        regular array (Visium, ST) those are all 1, SpaGCN's kernel, except
        at spots cut off from the array by a gap; on cells scattered at
        single-cell resolution every cell receives from its nearest one at
        least the weight of a neighbour one spacing away (SpaGCN's global
        kernel leaves remote cells almost none: on 500 uniform random
        points 28 cells receive less than 1e-3 from all the others
        together, the least 7e-13; with local scaling the least is 0.21).
        On the STARmap mPFC section (1,049 cells) the default fit's ARI was
        0.394 / 0.377 / 0.381 without and 0.385 / 0.399 / 0.353 with local
        scaling (seeds 0 / 1 / 2), 9 cells below 1e-3 without.
        ``SpatialGaussianGraph(p=0.5, search_steps=50)``: SpaGCN's kernel
        everywhere.
    n_components : int, default=50
        Principal components of the log-normalised expression (clipped to
        the data's rank).
    min_cells : int, default=3
        Keep genes detected in at least this many spots.
    exclude_gene_prefixes : tuple of str, default=("ERCC", "MT-")
        Drop genes whose names start with these (case-sensitive, as SpaGCN's
        ``prefilter_specialgenes``: spike-ins and human mitochondrial genes,
        not mouse ``Ercc1`` or ``mt-``; only when gene names are known:
        DataFrame or AnnData input).
    target_sum : float or None, default=None
        Total count of each spot after normalisation; None: the median spot
        total (SpaGCN's ``normalize_per_cell``; DANCE uses 1e4).
    init : {"louvain", "leiden", "kmeans"}, default="louvain"
        Initial clustering of the convolved features.  ``"leiden"`` is what
        DANCE's code runs under the name louvain.
    init_spatial : bool, default=True
        Initial clustering on the convolved features (True, SpaGCN's
        default) or on the principal components.
    resolution : float or None, default=None
        Louvain/Leiden resolution; None searches it for ``n_clusters``.
    graph : graph builder or None, default=None
        Builds the graph the initial Louvain/Leiden clustering runs on, from
        the features; None: ``KNNGraph(n_neighbors=9, mode="umap")`` (scanpy's
        10 neighbours counting the spot itself, SpaGCN's setting).
    search_start : float, default=0.4
        First resolution of the search.
    search_step : float, default=0.1
        First step of the search.
    search_max_epochs : int, default=20
        Training epochs of each search run (SpaGCN's tutorial: 20).
    search_max_runs : int, default=10
        Steps of the search before it gives up (with a warning).
    alpha : float, default=0.2
        Degrees of freedom of the Student-t kernel (SpaGCN's).
    max_epochs : int, default=200
        Maximum clustering epochs (SpaGCN's tutorial and DANCE).
    learning_rate : float, default=0.05
        Adam learning rate (SpaGCN's tutorial and DANCE's default; DANCE's
        per-slice values are 0.1 for 151673, 0.02 for 151676).
    weight_decay : float, default=0.0
        {weight_decay}
    update_interval : int, default=3
        {update_interval}
    tol : float, default=5e-3
        Stop when fewer than this fraction of spots change domain.
    refine : bool, default=True
        Apply the neighbourhood refinement to ``labels_`` (DANCE reports
        refined domains).
    refine_shape : {"hexagon", "square"}, default="hexagon"
        Refinement neighbourhood: 6 spots (Visium) or 4 (ST).
    {spatial_key} {device}
    random_state : int, RandomState instance or None, default=None
        Seeds the PCA, the network's initial weights and the initial
        clustering.
    verbose : int, default=0
        Show tqdm progress bars with the loss.

    Attributes
    ----------
    labels_ : ndarray of shape (n_spots,)
        Domain of every spot (refined when ``refine``), ``0..k-1``.
    unrefined_labels_ : ndarray of shape (n_spots,)
        Domains before the refinement.
    n_clusters_ : int
        Number of domains found (``n_clusters`` unless the search failed or
        a domain emptied during training).
    embedding_ : ndarray of shape (n_spots, n_components)
        Graph-convolved features of the spots.
    cluster_centers_ : ndarray of shape (n_initial_clusters, n_components)
        Centres of the Student-t kernel.
    spatial_graph_ : graph builder
        The builder of the spot graph, its searched length scale set.
    length_scale_ : float or None
        Kernel width ``l`` used (None for a builder that has none).
    resolution_ : float or None
        Louvain/Leiden resolution used (None with k-means).
    n_components_ : int
        Principal components used.
    pca_ : sklearn.decomposition.PCA
        The fitted PCA.
    genes_kept_ : ndarray of bool of shape (`n_features_in_`,)
        Genes used.
    target_sum_ : float
        Total count each spot is scaled to.
    module_ : SpaGCNModule
        The trained network (on CPU).
    history_ : list of dict
        One record per epoch: phase (``"search"`` for the resolution
        search's runs, which also record ``resolution``; ``"cluster"`` for
        the final run), epoch, train_loss (the KL loss), changed (fraction
        of spots that changed domain since the previous epoch), seconds.
    n_iter_ : int
        Epochs of the final clustering run.
    n_features_in_ : int
        Number of genes seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Gene names seen in ``fit``, when the input had them.

    See Also
    --------
    skdance.graph.SpatialGaussianGraph : The spot graph.
    refine_domains : The refinement step.
    histology_coords : SpaGCN's 3-D coordinates from an image.

    References
    ----------
    Hu, Li, Coleman, Schroeder, Ma, Irwin, Lee, Shinohara & Li (2021),
    "SpaGCN: Integrating gene expression, spatial location and histology to
    identify spatial domains and spatially variable genes by graph
    convolutional network", Nature Methods 18, 1342-1351.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.spatial.domain.spagcn import SpaGCN
    >>> rng = np.random.default_rng(0)
    >>> coords = np.array([[x, y] for x in range(12) for y in range(12)], float)
    >>> X = rng.poisson(2.0, size=(144, 30)).astype(float)
    >>> X[coords[:, 0] < 6, :10] += 5
    >>> model = SpaGCN(n_clusters=2, init="kmeans", n_components=5,
    ...                max_epochs=20,
    ...                random_state=0).fit(X, coords=coords)
    >>> model.labels_.shape, model.embedding_.shape
    ((144,), (144, 5))
    """

    _parameter_constraints = {
        "n_clusters": [Interval(Integral, 1, None, closed="left"), None],
        "spatial_graph": [HasMethods(["fit_transform"]), None],
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "min_cells": [Interval(Integral, 0, None, closed="left")],
        "exclude_gene_prefixes": [tuple, list],
        "target_sum": [Interval(Real, 0, None, closed="neither"), None],
        "init": [StrOptions({"louvain", "leiden", "kmeans"})],
        "init_spatial": ["boolean"],
        "resolution": [Interval(Real, 0, None, closed="neither"), None],
        "graph": [HasMethods(["fit_transform"]), None],
        "search_start": [Interval(Real, 0, None, closed="neither")],
        "search_step": [Interval(Real, 0, None, closed="neither")],
        "search_max_epochs": [Interval(Integral, 0, None, closed="left")],
        "search_max_runs": [Interval(Integral, 0, None, closed="left")],
        "alpha": [Interval(Real, 0, None, closed="neither")],
        "max_epochs": [Interval(Integral, 0, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "update_interval": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, 1, closed="both")],
        "refine": ["boolean"],
        "refine_shape": [StrOptions(set(_SHAPES))],
        "spatial_key": [str],
        **TORCH_CONSTRAINTS,
    }

    def __init__(
        self,
        n_clusters=None,
        *,
        spatial_graph=None,
        n_components=50,
        min_cells=3,
        exclude_gene_prefixes=("ERCC", "MT-"),
        target_sum=None,
        init="louvain",
        init_spatial=True,
        resolution=None,
        graph=None,
        search_start=0.4,
        search_step=0.1,
        search_max_epochs=20,
        search_max_runs=10,
        alpha=0.2,
        max_epochs=200,
        learning_rate=0.05,
        weight_decay=0.0,
        update_interval=3,
        tol=5e-3,
        refine=True,
        refine_shape="hexagon",
        spatial_key="spatial",
        device="cpu",
        random_state=None,
        verbose=0,
    ):
        self.n_clusters = n_clusters
        self.spatial_graph = spatial_graph
        self.n_components = n_components
        self.min_cells = min_cells
        self.exclude_gene_prefixes = exclude_gene_prefixes
        self.target_sum = target_sum
        self.init = init
        self.init_spatial = init_spatial
        self.resolution = resolution
        self.graph = graph
        self.search_start = search_start
        self.search_step = search_step
        self.search_max_epochs = search_max_epochs
        self.search_max_runs = search_max_runs
        self.alpha = alpha
        self.max_epochs = max_epochs
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.update_interval = update_interval
        self.tol = tol
        self.refine = refine
        self.refine_shape = refine_shape
        self.spatial_key = spatial_key
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------
    # inputs: node features and graph
    # ------------------------------------------------------------------
    def _select_genes(self, X):
        keep = filter_genes(X, min_cells=self.min_cells)
        names = getattr(self, "feature_names_in_", None)
        prefixes = tuple(str(s) for s in self.exclude_gene_prefixes)
        if names is not None and prefixes:
            keep &= ~np.array([str(g).startswith(prefixes) for g in names])
        if not keep.any():
            raise ValueError(
                f"SpaGCN: no gene is detected in min_cells={self.min_cells} spots "
                "(after excluding the gene prefixes); lower min_cells."
            )
        return keep

    def _log_normalized(self, X):
        """Dense log-normalised expression of the kept genes (float32)."""
        X = normalize_rows(X[:, self.genes_kept_].astype(np.float64), self.target_sum_)
        X = X.toarray() if sp.issparse(X) else X
        return np.log1p(X).astype(np.float32)

    def _features(self, X, seed=None):
        """Log-normalised principal components (fits them when ``seed`` given)."""
        if seed is not None:
            self.genes_kept_ = self._select_genes(X)
            if self.target_sum is None:
                totals = row_sums(X[:, self.genes_kept_])
                nonzero = totals[totals > 0]
                self.target_sum_ = float(np.median(nonzero)) if nonzero.size else 1.0
            else:
                self.target_sum_ = float(self.target_sum)
        # dense, as SpaGCN (its PCA densifies the expression too)
        logged = self._log_normalized(X)
        if seed is not None:
            self.n_components_ = min(self.n_components, *logged.shape)
            # scikit-learn's default solver, as SpaGCN, seeded
            self.pca_ = PCA(self.n_components_, random_state=seed).fit(logged)
            # the randomized solver leaves components_ a transposed (Fortran)
            # view, which pickling turns C-ordered; BLAS multiplies the two
            # layouts with different kernels and float32 rounding, so fix one
            # layout here and transform gives the same features after a
            # pickle round trip
            self.pca_.components_ = np.ascontiguousarray(self.pca_.components_)
        return self.pca_.transform(logged).astype(np.float32)

    def _spatial_builder(self, coords):
        """Return the spot-graph builder, its length scale searched on ``coords``."""
        if self.spatial_graph is None:
            builder = SpatialGaussianGraph(p=0.5, local_scaling=True, search_steps=50)
        else:
            builder = clone(self.spatial_graph)
        self.length_scale_ = None
        if isinstance(builder, SpatialGaussianGraph):
            self.length_scale_ = builder.search_length_scale(coords)
            builder.set_params(length_scale=self.length_scale_)
        return builder

    def _propagate(self, feats, coords):
        """Return ``A @ feats`` over the spot graph (float32).

        SpaGCN's single linear convolution has a fixed input, so ``A x`` is
        computed once and every epoch costs ``(A x) W``, the same product.
        Warns about the spots the graph leaves (nearly) without neighbours.
        """
        n = feats.shape[0]
        A = fit_graph(
            self.spatial_graph_,
            None,
            feats,
            coords=coords,
            shape=(n, n),
            name="spatial_graph",
            what="spot graph",
        )
        hint = "; widen the spatial_graph"
        if self.length_scale_ is not None:
            hint = (
                f" (length scale {self.length_scale_:.4g}); raise the "
                "spatial_graph's p or length_scale"
            )
            if not self.spatial_graph_.get_params().get("local_scaling", True):
                hint += ", or set its local_scaling=True"
        warn_isolated(
            isolated_spots(A, min_weight=_ISOLATED_WEIGHT),
            n,
            "SpaGCN",
            f"they receive a total weight of at most {_ISOLATED_WEIGHT:g} from "
            f"the other spots{hint}.",
            stacklevel=4,
        )
        return np.asarray(A @ feats.astype(np.float64), dtype=np.float32)

    # ------------------------------------------------------------------
    # clustering
    # ------------------------------------------------------------------
    def _community_graph(self, feats):
        n = feats.shape[0]
        default = KNNGraph(n_neighbors=min(9, n - 1), mode="umap")
        return to_igraph(fit_graph(self.graph, default, feats, shape=(n, n)))

    def _communities(self, graph, resolution, seed):
        cls = Leiden if self.init == "leiden" else Louvain
        return cls(random_state=seed).partition(graph, resolution, seed)

    def _train(self, trainer, module, ax, init_labels, max_epochs, phase, extra):
        """DEC iterations from the clusters ``init_labels``; return the module."""
        with torch.no_grad():
            h = module.embed(ax)
        groups = torch.from_numpy(init_labels).to(h.device)
        k = int(init_labels.max()) + 1
        sums = torch.zeros(k, h.shape[1], device=h.device).index_add_(0, groups, h)
        sizes = torch.bincount(groups, minlength=k).clamp(min=1).unsqueeze(1)
        module.centers = sums / sizes
        # the centres are a buffer, not a parameter: SpaGCN's optimiser never
        # sees them (it is created before they are)
        opt = torch.optim.Adam(
            module.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay
        )
        state = {"last": init_labels, "target": None, "stop": False}

        def epoch_fn(epoch):
            if state["stop"]:
                raise StopTraining
            if epoch % self.update_interval == 0:
                with torch.no_grad():
                    state["target"] = target_distribution(module(ax)[1])
            _, q = module(ax)
            loss = trainer.step(opt, kl_clustering_loss(state["target"], q))
            labels = q.detach().argmax(dim=1).cpu().numpy()
            changed = float(np.mean(labels != state["last"]))
            state["last"] = labels
            # SpaGCN's rule: label change between consecutive epochs, checked
            # on the epoch after each target update
            if epoch > 0 and (epoch - 1) % self.update_interval == 0:
                state["stop"] = changed < self.tol
            return {"train_loss": loss, "changed": changed, **extra}

        trainer.run(phase, max_epochs, epoch_fn)
        return module

    @staticmethod
    def _predict(module, ax):
        with torch.no_grad():
            h, q = module(ax)
        return h.cpu().numpy(), q.argmax(dim=1).cpu().numpy()

    def _search_resolution(self, trainer, initial, ax, graph, seed):
        """SpaGCN's ``search_res``: step the resolution until n_clusters."""
        target = self.n_clusters

        def count(res):
            labels = self._communities(graph, res, seed)
            module = trainer.to(copy.deepcopy(initial))
            self._train(
                trainer,
                module,
                ax,
                labels,
                self.search_max_epochs,
                "search",
                {"resolution": res},
            )
            return np.unique(self._predict(module, ax)[1]).size

        res, step = float(self.search_start), float(self.search_step)
        old = count(res)
        for _ in range(self.search_max_runs + 1):
            if old == target:
                return res
            sign = 1.0 if old < target else -1.0
            trial = res + step * sign
            if trial <= 0:  # the resolution must stay positive
                step /= 2
                continue
            new = count(trial)
            if new == target:
                return trial
            if (new < target) == (old < target):
                res, old = trial, new
            else:
                step /= 2
        warnings.warn(
            f"SpaGCN: the resolution search did not reach n_clusters={target} in "
            f"search_max_runs={self.search_max_runs} steps; using resolution="
            f"{res:.4g} ({old} clusters after the search run).",
            UserWarning,
            stacklevel=4,
        )
        return res

    def _fit(self, X, coords):
        check_device(self.device)  # before the work: a clear error first
        seed = check_random_state_int(self.random_state)
        feats = self._features(X, seed)
        self.spatial_graph_ = self._spatial_builder(coords)
        propagated = torch.from_numpy(self._propagate(feats, coords))

        def final_epochs(history):
            return sum(record["phase"] == "cluster" for record in history)

        with training(self, seed=seed, n_iter=final_epochs) as run:
            trainer = run.trainer
            ax = run.to(propagated)
            initial = SpaGCNModule(feats.shape[1], feats.shape[1], self.alpha)
            with torch.no_grad():
                h0 = run.to(copy.deepcopy(initial)).embed(ax).cpu().numpy()
            init_on = h0 if self.init_spatial else feats
            if self.init == "kmeans":
                self.resolution_ = None
                km = KMeans(self.n_clusters, n_init=20, random_state=seed)
                init_labels = km.fit_predict(init_on).astype(np.int64)
            else:
                graph = self._community_graph(init_on)
                if self.resolution is None:
                    self.resolution_ = self._search_resolution(
                        trainer, initial, ax, graph, seed
                    )
                else:
                    self.resolution_ = float(self.resolution)
                init_labels = self._communities(graph, self.resolution_, seed)
            module = self._train(
                trainer,
                run.place(copy.deepcopy(initial)),
                ax,
                init_labels,
                self.max_epochs,
                "cluster",
                {},
            )
            h, labels = self._predict(module, ax)
        self.embedding_ = np.asarray(h, dtype=np.float64)
        self.cluster_centers_ = self.module_.centers.numpy().copy()
        # consecutive domain numbers (a centre can lose all its spots)
        self.unrefined_labels_ = np.unique(labels, return_inverse=True)[1].astype(
            np.int64
        )
        self.labels_ = self.unrefined_labels_
        if self.refine:
            self.labels_ = refine_domains(
                self.unrefined_labels_, coords, self.refine_shape
            )
        self.n_clusters_ = int(np.unique(self.labels_).size)
        return self

    def transform(self, X, coords=None):
        """Graph-convolved features of the spots of ``X``.

        The spots are normalised and projected with the fitted gene set,
        total and PCA, linked by the fitted spot-graph builder (with the
        length scale found in ``fit``), and convolved by the trained layer.
        On the training spots this is ``embedding_``.

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData} of shape (n_spots, n_genes)
            Raw counts on the genes seen in ``fit``.
        coords : array-like of shape (n_spots, n_dims), default=None
            Spot positions, in the units (and with the columns) used in
            ``fit``.  Required unless ``X`` is an AnnData holding them in
            ``obsm[spatial_key]``.

        Returns
        -------
        embedding : ndarray of shape (n_spots, `n_components_`)
            Convolved features.
        """
        check_is_fitted(self)
        X, coords = self._resolve(X, coords, reset=False)
        ax = self._propagate(self._features(X), coords)
        with torch.no_grad():
            return self.module_.embed(torch.from_numpy(ax)).numpy().astype(np.float64)

    def __skdance_tags__(self):
        tags = super().__skdance_tags__()
        tags.transductive = True
        return tags
