"""STAGATE: graph attention autoencoder on a spatial spot network."""

from numbers import Integral, Real
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.mixture import GaussianMixture
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits
from torch import nn
from torch.nn import functional as F

from skdance.clustering import Louvain
from skdance.graph import (
    KNNGraph,
    build_graph,
    isolated_spots,
    layout_radius_graph,
    warn_isolated,
)
from skdance.nn import (
    TORCH_CONSTRAINTS,
    FullBatchMatrix,
    GraphAttention,
    RowSource,
    check_device,
    clip_gradients_in_step,
    to_torch_sparse,
    training,
)
from skdance.preprocessing import HighlyVariableGenes, normalize_rows
from skdance.spatial.domain._base import BaseSpatialDomain
from skdance.spatial.domain._docs import DOMAIN_PARAMS
from skdance.utils import Widths, check_random_state_int, fill_doc

__all__ = ["STAGATE", "STAGATEModule", "default_spot_network"]

# The default graph: STAGATE links spots closer than ``rad_cutoff``; on 10x
# Visium its tutorials use 150 full-resolution pixels, a little more than the
# 138-pixel spot pitch (5.8 neighbours per spot on slice 151673).  Expressed in
# spot spacings, 1.3 keeps the first ring of a hexagonal (Visium: 6) or square
# (ST: 4) array and nothing beyond (the next rings lie at 1.73 and 1.41).  On
# cells scattered at single-cell resolution the same radius reaches few cells
# (500 uniform random points: 1.1 neighbours per cell, 31% with none), so
# there every cell is also linked to its MIN_SPATIAL_NEIGHBORS nearest cells.
_DEFAULT_RADIUS_SPACINGS = 1.3


def default_spot_network(coords):
    """STAGATE's default spot network for these positions, adapted to the layout.

    A :class:`~skdance.graph.RadiusGraph` with a radius of 1.3 spot spacings
    (the median distance to the nearest other spot): on a regular array
    (:func:`~skdance.graph._spatial.is_regular_array`: Visium's hexagonal
    or ST's square lattice) the first ring of 6 or 4 spots, STAGATE's
    Visium setting, and each spot is also linked to its nearest spot (which
    changes only spots separated from the rest of the array by a gap).  On
    an irregular layout (cells at single-cell resolution) every cell is
    also linked to its 6 nearest cells, in both directions: STAGATE's
    ``model="KNN"`` network with ``k_cutoff=6`` on top of the radius.

    Parameters
    ----------
    coords : array-like of shape (n_spots, n_dims)
        Spot positions.

    Returns
    -------
    builder : RadiusGraph
        The unfitted builder.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.spatial.domain.stagate import default_spot_network
    >>> grid = np.array([[x, y] for x in range(5) for y in range(5)], float)
    >>> default_spot_network(grid * 100.0)
    RadiusGraph(min_neighbors=1, radius=130.0)
    """
    return layout_radius_graph(coords, _DEFAULT_RADIUS_SPACINGS)


# DANCE's stand-in for R's ``Mclust(modelNames="EEE")``
_GMM = {"n_init": 10, "max_iter": 300, "tol": 2e-4, "reg_covar": 1.5e-4}
# STAGATE's expression input and its pre-clustering (``train_STAGATE``)
_TARGET_SUM = 1e4
_PRE_PCS = 50
_PRE_NEIGHBORS = 15


class _GramInner(torch.autograd.Function):
    """``sum((W^T W) * (h^T h))`` (``= ||h W^T||²``), summed in float64.

    Its gradients ``2 W (h^T h)`` and ``2 h (W^T W)`` take two products of
    the Gram matrices already formed, where autograd would take four.
    """

    @staticmethod
    def forward(ctx, weight, h):
        gram_w, gram_h = weight.T @ weight, h.T @ h
        ctx.save_for_backward(weight, h, gram_w, gram_h)
        return (gram_w * gram_h).sum(dtype=torch.float64)

    @staticmethod
    def backward(ctx, grad):
        weight, h, gram_w, gram_h = ctx.saved_tensors
        scale = 2.0 * grad.to(weight.dtype)
        grad_w = scale * (weight @ gram_h) if ctx.needs_input_grad[0] else None
        grad_h = scale * (h @ gram_w) if ctx.needs_input_grad[1] else None
        return grad_w, grad_h


