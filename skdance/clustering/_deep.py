"""Pieces shared by the deep clustering estimators.

Count normalisation learnt in ``fit`` (size factors, log, gene scaling), the
cell graph built from a graph-builder parameter, and k-means initialisation
of DEC centres.
"""

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin, clone
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from torch import nn

__all__ = ["CountModelMixin", "kmeans_centers"]


def dense_float(X):
    """Dense float32 copy of ``X`` (sparse or array)."""
    return np.asarray(X.toarray() if sp.issparse(X) else X, dtype=np.float32)


def kmeans_centers(z, n_clusters, seed, n_init=20):
    """k-means on an embedding; return centres as a trainable parameter and labels."""
    km = KMeans(n_clusters, n_init=n_init, random_state=seed).fit(z)
    centers = nn.Parameter(torch.from_numpy(km.cluster_centers_.astype(np.float32)))
    return centers, km.labels_


class CountModelMixin(ClusterMixin, TransformerMixin, BaseEstimator):
    """Base of the count-likelihood clustering models.

    ``_tensors`` turns raw counts into the model inputs the ZINB methods
    share: size factors ``s_i`` (total counts over their median, learnt in
    ``fit``), ``log1p(x / s)`` standardised per gene with statistics learnt
    in ``fit``, and the raw counts for the likelihood.  ``_cell_graph``
    builds the cell graph with a clone of the ``graph`` parameter on the
    normalised data (after PCA when ``graph_pcs`` is set).
    """

    def _tensors(self, X, *, fit=False):
        """Return counts, normalised input and size factors as tensors."""
        counts = dense_float(X)
        totals = counts.sum(axis=1)
        if fit:
            self.median_total_ = float(np.median(totals))
        size_factors = totals / self.median_total_
        logged = np.log1p(counts / size_factors[:, None])
        if fit:
            self.gene_mean_ = logged.mean(axis=0)
            std = logged.std(axis=0)
            std[std == 0] = 1.0
            self.gene_std_ = std
        normed = (logged - self.gene_mean_) / self.gene_std_
        return (torch.from_numpy(counts), torch.from_numpy(normed.astype(np.float32)),
                torch.from_numpy(size_factors.astype(np.float32)))

    def _cell_graph(self, normed, seed, default):
        """Adjacency over the cells of ``normed`` from a clone of ``self.graph``.

        ``default`` is the method's own graph builder, used when ``graph`` is
        None.
        """
        feats = normed.numpy() if isinstance(normed, torch.Tensor) else normed
        n_pcs = self.graph_pcs
        if n_pcs is not None and n_pcs < min(feats.shape):
            feats = PCA(n_pcs, random_state=seed).fit_transform(feats)
        builder = default if self.graph is None else clone(self.graph)
        return sp.csr_matrix(builder.fit_transform(feats))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.input_tags.positive_only = True
        return tags
