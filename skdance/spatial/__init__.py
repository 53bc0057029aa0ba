"""Spatial transcriptomics.

Subpackages
-----------
deconvolution
    Cell-type proportions of spots (CARD, DSTG, SPOTlight, SpatialDecon).
domain
    Tissue domains of spots (SpaGCN, STAGATE, StLearn, SpatialLouvain).

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
    cell_type_profiles,
)
from skdance.spatial.domain import (
    STAGATE,
    BaseSpatialDomain,
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
    "SpaGCN",
    "SpatialLouvain",
    "StLearn",
    "SPOTlight",
    "SpatialDecon",
    "cell_type_profiles",
    "deconvolution",
    "domain",
]
