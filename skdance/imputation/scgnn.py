"""scGNN: iterative feature / graph / cluster autoencoders for imputation."""

import copy
import random
import warnings
from functools import partial
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.csgraph import laplacian
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import GaussianMixture
from sklearn.utils._param_validation import HasMethods, Interval
from torch import nn
from torch.nn import functional as F

from skdance.graph import PrunedKNNGraph, fit_graph, to_igraph
from skdance.imputation._base import BaseImputer
from skdance.nn import (
    TORCH_CONSTRAINTS,
    FCLayers,
    GaussianEncoder,
    GraphConv,
    balanced_adjacency_bce,
    normalize_adjacency,
    progress,
    seeded,
    training,
)
from skdance.preprocessing import normalize_rows
from skdance.utils import check_random_state_int, dense_float, fill_doc

__all__ = ["ScGNN", "ltmg_signals"]


def ltmg_signals(E, max_components=3, min_cells=10, random_state=None):
    """Regulatory signals (TRS) of every entry, a simplified LTMG.

    scGNN's LTMG fits a left-truncated mixture of Gaussians to each gene's
    log expression and codes each entry by the component it belongs to.
    Simplification used here: a Gaussian mixture with 1 to
    ``max_components`` components (chosen by BIC) is fitted to the gene's
    *non-zero* log values (the truncation is at zero: zeros are coded 0);
    non-zero entries get the rank (1, 2, ...) of their component by mean.
    Genes detected in fewer than ``min_cells`` cells code every non-zero
    entry 1.

    Parameters
    ----------
    E : ndarray of shape (n_cells, n_genes)
        Log expression (``log1p`` counts).
    max_components : int, default=3
        Largest mixture size tried.
    min_cells : int, default=10
        Minimum number of expressing cells for a mixture fit.
    random_state : int or None, default=None
        Seed of the mixture fits.

    Returns
    -------
    signals : ndarray of shape (n_cells, n_genes), float32
        0 for zeros, component ranks elsewhere.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.imputation.scgnn import ltmg_signals
    >>> rng = np.random.default_rng(0)
    >>> gene = np.concatenate([np.zeros(10), rng.normal(1, 0.05, 20),
    ...                        rng.normal(4, 0.05, 20)])
    >>> signals = ltmg_signals(gene[:, None], random_state=0).ravel()
    >>> [sorted({int(v) for v in part}) for part in np.split(signals, [10, 30])]
    [[0], [1], [2]]
    """
    signals = np.zeros(E.shape, dtype=np.float32)
    for g in range(E.shape[1]):
        rows = np.flatnonzero(E[:, g] > 0)
        if rows.size == 0:
            continue
        values = E[rows, g].reshape(-1, 1)
        if rows.size < min_cells or np.ptp(values) == 0:
            signals[rows, g] = 1.0
            continue
        best, best_bic = None, np.inf
        for k in range(1, max_components + 1):
            if rows.size < 2 * k:
                break
            with warnings.catch_warnings():
                # log values of small counts are few distinct points: k-means
                # initialisation may find fewer clusters than k (BIC decides)
                warnings.simplefilter("ignore", ConvergenceWarning)
                gmm = GaussianMixture(k, random_state=random_state).fit(values)
            bic = gmm.bic(values)
            if bic < best_bic:
                best, best_bic = gmm, bic
        rank = np.argsort(np.argsort(best.means_.ravel()))
        signals[rows, g] = rank[best.predict(values)] + 1.0
    return signals


