"""
Spatial domains of a tissue slice
=================================

A spatial domain is a region of tissue whose spots share an expression
programme, such as a cortical layer. Finding them is clustering that also
uses where each spot is. This example clusters a band of the human
dorsolateral prefrontal cortex (DLPFC, Visium slice 151673) with the graph
convolutional model :class:`~skdance.spatial.domain.SpaGCN` and with k-means on
principal components, the baseline that ignores the positions, and compares
both with the layers annotated by hand, by the adjusted Rand index (ARI).

The example is small so that it runs in seconds: the 1,062 spots shipped with
skdance, and SpaGCN trains 20 epochs (200 by default) from a k-means start.
The full benchmark (three DLPFC slices, STARmap, mouse olfactory bulb, every
spatial-domain model) is on :doc:`/choosing/spatial_domain`.
"""

# %%
# Load the slice
# --------------
# With ``return_anndata=True`` the shipped band comes as an AnnData: raw
# counts of 3,000 genes in ``X``, the spot positions (image pixels) in
# ``obsm["spatial"]`` and the manual layer of every spot in
# ``obs["layer"]``. The models are asked for as many domains as there are
# layers (7: layers 1 to 6 and white matter).
import matplotlib.pyplot as plt
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score
from sklearn.pipeline import make_pipeline

from skdance import tl
from skdance.datasets import load_spatial_dataset
from skdance.plotting import match_domains, spatial_domains
from skdance.preprocessing import Log1p, NormalizeTotal, ScaleGenes
from skdance.spatial.domain import SpaGCN

adata = load_spatial_dataset("dlpfc_151673_subset", return_anndata=True)
layers = adata.obs["layer"].to_numpy()
n_layers = adata.obs["layer"].nunique()
print(adata)

# %%
# The baseline: k-means on principal components
# ---------------------------------------------
# The usual single-cell recipe (normalise, ``log1p``, scale, 30 principal
# components; the shipped band holds only its 3,000 most variable genes
# already) then k-means: each spot is clustered on its own expression,
# wherever it lies.
kmeans = make_pipeline(
    NormalizeTotal(target_sum=1e4),
    Log1p(),
    ScaleGenes(max_value=10),
    PCA(n_components=30, random_state=0),
    KMeans(n_clusters=n_layers, n_init=10, random_state=0),
)
adata.obs["k-means"] = kmeans.fit_predict(adata.X).astype(str)

# %%
# SpaGCN
# ------
# SpaGCN smooths each spot's expression over its neighbours on the slice
# with a graph convolution and clusters the result. :func:`skdance.tl.fit`
# passes it ``obsm["spatial"]`` and writes the domains to
# ``obs["SpaGCN"]``, ready for ``scanpy.pl.spatial``; on arrays the same
# model is ``SpaGCN(...).fit_predict(X, coords=coords)``.
spagcn = SpaGCN(n_clusters=n_layers, init="kmeans", max_epochs=20, random_state=0)
tl.fit(spagcn, adata, key_added="SpaGCN")

for name in ("k-means", "SpaGCN"):
    ari = adjusted_rand_score(layers, adata.obs[name])
    print(f"{name:>7}: ARI {ari:.3f} against the manual layers")

# %%
# Domain maps beside the manual layers
# ------------------------------------
# The manual layers and each model's domains on the same spots, drawn with
# :func:`~skdance.plotting.spatial_domains`. Every domain is first named
# after the layer it overlaps most, one-to-one
# (:func:`~skdance.plotting.match_domains`), and drawn in that layer's
# colour, so the same colour means the same layer in every panel; only the
# names change, never the partition. (For many models at once,
# :func:`~skdance.plotting.spatial_domains_panel` does all of this in one
# call.)
coords = adata.obsm["spatial"]
maps = {"manual layers": layers}
for name in ("k-means", "SpaGCN"):
    maps[name] = match_domains(adata.obs[name].to_numpy(), layers)
palette = dict(zip(sorted(set(layers)), plt.get_cmap("tab10").colors))

fig, axes = plt.subplots(1, 3, figsize=(8, 5.5), layout="constrained")
for ax, (title, labels) in zip(axes, maps.items()):
    spatial_domains(
        coords,
        labels,
        ax=ax,
        title=title,
        spot_size=14,
        palette=palette,
        legend=ax is axes[-1],
    )
plt.show()

# %%
# What to read next
# -----------------
# - :doc:`/choosing/spatial_domain`: every spatial-domain model on the full
#   benchmark, with run times and memory.
# - :class:`skdance.spatial.domain.SpaGCN`, :class:`skdance.spatial.domain.STAGATE`,
#   :class:`skdance.spatial.domain.StLearn` and
#   :class:`skdance.spatial.domain.SpatialLouvain`; :func:`skdance.tl.fit` for
#   AnnData.
