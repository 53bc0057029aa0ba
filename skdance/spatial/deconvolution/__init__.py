"""Cell-type deconvolution of spatial spots against a labelled reference."""

from skdance.spatial.deconvolution._base import BaseDeconvolution, cell_type_profiles
from skdance.spatial.deconvolution.card import CARD
from skdance.spatial.deconvolution.dstg import DSTG
from skdance.spatial.deconvolution.spatialdecon import SpatialDecon
from skdance.spatial.deconvolution.spotlight import SPOTlight

__all__ = [
    "CARD",
    "DSTG",
    "BaseDeconvolution",
    "SPOTlight",
    "SpatialDecon",
    "cell_type_profiles",
]
