"""scDSC: deep structural clustering with a ZINB autoencoder and a fused GCN."""

from numbers import Integral, Real

import torch
from sklearn.utils._param_validation import HasMethods, Interval
from torch import nn
from torch.nn import functional as F

from skdance.clustering._deep import DEC_CONSTRAINTS, BaseCountClusterer, FitData
from skdance.clustering._docs import DEC_PARAMS
from skdance.graph import KNNGraph
from skdance.nn import (
    GCN,
    FCLayers,
    ZINBHeads,
    full_batch_counts,
    normalize_adjacency,
    reconstruction_mse,
    student_t_assignment,
    to_torch_sparse,
    zinb_loss,
)
from skdance.utils import Widths, fill_doc

__all__ = ["ScDSC"]


class ScDSCModule(nn.Module):
    """Autoencoder (with ZINB heads) and the GCN fused into it layer by layer."""

    def __init__(self, n_genes, hidden_dims, latent_dims, n_clusters):
        super().__init__()
        # Linear + BatchNorm (+ ReLU) blocks; autoencode collects each output
        self.encoder = FCLayers([n_genes, *hidden_dims], batch_norm=True)
        self.latent = FCLayers(
            [hidden_dims[-1], *latent_dims], activation=None, batch_norm=True
        )
        decoder_dims = [latent_dims[-1], *reversed(hidden_dims)]
        self.decoder = FCLayers(decoder_dims, batch_norm=True)
        self.recon = nn.Linear(decoder_dims[-1], n_genes)
        self.heads = ZINBHeads(decoder_dims[-1], n_genes)
        gcn_dims = [n_genes, *hidden_dims, *latent_dims, n_clusters]
        self.gcn = GCN(gcn_dims, bias=False, init="glorot")

    def autoencode(self, x, reconstruct=True):
        """Return the AE's reconstruction, last decoder layer and all hidden layers.

        The reconstruction is None when ``reconstruct`` is False.
        """
        hidden = []
        h = x
        for layer in [*self.encoder, *self.latent]:
            h = layer(h)
            hidden.append(h)
        for layer in self.decoder:
            h = layer(h)
        return (self.recon(h) if reconstruct else None), h, hidden

    def forward(self, x, adj, sigma):
        """Return ``(z, dec, gcn_softmax)``.

        ``self.recon(dec)`` is the reconstruction and ``self.heads(dec)`` the
        ZINB parameters (applied in the losses, in row chunks for many cells).
        """
        _, dec, hidden = self.autoencode(x, reconstruct=False)
        convs = self.gcn.convs
        h = F.relu(convs[0](x, adj))
        for i, conv in enumerate(convs[1:], start=1):
            h = conv((1 - sigma) * h + sigma * hidden[i - 1], adj)
            if i < len(convs) - 1:
                h = F.relu(h)
        return hidden[-1], dec, F.softmax(h, dim=1)


