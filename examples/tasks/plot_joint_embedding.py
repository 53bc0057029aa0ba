"""
Joint embedding of RNA and proteins
===================================

A joint embedding places each cell in one low-dimensional space computed from
both of its modalities, for clustering, visualisation and label transfer. A
good one keeps cell types apart and mixes batches. This example embeds
CITE-seq cells with the graph neural network
:class:`~skdance.multimodal.embedding.ScMoGNNEmbedding` and with
:class:`~skdance.multimodal.embedding.JointPCA` (each modality reduced and
scaled to the same weight, then one PCA of both: the baseline), scores both
by the adjusted Rand index (ARI) of k-means clusters against the cell types
and by graph connectivity (:func:`~skdance.metrics.graph_connectivity`), and
draws UMAPs coloured by cell type and by batch.

The example is small so that it runs in seconds: the 600 cells of the NeurIPS
2021 CITE-seq starter shipped with skdance, and scMoGNN trains 20 epochs (by
default as many as make 5,000 optimiser steps, with early stopping), so its
scores here say little about the model. The full benchmark, where the models
embed held-out batches, is on :doc:`/choosing/joint_embedding`.
"""

# %%
# Load the paired cells
# ---------------------
# :func:`~skdance.datasets.load_multimodal` returns two AnnData objects with
# the same cells: RNA (1,000 genes) and proteins (134 antibodies). The cells
# come from two donors (``obs["batch"]``) and carry the organisers' labels
# of 41 cell types, which the two models here never see.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from skdance.datasets import load_multimodal
from skdance.metrics import graph_connectivity
from skdance.multimodal.embedding import JointPCA, ScMoGNNEmbedding
from skdance.plotting import embedding_umaps

rna, prot = load_multimodal("neurips2021_bmmc_cite_starter")
cell_types = rna.obs["cell_type"].astype(str).to_numpy()
batches = rna.obs["batch"].astype(str).to_numpy()
n_types = np.unique(cell_types).size
print(f"{rna.n_obs} cells, {n_types} cell types, donors {sorted(set(batches))}")

# %%
# Embed
# -----
# A joint embedding takes the two modalities as a pair, ``(X_rna, X_prot)``,
# and ``fit_transform`` returns one row per cell. (On a MuData,
# :func:`skdance.tl.fit` writes the same embedding to ``mdata.obsm``, where
# ``scanpy.pp.neighbors(mdata, use_rep=...)`` finds it.)
pair = (rna.X, prot.X)
embeddings = {
    "JointPCA": JointPCA(n_components=50, random_state=0).fit_transform(pair),
    "scMoGNN": ScMoGNNEmbedding(max_epochs=20, random_state=0).fit_transform(pair),
}

# %%
# Score
# -----
# ARI of k-means with as many clusters as cell types (higher: the types
# separate) and graph connectivity (1 when each type's cells form one
# connected piece of the neighbour graph, across donors).
for name, Z in embeddings.items():
    clusters = KMeans(n_types, n_init=10, random_state=0).fit_predict(Z)
    ari = adjusted_rand_score(cell_types, clusters)
    connectivity = graph_connectivity(Z, cell_types)
    print(f"{name:>8}: ARI {ari:.3f}, graph connectivity {connectivity:.3f}")


# %%
# UMAPs by cell type and by donor
# -------------------------------
# :func:`~skdance.plotting.embedding_umaps` draws one UMAP per embedding,
# coloured by cell type (top) and by donor (bottom): types should form
# separate groups, and within a type the two donors should mix. Forty-one
# colours cannot be told apart, so the picture groups the types into
# lineages by their names (the scores above use all 41 types). The layouts
# use scanpy's ``min_dist=0.5``.
def lineage(cell_type):
    """Broad lineage of a NeurIPS 2021 BMMC cell-type name."""
    if cell_type.startswith("CD4+ T") or cell_type == "T reg":
        return "CD4+ T"
    if cell_type.startswith("CD8+ T"):
        return "CD8+ T"
    if cell_type.startswith(("gdT", "MAIT")):
        return "gdT and MAIT"
    if cell_type.startswith(("NK", "ILC")):
        return "NK and ILC"
    if cell_type.startswith("Plasma"):
        return "plasma cell"
    if cell_type.endswith(" B") or " B " in cell_type:
        return "B"
    if "Mono" in cell_type:
        return "monocyte"
    if "DC" in cell_type:
        return "dendritic cell"
    if "prog" in cell_type or cell_type == "HSC":
        return "progenitor"
    if cell_type in ("Proerythroblast", "Erythroblast", "Normoblast", "Reticulocyte"):
        return "erythroid"
    return "other"


lineages = np.array([lineage(t) for t in cell_types])
fig = embedding_umaps(embeddings, lineages, batches, min_dist=0.5, panel_size=3.5)
plt.show()

# %%
# What to read next
# -----------------
# - :doc:`/choosing/joint_embedding`: every joint embedding on the full
#   benchmark, scored on held-out batches.
# - :class:`skdance.multimodal.embedding.ScMoGNNEmbedding`,
#   :class:`skdance.multimodal.embedding.JointPCA`,
#   :class:`skdance.multimodal.embedding.JAE` (which trains with cell types),
#   :class:`skdance.multimodal.embedding.DCCA` and
#   :class:`skdance.multimodal.embedding.ScMVAE`.
