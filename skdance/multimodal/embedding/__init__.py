"""Joint embedding of paired modalities."""

from skdance.multimodal.embedding._base import BaseJointEmbedding
from skdance.multimodal.embedding._cell_cycle import cell_cycle_scores
from skdance.multimodal.embedding.dcca import DCCA
from skdance.multimodal.embedding.jae import JAE
from skdance.multimodal.embedding.pca import JointPCA
from skdance.multimodal.embedding.scmogcn import ScMoGNNEmbedding
from skdance.multimodal.embedding.scmvae import ScMVAE

__all__ = [
    "DCCA",
    "JAE",
    "BaseJointEmbedding",
    "JointPCA",
    "ScMVAE",
    "ScMoGNNEmbedding",
    "cell_cycle_scores",
]
