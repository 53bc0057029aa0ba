"""
Clustering cells
================

Group cells into clusters without their labels, then compare the clusters
with the known cell types. This example runs scanpy's standard recipe ending
in :class:`~skdance.clustering.Leiden` (the baseline) and the deep model
:class:`~skdance.clustering.ScDeepCluster`, a zero-inflated negative-binomial
autoencoder with deep embedded clustering, both asked for as many clusters as
there are cell types. It scores them with the adjusted Rand index (ARI) and
:func:`~skdance.metrics.cluster_accuracy`, and draws the clusters on a UMAP of
the cells.

The example is small so that it runs in seconds: 1,200 PBMCs shipped with
skdance, and scDeepCluster trains 20 + 10 epochs instead of its default
300 + up to 2,000, so its score here says little about the model. The full
benchmark is on :doc:`/choosing/clustering`.
"""

# %%
# Load the data
# -------------
# Raw UMI counts of 1,200 cells x 2,000 genes and one of eight cell types
# per cell (numbered 1 to 8 in the source file). Clustering never sees the
# types; they are used only to score.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score
from sklearn.pipeline import make_pipeline

from skdance.clustering import Leiden, ScDeepCluster
from skdance.datasets import load_pbmc_4k_subset
from skdance.metrics import cluster_accuracy
from skdance.plotting import match_domains, umap_coordinates
from skdance.preprocessing import HighlyVariableGenes, Log1p, NormalizeTotal, ScaleGenes

X, y = load_pbmc_4k_subset()
n_types = np.unique(y).size

# %%
# The baseline: scanpy's recipe and Leiden
# ----------------------------------------
# Select the 1,000 most variable genes, normalise each cell to 10,000
# counts, ``log1p``, scale, keep 50 principal components, build a
# 15-neighbour graph and find its Leiden communities. With ``n_clusters``
# set, :class:`~skdance.clustering.Leiden` searches the resolution that
# gives that many clusters.
leiden = make_pipeline(
    HighlyVariableGenes(n_top_genes=1000),
    NormalizeTotal(target_sum=1e4),
    Log1p(),
    ScaleGenes(max_value=10),
    PCA(n_components=50, random_state=0),
    Leiden(n_clusters=n_types, random_state=0),
)
labels_leiden = leiden.fit_predict(X)

# %%
# The deep model: scDeepCluster on counts
# ---------------------------------------
# Count models read raw counts: the pipeline only selects genes
# (:class:`~skdance.preprocessing.HighlyVariableGenes` passes the counts of
# the genes it keeps through unchanged) and the model normalises internally.
deep = make_pipeline(
    HighlyVariableGenes(n_top_genes=1000),
    ScDeepCluster(
        n_clusters=n_types, pretrain_epochs=20, max_epochs=10, random_state=0
    ),
)
labels_deep = deep.fit_predict(X)

clusterings = {"Leiden": labels_leiden, "scDeepCluster": labels_deep}
for name, labels in clusterings.items():
    ari = adjusted_rand_score(y, labels)
    acc = cluster_accuracy(y, labels)
    print(f"{name:>13}: ARI {ari:.3f}, cluster accuracy {acc:.3f}")

# %%
# Clusters on a UMAP of the cells
# -------------------------------
# One UMAP layout (:func:`~skdance.plotting.umap_coordinates` with scanpy's
# ``min_dist=0.5``, on the first 20
# of the recipe's principal components) is coloured three times: by cell
# type, by Leiden cluster and by scDeepCluster cluster. Cluster numbers
# are arbitrary, so each cluster is paired one-to-one with the cell type it
# overlaps most (:func:`~skdance.plotting.match_domains`, the Hungarian
# algorithm) and drawn in that type's colour: the same colour in two panels
# means "this cluster is that type". The legend keeps the cluster's own
# number.
pcs = leiden[:-1].transform(X)  # the recipe without its last step
xy = umap_coordinates(pcs[:, :20], min_dist=0.5, random_state=0)

types = [f"type {t}" for t in y]
colours = dict(zip(sorted(set(types)), plt.get_cmap("tab10").colors))

fig, axes = plt.subplots(1, 3, figsize=(12, 4.4), layout="constrained")
panels = {"cell type": (np.array(types), None)}
for name, labels in clusterings.items():
    panels[name] = (match_domains(labels, types), labels)
for ax, (title, (named, labels)) in zip(axes, panels.items()):
    # a cluster left unpaired (more clusters than types) is drawn in grey
    spot_colours = [colours.get(v, "lightgrey") for v in named]
    ax.scatter(xy[:, 0], xy[:, 1], s=5, c=spot_colours, linewidths=0)
    handles = []
    for level in sorted(set(named)):
        if labels is None:
            text = level
        else:
            cluster = labels[named == level][0]
            text = f"cluster {cluster} ~ {level}" if level in colours else level
        colour = colours.get(level, "lightgrey")
        handles.append(plt.Line2D([], [], marker="o", ls="", color=colour, label=text))
    ax.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.02),
        ncol=2,
        fontsize=8,
        frameon=False,
        handletextpad=0.1,
        columnspacing=0.8,
    )
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
plt.show()

# %%
# What to read next
# -----------------
# - :doc:`/choosing/clustering`: every clustering model on the full
#   benchmark, with longer training schedules, run times and memory.
# - :class:`skdance.clustering.ScDeepCluster`,
#   :class:`skdance.clustering.ScDCC` (which also takes the known labels of
#   a few cells) and :class:`skdance.clustering.Leiden`.
