"""scGNN 2.0: cluster autoencoders regularised by a cell graph, in an EM loop."""

import copy
import hashlib
from functools import partial
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.csgraph import laplacian
from sklearn.cluster import KMeans
from sklearn.neighbors import NearestNeighbors
from sklearn.utils._param_validation import HasMethods, Interval
from torch import nn
from torch.nn import functional as F

from skdance.graph import fit_graph
from skdance.imputation._base import BaseImputer
from skdance.imputation.scgnn import (
    ScGNN,
    ScGNNAutoencoder,
    _louvain_count,
    _regulariser_weights,
    ltmg_signals,
)
from skdance.nn import (
    TORCH_CONSTRAINTS,
    GaussianEncoder,
    GraphConv,
    balanced_adjacency_bce,
    normalize_adjacency,
    progress,
    training,
)
from skdance.preprocessing import normalize_rows
from skdance.utils import Widths, check_random_state_int, dense_float, fill_doc

__all__ = ["ScGNN2", "ScGNN2GraphAutoencoder", "cluster_ae_loss", "scgnn2_cell_graph"]

# scGNN 2.0's fixed constants (its command-line defaults)
_GAE_HIDDEN = 32  # first graph convolution of the graph autoencoder
_GAE_LEARNING_RATE = 1e-2
_K_SMOOTHING = 0.95  # moving average of the cluster count between iterations
_MAX_CLUSTERS = 30  # trimClustering: more clusters are pooled
_MIN_CLUSTER = 5
_LTMG_STRENGTH = 0.9  # --feature_AE_regu_strength: pretraining's SSE weighs 0.1


def scgnn2_cell_graph(Z, n_neighbors=0.05):
    """Return scGNN 2.0's cell graph of an embedding: k neighbours, 1/d weights.

    Each cell is linked to its ``k`` nearest cells (Euclidean); the links
    are symmetrised (a pair is linked when either cell is among the other's
    neighbours) and weighted by the inverse distance ``1 / (d + 1e-16)``
    (scGNN 2.0's graph construction ``"v2"``).  The weights serve Louvain
    and the graph change; the graph autoencoder and the regulariser use the
    pattern (binary).

    Parameters
    ----------
    Z : ndarray of shape (n_cells, n_features)
        Embedding of the cells.
    n_neighbors : int or float, default=0.05
        Neighbours per cell; a float in (0, 1) is a fraction of the cells,
        rounded (scGNN 2.0's ``neighborhood_factor``), at least 1 and at
        most ``n_cells - 1``.

    Returns
    -------
    weights : scipy.sparse.csr_matrix of shape (n_cells, n_cells)
        Symmetric inverse-distance weights, no self loops.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.imputation.scgnn2 import scgnn2_cell_graph
    >>> Z = np.array([[0.0], [1.0], [3.0], [7.0]])
    >>> scgnn2_cell_graph(Z, n_neighbors=1).toarray()
    array([[0.  , 1.  , 0.  , 0.  ],
           [1.  , 0.  , 0.5 , 0.  ],
           [0.  , 0.5 , 0.  , 0.25],
           [0.  , 0.  , 0.25, 0.  ]])
    """
    n = Z.shape[0]
    k = n_neighbors if n_neighbors >= 1 else round(n * n_neighbors)
    k = int(min(max(k, 1), n - 1))
    dist, idx = NearestNeighbors(n_neighbors=k).fit(Z).kneighbors()
    rows = np.repeat(np.arange(n), k)
    W = sp.csr_matrix((1.0 / (dist.ravel() + 1e-16), (rows, idx.ravel())), (n, n))
    # a pair linked in either direction gets 1 / d(i, j) (d is symmetric)
    return sp.csr_matrix(W.maximum(W.T))


