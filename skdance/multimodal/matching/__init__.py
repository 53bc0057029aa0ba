"""Modality matching: pair the cells of two separately measured modalities."""

from skdance.multimodal.matching._base import BaseModalityMatcher
from skdance.multimodal.matching.cca import CCAMatcher
from skdance.multimodal.matching.cmae import CMAEMatcher
from skdance.multimodal.matching.scmm import ScMMMatcher
from skdance.multimodal.matching.scmogcn import ScMoGNNMatcher

__all__ = [
    "BaseModalityMatcher",
    "CCAMatcher",
    "CMAEMatcher",
    "ScMMMatcher",
    "ScMoGNNMatcher",
]
