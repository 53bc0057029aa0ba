"""Modality prediction: predict one modality of a cell from another."""

from skdance.multimodal.prediction._base import BaseModalityPredictor
from skdance.multimodal.prediction.babel import BABEL
from skdance.multimodal.prediction.cmae import CMAE
from skdance.multimodal.prediction.scmm import ScMM
from skdance.multimodal.prediction.scmogcn import ScMoGNN

__all__ = ["BABEL", "CMAE", "BaseModalityPredictor", "ScMM", "ScMoGNN"]