def cluster_ae_loss(recon, target, observed, weights, module):
    """Loss of scGNN 2.0's cluster autoencoders (its ``"Celltype"`` loss).

    ``sum_i weights_i * sum_g (recon - target)**2`` (the weighted SSE: the
    original's ``0.3 * SSE + 0.3 * sum(A @ err) + 0.1 * sum(B @ err)`` is
    this sum with the weights of
    :func:`~skdance.imputation.scgnn._regulariser_weights`), plus the L2
    norm (not squared) of ``observed - recon`` over the non-zero entries of
    ``observed``, plus the L1 norm of all of ``module``'s parameters.

    Parameters
    ----------
    recon, target, observed : torch.Tensor of shape (n_cells, n_genes)
        The autoencoder's output, its input (the feature autoencoder's
        reconstruction) and the observed ``log1p`` expression.
    weights : torch.Tensor of shape (n_cells,)
        Per-cell weights of the squared error.
    module : torch.nn.Module
        The cluster autoencoder.

    Returns
    -------
    loss : torch.Tensor
        Scalar.

    Examples
    --------
    >>> import torch
    >>> from skdance.imputation.scgnn2 import cluster_ae_loss
    >>> recon, target = torch.ones(1, 2), torch.zeros(1, 2)
    >>> observed = torch.tensor([[0.0, 4.0]])
    >>> module = torch.nn.Linear(1, 1, bias=False)
    >>> _ = torch.nn.init.constant_(module.weight, -2.0)
    >>> # SSE 2 + |4 - 1| on the observed entry + |-2| (L1)
    >>> loss = cluster_ae_loss(recon, target, observed, torch.ones(1), module)
    >>> float(loss.detach())
    7.0
    """
    fit = (weights @ ((recon - target) ** 2)).sum()
    nonzero = torch.linalg.vector_norm((observed - recon)[observed != 0])
    l1 = sum(p.abs().sum() for p in module.parameters())
    return fit + nonzero + l1


def _trim_clusters(labels):
    """Pool small clusters when there are over 30 (scGNN 2.0's ``trimClustering``).

    Clusters numbered 30 or above and clusters of at most 5 cells (the
    original counts a cluster's size minus one against its minimum of 5)
    are pooled into one cluster.
    """
    sizes = np.bincount(labels)
    if sizes.size <= _MAX_CLUSTERS:
        return labels
    pooled = (labels >= _MAX_CLUSTERS) | (sizes[labels] <= _MIN_CLUSTER)
    labels = np.where(pooled, _MAX_CLUSTERS, labels)
    return np.unique(labels, return_inverse=True)[1].ravel()


def _row_keys(X):
    """Return a digest of every row (float64 values), to recognise fitted cells."""
    X = np.ascontiguousarray(X, dtype=np.float64) + 0.0  # -0.0 -> 0.0
    return [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in X]


def _n_iterations(history):
    return len({r["iteration"] for r in history if r["phase"] == "cluster_ae"})


class ScGNN2GraphAutoencoder(nn.Module):
    """scGNN 2.0's variational graph autoencoder (``Graph_AE`` with GCN layers).

    ``GCN(in, 32) -> ReLU -> GCN(32, latent)`` twice, for the mean and the
    log standard deviation (Kipf's VGAE, as the original's reparameterisation
    ``exp(logvar)`` treats it); Glorot-initialised convolutions without bias.
    """

    def __init__(self, n_in, hidden_dim=_GAE_HIDDEN, latent_dim=16):
        super().__init__()
        conv = partial(GraphConv, bias=False, init="glorot")
        self.gc1 = conv(n_in, hidden_dim)
        self.latent = GaussianEncoder(
            hidden_dim, latent_dim, layer=conv, scale="log_std"
        )

    def forward(self, adj, x):
        """Return the posterior mean, log std and a sample (the mean in eval mode)."""
        z, mu, log_std = self.latent(F.relu(self.gc1(x, adj)), adj)
        return mu, log_std, z


