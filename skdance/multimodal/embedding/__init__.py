"""Joint embedding of paired modalities."""

from skdance.multimodal.embedding._base import BaseJointEmbedding

__all__ = ["BaseJointEmbedding"]
