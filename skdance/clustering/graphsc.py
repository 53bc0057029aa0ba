"""graph-sc: graph autoencoder embedding of the cell-gene graph, then clustering."""

from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from torch import nn
from torch.nn import functional as F

from skdance.clustering._deep import BaseCountClusterer, FitData, column_scaling
from skdance.clustering._docs import DEC_PARAMS
from skdance.clustering.leiden import Leiden
from skdance.nn import TORCH_CONSTRAINTS, balanced_adjacency_bce, cell_gene_inputs
from skdance.utils import (
    check_random_state_int,
    fill_doc,
)

__all__ = ["GraphSC"]


def _batch_loss(z, dropout=0.1):
    """graph-sc's reconstruction loss over a mini-batch of cells.

    The target is the adjacency among the batch's cells in the sampled
    bipartite block: only their self loops (cells link to genes, not to each
    other), i.e. the identity.  Positives are up-weighted by the class ratio
    and the loss scaled by graph-sc's ``norm`` factor; the inner-product
    decoder drops out 10% of the embedding.
    """
    zd = F.dropout(z, dropout, training=True)
    return balanced_adjacency_bce(zd @ zd.T, torch.eye(z.shape[0], device=z.device))


class GraphSCModule(nn.Module):
    """One weighted graph convolution and a linear layer (the encoder).

    The convolution's neighbourhood aggregation does not depend on the
    weights, so it is precomputed and passed in; the convolution weight is
    Xavier-initialised with a zero bias, as DGL's ``GraphConv``.
    """

    def __init__(self, n_features, hidden_dim, latent_dim, dropout):
        super().__init__()
        self.conv = nn.Linear(n_features, hidden_dim)
        nn.init.xavier_uniform_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)
        self.embed = nn.Linear(hidden_dim, latent_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, aggregated):
        """Node embeddings from aggregated node features."""
        return self.embed(F.relu(self.conv(self.dropout(aggregated))))