class SpotNetwork(NamedTuple):
    """STAGATE's spot networks as torch tensors on the training device.

    Attributes
    ----------
    adjacency : torch.Tensor
        Sparse CSR 0/1 spot network with self loops.
    pruned_adjacency : torch.Tensor or None
        The cell-type-aware network (its edges a subset of ``adjacency``'s),
        or None without one.
    pruned_positions : torch.Tensor or None
        Positions of ``pruned_adjacency``'s edges among ``adjacency``'s.
    pruned_weight : float
        Weight of the cell-type-aware network in each attention layer.
    """

    adjacency: torch.Tensor
    pruned_adjacency: torch.Tensor | None = None
    pruned_positions: torch.Tensor | None = None
    pruned_weight: float = 0.0


def _with_self_loops(A):
    """0/1 pattern of ``A`` with every diagonal entry set (STAGATE's ``G + I``)."""
    A = sp.csr_matrix(A, dtype=np.float32, copy=True)
    A.data[:] = 1.0
    A = (A + sp.identity(A.shape[0], dtype=np.float32, format="csr")).tocsr()
    A.data[:] = 1.0
    A.sort_indices()
    return A


class STAGATEModule(nn.Module):
    """STAGATE's graph attention autoencoder with a tied decoder.

    Encoder (Dong & Zhang 2022; DANCE eqs. 64-67): every hidden layer is
    ``h = ELU(sum_j att_ij h_j W)`` with the sigmoid attention of
    :class:`~skdance.nn.GraphAttention`; the last layer is linear,
    ``z = h W`` (no attention, no activation).  The decoder mirrors it with
    the *transposed encoder weights and the encoder's attention*: hidden
    layers ``h = ELU(sum_j att_ij h_j W^T)`` and a linear output
    ``x_hat = h W_1^T``.  The decoder owns no parameters.

    With ``pruned=True`` every attention layer also has a second pair of
    attention vectors for the cell-type-aware graph, and aggregates with
    ``(1 - w) att + w att_pruned`` (STAGATE's ``alpha``), in the encoder and
    the decoder alike.

    Parameters
    ----------
    n_genes : int
        Input width.
    hidden_dims : sequence of int
        Widths of the attention layers (STAGATE: ``(512,)``).
    latent_dim : int
        Embedding width (STAGATE: 30).
    pruned : bool, default=False
        Create the attention vectors of the cell-type-aware graph.

    Attributes
    ----------
    layers : torch.nn.ModuleList of GraphAttention
        The encoder layers (their weights are the decoder's too); the last
        one is used without attention.
    pruned_attention : torch.nn.ModuleList of GraphAttention or None
        Attention vectors of the pruned graph (only their ``att_self`` /
        ``att_neighbor`` are used; their ``weight`` has a single input row
        and is never used).
    """

    def __init__(self, n_genes, hidden_dims, latent_dim, pruned=False):
        super().__init__()
        dims = [n_genes, *hidden_dims, latent_dim]
        self.layers = nn.ModuleList(
            GraphAttention(a, b) for a, b in zip(dims[:-1], dims[1:])
        )
        self.pruned_attention = (
            nn.ModuleList(GraphAttention(1, b) for b in hidden_dims) if pruned else None
        )

    def _attention(self, index, g, network):
        att = self.layers[index].attention(g, network.adjacency)
        weight = network.pruned_weight
        if network.pruned_adjacency is None or weight == 0:
            return att
        pruned_att = self.pruned_attention[index].attention(g, network.pruned_adjacency)
        return (1.0 - weight) * att + weight * torch.zeros_like(att).index_add(
            0, network.pruned_positions, pruned_att
        )

    def encode(self, x, network):
        """Embed the spots.

        Parameters
        ----------
        x : FullBatchMatrix
            Input expression.
        network : SpotNetwork
            The spot network with self loops (and the cell-type-aware one).

        Returns
        -------
        z : torch.Tensor of shape (n_spots, latent_dim)
            Embedding.
        attentions : list of torch.Tensor
            Edge weights of each attention layer (on ``adj``'s edges).
        g : torch.Tensor of shape (n_spots, hidden_dims[0])
            ``x W_1``, the first layer's transformed input.
        """
        adj = network.adjacency
        g = h = x.matmul(self.layers[0].weight)
        attentions = []
        last = len(self.layers) - 1
        for index, layer in enumerate(self.layers):
            if index:
                h = layer(h)  # h W
            if index == last:
                return h, attentions, g
            att = self._attention(index, h, network)
            attentions.append(att)
            h = F.elu(GraphAttention.propagate(h, adj, att))

    def decode_hidden(self, z, network, attentions):
        """Run the decoder up to its last hidden layer (width ``hidden_dims[0]``)."""
        adj = network.adjacency
        h = z
        for index in range(len(self.layers) - 1, 0, -1):
            layer = self.layers[index]
            h = F.elu(
                layer(h, adj, weight=layer.weight.T, attention=attentions[index - 1])
            )
        return h

    def forward(self, x, network):
        """Return the embedding and the reconstruction (dense, n_spots x n_genes)."""
        z, attentions, _ = self.encode(x, network)
        h = self.decode_hidden(z, network, attentions)
        return z, self.layers[0](h, weight=self.layers[0].weight.T)

    def loss(self, x, network):
        """Mean squared reconstruction error, without forming the reconstruction.

        With ``x_hat = h W^T`` (``W`` the first encoder weight, ``h`` the
        decoder's last hidden layer) and ``g = x W`` (the encoder's first
        product)::

            ||x - x_hat||² = ||x||² - 2 sum(g * h) + sum((W^T W) * (h^T h))

        the same value and gradient as ``F.mse_loss(x_hat, x)``, in
        ``2 (n + p) d²`` operations instead of the ``3 n p d`` of the dense
        output and its gradient (``d`` = 512 < ``n``, ``p``): five times fewer
        on a Visium slice.  With few spots (``2 (n + p) d >= 3 n p``) the
        dense output is formed instead.
        """
        z, attentions, g = self.encode(x, network)
        h = self.decode_hidden(z, network, attentions)
        weight = self.layers[0].weight
        (n, p), d = x.shape, weight.shape[1]
        if 2 * (n + p) * d >= 3 * n * p:  # few spots: the dense output is cheaper
            x_hat = self.layers[0](h, weight=weight.T)
            return F.mse_loss(x_hat, x.dense()).to(torch.float64)
        cross = (g * h).sum(dtype=torch.float64)
        gram = _GramInner.apply(weight, h)
        return (x.sq_sum - 2.0 * cross + gram) / (n * p)


