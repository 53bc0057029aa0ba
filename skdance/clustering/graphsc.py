"""graph-sc: graph autoencoder embedding of the cell-gene graph, then clustering."""

from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import clone
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from torch import nn
from torch.nn import functional as F

from skdance.clustering._deep import CountModelMixin, column_scaling
from skdance.clustering.leiden import Leiden
from skdance.graph import CellGeneGraph
from skdance.nn import minibatches, progress, seeded
from skdance.utils._validation import (
    check_random_state_int,
)

__all__ = ["GraphSC"]


def _gcn_normalize(adj):
    """DGL ``GraphConv(norm="both")`` with edge weights: ``D^-1/2 A_w D^-1/2``.

    Degrees count edges (unweighted), the messages carry the edge weights.
    """
    A = sp.csr_matrix(adj, dtype=np.float64)
    deg = np.diff(A.indptr).astype(np.float64)
    inv = 1.0 / np.sqrt(np.maximum(deg, 1.0))
    return sp.diags(inv) @ A @ sp.diags(inv)


def _standardize(F_):
    mean, std = column_scaling(F_)
    return (F_ - mean) / std


class GraphSCModule(nn.Module):
    """One weighted graph convolution, a linear layer, an inner-product decoder.

    The convolution's neighbourhood aggregation ``A_norm @ features`` does not
    depend on the weights, so it is precomputed and passed in.
    """

    def __init__(self, in_feats, hidden_dim, embed_dim, dropout):
        super().__init__()
        self.conv = nn.Linear(in_feats, hidden_dim)
        self.embed = nn.Linear(hidden_dim, embed_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, aggregated):
        """Node embeddings from aggregated node features."""
        return self.embed(F.relu(self.conv(self.dropout(aggregated))))


