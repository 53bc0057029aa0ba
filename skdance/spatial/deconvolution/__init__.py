"""Cell-type deconvolution of spatial spots against a labelled reference."""

from skdance.spatial.deconvolution._base import BaseDeconvolution, cell_type_profiles
from skdance.spatial.deconvolution.card import CARD
from skdance.spatial.deconvolution.dstg import DSTG
from skdance.spatial.deconvolution.spatialdecon import SpatialDecon
from skdance.spatial.deconvolution.spotlight import SPOTlight
from skdance.spatial.deconvolution.stdgcn import STdGCN

__all__ = [
    "CARD",
    "DSTG",
    "BaseDeconvolution",
    "SPOTlight",
    "STdGCN",
    "SpatialDecon",
    "cell_type_profiles",
]
