"""Figures people would rather look at than read (matplotlib only).

- :func:`spatial_domains`: the domain map of one tissue slice.
- :func:`spatial_domains_panel`: manual annotation beside each model's
  domains, one map per panel, clusters named (coloured) after the layers
  they overlap most (:func:`match_domains`).
- :func:`predicted_vs_measured`: a modality prediction against the
  measured values, one panel per model and feature.
- :func:`embedding_umaps`: UMAPs of (joint) embeddings coloured by cell
  type and by batch (:func:`umap_coordinates` computes one layout).
"""

from skdance.plotting._embedding import embedding_umaps, umap_coordinates
from skdance.plotting._multimodal import predicted_vs_measured
from skdance.plotting._spatial import (
    match_domains,
    spatial_domains,
    spatial_domains_panel,
)

__all__ = [
    "embedding_umaps",
    "match_domains",
    "predicted_vs_measured",
    "spatial_domains",
    "spatial_domains_panel",
    "umap_coordinates",
]
