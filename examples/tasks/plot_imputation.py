"""
Imputing dropped-out counts
===========================

Single-cell counts are full of zeros, many of them genes that were expressed
but not captured. An imputation model fills them in. To score one, hide some
counts that are known, impute, and compare the imputed values with the hidden
ones: DANCE's protocol. This example hides 10% of every cell's non-zero counts
with :func:`~skdance.imputation.mask_dropout`, imputes them with the deep
model :class:`~skdance.imputation.DeepImpute`, with
:class:`~skdance.imputation.MAGIC` (diffusion on a cell graph) and with a
simple baseline, and scores all three with
:func:`~skdance.imputation.imputation_scores`.

The example is small so that it runs in seconds: the 500 most variable genes
of the 1,200 PBMCs shipped with skdance, and DeepImpute trains 20 epochs (up
to 500, with early stopping, by default). The full benchmark is on
:doc:`/choosing/imputation`.
"""

# %%
# Hide 10% of the counts
# ----------------------
# :func:`~skdance.imputation.mask_dropout` sets a tenth of each cell's
# non-zero counts to zero, low counts more often than high ones (they are
# the ones that drop out in real data), and returns the boolean ``mask`` of
# the hidden entries. The genes are then chosen on the masked counts, as a
# user would on real data: the 500 most variable ones (scanpy's seurat_v3
# method; the counts of the kept genes pass through unchanged).
import matplotlib.pyplot as plt
import numpy as np

from skdance.datasets import load_pbmc_4k_subset
from skdance.imputation import MAGIC, DeepImpute, imputation_scores, mask_dropout
from skdance.preprocessing import HighlyVariableGenes

X, _ = load_pbmc_4k_subset()
X_masked, mask = mask_dropout(X, rate=0.1, random_state=0)

hvg = HighlyVariableGenes(n_top_genes=500).fit(X_masked)
genes = hvg.get_support()
X_true, X_masked, mask = X[:, genes], X_masked[:, genes], mask[:, genes]
print(f"{X_masked.shape[0]} cells x {X_masked.shape[1]} genes, {mask.sum()} hidden")


# %%
# A baseline and two models
# -------------------------
# The baseline gives every gene its average share of the counts, times the
# cell's total count: what a cell of that size expresses on average. The
# models are scikit-learn transformers: ``fit_transform`` returns the
# imputed counts, the same shape as the input.
def gene_mean(X):
    """Each gene's share of all counts times each cell's total count."""
    library = np.asarray(X.sum(axis=1)).ravel()
    share = np.asarray(X.sum(axis=0)).ravel() / library.sum()
    return library[:, None] * share[None, :]


imputed = {
    "gene mean": gene_mean(X_masked),
    "MAGIC": MAGIC(random_state=0).fit_transform(X_masked),
    "DeepImpute": DeepImpute(
        max_epochs=20, learning_rate=1e-3, random_state=0
    ).fit_transform(X_masked),
}

# %%
# Scores on the hidden entries
# ----------------------------
# :func:`~skdance.imputation.imputation_scores` compares the imputed and the
# true values at the hidden entries only, on ``log1p`` counts: mean squared
# error (lower is better), mean relative error and Pearson correlation
# (higher is better). Different metrics can rank the models differently.
for name, X_hat in imputed.items():
    scores = imputation_scores(X_true, X_hat, mask)
    print(
        f"{name:>10}: MSE {scores['mse']:.3f}, MRE {scores['mre']:.3f}, "
        f"Pearson {scores['pearson']:.3f}"
    )

# %%
# Imputed against held-out values
# -------------------------------
# Each panel is a 2-D histogram of the hidden entries: the true count on the
# x axis, the imputed one on the y axis (both ``log1p``; the true counts are
# whole numbers, hence the columns). A perfect model puts every entry on the
# dashed diagonal. Most hidden counts are ones and twos: how close a model
# stays to them weighs heavily in the MSE.
hidden = mask.toarray()
truth = np.log1p(X_true.toarray()[hidden])
fig, axes = plt.subplots(
    1, 3, figsize=(11, 3.8), sharex=True, sharey=True, layout="constrained"
)
for ax, (name, X_hat) in zip(axes, imputed.items()):
    X_hat = X_hat.toarray() if hasattr(X_hat, "toarray") else np.asarray(X_hat)
    values = np.log1p(X_hat[hidden])
    counts = ax.hexbin(truth, values, gridsize=30, bins="log", cmap="viridis")
    top = max(truth.max(), values.max())
    ax.plot([0, top], [0, top], color="tab:red", ls="--", lw=1)
    ax.set_title(name)
    ax.set_xlabel("held-out log1p count")
axes[0].set_ylabel("imputed log1p count")
fig.colorbar(counts, ax=axes, label="hidden entries", shrink=0.9)
plt.show()

# %%
# What to read next
# -----------------
# - :doc:`/choosing/imputation`: every imputation model on the full
#   benchmark, with run times and memory.
# - :class:`skdance.imputation.DeepImpute`, :class:`skdance.imputation.MAGIC`,
#   :class:`skdance.imputation.GraphSCI` and :class:`skdance.imputation.ScGNN`;
#   :func:`skdance.imputation.mask_dropout` for the masking protocol.
