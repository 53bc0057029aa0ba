"""Spatial transcriptomics.

Subpackages
-----------
deconvolution
    Cell-type proportions of spots (CARD, DSTG, SPOTlight, SpatialDecon).
domain
    Tissue domains of spots (the base contract; models follow).

The deconvolution estimators are re-exported here, so
``from skdance.spatial import CARD`` keeps working.
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

__all__ = [
    "CARD",
    "DSTG",
    "BaseDeconvolution",
    "SPOTlight",
    "SpatialDecon",
    "cell_type_profiles",
    "deconvolution",
    "domain",
]
