"""Spatial transcriptomics.

Subpackages
-----------
deconvolution
    Cell-type proportions of spots (CARD, DSTG, SPOTlight, SpatialDecon,
    STdGCN).
domain
    Tissue domains of spots (SpaGCN, STAGATE, StLearn, EfNST,
    SpatialLouvain).

The deconvolution and domain estimators are re-exported here, so
``from skdance.spatial import CARD, STAGATE`` works.
"""

from skdance.spatial import deconvolution, domain
from skdance.spatial.deconvolution import (
    CARD,
    DSTG,
    BaseDeconvolution,
    SpatialDecon,
    SPOTlight,
    STdGCN,
    cell_type_profiles,
)
from skdance.spatial.domain import (
    STAGATE,
    BaseSpatialDomain,
    EfNST,
    SpaGCN,
    SpatialLouvain,
    StLearn,
)

__all__ = [
    "CARD",
    "DSTG",
    "STAGATE",
    "BaseDeconvolution",
    "BaseSpatialDomain",
    "EfNST",
    "SpaGCN",
    "SpatialLouvain",
    "StLearn",
    "SPOTlight",
    "STdGCN",
    "SpatialDecon",
    "cell_type_profiles",
    "deconvolution",
    "domain",
]