@fill_doc(**DEC_PARAMS)
class GraphSC(BaseCountClusterer):
    """graph-sc: cell embeddings from a graph autoencoder on the cell-gene graph.

    The method of Ciortan & Defrance (2021), as graph-sc's and DANCE's code
    run it:

    1. Counts become edge weights ``log1p(x)`` normalised to sum 1 per cell
       (graph-sc's "log_per_cell"); the ``graph`` builder (default
       ``CellGeneGraph(weight="fraction", self_loops=True)``) links every
       cell to the genes it expresses and every node to itself.  With
       ``edge_norm`` each cell's gene-edge weights are rescaled to mean 1.
    2. Node features: gene nodes get ``n_components`` principal components of
       the genes in the per-gene standardised weight matrix; a cell node the
       weighted mean of its genes' features.
    3. Encoder: one weighted graph convolution (DGL ``GraphConv`` with
       ``norm="both"``: messages ``weight * feature`` summed, scaled by
       ``deg_out(src)**-0.5`` and ``deg_in(dst)**-0.5``; ``hidden_dim`` units,
       ReLU, dropout on its input) followed by a linear layer to
       ``latent_dim``.  Training runs over mini-batches of cells; each batch
       is a sampled message-passing block whose destination nodes are the
       batch's cells, and the inner-product decoder reconstructs the block's
       adjacency among them - their self loops, so the target is the
       identity (positives up-weighted by the class ratio; Adam, lr 1e-5).
    4. The cell embeddings are clustered with k-means (or Leiden with the
       resolution searched to give ``n_clusters``).

    Simplification (also in the note): instead of sampling a block per batch,
    a gene's out-degree inside a block is its expected value (the fraction of
    training cells that express it times ``batch_size``), so every cell's
    aggregation is computed once; dropout then acts on the aggregated
    features instead of the raw ones.

    ``transform(X)`` links the rows of ``X`` to the genes, gives them cell
    features from the gene features learnt in ``fit`` and encodes them with
    the trained layers; each row's embedding depends on that row only.

    Parameters
    ----------
    {n_clusters}
    graph : graph builder, default=None
        Builder of the bipartite ``(cells + genes)`` adjacency from the
        per-cell-normalised ``log1p`` counts; None means
        ``CellGeneGraph(weight="fraction", self_loops=True)``.
    cluster_method : {"kmeans", "leiden"}, default="kmeans"
        Clustering of the embedding.
    edge_norm : bool, default=True
        Rescale each cell's gene-edge weights to mean 1 (graph-sc's
        ``edge_norm``, on in its and DANCE's runs).
    n_components : int, default=50
        Number of principal components of the genes (the node feature size).
    hidden_dim : int, default=200
        Width of the graph convolution.
    latent_dim : int, default=300
        Embedding size.
    dropout : float, default=0.1
        Dropout rate.
    max_epochs : int, default=100
        Training epochs.
    batch_size : int, default=128
        {batch_size}
    learning_rate : float, default=1e-5
        Adam learning rate (graph-sc's default).
    {device} {random_state}
    verbose : int, default=0
        Show a tqdm progress bar with the loss.

    Attributes
    ----------
    {labels_} {embedding_}
    gene_features_ : ndarray of shape (n_genes, n_components)
        Principal components of the genes (gene node features).
    gene_block_degree_ : ndarray of shape (n_genes,)
        Expected out-degree of each gene inside a mini-batch block.
    module_ : torch.nn.Module
        The trained encoder (on CPU).
    history_ : list of dict
        One record per training epoch: phase, epoch, train_loss (and
        valid_loss where a validation set is held out), seconds.  One phase,
        ``"train"`` (mean reconstruction loss).
    n_iter_ : int
        Training epochs run.
    {n_features_in_} {feature_names_in_}

    References
    ----------
    Ciortan & Defrance (2021), "GNN-based embedding for clustering scRNA-seq
    data", Bioinformatics 38(4), 1037-1044.

    Examples
    --------
    >>> from skdance.clustering import GraphSC
    >>> from skdance.datasets import load_pbmc_4k_subset
    >>> X, y = load_pbmc_4k_subset()
    >>> model = GraphSC(n_clusters=8, max_epochs=2, random_state=0).fit(X[:300])
    >>> model.labels_.shape, model.embedding_.shape
    ((300,), (300, 300))
    """

    _parameter_constraints = {
        "n_clusters": [Interval(Integral, 1, None, closed="left"), None],
        "graph": [HasMethods(["fit_transform"]), None],
        "cluster_method": [StrOptions({"kmeans", "leiden"})],
        "edge_norm": ["boolean"],
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "hidden_dim": [Interval(Integral, 1, None, closed="left")],
        "latent_dim": [Interval(Integral, 1, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "max_epochs": [Interval(Integral, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        **TORCH_CONSTRAINTS,
    }

    def __init__(
        self,
        n_clusters=None,
        *,
        graph=None,
        cluster_method="kmeans",
        edge_norm=True,
        n_components=50,
        hidden_dim=200,
        latent_dim=300,
        dropout=0.1,
        max_epochs=100,
        batch_size=128,
        learning_rate=1e-5,
        device="cpu",
        random_state=None,
        verbose=0,
    ):
        self.n_clusters = n_clusters
        self.graph = graph
        self.cluster_method = cluster_method
        self.edge_norm = edge_norm
        self.n_components = n_components
        self.hidden_dim = hidden_dim
        self.latent_dim = latent_dim
        self.dropout = dropout
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _graph_inputs(self, X, seed, *, fit=False):
        """Return the cells' aggregated node features for ``X``.

        Gene features and the genes' block degrees are learnt in ``fit`` and
        reused afterwards, so ``transform`` feeds the trained layers the same
        feature space.
        """
        logged = sp.csr_matrix(X, dtype=np.float64, copy=True)
        logged.data = np.log1p(logged.data)
        inputs = cell_gene_inputs(self.graph, logged, edge_norm=self.edge_norm)
        weights = inputs.weights
        n_cells, n_genes = X.shape
        if fit:
            # gene features: principal components of the genes in the
            # per-gene standardised weight matrix (DANCE's WeightedFeaturePCA)
            dense = weights.toarray()
            mean, std = column_scaling(dense)
            scaled = (dense - mean) / std
            n_comp = min(self.n_components, n_cells, n_genes)
            self.gene_features_ = PCA(n_comp, random_state=seed).fit_transform(scaled.T)
            # expected number of a mini-batch's cells linked to each gene: the
            # gene's out-degree in graph-sc's sampled message-passing blocks
            frac = np.diff(weights.tocsc().indptr) / n_cells
            batch = min(self.batch_size, n_cells)
            self.gene_block_degree_ = np.maximum(frac * batch, 1.0)
        # cell features: the weighted mean of the cell's genes' features
        cell_feats = inputs.cell_features(self.gene_features_)
        # one weighted GraphConv(norm="both") step into the batch's cells: the
        # self loop (out-degree 1 inside a block) plus the gene messages
        gene_msg = self.gene_features_ / np.sqrt(self.gene_block_degree_)[:, None]
        aggregated = (
            inputs.self_loops[:, None] * cell_feats + inputs.edge_weights @ gene_msg
        )
        aggregated /= np.sqrt(np.maximum(inputs.in_degree, 1.0))[:, None]
        return torch.from_numpy(aggregated.astype(np.float32))

    # -- the fit template's steps ------------------------------------------
    # graph-sc has no DEC phase: it trains the graph autoencoder ("train"
    # phase, counted by n_iter_), then clusters the embedding
    _iter_phase = "train"

    def _fit_data(self, X, seed, device):
        return FitData(inputs=self._graph_inputs(X, seed, fit=True).to(device))

    def _build_module(self, n_genes, data):
        return GraphSCModule(
            data.inputs.shape[1], self.hidden_dim, self.latent_dim, self.dropout
        )

    def _embed(self, run, module, data):
        return module(data.inputs)

    def _pretrain(self, run, module, data):
        opt = torch.optim.Adam(module.parameters(), lr=self.learning_rate)
        inputs = data.inputs

        def loss_fn(idx):
            return _batch_loss(module(inputs[run.to(idx)]))

        run.run(
            "train",
            self.max_epochs,
            lambda epoch: run.trainer.minibatch_epoch(
                opt, loss_fn, inputs.shape[0], self.batch_size, run.generator
            ),
        )

    def _cluster_phase(self, run, module, data):
        return None  # the embedding is clustered after training

    def _cluster_embedding(self, z, seed):
        if self.cluster_method == "leiden":
            model = Leiden(n_clusters=self.n_clusters, random_state=seed)
            return model.fit_predict(z).astype(np.int64)
        km = KMeans(self.n_clusters, n_init=10, random_state=seed)
        return km.fit_predict(z).astype(np.int64)

    def transform(self, X):
        """Embed cells: rebuild the graph over ``X`` and apply the trained encoder.

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData} of shape (n_cells, n_genes)
            Raw counts on the genes seen in ``fit``.

        Returns
        -------
        Z : ndarray of shape (n_cells, latent_dim)
            Embedding.
        """
        X = self._validate_new_input(X)
        aggregated = self._graph_inputs(X, check_random_state_int(self.random_state))
        with torch.no_grad():
            return self.module_(aggregated).numpy()
