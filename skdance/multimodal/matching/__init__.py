"""Modality matching: pair the cells of two separately measured modalities."""

from skdance.multimodal.matching._base import BaseModalityMatcher

__all__ = ["BaseModalityMatcher"]
