"""
Cell-type deconvolution of spots
================================

A spatial transcriptomics spot (a Visium spot is 55 µm across) holds several
cells, so its counts are a mixture. Deconvolution estimates the share of each
cell type in every spot from a labelled single-cell reference. This example
makes spots whose true composition is known by summing reference cells
(:func:`~skdance.datasets.make_pseudo_spots`), then compares the deep graph
model :class:`~skdance.spatial.deconvolution.DSTG` with
:class:`~skdance.spatial.deconvolution.CARD` (regression with a spatial
prior) and with the baseline that puts every type at 1/K in every spot, by
the mean squared error of the proportions
(:func:`~skdance.metrics.proportion_mse`).

The example is small so that it runs in seconds: 144 spots made from the
1,200 PBMCs shipped with skdance, and DSTG trains 30 epochs on 200 of its own
pseudo-spots (200 epochs on 1,000 by default). The full benchmark, including
real MERFISH spots, is on :doc:`/choosing/deconvolution`.
"""

# %%
# A reference and spots of known composition
# ------------------------------------------
# Half of the cells (stratified by type) are the labelled reference; the
# other half are mixed into 144 spots of 2 to 8 cells on a 12 x 12 grid.
# With ``layout="smooth"`` neighbouring spots have similar compositions, as
# tissue does. The true proportions are an (n_spots, n_types) matrix whose
# rows sum to 1.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import train_test_split

from skdance.datasets import load_pbmc_4k_subset, make_pseudo_spots
from skdance.metrics import proportion_mse
from skdance.spatial.deconvolution import CARD, DSTG

X, y = load_pbmc_4k_subset()
X_ref, X_mix, y_ref, y_mix = train_test_split(
    X, y, test_size=0.5, stratify=y, random_state=0
)
spots, true_props, coords = make_pseudo_spots(
    X_mix, y_mix, n_spots=144, layout="smooth", random_state=0
)
print(f"reference: {X_ref.shape[0]} cells; spots: {spots.shape}")

# %%
# Fit on the reference, predict the spots
# ---------------------------------------
# Every deconvolution model is fitted on the reference ``(X_ref, y_ref)``
# and predicts proportions for spots, one column per type in the order of
# ``classes_``. CARD needs the spots' coordinates (``coords=``, or
# ``obsm["spatial"]`` of an AnnData); DSTG builds its graph from the
# expression alone and trains during ``predict``.
card = CARD(random_state=0).fit(X_ref, y_ref)
dstg = DSTG(n_pseudo_spots=200, max_epochs=30, random_state=0).fit(X_ref, y_ref)
estimates = {
    "CARD": card.predict(spots, coords=coords),
    "DSTG": dstg.predict(spots),
}
n_types = card.classes_.size
uniform = np.full_like(true_props, 1 / n_types)
print(f"uniform 1/K: MSE {proportion_mse(true_props, uniform):.4f}")
for name, props in estimates.items():
    print(f"{name:>11}: MSE {proportion_mse(true_props, props):.4f}")

# %%
# Proportion maps
# ---------------
# Each column is one cell type (the three with the largest mean share over
# these spots), each row a map of the 144 spots: the true share of that
# type, then each model's estimate, on the same colour scale per column. A
# good model reproduces the patches of the truth.
common = np.argsort(-true_props.mean(axis=0))[:3]
col, row = coords[:, 0].astype(int), coords[:, 1].astype(int)
rows = {"truth": true_props, **estimates}
fig, axes = plt.subplots(
    len(rows), len(common), figsize=(8, 8), layout="constrained", squeeze=False
)
for j, k in enumerate(common):
    vmax = max(props[:, k].max() for props in rows.values())
    for i, (name, props) in enumerate(rows.items()):
        grid = np.full((row.max() + 1, col.max() + 1), np.nan)
        grid[row, col] = props[:, k]
        image = axes[i, j].imshow(grid, vmin=0, vmax=vmax, cmap="magma")
        axes[i, j].set_xticks([])
        axes[i, j].set_yticks([])
        if i == 0:
            axes[i, j].set_title(f"type {card.classes_[k]}")
        if j == 0:
            axes[i, j].set_ylabel(name, fontsize=12)
    fig.colorbar(image, ax=axes[:, j], location="bottom", shrink=0.8, label="share")
plt.show()

# %%
# What to read next
# -----------------
# - :doc:`/choosing/deconvolution`: every deconvolution model on the full
#   benchmark (random and smooth layouts, real MERFISH spots), with run
#   times.
# - :class:`skdance.spatial.deconvolution.CARD`,
#   :class:`skdance.spatial.deconvolution.DSTG`,
#   :class:`skdance.spatial.deconvolution.SpatialDecon` and
#   :class:`skdance.spatial.deconvolution.SPOTlight`;
#   :func:`skdance.datasets.make_pseudo_spots` for the simulated spots.
