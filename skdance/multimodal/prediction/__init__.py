"""Modality prediction: predict one modality of a cell from another."""

from skdance.multimodal.prediction._base import BaseModalityPredictor

__all__ = ["BaseModalityPredictor"]