def _regulariser_weights(graph_reg, labels, rows, gamma, regu_graph, regu_celltype):
    """Per-cell weights of scGNN's imputation loss on the batch ``rows``.

    scGNN's loss is ``gamma * sum(err) + regu_graph * sum(G @ err) +
    regu_celltype * sum(B @ err)`` with ``G`` the row-normalised cell graph
    and ``B`` the row-normalised same-cluster matrix, both restricted to the
    batch.  ``sum(M @ err) = sum_j colsum(M)_j * sum_g err[j, g]``, so the
    loss is ``weights @ err`` summed, with ``weights`` the column sums:
    the same value and gradient in O(n_cells) memory instead of the dense
    ``n_cells x n_cells`` products.
    """
    graph_w = np.asarray(graph_reg[rows][:, rows].sum(axis=0)).ravel()
    cluster = np.unique(labels, return_inverse=True)[1].ravel()
    sizes = np.bincount(cluster)
    in_batch = np.bincount(cluster[rows], minlength=sizes.size)
    celltype_w = (in_batch / sizes)[cluster[rows]]
    return (gamma + regu_graph * graph_w + regu_celltype * celltype_w).astype(
        np.float32
    )


class ScGNNAutoencoder(nn.Module):
    """scGNN's (feature, cluster and imputation) autoencoder.

    ``genes -> 512 -> 128 -> 512 -> genes``, ReLU on every layer including
    the output (expression is non-negative).
    """

    def __init__(self, n_genes, hidden_dims=(512, 128)):
        super().__init__()
        h1, h2 = hidden_dims
        self.encoder = FCLayers([n_genes, h1, h2])
        self.decoder = FCLayers([h2, h1, n_genes])

    def forward(self, x):
        """Reconstruction and embedding."""
        z = self.encoder(x)
        return self.decoder(z), z


class ScGNNGraphAutoencoder(nn.Module):
    """scGNN's graph autoencoder (``gcn_vae``): GCN 32 -> (mu, logvar) 16."""

    def __init__(self, n_in, hidden_dims=(32, 16)):
        super().__init__()
        h1, h2 = hidden_dims
        self.gc1 = GraphConv(n_in, h1, bias=False)
        self.latent = GaussianEncoder(h1, h2, layer=partial(GraphConv, bias=False))

    def forward(self, adj, x):
        """Posterior mean, log-variance and a sample (the mean in eval mode)."""
        z, mu, logvar = self.latent(F.relu(self.gc1(x, adj)), adj)
        return mu, logvar, z


def _graph_embedding(A, Z, epochs, lr, seed, trainer, iteration=0):
    """Train the graph autoencoder on ``A`` (features: binarised ``Z``).

    Full-batch epochs of phase ``"graph_ae"`` on ``trainer`` (its device and
    history; ``iteration`` is recorded with each epoch); returns the
    posterior means as a CPU array.
    """
    n = A.shape[0]
    adj = torch.from_numpy(normalize_adjacency(A, mode="sym").toarray())
    target = torch.from_numpy((A + sp.identity(n)).toarray().astype(np.float32))
    features = torch.from_numpy((Z > Z.mean(axis=0)).astype(np.float32))
    adj, target, features = trainer.to((adj, target, features))
    with seeded(seed):
        gae = trainer.to(ScGNNGraphAutoencoder(features.shape[1]))
        opt = torch.optim.Adam(gae.parameters(), lr=lr)
        gae.train()

        def epoch(_):
            mu, logvar, z = gae(adj, features)
            recon = balanced_adjacency_bce(z @ z.T, target)
            kl = (1.0 / n) * gae.latent.kl(mu, logvar).mean()
            return {
                "train_loss": trainer.step(opt, recon + kl),
                "iteration": iteration,
            }

        trainer.run("graph_ae", epochs, epoch)
        gae.eval()
        with torch.no_grad():
            return gae(adj, features)[0].cpu().numpy()


def _em_iterations(history):
    """Return the number of EM iterations in a scGNN history (its ``n_iter_``)."""
    return len({r["iteration"] for r in history if r["phase"] == "em"})


def _louvain_count(A, seed):
    import igraph

    graph = to_igraph(A)
    igraph.set_random_number_generator(random.Random(seed))
    try:
        return len(graph.community_multilevel(weights="weight"))
    finally:
        igraph.set_random_number_generator(random)


