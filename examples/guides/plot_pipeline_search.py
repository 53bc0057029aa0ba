"""
Grid search with side information
=================================

Some single-cell models need more than the expression matrix: scDCC takes
the known labels of a few cells, spatial models take the spots' positions.
skdance passes such per-cell side information as a keyword of ``fit``
(``constraint_labels=``, ``coords=``) and declares it for scikit-learn's
metadata routing.  With routing switched on, ``Pipeline`` hands each keyword
to the step that asks for it and ``GridSearchCV`` slices it with the cells of
every fold, so tuning a model that needs side information looks like tuning
any other estimator.
"""

# %%
# Partial labels for scDCC
# ------------------------
# We keep 400 cells of the shipped PBMC subset (1,200 cells, 8 cell types)
# so that the example runs in seconds, and reveal the labels of a fifth of
# them: :func:`skdance.clustering.make_partial_labels` returns one entry per
# cell, the cell type's code for the known cells and -1 for the others.
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn import config_context
from sklearn.model_selection import GridSearchCV, GroupKFold, KFold
from sklearn.pipeline import make_pipeline

from skdance.clustering import ScDCC, make_partial_labels
from skdance.datasets import load_pbmc_4k_subset, load_spatial_dataset
from skdance.graph import RadiusGraph, spot_spacing
from skdance.metrics import ari_scorer
from skdance.preprocessing import HighlyVariableGenes
from skdance.spatial.domain import StLearn

X, y = load_pbmc_4k_subset()
X, y = X[::3], y[::3]
known = make_partial_labels(y, 0.2, random_state=0)
print(f"{X.shape[0]} cells, {np.sum(known != -1)} with a known label")

# %%
# The pipeline selects genes, then fits scDCC on the counts.  scDCC requests
# ``constraint_labels`` for ``fit`` by default, so nothing has to be set on
# it.  Clusterers are scored with :data:`skdance.metrics.ari_scorer`: the
# adjusted Rand index of the predicted clusters of the held-out cells
# against their cell types ``y``.  We tune the weight of the must-link loss
# (0 ignores the pairs of known cells that share a type).
pipe = make_pipeline(
    HighlyVariableGenes(n_top_genes=300, flavor="cell_ranger"),
    ScDCC(n_clusters=8, pretrain_epochs=5, max_epochs=3, random_state=0),
)
label_search = GridSearchCV(
    pipe,
    {"scdcc__must_link_weight": [0.0, 1.0, 2.0]},
    scoring=ari_scorer,
    cv=KFold(2, shuffle=True, random_state=0),
)
with config_context(enable_metadata_routing=True):
    label_search.fit(X, y, constraint_labels=known)  # sliced with each fold
print("best:", label_search.best_params_, f"ARI {label_search.best_score_:.2f}")

# %%
# Without routing switched on, scikit-learn refuses the extra keyword
# rather than dropping it silently, so side information is never lost on
# the way to the model.
#
# Spot coordinates for a spatial model
# ------------------------------------
# The shipped band of DLPFC slice 151673 holds 1,062 Visium spots, their
# positions in ``obsm["spatial"]`` and the manual cortical layer of each
# spot in ``obs["layer"]``.  :class:`~skdance.spatial.domain.StLearn`
# smooths every spot's expression with its physical neighbours before
# clustering; its ``spatial_graph`` parameter is the graph builder that
# defines those neighbours.  Both take ``coords`` in ``fit``; inside a
# pipeline the coordinates are routed through the model to its graph
# builder.  We search the neighbourhood radius, in units of the spot
# spacing (the distance between neighbouring spots).
adata = load_spatial_dataset("dlpfc_151673_subset", return_anndata=True)
adata = adata[adata.obs["layer"].notna().to_numpy()]  # every spot, here
coords = adata.obsm["spatial"]
layers = adata.obs["layer"].to_numpy()
spacing = spot_spacing(coords)
print(f"{adata.n_obs} annotated spots, spot spacing {spacing:.2f} units")

spatial_pipe = make_pipeline(
    HighlyVariableGenes(n_top_genes=1000, flavor="seurat_v3"),
    StLearn(
        n_clusters=7,
        cluster_method="kmeans",
        spatial_graph=RadiusGraph(radius=3 * spacing),
        random_state=0,
    ),
)
radii = [1.5 * spacing, 3 * spacing, 6 * spacing]

# %%
# StLearn is transductive (it has ``fit_predict`` but no ``predict``), so the
# scorer fits a copy of the model on the held-out spots and compares its
# domains with their layers.  The scorer needs the held-out coordinates for
# that fit: ``ari_scorer.set_score_request(coords=True)`` returns a scorer
# that asks for them.
#
# Random folds would scatter the spots of a fold over the tissue and leave
# most of them without a neighbour.  We split the band into two contiguous
# halves instead (every half crosses all layers): ``groups`` is routed to
# :class:`~sklearn.model_selection.GroupKFold`, ``coords`` to the model and
# to the scorer.
halves = (adata.obs["array_col"] >= adata.obs["array_col"].median()).to_numpy()
spatial_search = GridSearchCV(
    spatial_pipe,
    {"stlearn__spatial_graph__radius": radii},
    scoring=ari_scorer.set_score_request(coords=True),
    cv=GroupKFold(2),
)
with config_context(enable_metadata_routing=True):
    spatial_search.fit(adata.X, layers, coords=coords, groups=halves)
best_radius = spatial_search.best_params_["stlearn__spatial_graph__radius"]
print(f"best radius: {best_radius / spacing:g} spot spacings")

# %%
# The mean test score per grid point
# ----------------------------------
# ``cv_results_`` holds the mean and the standard deviation of the score
# over the folds for every grid point.
fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), layout="constrained")
for ax, search, param, xlabel, ticks in (
    (
        axes[0],
        label_search,
        "param_scdcc__must_link_weight",
        "must-link weight",
        None,
    ),
    (
        axes[1],
        spatial_search,
        "param_stlearn__spatial_graph__radius",
        "neighbourhood radius (spot spacings)",
        spacing,
    ),
):
    res = pd.DataFrame(search.cv_results_)
    values = res[param].astype(float).to_numpy()
    if ticks is not None:
        values = values / ticks
    ax.errorbar(
        np.arange(len(values)),
        res["mean_test_score"],
        yerr=res["std_test_score"],
        fmt="o-",
        capsize=4,
    )
    ax.set_xticks(np.arange(len(values)), [f"{v:g}" for v in values])
    ax.set_xlabel(xlabel)
    ax.set_ylabel("ARI (mean ± std over 2 folds)")
axes[0].set_title("scDCC, PBMC: partial labels")
axes[1].set_title("StLearn, DLPFC band: coordinates")
plt.show()

# %%
# Scores on half of a small data set move with the split, hence the error
# bars; use more folds and more cells to make a choice that matters.
#
# What to read next
# -----------------
# - :doc:`/user_guide/side_information`: which estimators take which side
#   information, and how AnnData inputs provide it.
# - :doc:`/user_guide/contract`: what every estimator of a task accepts and
#   returns.
# - :ref:`sphx_glr_auto_examples_guides_plot_anndata_mudata.py`: the same
#   models on AnnData and MuData, results written back for scanpy.