@fill_doc(**DEC_PARAMS)
class ScDSC(BaseCountClusterer):
    """scDSC: deep structural clustering through an autoencoder and a GNN.

    The method of Gan et al. (2022):

    1. Counts are normalised internally (size factors, ``log1p``, per-gene
       standardisation); a cell graph is built with ``graph`` (default: the 10
       most Pearson-correlated cells) and symmetrically normalised with
       self-loops.
    2. An autoencoder (encoder 512-256-256 with ReLU, latent layers
       256-128-32, mirrored decoder, batch norm after every layer) is
       pretrained on the mean squared reconstruction error (Adam,
       mini-batches).
    3. A graph convolutional network of the same widths runs beside it; the
       input of its layer ``l + 1`` mixes its own output with the
       autoencoder's layer ``l``: ``(1 - w) h_l + w a_l`` with ``w =
       autoencoder_weight`` (the paper's sigma).  Its last layer has
       ``n_clusters`` units and a softmax.  The decoder also outputs ZINB
       parameters for the raw counts.
    4. DEC centres are initialised by k-means (20 restarts) on the
       autoencoder's embedding; the whole network is trained full batch with
       Adam on ``cluster_weight * BCE(Q, P) + gcn_weight * KL(P || Z_gcn) +
       reconstruction_weight * MSE + zinb_weight * ZINB``, with DEC's target
       ``P`` recomputed every ``update_interval`` epochs.  Cells are labelled
       by the argmax of the Student-t assignment ``Q``.

    Differences from the published code, all deliberate: the pretrained
    autoencoder is loaded once and then trained jointly (DANCE reloads it
    at every forward pass, freezing it); no epoch is selected by looking at
    the true labels (DANCE keeps the epoch with the best ARI); training
    stops early when fewer than ``tol`` of the cells change cluster between
    target updates.

    The GCN links the cells fitted together; ``transform(X)`` returns the
    autoencoder embedding, which needs no graph.

    Memory: the joint training is full batch (the GCN and the batch-normed
    autoencoder see every cell at once), so the normalised expression of
    every cell is dense in memory; the cell graph stays sparse (scDSC has no
    adjacency reconstruction loss).  Above 2 ** 24 cells x genes the ZINB
    heads, the reconstruction layer and their losses run on checkpointed
    chunks of cells whose counts are densified one at a time.  Pretraining
    and ``transform`` go through mini-batches.

    Parameters
    ----------
    {n_clusters}
    graph : graph builder, default=None
        Transformer building the cell adjacency; None means
        ``KNNGraph(n_neighbors=10, metric="correlation")``.  Cloned in ``fit``.
    n_components : int or None, default=None
        Number of principal components of the normalised data the graph is
        built on (None: the normalised genes themselves).
    hidden_dims : tuple of int, default=(512, 256, 256)
        Widths of the encoder's hidden layers (ReLU; mirrored by the
        decoder); at least one.
    latent_dims : tuple of int, default=(256, 128, 32)
        Widths of the linear layers after them; the last is the embedding
        size.  At least one.
    autoencoder_weight : float, default=0.5
        Weight of the autoencoder layers in the GCN's inputs.
    pretrain_epochs : int, default=100
        Autoencoder pretraining epochs.
    max_epochs : int, default=1000
        Maximum joint training epochs (full batch).
    batch_size : int, default=256
        Mini-batch size of pretraining.
    {pretrain_learning_rate}
    learning_rate : float, default=1e-2
        Adam learning rate of joint training.
    cluster_weight : float, default=1.0
        Weight of the clustering loss (binary cross-entropy of ``Q`` against
        DEC's target ``P``).
    gcn_weight : float, default=0.01
        Weight of the KL divergence between ``P`` and the GCN head's
        prediction.
    reconstruction_weight : float, default=0.1
        Weight of the autoencoder's reconstruction (MSE) loss.
    zinb_weight : float, default=0.1
        Weight of the ZINB loss.
    alpha : float, default=1.0
        Degrees of freedom of the Student-t kernel (``v`` in the paper).
    update_interval : int, default=10
        {update_interval}
    {tol} {device} {random_state}
    verbose : int, default=0
        Show tqdm progress bars with the loss.

    Attributes
    ----------
    {labels_}
    cluster_centers_ : ndarray of shape (n_clusters, latent_dims[-1])
        Learnt centres in the embedding.
    embedding_ : ndarray of shape (n_cells, latent_dims[-1])
        Autoencoder embedding of the training cells.
    adjacency_ : scipy.sparse.csr_matrix of shape (n_cells, n_cells)
        The cell graph built in ``fit``.
    module_ : torch.nn.Module
        The trained network (on CPU).
    history_ : list of dict
        One record per training epoch: phase, epoch, train_loss (and
        valid_loss where a validation set is held out), seconds.  Phases
        ``"pretrain"`` (mean reconstruction loss) and ``"cluster"`` (total
        loss of the joint training, with ``changed``: the fraction of cells
        that changed cluster at the last target update).
    n_iter_ : int
        Joint training epochs run.
    {n_features_in_} {feature_names_in_}

    References
    ----------
    Gan, Huang, Zou, Li, Wang & Wang (2022), "Deep structural clustering for
    single-cell RNA-seq data jointly through autoencoder and graph neural
    network", Briefings in Bioinformatics 23(2), bbac018.

    Examples
    --------
    >>> from skdance.clustering import ScDSC
    >>> from skdance.datasets import load_pbmc_4k_subset
    >>> X, y = load_pbmc_4k_subset()
    >>> model = ScDSC(n_clusters=8, pretrain_epochs=5, max_epochs=5,
    ...               random_state=0).fit(X[:300])
    >>> model.labels_.shape, model.embedding_.shape
    ((300,), (300, 32))
    """

    _parameter_constraints = {
        **DEC_CONSTRAINTS,
        "graph": [HasMethods(["fit_transform"]), None],
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "hidden_dims": [Widths()],
        "latent_dims": [Widths()],
        "autoencoder_weight": [Interval(Real, 0, 1, closed="both")],
        "pretrain_epochs": [Interval(Integral, 0, None, closed="left")],
        "max_epochs": [Interval(Integral, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "pretrain_learning_rate": [Interval(Real, 0, None, closed="neither")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "cluster_weight": [Interval(Real, 0, None, closed="left")],
        "gcn_weight": [Interval(Real, 0, None, closed="left")],
        "reconstruction_weight": [Interval(Real, 0, None, closed="left")],
        "zinb_weight": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        n_clusters=None,
        *,
        graph=None,
        n_components=None,
        hidden_dims=(512, 256, 256),
        latent_dims=(256, 128, 32),
        autoencoder_weight=0.5,
        pretrain_epochs=100,
        max_epochs=1000,
        batch_size=256,
        pretrain_learning_rate=1e-3,
        learning_rate=1e-2,
        cluster_weight=1.0,
        gcn_weight=0.01,
        reconstruction_weight=0.1,
        zinb_weight=0.1,
        alpha=1.0,
        update_interval=10,
        tol=1e-3,
        device="cpu",
        random_state=None,
        verbose=0,
    ):
        self.n_clusters = n_clusters
        self.graph = graph
        self.n_components = n_components
        self.hidden_dims = hidden_dims
        self.latent_dims = latent_dims
        self.autoencoder_weight = autoencoder_weight
        self.pretrain_epochs = pretrain_epochs
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.pretrain_learning_rate = pretrain_learning_rate
        self.learning_rate = learning_rate
        self.cluster_weight = cluster_weight
        self.gcn_weight = gcn_weight
        self.reconstruction_weight = reconstruction_weight
        self.zinb_weight = zinb_weight
        self.alpha = alpha
        self.update_interval = update_interval
        self.tol = tol
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # -- the fit template's steps ------------------------------------------
    def _fit_data(self, X, seed, device):
        cells = self._normalized(X, fit=True)
        # full batch: the GCN reads every cell's normalised expression at once
        # (dense); the counts stay sparse above FULL_BATCH_ENTRIES, where the
        # ZINB and reconstruction losses run in row chunks
        normed = cells.normed_tensor()
        adj = self._cell_graph(
            normed, seed, KNNGraph(n_neighbors=10, metric="correlation")
        )
        self.adjacency_ = adj
        prop = to_torch_sparse(normalize_adjacency(adj, mode="sym"))
        sf = torch.from_numpy(cells.size_factors)
        return FitData(
            counts=full_batch_counts(cells, device),
            normed=normed.to(device),
            size_factors=sf.to(device),
            adj=prop.to(device),
        )

    def _build_module(self, n_genes, data):
        return ScDSCModule(
            n_genes,
            tuple(self.hidden_dims),
            tuple(self.latent_dims),
            self.n_clusters,
        )

    def _embed(self, run, module, data):
        return module.autoencode(data.normed, False)[2][-1]

    def _pretrain(self, run, module, data):
        opt = torch.optim.Adam(module.parameters(), lr=self.pretrain_learning_rate)
        normed = data.normed

        def loss_fn(idx):
            idx = run.to(idx)
            x_rec, _, _ = module.autoencode(normed[idx])
            return F.mse_loss(x_rec, normed[idx])

        # batch norm needs two cells: a last batch of one is skipped
        run.run(
            "pretrain",
            self.pretrain_epochs,
            lambda epoch: run.trainer.minibatch_epoch(
                opt,
                loss_fn,
                normed.shape[0],
                self.batch_size,
                run.generator,
                min_batch=2,
            ),
        )

    def _cluster_optimizer(self, module, centers):
        return torch.optim.Adam([*module.parameters(), centers], lr=self.learning_rate)

    def _cluster_epoch(self, run, module, data, centers, opt, target, epoch):
        """One full-batch step of the joint loss."""
        normed, adj = data.normed, data.adj

        def soft_assignment():
            module.eval()
            with torch.no_grad():
                z, *_ = module(normed, adj, self.autoencoder_weight)
                q = student_t_assignment(z, centers, self.alpha)
            module.train()
            return q

        p = target.at(epoch, soft_assignment)  # may raise StopTraining
        z, dec, pred = module(normed, adj, self.autoencoder_weight)
        q = student_t_assignment(z, centers, self.alpha)
        loss = (
            self.cluster_weight * F.binary_cross_entropy(q, p)
            + self.gcn_weight
            * F.kl_div(torch.log(pred + 1e-10), p, reduction="batchmean")
            + self.reconstruction_weight * reconstruction_mse(module.recon, dec, normed)
            + self.zinb_weight
            * zinb_loss(module.heads, dec, data.counts, data.size_factors)
        )
        return run.trainer.step(opt, loss)

    def transform(self, X):
        """Embed cells with the trained autoencoder.

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData} of shape (n_cells, n_genes)
            Raw counts on the genes seen in ``fit``.

        Returns
        -------
        Z : ndarray of shape (n_cells, latent_dims[-1])
            Embedding.
        """
        X = self._validate_new_input(X)
        data = self._normalized(X)
        with torch.no_grad():  # batched inference on dense chunks of rows
            return data.map_normed(
                lambda x: self.module_.autoencode(x, False)[2][-1]
            ).numpy()
