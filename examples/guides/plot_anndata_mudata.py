"""
Results in AnnData and MuData, plotted with scanpy
==================================================

Every skdance estimator reads an AnnData (and the paired-modality ones a
MuData) directly.  :func:`skdance.tl.fit` and :func:`skdance.tl.predict` go
one step further: they write what a model learned back into the object,
under the keys scanpy and squidpy read, so its plotting functions work on
the result with no glue.  Here: spatial domains of a Visium band drawn with
``sc.pl.spatial``, and a joint RNA + protein embedding drawn with scanpy's
UMAP.
"""

# %%
# Spatial domains into an AnnData
# -------------------------------
# The shipped band of DLPFC slice 151673: 1,062 Visium spots, their
# positions in ``obsm["spatial"]`` and the manual cortical layer of each
# spot in ``obs["layer"]``.  :class:`~skdance.spatial.domain.SpaGCN` reads
# the positions from ``obsm["spatial"]`` (its ``spatial_key``); a short
# training schedule keeps the example fast.
import warnings

import matplotlib.pyplot as plt
import mudata
import scanpy as sc

from skdance import tl
from skdance.datasets import load_multimodal, load_spatial_dataset
from skdance.graph import spot_spacing
from skdance.multimodal.embedding import JointPCA
from skdance.spatial.domain import SpaGCN

adata = load_spatial_dataset("dlpfc_151673_subset", return_anndata=True)
print(adata)

# %%
# ``tl.fit`` fits the model on the object and writes the result under
# ``key_added``: the domains in ``obs["domain"]`` (categorical), SpaGCN's
# embedding in ``obsm["X_domain"]`` and the estimator's class and
# parameters in ``uns["domain"]``, so the object records how the domains
# were made.
model = SpaGCN(n_clusters=7, init="kmeans", max_epochs=20, random_state=0)
tl.fit(model, adata, key_added="domain")
print(adata)
print(adata.uns["domain"]["estimator"], adata.uns["domain"]["params"]["max_epochs"])

# %%
# scanpy draws the domains beside the manual layers.  The band has no
# tissue image, so ``spot_size`` sets the spot diameter in coordinate units
# (here the distance between neighbouring spots).  The domain numbers are
# arbitrary: compare the shapes, not the colours.  scanpy 1.11 points to
# squidpy's ``spatial_scatter`` for this plot with a FutureWarning at every
# call, which we silence here; squidpy reads the same keys.
fig, axes = plt.subplots(1, 2, figsize=(7, 6), layout="constrained")
for ax, key, title in zip(
    axes, ["layer", "domain"], ["manual layers", "SpaGCN domains"]
):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Use `squidpy", FutureWarning)
        sc.pl.spatial(
            adata,
            color=key,
            title=title,
            spot_size=spot_spacing(adata.obsm["spatial"]),
            ax=ax,
            show=False,
        )
plt.show()

# %%
# A joint embedding into a MuData
# -------------------------------
# The shipped NeurIPS 2021 CITE-seq starter: 600 bone-marrow cells with RNA
# (``"rna"``, 1,000 genes) and surface proteins (``"prot"``, 134
# antibodies).  (The context below adopts mudata's coming default, which
# leaves the modalities' ``obs`` columns where they are and silences its
# warning about the change.)
with mudata.set_options(pull_on_update=False):
    mdata = load_multimodal("neurips2021_bmmc_cite_starter", return_mudata=True)

# %%
# A joint embedding reads the two modalities named by ``mudata_mods``
# (default: the first two) and ``tl.fit`` writes it to
# ``mdata.obsm["X_<key>"]``, where the key defaults to the class name in
# lower case.  From there it is scanpy's usual neighbours, UMAP and plot.
tl.fit(JointPCA(n_components=20, random_state=0), mdata)
sc.pp.neighbors(mdata, use_rep="X_jointpca", random_state=0)
sc.tl.umap(mdata, random_state=0)
print(mdata)

# %%
# The cells carry 41 fine cell types; for a readable legend we colour them
# by lineage, read from the type names.


def lineage(cell_type):
    """The lineage of a fine cell type of the BMMC starter."""
    if "Mono" in cell_type or "DC" in cell_type:
        return "monocyte / DC"
    if " B" in cell_type or cell_type.startswith("B") or "Plasma" in cell_type:
        return "B"
    if "NK" in cell_type or "ILC" in cell_type:
        return "NK / ILC"
    if "T" in cell_type:
        return "T"
    if "blast" in cell_type or "Reticulocyte" in cell_type:
        return "erythroid"
    return "progenitor"


cell_types = mdata["rna"].obs["cell_type"].astype(str)
mdata.obs["lineage"] = cell_types.map(lineage).astype("category")

fig, ax = plt.subplots(figsize=(6.5, 4.5), layout="constrained")
sc.pl.umap(
    mdata,
    color="lineage",
    title="JointPCA of RNA + protein",
    ax=ax,
    show=False,
)
plt.show()

# %%
# The other tasks write to their own keys: predicted cell types go to
# ``obs[key]``, cell-type proportions to ``obsm[key]`` (a DataFrame, one
# column per cell type), imputed expression to ``layers[key]`` and a
# predicted modality to a new modality ``mdata.mod[key]``.  ``copy=True``
# writes into a copy and returns it, as in scanpy.
#
# What to read next
# -----------------
# - :func:`skdance.tl.fit` and :func:`skdance.tl.predict`: every key, per
#   kind of estimator.
# - :doc:`/user_guide/data`: the shipped data sets and the loaders of the
#   larger ones.
# - :doc:`/user_guide/side_information`: where estimators read coordinates,
#   batches and labels from an AnnData.
# - :ref:`sphx_glr_auto_examples_tasks_plot_spatial_domain.py`: spatial
#   domains compared across models.