@fill_doc
class ScGNN2(BaseImputer):
    """scGNN 2.0: imputation by cluster autoencoders in an EM loop.

    The method of Gu et al. (2022), following its released code
    (``OSU-BMBL/scGNN2.0``, whose defaults are the defaults here):

    1. ``log1p`` expression ``x``.  A feature autoencoder
       (:class:`~skdance.imputation.scgnn.ScGNNAutoencoder`, ``genes -> 512
       -> 128``) is trained ``pretrain_epochs`` on it (Adam, ``learning_rate``)
       with ``0.1 * SSE`` (the original's ``(1 - 0.9) * SSE + 0.9 * SSE *
       TRS`` with no LTMG signals, see ``regulatory_signal_weight``).
    2. The cell graph of its 128-d embedding (:func:`scgnn2_cell_graph`:
       ``round(0.05 * n_cells)`` nearest neighbours, symmetric, 1/distance
       weights).  A variational graph autoencoder
       (:class:`ScGNN2GraphAutoencoder`, GCN 32 -> 16, log standard
       deviation) is trained ``gae_epochs`` (Adam, 0.01) to reconstruct the
       binary graph from the embedding; its *sampled* latent (not the mean)
       is passed on, as in the original.
    3. EM iterations (at most ``max_iter``):

       * the number of clusters is Louvain's on the weighted graph times 0.8
         (0.5 from 2,000 cells on), at least 2, smoothed between iterations
         by ``k = 0.95 k_previous + 0.05 k_new`` and rounded; k-means (10
         restarts) on the graph autoencoder's latent gives the clusters
         (over 30 clusters are trimmed as the original does);
       * one cluster autoencoder per cluster, started from the feature
         autoencoder, is trained ``cluster_epochs`` on its cells' feature
         reconstruction ``r`` with ``reconstruction_weight * SSE(r_hat, r)
         + ||x - r_hat||_2`` (over the observed, non-zero entries of ``x``)
         ``+ graph_regularization_weight * sum(A @ (r_hat - r)**2) +
         celltype_regularization_weight * sum(B @ (r_hat - r)**2) + sum|theta|``
         (an L1 penalty of weight 1 on all its parameters), with ``A`` the
         row-normalised binary cell graph and ``B`` the row-normalised
         same-cluster matrix, both restricted to the cluster;
       * the feature autoencoder continues ``em_epochs`` on the cluster
         autoencoders' outputs (plain SSE, a new Adam), the graph is rebuilt
         on its embedding and the graph autoencoder retrained;
       * the loop stops when the graph changes by less than ``graph_tol``
         times the mean absolute entry of the first graph's normalised
         Laplacian ``L0``, the graph being compared as
         ``initial_graph_weight * L0 + (1 - initial_graph_weight) * W / colsum(W)``.

    4. The imputation is the last cluster autoencoders' output, back to
       counts with ``expm1``.  Every entry is replaced.

    scGNN 2.0 is transductive: it imputes the cells it is run on.
    ``transform(X)`` returns, for each row of ``X`` that is a cell of the
    training matrix (the same counts), that cell's imputation from ``fit``
    (``imputed_``); a row not seen in ``fit`` is imputed by the final feature
    autoencoder's reconstruction (``module_``), an approximation outside the
    method.  Impute a data set with ``fit_transform``.

    Parameters
    ----------
    hidden_dims : tuple of int, default=(512, 128)
        Widths of the feature and cluster autoencoders' hidden layers.
    latent_dim : int, default=16
        Width of the graph autoencoder's latent (``graph_AE_embedding_size``).
    graph : graph builder or None, default=None
        Transformer building the cell graph of the feature autoencoder's
        embedding (cloned at every use), whose weights serve Louvain and the
        graph change (made symmetric, the larger weight kept, no self loops)
        and whose pattern serves the graph autoencoder and the regulariser.
        None: scGNN 2.0's graph, :func:`scgnn2_cell_graph` (5% of the cells
        as neighbours, inverse-distance weights).
    pretrain_epochs : int, default=500
        Epochs of the first feature autoencoder.
    em_epochs : int, default=300
        Feature autoencoder epochs per EM iteration.
    cluster_epochs : int, default=200
        Epochs of each cluster autoencoder per EM iteration.
    gae_epochs : int, default=200
        Graph autoencoder epochs (each graph gets a new one).
    max_iter : int, default=31
        Maximum EM iterations (``total_epoch``).
    initial_graph_weight : float, default=0.5
        Weight of the first graph when graphs are compared (``alpha``).
    graph_tol : float, default=0.01
        Convergence threshold of the graph change ratio.
    reconstruction_weight : float, default=0.3
        Weight of the cluster autoencoders' SSE.
    graph_regularization_weight : float, default=0.3
        Weight of their graph regulariser.
    celltype_regularization_weight : float, default=0.1
        Weight of their cell-type regulariser.
    regulatory_signal_weight : float, default=0.0
        Weight of the pretraining error weighted entry by entry by LTMG
        regulatory signals (:func:`~skdance.imputation.scgnn.ltmg_signals`,
        a simplified LTMG); 0 skips them.  The original weighs them 0.9
        when it is given an LTMG file and has none otherwise (its default
        runs, and DANCE's): the pretraining loss is then ``0.1 * SSE``.
    learning_rate : float, default=1e-3
        Adam learning rate of the autoencoders.
    batch_size : int, default=12800
        Cells per batch of the autoencoders (the original's: whole data sets
        of up to 12,800 cells in one batch).
    {device}
    random_state : int, RandomState instance or None, default=None
        Seeds every stage.
    verbose : int, default=0
        Progress bars: 1 shows the EM iterations, 2 also every training
        phase.

    Attributes
    ----------
    imputed_ : ndarray of shape (n_cells, n_genes)
        The imputed counts of the training cells.
    signals_ : ndarray of shape (n_cells, n_genes) or None
        LTMG signals of the training cells (None with
        ``regulatory_signal_weight=0``).
    adjacency_ : scipy.sparse.csr_matrix of shape (n_cells, n_cells)
        The inverse-distance cell graph of the last EM iteration's clusters.
    labels_ : ndarray of shape (n_cells,)
        Clusters of the last EM iteration.
    embedding_ : ndarray of shape (n_cells, hidden_dims[-1])
        The feature autoencoder's embedding those clusters came from.
    n_iter_ : int
        EM iterations run.
    module_ : ScGNNAutoencoder
        The final feature autoencoder (on CPU, eval mode).
    history_ : list of dict
        One record per training epoch: phase, epoch, train_loss, seconds.
        Phases: ``"pretrain"``, ``"graph_ae"``, then per EM iteration
        ``"cluster_ae"`` (one run per cluster, with its ``cluster``),
        ``"em"`` and ``"graph_ae"`` (with the ``iteration``; the last
        ``"em"`` epoch of an iteration also carries the ``graph_change``
        and its ``threshold``).  The last allowed iteration stops after its
        cluster autoencoders: what follows them would only serve a next one.
    n_features_in_ : int
        Number of genes seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Gene names seen in ``fit``, when the input had them.

    See Also
    --------
    skdance.imputation.ScGNN : scGNN v1 (Wang et al. 2021).

    Notes
    -----
    Differences from the original:

    * The stopping rule on the ARI against true cell types (the original's
      ``--given_cell_type_labels``) is not offered: labels are not an
      input of an imputer.  The graph-change rule is kept.  DANCE's port
      drops the graph-change rule (it runs every iteration) and the
      smoothing of the cluster count; both are kept here.
    * Outputs of a training phase (reconstructions, the graph
      autoencoder's sample) are taken after its last step; the original
      keeps those of its last epoch's forward pass, one step earlier.
    * The original orders the nodes of its graphs (for the graph change)
      by first appearance in the edge list, so that the first and a later
      graph may be compared in different node orders; here every graph is
      in cell order.
    * k-means is seeded by ``random_state`` (the original: 0); the graph
      has at least 1 neighbour per cell (the original's 5% rounds to 0
      below 10 cells and fails).
    * LTMG: see ``regulatory_signal_weight``; the original's optional bulk
      deconvolution, GAT layers and embedding concatenations (all off by
      default) are not implemented.

    References
    ----------
    Gu, Cheng, Wang, Ma et al. (2022), "scGNN 2.0: a graph neural network
    tool for imputation and clustering of single-cell RNA-Seq data",
    Bioinformatics 38(23), 5322-5325.

    Examples
    --------
    >>> from skdance.datasets import load_pbmc_4k_subset
    >>> from skdance.imputation import ScGNN2
    >>> X, _ = load_pbmc_4k_subset()
    >>> model = ScGNN2(hidden_dims=(64, 16), pretrain_epochs=5, em_epochs=3,
    ...                cluster_epochs=3, gae_epochs=5, max_iter=2,
    ...                random_state=0)
    >>> model.fit_transform(X[:300, :100]).shape
    (300, 100)
    """

    _parameter_constraints = {
        "hidden_dims": [Widths()],
        "latent_dim": [Interval(Integral, 1, None, closed="left")],
        "graph": [HasMethods(["fit_transform"]), None],
        "pretrain_epochs": [Interval(Integral, 1, None, closed="left")],
        "em_epochs": [Interval(Integral, 1, None, closed="left")],
        "cluster_epochs": [Interval(Integral, 1, None, closed="left")],
        "gae_epochs": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "initial_graph_weight": [Interval(Real, 0, 1, closed="both")],
        "graph_tol": [Interval(Real, 0, None, closed="left")],
        "reconstruction_weight": [Interval(Real, 0, None, closed="left")],
        "graph_regularization_weight": [Interval(Real, 0, None, closed="left")],
        "celltype_regularization_weight": [Interval(Real, 0, None, closed="left")],
        "regulatory_signal_weight": [Interval(Real, 0, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        **TORCH_CONSTRAINTS,
    }

    def __init__(
        self,
        *,
        hidden_dims=(512, 128),
        latent_dim=16,
        graph=None,
        pretrain_epochs=500,
        em_epochs=300,
        cluster_epochs=200,
        gae_epochs=200,
        max_iter=31,
        initial_graph_weight=0.5,
        graph_tol=0.01,
        reconstruction_weight=0.3,
        graph_regularization_weight=0.3,
        celltype_regularization_weight=0.1,
        regulatory_signal_weight=0.0,
        learning_rate=1e-3,
        batch_size=12800,
        device="cpu",
        random_state=None,
        verbose=0,
    ):
        self.hidden_dims = hidden_dims
        self.latent_dim = latent_dim
        self.graph = graph
        self.pretrain_epochs = pretrain_epochs
        self.em_epochs = em_epochs
        self.cluster_epochs = cluster_epochs
        self.gae_epochs = gae_epochs
        self.max_iter = max_iter
        self.initial_graph_weight = initial_graph_weight
        self.graph_tol = graph_tol
        self.reconstruction_weight = reconstruction_weight
        self.graph_regularization_weight = graph_regularization_weight
        self.celltype_regularization_weight = celltype_regularization_weight
        self.regulatory_signal_weight = regulatory_signal_weight
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # scGNN v1's autoencoder training (Adam at ``learning_rate``, batches of
    # ``batch_size`` cells, eval-mode output after the last step)
    _train = ScGNN._train

    def _graph_latent(self, A, Z, trainer, iteration):
        """Train a graph autoencoder on the binary graph ``A``; return its sample."""
        n = A.shape[0]
        adj = torch.from_numpy(normalize_adjacency(A, mode="sym").toarray())
        target = torch.from_numpy((A + sp.identity(n)).toarray().astype(np.float32))
        adj, target, features = trainer.to((adj, target, torch.from_numpy(Z)))
        gae = trainer.to(ScGNN2GraphAutoencoder(Z.shape[1], latent_dim=self.latent_dim))
        opt = torch.optim.Adam(gae.parameters(), lr=_GAE_LEARNING_RATE)
        gae.train()

        def epoch(_):
            mu, log_std, z = gae(adj, features)
            loss = balanced_adjacency_bce(z @ z.T, target)
            loss = loss + gae.latent.kl(mu, log_std).mean() / n
            return {"train_loss": trainer.step(opt, loss), "iteration": iteration}

        trainer.run("graph_ae", self.gae_epochs, epoch)
        with torch.no_grad():  # still in training mode: a sample, as the original
            return gae(adj, features)[2].cpu().numpy().astype(np.float64)

    def _graph(self, z):
        """Weighted cell graph of an embedding and its binary pattern."""
        Z = z.cpu().numpy().astype(np.float64)
        n = Z.shape[0]
        if self.graph is None:
            W = scgnn2_cell_graph(Z)
        else:
            W = fit_graph(self.graph, None, Z, shape=(n, n), what="cell graph")
            W = sp.csr_matrix(W, dtype=np.float64)
            W = W.maximum(W.T) - sp.diags(W.diagonal())
            W = sp.csr_matrix(W)
            W.eliminate_zeros()
        A = W.copy()
        A.data[:] = 1.0
        return W, A

    def _clusters(self, W, latent, k_float, seed):
        """Louvain-sized, smoothed k-means clusters of the graph latent."""
        n = W.shape[0]
        k_new = max(_louvain_count(W, seed) * (0.8 if n < 2000 else 0.5), 2)
        k_float = (
            k_new
            if k_float is None
            else (_K_SMOOTHING * k_float + (1 - _K_SMOOTHING) * k_new)
        )
        k = min(int(round(k_float)), n)
        labels = KMeans(k, n_init=10, random_state=seed).fit_predict(latent)
        return _trim_clusters(labels), k_float

    def _fit(self, X):
        if len(self.hidden_dims) != 2:
            raise ValueError(
                "ScGNN2: hidden_dims must hold two widths (hidden, embedding), "
                f"got {self.hidden_dims!r}."
            )
        seed = check_random_state_int(self.random_state)
        counts = dense_float(X, np.float64)
        x = torch.log1p(torch.from_numpy(counts.astype(np.float32)))
        self.signals_ = (
            ltmg_signals(x.numpy(), random_state=seed)
            if self.regulatory_signal_weight > 0
            else None
        )
        with training(self, seed=seed, n_iter=_n_iterations) as run:
            # inner phases show their bars from verbose=2 (EM iterations from 1)
            run.trainer.verbose = self.verbose > 1
            imputed = self._fit_stages(run, x, seed)
        self.imputed_ = np.expm1(imputed.astype(np.float64))
        self._cell_rows = {key: i for i, key in enumerate(_row_keys(counts))}

    def _fit_stages(self, run, x, seed):
        """Pretraining and EM iterations on ``run``; return the log imputation."""
        trainer, gen = run.trainer, run.generator
        n_cells, n_genes = x.shape
        x = trainer.to(x)
        trs = None
        if self.signals_ is not None:
            trs = trainer.to(torch.from_numpy(self.signals_))

        def pretrain_loss(recon, target, idx):
            err = (recon - target) ** 2
            loss = (1 - _LTMG_STRENGTH) * err.sum()
            if trs is not None:
                rows = trs[trainer.to(idx)]
                loss = loss + self.regulatory_signal_weight * (err * rows).sum()
            return loss

        def sse(recon, target, idx):
            return ((recon - target) ** 2).sum()

        feature_ae = trainer.to(ScGNNAutoencoder(n_genes, self.hidden_dims))
        recon, z = self._train(
            trainer, feature_ae, x, self.pretrain_epochs, pretrain_loss, gen, "pretrain"
        )
        W, A = self._graph(z)
        latent = self._graph_latent(A, z.cpu().numpy(), trainer, 0)
        # graphs are compared as alpha * L0 + (1 - alpha) * W / colsum(W)
        alpha = self.initial_graph_weight
        L0 = sp.csr_matrix(laplacian(W, normed=True))
        old_graph = alpha * L0 + (1 - alpha) * ScGNN._graph_operator(W)
        threshold = self.graph_tol * abs(L0).mean()
        k_float = None
        bar = progress(range(self.max_iter), self.verbose, "scGNN 2.0 EM")
        for it in bar:
            labels, k_float = self._clusters(W, latent, k_float, seed)
            self.adjacency_, self.labels_ = W, labels
            self.embedding_ = z.cpu().numpy()
            graph_reg = normalize_rows(A, 1.0)
            imputed = torch.zeros_like(recon)
            for c in np.unique(labels):
                cells = np.flatnonzero(labels == c)
                imputed[trainer.to(torch.from_numpy(cells))] = self._cluster_ae(
                    trainer, feature_ae, recon, x, cells, graph_reg, labels, gen, it, c
                )
            if it == self.max_iter - 1:
                break
            recon, z = self._train(
                trainer,
                feature_ae,
                imputed,
                self.em_epochs,
                sse,
                gen,
                "em",
                iteration=it,
            )
            W, A = self._graph(z)
            graph = alpha * L0 + (1 - alpha) * ScGNN._graph_operator(W)
            change = abs(graph - old_graph).mean()
            trainer.history[-1].update(
                graph_change=float(change), threshold=float(threshold)
            )
            if self.verbose:
                bar.set_postfix(graph_change=f"{change / threshold:.3f} x tol")
            if change < threshold:
                break
            old_graph = graph
            latent = self._graph_latent(A, z.cpu().numpy(), trainer, it + 1)
        run.place(feature_ae)
        return imputed.cpu().numpy()

    def _cluster_ae(
        self,
        trainer,
        feature_ae,
        recon,
        x,
        cells,
        graph_reg,
        labels,
        gen,
        iteration,
        cluster,
    ):
        """Train one cluster autoencoder on ``recon[cells]``; return its output."""
        module = copy.deepcopy(feature_ae)
        observed = x[trainer.to(torch.from_numpy(cells))]

        def loss(out, target, idx):
            rows = cells[idx.numpy()]
            weights = _regulariser_weights(
                graph_reg,
                labels,
                rows,
                self.reconstruction_weight,
                self.graph_regularization_weight,
                self.celltype_regularization_weight,
            )
            weights = trainer.to(torch.from_numpy(weights))
            return cluster_ae_loss(
                out, target, observed[trainer.to(idx)], weights, module
            )

        return self._train(
            trainer,
            module,
            recon[trainer.to(torch.from_numpy(cells))],
            self.cluster_epochs,
            loss,
            gen,
            "cluster_ae",
            iteration=iteration,
            cluster=int(cluster),
        )[0]

    def _transform(self, X):
        counts = dense_float(X, np.float64)
        rows = np.array([self._cell_rows.get(k, -1) for k in _row_keys(counts)])
        seen = rows >= 0
        out = np.empty(counts.shape, dtype=np.float64)
        out[seen] = self.imputed_[rows[seen]]
        if not seen.all():
            # float64 so that a cell's output does not depend on its batch
            x = torch.log1p(torch.from_numpy(counts[~seen]))
            with torch.no_grad():
                recon = copy.deepcopy(self.module_).double()(x)[0].numpy()
            out[~seen] = np.expm1(recon)
        return out