@fill_doc
class ScGNN(BaseImputer):
    """scGNN v1: imputation by iterating feature, graph and cluster autoencoders.

    The method of Wang et al. (2021), scGNN v1, following its released code.
    Its successor scGNN 2.0 (Gu et al. 2022) is :class:`ScGNN2`; DANCE keeps
    only 2.0 (its ``ScGNN`` module was v1 in earlier releases).

    1. ``log1p`` expression; regulatory signals (TRS) from
       :func:`ltmg_signals` (a simplified LTMG, see there).
    2. Feature autoencoder (:class:`ScGNNAutoencoder`, 512-128) trained for
       ``pretrain_epochs`` with eq. 1: ``reconstruction_weight *
       SSE(x_hat, x) + regulatory_signal_weight * SSE(x_hat, x) * TRS``
       (scGNN's gamma and regu; Adam 1e-3, batches of ``batch_size`` cells).
    3. Cell graph of the embedding (``graph``; default scGNN's 10-NN graph
       pruned by an isolation forest per cell,
       :class:`~skdance.graph.PrunedKNNGraph`).
    4. EM iterations (at most ``max_iter``): the graph autoencoder
       (:class:`ScGNNGraphAutoencoder`, GCN VAE 32-16 on the binarised
       embedding, 200 epochs, lr 0.01) embeds the cells; Louvain on the graph
       gives the number of cell types ``k`` (scaled by 0.8 below 2,000 cells,
       0.5 above, as scGNN's ``LouvainK``) and k-means on the graph embedding
       the clusters; one autoencoder per cluster (started from the feature
       autoencoder) is trained ``cluster_epochs`` on its cells'
       reconstruction; the feature autoencoder is retrained ``em_epochs`` on
       the result and the graph rebuilt.  The loop stops when the graph
       (``initial_graph_weight``-mixed with the first one) changes by less than
       ``graph_tol`` of the first graph's mean weight, or the clusters agree
       with the previous ones above ``celltype_tol`` ARI.
    5. Imputation autoencoder, started from the feature autoencoder and
       trained ``impute_epochs`` on the original expression with the
       regularisers of eq. 5 as scGNN's code computes them:
       ``reconstruction_weight * SSE + graph_regularization_weight *
       sum(A_norm @ (x_hat - x)**2) + celltype_regularization_weight *
       sum(B_norm @ (x_hat - x)**2)`` with ``A_norm`` the row-normalised final
       cell graph and ``B_norm`` the row-normalised same-cluster matrix.
    6. ``transform``: the imputation autoencoder's output for each cell
       (values below ``post_threshold`` set to 0, scGNN's post-processing),
       back to counts with ``expm1``.  Every entry is replaced.

    Simplifications (also in the notes): LTMG as above; Louvain via igraph;
    separate cluster autoencoders copied from the feature autoencoder (the
    released code retrains one shared model per cluster in turn).

    Parameters
    ----------
    graph : graph builder or None, default=None
        Transformer building the cell graph of the feature autoencoder's
        embedding (cloned in ``fit``); None:
        ``PrunedKNNGraph(n_neighbors=10, prune="isolation_forest",
        random_state=random_state)``, scGNN's graph.
    pretrain_epochs : int, default=500
        Epochs of the first feature autoencoder.
    em_epochs : int, default=200
        Feature autoencoder epochs per EM iteration.
    cluster_epochs : int, default=200
        Cluster autoencoder epochs per EM iteration.
    impute_epochs : int, default=200
        Epochs of the final imputation autoencoder.
    gae_epochs : int, default=200
        Graph autoencoder epochs per EM iteration.
    max_iter : int, default=10
        Maximum EM iterations.
    initial_graph_weight : float, default=0.5
        Weight of the first graph when comparing graphs between iterations
        (scGNN's alpha).
    graph_tol, celltype_tol : float, default=0.01, 0.99
        Convergence thresholds (graph change ratio, cluster ARI).
    reconstruction_weight : float, default=0.1
        Weight of the plain reconstruction error.
    regulatory_signal_weight : float, default=0.9
        Weight of the reconstruction error weighted entry by entry by the
        regulatory signals (TRS, eq. 1; scGNN's ``regu``).
    graph_regularization_weight : float, default=0.9
        Weight of the graph regulariser of the imputation autoencoder.
    celltype_regularization_weight : float, default=0.9
        Weight of its cell-type regulariser.
    learning_rate : float, default=1e-3
        Adam learning rate of the autoencoders.
    batch_size : int, default=12800
        Cells per batch (scGNN's default: whole data sets in one batch).
    post_threshold : float, default=0.01
        Imputed ``log1p`` values below it are set to 0.
    {device}
    random_state : int, RandomState instance or None, default=None
        Seeds every stage.
    verbose : int, default=0
        Progress bars: 1 shows the EM iterations, 2 also every training
        phase.

    Attributes
    ----------
    signals_ : ndarray of shape (n_cells, n_genes)
        TRS of the training cells.
    adjacency_ : scipy.sparse.csr_matrix of shape (n_cells, n_cells)
        Final pruned cell graph.
    labels_ : ndarray of shape (n_cells,)
        Final clusters.
    n_iter_ : int
        EM iterations run.
    module_ : ScGNNAutoencoder
        The imputation autoencoder (on CPU, eval mode).
    embedding_ : ndarray of shape (n_cells, 128)
        Final feature-autoencoder embedding of the training cells.
    history_ : list of dict
        One record per training epoch: phase, epoch, train_loss, seconds.
        Phases in order: ``"pretrain"`` (feature autoencoder), then per EM
        iteration ``"graph_ae"``, ``"cluster_ae"`` (one run per cluster, with
        its ``cluster``) and ``"em"`` (records of these carry the
        ``iteration``; the last ``"em"`` epoch of an iteration also carries
        ``graph_change`` and ``ari``, the convergence values), then
        ``"impute"``.  ``train_loss`` is the loss summed over a batch's
        cells, averaged over the batches weighted by their size (the loss
        with one batch, scGNN's default).
    n_features_in_ : int
        Number of genes seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Gene names seen in ``fit``, when the input had them.

    See Also
    --------
    skdance.imputation.ScGNN2 : scGNN 2.0.

    References
    ----------
    Wang, Ma, Chang, Gao, Xu et al. (2021), "scGNN is a novel graph neural
    network framework for single-cell RNA-Seq analyses", Nature
    Communications 12, 1882.

    Examples
    --------
    >>> from skdance.datasets import load_pbmc_4k_subset
    >>> from skdance.imputation import ScGNN
    >>> X, _ = load_pbmc_4k_subset()
    >>> from skdance.graph import PrunedKNNGraph
    >>> model = ScGNN(graph=PrunedKNNGraph(prune="stats"), pretrain_epochs=5,
    ...               em_epochs=3,
    ...               cluster_epochs=3, impute_epochs=3, gae_epochs=5,
    ...               max_iter=1, random_state=0)
    >>> model.fit_transform(X[:300, :100]).shape
    (300, 100)
    """

    _parameter_constraints = {
        "graph": [HasMethods(["fit_transform"]), None],
        "pretrain_epochs": [Interval(Integral, 1, None, closed="left")],
        "em_epochs": [Interval(Integral, 1, None, closed="left")],
        "cluster_epochs": [Interval(Integral, 1, None, closed="left")],
        "impute_epochs": [Interval(Integral, 1, None, closed="left")],
        "gae_epochs": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "initial_graph_weight": [Interval(Real, 0, 1, closed="both")],
        "graph_tol": [Interval(Real, 0, None, closed="left")],
        "celltype_tol": [Interval(Real, 0, 1, closed="both")],
        "reconstruction_weight": [Interval(Real, 0, None, closed="left")],
        "regulatory_signal_weight": [Interval(Real, 0, None, closed="left")],
        "graph_regularization_weight": [Interval(Real, 0, None, closed="left")],
        "celltype_regularization_weight": [Interval(Real, 0, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "post_threshold": [Interval(Real, 0, None, closed="left")],
        **TORCH_CONSTRAINTS,
    }

    def __init__(
        self,
        *,
        graph=None,
        pretrain_epochs=500,
        em_epochs=200,
        cluster_epochs=200,
        impute_epochs=200,
        gae_epochs=200,
        max_iter=10,
        initial_graph_weight=0.5,
        graph_tol=0.01,
        celltype_tol=0.99,
        reconstruction_weight=0.1,
        regulatory_signal_weight=0.9,
        graph_regularization_weight=0.9,
        celltype_regularization_weight=0.9,
        learning_rate=1e-3,
        batch_size=12800,
        post_threshold=0.01,
        device="cpu",
        random_state=None,
        verbose=0,
    ):
        self.graph = graph
        self.pretrain_epochs = pretrain_epochs
        self.em_epochs = em_epochs
        self.cluster_epochs = cluster_epochs
        self.impute_epochs = impute_epochs
        self.gae_epochs = gae_epochs
        self.max_iter = max_iter
        self.initial_graph_weight = initial_graph_weight
        self.graph_tol = graph_tol
        self.celltype_tol = celltype_tol
        self.reconstruction_weight = reconstruction_weight
        self.regulatory_signal_weight = regulatory_signal_weight
        self.graph_regularization_weight = graph_regularization_weight
        self.celltype_regularization_weight = celltype_regularization_weight
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.post_threshold = post_threshold
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _train(self, trainer, module, data, epochs, loss_fn, gen, phase, **extra):
        """Minimise ``loss_fn(x_hat, x, idx)`` on ``data``; return (recon, embedding).

        ``idx`` are the batch's rows (a CPU tensor); ``extra`` values are
        recorded with every epoch of ``phase``.
        """
        opt = torch.optim.Adam(module.parameters(), lr=self.learning_rate)

        def batch_loss(idx):
            rows = data[trainer.to(idx)]
            return loss_fn(module(rows)[0], rows, idx)

        def epoch(_):
            loss = trainer.minibatch_epoch(
                opt, batch_loss, data.shape[0], self.batch_size, gen
            )
            return {"train_loss": loss, **extra}

        module.train()
        trainer.run(phase, epochs, epoch)
        module.eval()
        with torch.no_grad():
            return module(data)

    def _clusters(self, A, Z, seed, trainer, iteration):
        embedding = _graph_embedding(
            A, Z, self.gae_epochs, 0.01, seed, trainer, iteration
        )
        k = _louvain_count(A, seed)
        scale = 0.8 if A.shape[0] < 2000 else 0.5
        k = int(k * scale) if k > 3 else 2
        k = max(1, min(k, A.shape[0]))
        return KMeans(k, n_init=10, random_state=seed).fit_predict(embedding)

    def _cell_graph(self, default, z):
        n = z.shape[0]
        return fit_graph(
            self.graph, default, z.cpu().numpy(), shape=(n, n), what="cell graph"
        )

    @staticmethod
    def _graph_operator(A):
        # A @ diag(1 / column sums): the column-normalised graph
        return sp.csr_matrix(normalize_rows(sp.csr_matrix(A.T), 1.0).T)

    def _fit(self, X):
        n_cells, n_genes = X.shape
        if n_cells < 3:
            raise ValueError(f"ScGNN needs at least 3 cells; got {n_cells}.")
        seed = check_random_state_int(self.random_state)
        x = torch.log1p(torch.from_numpy(dense_float(X)))
        self.signals_ = ltmg_signals(x.numpy(), random_state=seed)
        with training(self, seed=seed, n_iter=_em_iterations) as run:
            # inner phases show their bars from verbose=2 (EM iterations from 1)
            run.trainer.verbose = self.verbose > 1
            self._fit_stages(run, x, n_cells, n_genes, seed)

    def _fit_stages(self, run, x, n_cells, n_genes, seed):
        """Pretraining, EM iterations and imputation autoencoder, on ``run``."""
        trainer, gen = run.trainer, run.generator
        x, trs = trainer.to((x, torch.from_numpy(self.signals_)))

        def eq1(recon, target, idx):
            err = (recon - target) ** 2
            return (
                self.reconstruction_weight * err.sum()
                + self.regulatory_signal_weight * (err * trs[trainer.to(idx)]).sum()
            )

        def plain(recon, target, idx):
            return self.reconstruction_weight * ((recon - target) ** 2).sum()

        feature_ae = trainer.to(ScGNNAutoencoder(n_genes))
        recon, z = self._train(
            trainer, feature_ae, x, self.pretrain_epochs, eq1, gen, "pretrain"
        )
        default = PrunedKNNGraph(random_state=seed)
        A = self._cell_graph(default, z)
        # scGNN compares graphs against the normalised Laplacian of the first
        first = sp.csr_matrix(laplacian(A, normed=True))
        old_graph, old_labels = first, np.zeros(n_cells, dtype=int)
        labels = old_labels
        # EM iterations (not epochs: each runs the phases below)
        bar = progress(range(self.max_iter), self.verbose, "scGNN EM")
        for it in bar:
            labels = self._clusters(A, z.cpu().numpy(), seed, trainer, it)
            new_recon = torch.zeros_like(recon)
            for c in np.unique(labels):
                cells = trainer.to(torch.from_numpy(np.flatnonzero(labels == c)))
                if cells.numel() < 2:
                    new_recon[cells] = recon[cells]
                    continue
                new_recon[cells] = self._train(
                    trainer,
                    copy.deepcopy(feature_ae),
                    recon[cells],
                    self.cluster_epochs,
                    plain,
                    gen,
                    "cluster_ae",
                    iteration=it,
                    cluster=int(c),
                )[0]
            recon, z = self._train(
                trainer,
                feature_ae,
                new_recon,
                self.em_epochs,
                plain,
                gen,
                "em",
                iteration=it,
            )
            A = self._cell_graph(default, z)
            graph = self.initial_graph_weight * first + (
                1 - self.initial_graph_weight
            ) * self._graph_operator(A)
            change = abs(graph - old_graph).mean()
            threshold = self.graph_tol * abs(first).mean()
            agreement = adjusted_rand_score(old_labels, labels)
            trainer.history[-1].update(graph_change=float(change), ari=float(agreement))
            if self.verbose:
                bar.set_postfix(graph_change=f"{change:.2e}", ari=f"{agreement:.3f}")
            if change < threshold or agreement > self.celltype_tol:
                break
            old_graph, old_labels = graph, labels
        self.adjacency_ = A
        self.labels_ = np.asarray(labels)
        self.embedding_ = z.cpu().numpy()
        graph_reg = normalize_rows(A, 1.0)

        def eq5(recon, target, idx):
            weights = _regulariser_weights(
                graph_reg,
                self.labels_,
                idx.numpy(),
                self.reconstruction_weight,
                self.graph_regularization_weight,
                self.celltype_regularization_weight,
            )
            weights = trainer.to(torch.from_numpy(weights))
            return (weights @ ((recon - target) ** 2)).sum()

        impute_ae = copy.deepcopy(feature_ae)
        self._train(trainer, impute_ae, x, self.impute_epochs, eq5, gen, "impute")
        run.place(impute_ae)

    def _transform(self, X):
        # float64 so that a cell's output does not depend on the batch it is
        # computed in (float32 matmul blocking differs with the row count)
        x = torch.log1p(torch.from_numpy(dense_float(X, np.float64)))
        with torch.no_grad():
            out = copy.deepcopy(self.module_).double()(x)[0].numpy()
        out[out < self.post_threshold] = 0.0
        return np.expm1(out)
