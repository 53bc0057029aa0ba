"""Parameter descriptions shared by families of clustering estimators.

Used with :func:`skdance.utils.fill_doc`.
"""

__all__ = ["COMMUNITY_PARAMS", "DEC_PARAMS"]

# The deep count clusterers (DEC-style target, pretrained autoencoder);
# ScDeepCluster and ScDCC share their whole autoencoder.
DEC_PARAMS = {
    "n_clusters": """\
n_clusters : int
    Number of clusters (required, as in the paper's protocol).""",
    "hidden_dims": """\
hidden_dims : tuple of int, default=(256, 64)
    Hidden widths of the encoder (the decoder mirrors them); at least
    one.""",
    "latent_dim": """\
latent_dim : int, default=32
    Embedding size.""",
    "noise_sigma": """\
noise_sigma : float, default=2.5
    Standard deviation of the Gaussian input corruption.""",
    "pretrain_epochs": """\
pretrain_epochs : int, default=300
    Autoencoder pretraining epochs.""",
    "max_epochs": """\
max_epochs : int, default=2000
    Maximum clustering epochs.""",
    "pretrain_learning_rate": """\
pretrain_learning_rate : float, default=1e-3
    Adam learning rate of pretraining.""",
    "learning_rate": """\
learning_rate : float, default=1.0
    Adadelta learning rate of the clustering phase.""",
    # Description only: the defaults differ.
    "cluster_weight": "Weight of the clustering (KL) loss.",
    "alpha": """\
alpha : float, default=1.0
    Degrees of freedom of the Student-t kernel.""",
    "tol": """\
tol : float, default=1e-3
    Stop when the fraction of cells changing cluster falls below it.""",
    "random_state": """\
random_state : int, RandomState instance or None, default=None
    Seeds torch, numpy and python inside ``fit``.""",
    # Attributes
    "labels_": """\
labels_ : ndarray of shape (n_cells,)
    Cluster of every training cell.""",
    "cluster_centers_": """\
cluster_centers_ : ndarray of shape (n_clusters, latent_dim)
    Learnt centres in the embedding.""",
    "embedding_": """\
embedding_ : ndarray of shape (n_cells, latent_dim)
    Embedding of the training cells.""",
    "module_": """\
module_ : torch.nn.Module
    The trained autoencoder (on CPU).""",
    "n_iter_": """\
n_iter_ : int
    Clustering epochs run.""",
}

# Graph community detection on a cell graph.
COMMUNITY_PARAMS = {
    "graph": """\
graph : graph builder or None, default=None
    Transformer returning the cell-cell adjacency (cloned in ``fit``).
    None: ``KNNGraph(n_neighbors=15, mode="umap")``.""",
    "resolution": """\
resolution : float, default=1.0
    Resolution of the modularity; higher gives more clusters.  Also the
    starting point of the search when ``n_clusters`` is given.""",
    "n_clusters": """\
n_clusters : int or None, default=None
    If given, the resolution is bisected until the partition has this
    many clusters (the benchmark protocol fixes the true number).""",
    "random_state": """\
random_state : int, RandomState instance or None, default=0
    Seed of the optimiser.  The fixed default (scanpy's) makes repeated
    fits give the same clusters; None draws a new seed at every fit.""",
}
