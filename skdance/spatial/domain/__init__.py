"""Spatial domains: cluster the spots of a tissue section into domains.

Only the shared contract (:class:`BaseSpatialDomain`) lives here so far;
the models (SpaGCN, STAGATE, stLearn, Louvain) are the next issue.
"""

from skdance.spatial.domain._base import BaseSpatialDomain

__all__ = ["BaseSpatialDomain"]
