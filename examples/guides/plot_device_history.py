"""
Device, reproducibility and training history
=============================================

Every torch model in skdance takes the same three parameters: ``device``
(where it trains), ``random_state`` (the seed of everything random in
``fit``) and ``verbose`` (a progress bar).  After ``fit``, ``history_`` holds
one record per training epoch.  This example picks the device, checks that
two fits with one seed agree, and plots training curves from ``history_``.
"""

# %%
# Choosing the device
# -------------------
# ``device`` takes the strings torch takes: ``"cpu"``, ``"cuda"``,
# ``"cuda:1"``, ``"mps"``.  Asking for a device the machine does not have is
# a ``ValueError`` that names it, so we ask torch first.  The model trains
# there and is moved back to the CPU at the end of ``fit``: the fitted model
# pickles, loads and predicts on any machine.
import matplotlib.pyplot as plt
import mudata
import numpy as np
import pandas as pd
import torch
from sklearn.metrics import adjusted_rand_score

from skdance.clustering import ScDeepCluster
from skdance.datasets import load_multimodal, load_pbmc_4k_subset
from skdance.multimodal.prediction import BABEL
from skdance.preprocessing import HighlyVariableGenes

device = "cuda" if torch.cuda.is_available() else "cpu"
print(f"training on {device!r}")

# %%
# Two fits, one seed
# ------------------
# scDeepCluster on 600 cells of the shipped PBMC subset and their 500 most
# variable genes, with a short schedule: ``pretrain_epochs`` epochs of its
# denoising autoencoder, then ``max_epochs`` epochs of clustering.
X, y = load_pbmc_4k_subset()
X, y = X[::2], y[::2]
X = HighlyVariableGenes(n_top_genes=500, flavor="seurat_v3").fit_transform(X)

params = {
    "n_clusters": 8,
    "pretrain_epochs": 15,
    "max_epochs": 15,
    "device": device,
    "random_state": 0,
}
first = ScDeepCluster(**params).fit(X)
second = ScDeepCluster(**params).fit(X)

# %%
# ``random_state`` seeds the weights, the mini-batch order, the input noise
# and the k-means initialisation (without touching the global random state
# of numpy or torch).  On the CPU the two fits are identical to the last
# bit.  On a GPU some CUDA kernels add numbers in an order that varies from
# run to run, so two fits can differ slightly there; the GPU guide below
# shows how to ask torch for deterministic kernels.
same_labels = np.array_equal(first.labels_, second.labels_)
gap = np.abs(first.embedding_ - second.embedding_).max()
print(f"same clusters: {same_labels}; largest embedding difference: {gap:.2g}")
print(f"ARI against the cell types: {adjusted_rand_score(y, first.labels_):.2f}")

# %%
# Reading ``history_``
# --------------------
# ``history_`` is a list of dicts, one per epoch, so ``pd.DataFrame`` turns it
# into a table.  scDeepCluster records two phases: ``"pretrain"`` (the ZINB
# reconstruction loss) and ``"cluster"`` (the clustering KL divergence plus
# the ZINB loss, and ``changed``, the fraction of cells that changed
# cluster at the last target update).  The clustering loss need not fall
# steadily: its targets are recomputed from the current clusters as
# training goes (every ``update_interval`` epochs).
history = pd.DataFrame(first.history_)
print(history.groupby("phase", sort=False)["train_loss"].agg(["size", "first", "last"]))

# %%
# Validation loss and early stopping
# ----------------------------------
# Models with early stopping hold out a fraction of the cells
# (``validation_fraction``), record ``valid_loss`` per epoch, stop after
# ``patience`` epochs without improvement and keep the weights of the best
# epoch (``best_epoch_``).  BABEL, RNA -> protein on the shipped CITE-seq
# starter (600 cells), allowed 200 epochs with a patience of 5:
with mudata.set_options(pull_on_update=False):
    mdata = load_multimodal("neurips2021_bmmc_cite_starter", return_mudata=True)
babel = BABEL(max_epochs=200, patience=5, device=device, random_state=0).fit(mdata)
babel_history = pd.DataFrame(babel.history_)
print(f"stopped after {babel.n_iter_} epochs; kept epoch {babel.best_epoch_}")
print(babel_history.columns.tolist())

# %%
# BABEL's ``train_loss`` is its training objective (the likelihood of the
# four encoder-decoder paths, per cell) and its ``valid_loss`` the RMSE of
# the held-out cells' predicted proteins: two different quantities, so
# they get an axis each.
fig, (ax_sdc, ax_babel) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
for phase, part in history.groupby("phase", sort=False):
    ax_sdc.plot(part["epoch"], part["train_loss"], "o-", ms=3, label=phase)
ax_sdc.set_xlabel("epoch (within the phase)")
ax_sdc.set_ylabel("mean training loss")
ax_sdc.set_title("scDeepCluster: one curve per phase")
ax_sdc.legend(title="phase")

train_line = ax_babel.plot(
    babel_history["epoch"], babel_history["train_loss"], color="C0", label="train"
)
ax_valid = ax_babel.twinx()
valid_line = ax_valid.plot(
    babel_history["epoch"],
    babel_history["valid_loss"],
    color="C3",
    label="validation",
)
best = ax_babel.axvline(babel.best_epoch_, color="grey", ls="--", label="best epoch")
ax_babel.set_xlabel("epoch")
ax_babel.set_ylabel("training loss (per cell)", color="C0")
ax_valid.set_ylabel("validation RMSE (proteins)", color="C3")
ax_babel.set_title(f"BABEL: early stopping after {babel.n_iter_} epochs")
ax_babel.legend(handles=train_line + valid_line + [best], loc="upper right")
plt.show()

# %%
# ``verbose=1`` shows the same losses live, as a progress bar per phase.
#
# What to read next
# -----------------
# - :doc:`/user_guide/gpu`: GPUs, memory and what reproducibility holds
#   where.
# - :doc:`/architecture`: the training engine all torch models share.
# - :class:`skdance.clustering.ScDeepCluster` and
#   :class:`skdance.multimodal.prediction.BABEL`: what each records in
#   ``history_``.
