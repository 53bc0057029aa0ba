"""Spatial transcriptomics: cell-type deconvolution of spots."""

from skdance.spatial._base import DeconvolutionMixin, cell_type_profiles
from skdance.spatial.card import CARD
from skdance.spatial.dstg import DSTG
from skdance.spatial.spatialdecon import SpatialDecon
from skdance.spatial.spotlight import SPOTlight

__all__ = [
    "CARD",
    "DSTG",
    "DeconvolutionMixin",
    "SPOTlight",
    "SpatialDecon",
    "cell_type_profiles",
]