class GraphSC(CountModelMixin):
    """graph-sc: cell embeddings from a graph autoencoder on the cell-gene graph.

    The method of Ciortan & Defrance (2021):

    1. Counts become edge weights ``log1p(x)`` normalised to sum 1 per cell
       (graph-sc's "log_per_cell"); the ``graph`` builder (default
       ``CellGeneGraph(weight="fraction", self_loops=True)``) links every
       cell to the genes it expresses.
    2. Node features: gene nodes get ``in_feats`` principal components of
       the weight matrix's genes; cell nodes the weighted sum of their genes'
       features; both standardised.
    3. Encoder: one weighted graph convolution (DGL ``GraphConv`` with
       ``norm="both"`` over edge counts and sum aggregation of weighted
       messages; ``hidden_dim`` units, ReLU, dropout on its input) followed by
       a linear layer to ``embed_dim``.  Decoder: inner products between a
       cell's and the genes' embeddings, trained with class-balanced binary
       cross-entropy to reconstruct the cell's edges, by mini-batches of
       cells with Adam.
    4. The cell embeddings are clustered with k-means (or Leiden with the
       resolution searched to give ``n_clusters``).

    Simplifications (also in the note): the whole graph is used at every step
    instead of DGL's neighbour sampling (one convolution reaches the same
    one-hop neighbourhood), so the aggregation ``A_norm @ features`` is
    computed once and dropout is applied to the aggregated features instead of
    the raw ones.  The reconstruction target is each batch cell's row of the
    bipartite adjacency.

    ``transform(X)`` links the rows of ``X`` to the genes, gives them cell
    features from the gene features learnt in ``fit`` and encodes them with
    the trained layers (the gene degrees come from ``X``: transductive).

    Parameters
    ----------
    n_clusters : int
        Number of clusters (required, as in the paper's protocol).
    graph : graph builder, default=None
        Builder of the bipartite ``(cells + genes)`` adjacency from the
        per-cell-normalised ``log1p`` counts; None means
        ``CellGeneGraph(weight="fraction", self_loops=True)``.
    cluster_method : {"kmeans", "leiden"}, default="kmeans"
        Clustering of the embedding.
    in_feats : int, default=50
        Node feature size (principal components of the genes).
    hidden_dim : int, default=200
        Width of the graph convolution.
    embed_dim : int, default=300
        Embedding size.
    dropout : float, default=0.1
        Dropout rate.
    max_epochs : int, default=100
        Training epochs.
    batch_size : int, default=128
        Cells per mini-batch.
    learning_rate : float, default=1e-5
        Adam learning rate (graph-sc's default).
    random_state : int, RandomState instance or None, default=None
        Seeds torch, numpy and python inside ``fit``.
    verbose : int, default=0
        Show a tqdm progress bar with the loss.

    Attributes
    ----------
    labels_ : ndarray of shape (n_cells,)
        Cluster of every training cell.
    embedding_ : ndarray of shape (n_cells, embed_dim)
        Embedding of the training cells.
    gene_features_ : ndarray of shape (n_genes, in_feats)
        Standardised principal components of the genes (gene node features).
    module_ : torch.nn.Module
        The trained encoder (on CPU).
    loss_ : list of float
        Mean reconstruction loss per epoch.
    n_features_in_ : int
        Number of genes seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Gene names seen in ``fit``, when the input had them.

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
        "in_feats": [Interval(Integral, 1, None, closed="left")],
        "hidden_dim": [Interval(Integral, 1, None, closed="left")],
        "embed_dim": [Interval(Integral, 1, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "max_epochs": [Interval(Integral, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(self, n_clusters=None, *, graph=None, cluster_method="kmeans",
                 in_feats=50, hidden_dim=200, embed_dim=300, dropout=0.1,
                 max_epochs=100, batch_size=128, learning_rate=1e-5,
                 random_state=None, verbose=0):
        self.n_clusters = n_clusters
        self.graph = graph
        self.cluster_method = cluster_method
        self.in_feats = in_feats
        self.hidden_dim = hidden_dim
        self.embed_dim = embed_dim
        self.dropout = dropout
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.random_state = random_state
        self.verbose = verbose

    def _graph_inputs(self, X, seed, *, fit=False):
        """Return aggregated node features and cell-gene link targets for ``X``.

        Gene features (and the cell-feature scaling) are learnt in ``fit`` and
        reused afterwards, so ``transform`` feeds the trained layers the same
        feature space.
        """
        logged = sp.csr_matrix(X, dtype=np.float64, copy=True)
        logged.data = np.log1p(logged.data)
        builder = (CellGeneGraph(weight="fraction", self_loops=True)
                   if self.graph is None else clone(self.graph))
        adj = sp.csr_matrix(builder.fit_transform(logged))
        n_cells, n_genes = X.shape
        if adj.shape != (n_cells + n_genes, n_cells + n_genes):
            raise ValueError(
                f"graph must return the (cells + genes) square adjacency of shape "
                f"{(n_cells + n_genes,) * 2}, got {adj.shape}."
            )
        weights = adj[:n_cells, n_cells:]
        # features from the per-gene standardised edge weights (scaled
        # expression): gene features are their principal components over the
        # cells, a cell's features the expression-weighted sum of its genes'
        scaled = weights.toarray()
        if fit:
            self.gene_mean_, self.gene_std_ = column_scaling(scaled)
        scaled = (scaled - self.gene_mean_) / self.gene_std_
        if fit:
            n_comp = min(self.in_feats, n_cells, n_genes)
            pcs = PCA(n_comp, random_state=seed).fit_transform(scaled.T)
            self.gene_features_ = _standardize(pcs)
        cell_feats = scaled @ self.gene_features_
        if fit:
            self.cell_feature_mean_, self.cell_feature_std_ = column_scaling(
                cell_feats)
        cell_feats = (cell_feats - self.cell_feature_mean_) / self.cell_feature_std_
        feats = np.vstack([cell_feats, self.gene_features_])
        aggregated = _gcn_normalize(adj) @ feats
        links = sp.csr_matrix((weights > 0).astype(np.float32))
        return torch.from_numpy(aggregated.astype(np.float32)), links

    def fit(self, X, y=None):
        """Train the graph autoencoder and cluster the cell embeddings.

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData} of shape (n_cells, n_genes)
            Raw counts (put gene selection before it in a Pipeline).
        y : None
            Ignored.

        Returns
        -------
        self : GraphSC
            Fitted estimator.
        """
        X = self._validate_fit_input(X)
        seed = check_random_state_int(self.random_state)
        aggregated, links = self._graph_inputs(X, seed, fit=True)
        n_cells = X.shape[0]
        n_links = links.nnz
        pos_weight = torch.tensor((links.shape[0] * links.shape[1] - n_links)
                                  / max(n_links, 1))
        self.loss_ = []
        with seeded(seed) as gen:
            module = GraphSCModule(aggregated.shape[1], self.hidden_dim,
                                   self.embed_dim, self.dropout)
            module.train()
            opt = torch.optim.Adam(module.parameters(), lr=self.learning_rate)
            bar = progress(range(self.max_epochs), self.verbose, "graph-sc")
            for _ in bar:
                total = 0.0
                for idx in minibatches(n_cells, self.batch_size, gen):
                    cells = module(aggregated[idx])
                    genes = module(aggregated[n_cells:])
                    target = torch.from_numpy(links[idx.numpy()].toarray())
                    loss = F.binary_cross_entropy_with_logits(
                        cells @ genes.T, target, pos_weight=pos_weight)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    total += loss.item() * len(idx)
                self.loss_.append(total / n_cells)
                if self.verbose:
                    bar.set_postfix(bce=f"{self.loss_[-1]:.4f}")
        module.eval()
        self.module_ = module
        with torch.no_grad():
            self.embedding_ = module(aggregated[:n_cells]).numpy()
        self.labels_ = self._cluster(self.embedding_, seed)
        return self

    def _cluster(self, z, seed):
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
        Z : ndarray of shape (n_cells, embed_dim)
            Embedding.
        """
        X = self._validate_new_input(X)
        aggregated, _ = self._graph_inputs(X, check_random_state_int(self.random_state))
        with torch.no_grad():
            return self.module_(aggregated[: X.shape[0]]).numpy()
