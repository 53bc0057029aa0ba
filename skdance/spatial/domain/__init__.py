"""Spatial domains: cluster the spots of a tissue section into domains.

Every model is a :class:`BaseSpatialDomain`: ``fit(X, coords=...)`` (or an
AnnData with ``obsm["spatial"]``), ``labels_``, ``fit_predict``.

- :class:`SpatialLouvain`: DANCE's Louvain baseline (expression only).
- :class:`StLearn`: stLearn's SME normalisation and clustering.
- :class:`SpaGCN`: graph convolution on a Gaussian spot graph, DEC clustering.
- :class:`STAGATE`: graph-attention autoencoder on the spot network.
- :class:`EfNST`: neighbour-augmented expression, MLP and variational graph
  autoencoders, Leiden (optionally with histology image features).
"""

from skdance.spatial.domain._base import BaseSpatialDomain
from skdance.spatial.domain.efnst import EfNST
from skdance.spatial.domain.louvain import SpatialLouvain
from skdance.spatial.domain.spagcn import SpaGCN
from skdance.spatial.domain.stagate import STAGATE
from skdance.spatial.domain.stlearn import StLearn

__all__ = [
    "STAGATE",
    "BaseSpatialDomain",
    "EfNST",
    "SpaGCN",
    "SpatialLouvain",
    "StLearn",
]
