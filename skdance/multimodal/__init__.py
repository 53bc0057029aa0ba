"""Multimodal single-cell tasks on paired modalities (DANCE's second module).

Subpackages
-----------
prediction
    Predict one modality from another (GEX->ADT, ATAC->GEX, ...).
matching
    Pair the cells of two separately measured modalities.
embedding
    Joint embedding of paired modalities.

Only the shared contracts live here so far (:class:`BaseModalityPredictor`,
:class:`BaseModalityMatcher`, :class:`BaseJointEmbedding`); the models are
the next issues.
"""

from skdance.multimodal import embedding, matching, prediction
from skdance.multimodal.embedding import BaseJointEmbedding
from skdance.multimodal.matching import BaseModalityMatcher
from skdance.multimodal.prediction import BaseModalityPredictor

__all__ = [
    "BaseJointEmbedding",
    "BaseModalityMatcher",
    "BaseModalityPredictor",
    "embedding",
    "matching",
    "prediction",
]
