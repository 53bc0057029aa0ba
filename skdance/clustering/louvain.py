"""Louvain clustering of cells (the graph-based baseline of scanpy)."""

import random

import numpy as np

from skdance.clustering._community import BaseCommunityClustering
from skdance.clustering._docs import COMMUNITY_PARAMS
from skdance.utils import fill_doc

__all__ = ["Louvain"]


@fill_doc(**COMMUNITY_PARAMS)
class Louvain(BaseCommunityClustering):
    """Louvain community detection on a cell graph, as :func:`scanpy.tl.louvain`.

    A k-nearest-neighbour graph is built on ``X`` by ``graph`` (default:
    scanpy's 15-neighbour UMAP-weighted graph) and its communities are found
    by igraph's multilevel modularity optimisation, which is the Louvain
    algorithm (scanpy's default ``louvain`` package is not a dependency); it
    runs until no level improves the modularity (it has no iteration limit,
    unlike Leiden's ``max_iter``).
    Scanpy's recipe feeds it the top 50 principal components of scaled,
    log-normalised counts; compose that as a Pipeline.

    Transductive: there is no ``predict`` for new cells; use ``fit_predict``
    and the scorers in :mod:`skdance.metrics`, which handle this.

    Parameters
    ----------
    {graph} {resolution} {n_clusters} {random_state}

    Attributes
    ----------
    labels_ : ndarray of shape (n_cells,)
        Cluster of every cell, 0 for the largest cluster.
    n_clusters_ : int
        Number of clusters found.
    resolution_ : float
        Resolution used.
    adjacency_ : scipy.sparse.csr_matrix of shape (n_cells, n_cells)
        The cell graph.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Feature names seen in ``fit``, when the input had them.

    See Also
    --------
    Leiden : Adds a refinement step that guarantees connected clusters.

    References
    ----------
    Blondel et al. (2008), "Fast unfolding of communities in large networks",
    J. Stat. Mech. P10008.

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> from skdance.clustering import Louvain
    >>> X, _ = make_blobs(n_samples=90, centers=3, random_state=0)
    >>> Louvain(n_clusters=3, random_state=0).fit(X).n_clusters_
    3
    """

    def partition(self, igraph_graph, resolution, seed):
        """Return Louvain labels of the graph's vertices (see the base class)."""
        import igraph

        # igraph shuffles the vertex order with its global RNG: seed it locally
        igraph.set_random_number_generator(random.Random(seed))
        try:
            clustering = igraph_graph.community_multilevel(
                weights="weight", resolution=resolution
            )
        finally:
            igraph.set_random_number_generator(random)
        labels = np.asarray(clustering.membership, dtype=np.int64)
        # relabel by decreasing size, as leidenalg does
        sizes = np.bincount(labels)
        order = np.argsort(-sizes, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        return rank[labels]
