"""Joint embedding of paired modalities."""

from skdance.multimodal.embedding._base import BaseJointEmbedding
from skdance.multimodal.embedding.pca import JointPCA

__all__ = ["BaseJointEmbedding", "JointPCA"]