@fill_doc(**DOMAIN_PARAMS)
class STAGATE(BaseSpatialDomain):
    """STAGATE: spatial domains from a graph attention autoencoder.

    The method of Dong & Zhang (2022), as in their code (``STAGATE`` and
    ``STAGATE_pyG``) and DANCE's reimplementation:

    1. Expression: the ``n_top_genes`` most variable genes (scanpy's
       ``seurat_v3`` flavour on the raw counts); every spot is scaled to 10^4
       counts over all its genes and ``log1p``-transformed, then the selected
       genes are kept (STAGATE's tutorial order).  Gene selection lives in
       the estimator, as in STAGATE's recipe, so that it can take the raw
       counts of a whole slice; ``n_top_genes=None`` uses every gene (put a
       selector in a Pipeline in front instead).
    2. Spatial network: ``spatial_graph`` links the spots (default: a
       radius of 1.3 spot spacings with a nearest-neighbour floor on
       irregular layouts, see ``spatial_graph``), self loops are added
       (STAGATE's ``G + I``).
       With ``pruned_graph_weight > 0`` the cell-type-aware network is
       built too: the spots are pre-clustered by Louvain
       (resolution ``pruning_resolution``) on a 15-neighbour graph of 50
       principal components of the log-normalised genes (STAGATE's
       ``sc.tl.pca``, ``sc.pp.neighbors``, ``sc.tl.louvain``) and only the
       edges within a pre-cluster are kept.
    3. Graph attention autoencoder (:class:`STAGATEModule`): encoder
       ``genes -> hidden_dims -> latent_dim`` (3000 -> 512 -> 30), ELU,
       sigmoid attention (:class:`~skdance.nn.GraphAttention`, eqs. 64-67),
       a tied decoder that reuses the encoder's weights (transposed) and
       attention; mean squared reconstruction error of the log-normalised
       input (eq. 68; ``STAGATE_pyG``'s loss, the TensorFlow original takes
       its square root); full batch, Adam with ``weight_decay``, total
       gradient norm clipped at ``max_grad_norm``.  The decoder is tied as
       in the TensorFlow original: one weight, one gradient, one Adam step.
       ``STAGATE_pyG`` (and DANCE) copy the encoder weights into separate
       decoder parameters whose memory aliases the encoder's, so each
       weight there takes two Adam steps per epoch, one per gradient half.
    4. Domains: a Gaussian mixture on the embedding (``cluster_method=
       "mclust"``; STAGATE calls R's ``Mclust(modelNames="EEE")``, whose
       stand-in here, as in DANCE, is scikit-learn's ``GaussianMixture`` with
       ``covariance_type="tied"``: EEE is one covariance matrix shared by all
       components, which is exactly "tied"; the initialisation differs, k-means
       with 10 restarts instead of mclust's hierarchical agglomeration), or
       Louvain on a 15-neighbour graph of the embedding with the resolution
       searched for ``n_clusters`` (``"louvain"``).

    The reconstruction loss is computed without forming the spots x genes
    reconstruction (:meth:`STAGATEModule.loss`): the same value and
    gradient; an epoch on DLPFC slice 151673 (3,639 spots) took 0.60 s
    instead of 1.28 s on one CPU thread.

    Transductive: the network links the spots passed together, so
    ``transform(X, coords=...)`` builds it over the spots given (with the
    fitted graph builder and gene selection) and embeds them with the
    trained network.

    Parameters
    ----------
    {n_clusters}
    spatial_graph : graph builder or None, default=None
        Builder of the spot network (cloned in ``fit``).  Spatial builders
        (:class:`~skdance.graph.RadiusGraph`,
        :class:`~skdance.graph.SpatialGaussianGraph`) receive the
        coordinates as side information; any other builder (e.g.
        ``KNNGraph(n_neighbors=6, symmetrize=False)``, STAGATE's ``"KNN"``
        model) is fitted on the coordinates themselves.  Only the pattern
        of the adjacency is used.  None: adapted to the layout
        (:func:`default_spot_network`): ``RadiusGraph`` with a radius of
        1.3 spot spacings (the median distance to the nearest other spot),
        STAGATE's Visium setting in units that do not depend on the image
        (``RadiusGraph(radius=150)`` reproduces STAGATE on full-resolution
        Visium pixels); on a regular array (Visium, ST) that is the first
        ring of 6 or 4 spots, on an irregular one (cells at single-cell
        resolution) every cell is also linked to its 6 nearest cells, and
        on either no spot is left without a neighbour.  A network that
        leaves spots without neighbours (e.g. a radius below the spacing)
        is used as given, with a warning that names them.
    n_top_genes : int or None, default=3000
        Number of highly variable genes (seurat_v3); None, or more than the
        genes given, uses every gene.
    hidden_dims : tuple of int, default=(512,)
        Widths of the attention layers of the encoder.
    latent_dim : int, default=30
        Embedding width.
    max_epochs : int, default=1000
        Full-batch training epochs.
    learning_rate : float, default=1e-3
        Adam learning rate (``STAGATE_pyG`` and DANCE; the TensorFlow
        original uses 1e-4 for 500 epochs on a root-sum-of-squares loss).
        On DLPFC 151673 / 151676, 1000 epochs at 1e-4 gave a mean ARI of
        0.47 / 0.33 over three seeds, against 0.56 / 0.51 at 1e-3.
    weight_decay : float, default=1e-4
        Adam's L2 penalty.
    max_grad_norm : float or None, default=5.0
        Clip the total gradient norm at this value before each step
        (STAGATE's ``gradient_clipping``); None does not clip.
    pruned_graph_weight : float, default=0.0
        Weight of the cell-type-aware network in each attention layer
        (STAGATE's ``alpha``); 0 (STAGATE's default and its DLPFC tutorial)
        uses the spatial network only and skips the pre-clustering.
    pruning_resolution : float, default=0.2
        Louvain resolution of the pre-clustering (STAGATE's
        ``pre_resolution``).
    cluster_method : {"mclust", "louvain"}, default="mclust"
        How domains are found on the embedding.
    covariance_type : {"tied", "full", "diag", "spherical"}, default="tied"
        Covariance of the Gaussian mixture ("tied" is mclust's EEE).
    {spatial_key} {device}
    random_state : int, RandomState instance or None, default=None
        Seeds the network's initialisation, the pre-clustering and the
        clustering.
    verbose : int, default=0
        Show a tqdm progress bar with the loss.

    Attributes
    ----------
    labels_ : ndarray of shape (n_spots,)
        Domain of every spot.
    embedding_ : ndarray of shape (n_spots, latent_dim)
        STAGATE embedding of the training spots.
    genes_ : ndarray of bool of shape (`n_features_in_`,)
        Genes fed to the network.
    spatial_graph_ : graph builder
        The fitted builder of the spot network.
    adjacency_ : scipy.sparse.csr_matrix of shape (n_spots, n_spots)
        The 0/1 spot network with self loops.
    pruned_adjacency_ : scipy.sparse.csr_matrix or None
        The cell-type-aware network (with ``pruned_graph_weight > 0``).
    pre_labels_ : ndarray of shape (n_spots,) or None
        The pre-clustering that pruned it.
    cluster_model_ : GaussianMixture or Louvain
        The fitted clusterer of the embedding.
    module_ : STAGATEModule
        The trained network (on the CPU).
    history_ : list of dict
        One record per epoch: phase ("train"), epoch, train_loss (the mean
        squared error), grad_norm (total gradient norm before clipping),
        seconds.
    n_features_in_ : int
        Number of genes seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Gene names seen in ``fit``, when the input had them.

    See Also
    --------
    skdance.nn.GraphAttention : The attention layer.

    References
    ----------
    Dong & Zhang (2022), "Deciphering spatial domains from spatially resolved
    transcriptomics with an adaptive graph attention auto-encoder", Nature
    Communications 13, 1739.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.spatial.domain.stagate import STAGATE
    >>> rng = np.random.default_rng(0)
    >>> coords = np.c_[np.repeat(np.arange(10), 10), np.tile(np.arange(10), 10)]
    >>> X = rng.poisson(5.0, size=(100, 40)) + 0.0
    >>> X[coords[:, 0] < 5, :10] += rng.poisson(20.0, size=(50, 10))
    >>> model = STAGATE(n_clusters=2, hidden_dims=(16,), latent_dim=4,
    ...                 max_epochs=50, random_state=0).fit(X, coords=coords)
    >>> model.labels_.shape, model.embedding_.shape
    ((100,), (100, 4))
    """

    _parameter_constraints = {
        "n_clusters": [Interval(Integral, 1, None, closed="left")],
        "spatial_graph": [HasMethods(["fit_transform"]), None],
        "n_top_genes": [Interval(Integral, 1, None, closed="left"), None],
        "hidden_dims": [Widths()],
        "latent_dim": [Interval(Integral, 1, None, closed="left")],
        "max_epochs": [Interval(Integral, 0, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "max_grad_norm": [Interval(Real, 0, None, closed="neither"), None],
        "pruned_graph_weight": [Interval(Real, 0, 1, closed="both")],
        "pruning_resolution": [Interval(Real, 0, None, closed="neither")],
        "cluster_method": [StrOptions({"mclust", "louvain"})],
        "covariance_type": [StrOptions({"tied", "full", "diag", "spherical"})],
        "spatial_key": [str],
        **TORCH_CONSTRAINTS,
    }

    def __init__(
        self,
        n_clusters=7,
        *,
        spatial_graph=None,
        n_top_genes=3000,
        hidden_dims=(512,),
        latent_dim=30,
        max_epochs=1000,
        learning_rate=1e-3,
        weight_decay=1e-4,
        max_grad_norm=5.0,
        pruned_graph_weight=0.0,
        pruning_resolution=0.2,
        cluster_method="mclust",
        covariance_type="tied",
        spatial_key="spatial",
        device="cpu",
        random_state=None,
        verbose=0,
    ):
        self.n_clusters = n_clusters
        self.spatial_graph = spatial_graph
        self.n_top_genes = n_top_genes
        self.hidden_dims = hidden_dims
        self.latent_dim = latent_dim
        self.max_epochs = max_epochs
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.max_grad_norm = max_grad_norm
        self.pruned_graph_weight = pruned_graph_weight
        self.pruning_resolution = pruning_resolution
        self.cluster_method = cluster_method
        self.covariance_type = covariance_type
        self.spatial_key = spatial_key
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # -- data ---------------------------------------------------------------
    def _select_genes(self, X):
        n_genes = X.shape[1]
        if self.n_top_genes is None or self.n_top_genes >= n_genes:
            return np.ones(n_genes, dtype=bool)
        hvg = HighlyVariableGenes(n_top_genes=self.n_top_genes, flavor="seurat_v3")
        return hvg.fit(X).highly_variable_

    def _expression(self, X):
        """Log-normalised expression of the selected genes (float32)."""
        X = normalize_rows(X.astype(np.float64), _TARGET_SUM)
        if sp.issparse(X):
            X = sp.csr_matrix(X)[:, self.genes_]
            X.data = np.log1p(X.data)
            return X.astype(np.float32)
        return np.log1p(X[:, self.genes_]).astype(np.float32)

    def _builder(self, coords):
        if self.spatial_graph is not None:
            return clone(self.spatial_graph)
        return default_spot_network(coords)

    def _networks(self, builder, expr, coords, seed):
        """Spot network (with self loops) and the cell-type-aware one, or None."""
        n = expr.shape[0]
        A = build_graph(
            builder,
            expr,
            coords=coords,
            shape=(n, n),
            name="spatial_graph",
            what="spot network",
        )
        warn_isolated(
            isolated_spots(A),
            n,
            "STAGATE",
            "widen the spatial_graph (a larger radius, or "
            "RadiusGraph(min_neighbors=k)), or leave spatial_graph=None for the "
            "default network, which links every spot.",
            stacklevel=4,
        )
        A = _with_self_loops(A)
        if self.pruned_graph_weight == 0:
            return A, None, None
        pre_labels = self._pre_cluster(expr, seed)
        rows = np.repeat(np.arange(n), np.diff(A.indptr))
        same = pre_labels[rows] == pre_labels[A.indices]
        indptr = np.r_[0, np.cumsum(np.bincount(rows[same], minlength=n))]
        pruned = sp.csr_matrix((A.data[same], A.indices[same], indptr), shape=A.shape)
        return A, pruned, pre_labels

    def _pre_cluster(self, expr, seed):
        """STAGATE's pre-clustering: Louvain on 50 PCs of the log expression."""
        X = expr.toarray() if sp.issparse(expr) else np.asarray(expr)
        n_pcs = min(_PRE_PCS, min(X.shape) - 1)
        if n_pcs < 1:
            return np.zeros(X.shape[0], dtype=np.int64)
        pcs = PCA(n_components=n_pcs, random_state=seed).fit_transform(X)
        louvain = Louvain(
            graph=KNNGraph(
                n_neighbors=min(_PRE_NEIGHBORS, X.shape[0] - 1), mode="umap"
            ),
            resolution=self.pruning_resolution,
            random_state=seed,
        )
        return louvain.fit(pcs).labels_

    def _graph_tensors(self, A, pruned, device):
        adj = to_torch_sparse(A).to(device)
        if pruned is None:
            return SpotNetwork(adj)
        n = A.shape[0]
        keys = np.repeat(np.arange(n), np.diff(A.indptr)) * n + A.indices
        pkeys = np.repeat(np.arange(n), np.diff(pruned.indptr)) * n + pruned.indices
        positions = torch.from_numpy(np.searchsorted(keys, pkeys)).to(device)
        pruned_adj = to_torch_sparse(pruned).to(device)
        return SpotNetwork(adj, pruned_adj, positions, self.pruned_graph_weight)

    # -- fit -----------------------------------------------------------------
    def _fit(self, X, coords):
        dims = tuple(self.hidden_dims)
        check_device(self.device)  # before the work: a clear error first
        seed = check_random_state_int(self.random_state)
        self.genes_ = self._select_genes(X)
        expr = self._expression(X)
        self.spatial_graph_ = self._builder(coords)
        A, pruned, self.pre_labels_ = self._networks(
            self.spatial_graph_, expr, coords, seed
        )
        self.adjacency_, self.pruned_adjacency_ = A, pruned
        with training(self, seed=seed) as run:
            x = FullBatchMatrix(RowSource(expr), run.device)
            network = self._graph_tensors(A, pruned, run.device)
            module = run.place(
                STAGATEModule(
                    expr.shape[1], dims, self.latent_dim, pruned=pruned is not None
                )
            )
            module.train()
            optimizer = torch.optim.Adam(
                module.parameters(),
                lr=self.learning_rate,
                weight_decay=self.weight_decay,
            )
            norms = clip_gradients_in_step(optimizer, module, self.max_grad_norm)

            def epoch_fn(epoch):
                loss = run.trainer.step(optimizer, module.loss(x, network))
                return {"train_loss": loss, "grad_norm": norms[-1]}

            run.run("train", self.max_epochs, epoch_fn)
            module.eval()
            with torch.no_grad():
                z = module.encode(x, network)[0].cpu().numpy().astype(np.float64)
        self.embedding_ = z
        self.labels_ = self._cluster(z, seed)

    def _cluster(self, z, seed):
        if self.cluster_method == "louvain":
            model = Louvain(n_clusters=self.n_clusters, random_state=seed).fit(z)
            labels = model.labels_
        else:
            model = GaussianMixture(
                n_components=self.n_clusters,
                covariance_type=self.covariance_type,
                random_state=seed,
                **_GMM,
            )
            # 30-d products gain nothing from BLAS threads, and on a busy
            # 2-core machine their spinning made this fit 25 times slower
            with threadpool_limits(limits=1, user_api="blas"):
                labels = model.fit_predict(z)
        self.cluster_model_ = model
        return np.asarray(labels, dtype=np.int64)

    # -- transform -------------------------------------------------------------
    def transform(self, X, coords=None):
        """Embed spots with the trained network over a network built on them.

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData} of shape (n_spots, n_genes)
            Raw counts on the genes seen in ``fit``.
        coords : array-like of shape (n_spots, n_dims), default=None
            Spot positions, in the units of ``fit``'s.  Required unless ``X``
            is an AnnData holding them in ``obsm[spatial_key]``.

        Returns
        -------
        Z : ndarray of shape (n_spots, latent_dim)
            STAGATE embedding.
        """
        check_is_fitted(self)
        Xv, coords = self._resolve(X, coords, reset=False)
        expr = self._expression(Xv)
        seed = check_random_state_int(self.random_state)
        A, pruned, _ = self._networks(clone(self.spatial_graph_), expr, coords, seed)
        device = torch.device("cpu")
        with torch.no_grad():
            z = self.module_.encode(
                FullBatchMatrix(RowSource(expr), device),
                self._graph_tensors(A, pruned, device),
            )[0]
        return z.numpy().astype(np.float64)

    def __skdance_tags__(self):
        tags = super().__skdance_tags__()
        tags.transductive = True
        return tags
