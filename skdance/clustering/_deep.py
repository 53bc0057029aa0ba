"""Pieces shared by the deep clustering estimators.

Count normalisation learnt in ``fit`` (size factors, log, gene scaling: the
shared :class:`~skdance.nn.CountNormalizer`), the cell graph built from a
graph-builder parameter, and k-means initialisation of DEC centres.
"""

from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    ClusterMixin,
    TransformerMixin,
    clone,
)
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted
from torch import nn

from skdance.nn import (
    TORCH_CONSTRAINTS,
    CountNormalizer,
    StopTraining,
    target_distribution,
)
from skdance.utils._tags import SkdanceTags
from skdance.utils._validation import check_n_clusters, validate_input

__all__ = [
    "DEC_CONSTRAINTS",
    "BaseCountClusterer",
    "LabelChangeStop",
    "column_scaling",
    "kmeans_centers",
]


# Parameters every DEC-style model (scDeepCluster, scDCC, scTAG, scDSC) has,
# with the torch ones (device, random_state, verbose).
DEC_CONSTRAINTS = {
    "n_clusters": [Interval(Integral, 1, None, closed="left"), None],
    "alpha": [Interval(Real, 0, None, closed="neither")],
    "update_interval": [Interval(Integral, 1, None, closed="left")],
    "tol": [Interval(Real, 0, 1, closed="both")],
    **TORCH_CONSTRAINTS,
}


def column_scaling(A):
    """Column means and standard deviations of ``A`` (zero deviations as 1)."""
    std = A.std(axis=0)
    std[std == 0] = 1.0
    return A.mean(axis=0), std


def kmeans_centers(z, n_clusters, seed, n_init=20, device="cpu"):
    """k-means on an embedding; return centres as a trainable parameter and labels.

    The centres are a leaf parameter on ``device`` (built from the moved
    tensor, so the optimiser updates the tensor the model uses).
    """
    km = KMeans(n_clusters, n_init=n_init, random_state=seed).fit(z)
    centers = torch.from_numpy(km.cluster_centers_.astype(np.float32))
    return nn.Parameter(centers.to(device)), km.labels_


class LabelChangeStop:
    """DEC target updates with the label-change stopping rule.

    ``update(q, epoch)`` returns the sharpened target ``P`` for soft
    assignments ``q``, or raises :class:`~skdance.nn.StopTraining` (called
    inside a :meth:`~skdance.nn.Trainer.run` epoch function, before the epoch
    trains) when fewer than ``tol`` of the cells changed their argmax cluster
    since the previous update (never at epoch 0).  ``changed`` holds the last
    fraction.
    """

    def __init__(self, labels, tol):
        self.labels = labels
        self.tol = tol
        self.changed = 1.0

    def update(self, q, epoch):
        """Return the target ``P`` for ``q``; raise ``StopTraining`` to stop."""
        q = q.detach()
        new_labels = q.argmax(dim=1).cpu().numpy()
        self.changed = float(np.mean(new_labels != self.labels))
        self.labels = new_labels
        if epoch > 0 and self.changed < self.tol:
            raise StopTraining
        return target_distribution(q)


class BaseCountClusterer(
    ClassNamePrefixFeaturesOutMixin, ClusterMixin, TransformerMixin, BaseEstimator
):
    """Base of the count-likelihood clustering models.

    ``_normalized`` turns raw counts into the model inputs the ZINB methods
    share (:class:`~skdance.nn.CountNormalizer`): size factors ``s_i``
    (total counts over their median, learnt in ``fit``), ``log1p(x / s)``
    standardised per gene with statistics learnt in ``fit``, and the raw
    counts for the likelihood, kept sparse and densified by mini-batch.
    ``_cell_graph`` builds the cell graph with a clone of the ``graph``
    parameter on the normalised data (after PCA when ``graph_pcs`` is set).

    ``transform`` returns the cells' embedding, as wide as ``embedding_``;
    its columns are named ``<class name in lower case>0``, ``...1``, ...
    (``get_feature_names_out``), so that ``set_output(transform="pandas")``
    returns DataFrames, indexed as a DataFrame ``X`` is.
    """

    @property
    def _n_features_out(self):
        """Width of the embedding (``get_feature_names_out``)."""
        return self.embedding_.shape[1]

    def _validate_fit_input(self, X):
        """Validate parameters and training counts; check ``n_clusters``."""
        self._validate_params()
        X = validate_input(
            self, X, reset=True, counts=True, nonempty_rows=True, ensure_min_samples=2
        )
        check_n_clusters(self, X.shape[0])
        return X

    def _validate_new_input(self, X):
        """Check the model is fitted and validate counts on its genes."""
        check_is_fitted(self)
        return validate_input(self, X, reset=False, counts=True, nonempty_rows=True)

    def _normalized(self, X, *, fit=False):
        """Return the counts of ``X`` normalised with statistics learnt in ``fit``.

        Returns a :class:`~skdance.nn.NormalizedCounts`: the counts and
        ``log1p(x / s)`` stay CSR, and dense float32 rows are made one
        mini-batch at a time.
        """
        if fit:
            self.normalizer_ = CountNormalizer().fit(X)
        return self.normalizer_.transform(X)

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

    def __skdance_tags__(self):
        return SkdanceTags(task="clustering", counts=True, rejects_empty_cells="fit")
