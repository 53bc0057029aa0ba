"""
Predicting proteins from RNA
============================

CITE-seq measures RNA and surface proteins in the same cells. A modality
predictor learns the map from one to the other on paired cells, then predicts
the proteins of cells where only RNA was measured. This example trains the
deep model :class:`~skdance.multimodal.prediction.BABEL` and the NeurIPS 2021
competition's linear baseline (ridge regression on truncated-SVD components of
the RNA) on one donor and predicts the 134 proteins of another, scored by the
root mean squared error (:func:`~skdance.metrics.rmse`) over all test cells
and proteins.

The example is small so that it runs in seconds: the 600 cells of the NeurIPS
2021 CITE-seq starter shipped with skdance. The full benchmark (six data
sets, both directions, every predictor) is on
:doc:`/choosing/modality_prediction`.
"""

# %%
# Load paired cells and hold out a donor
# --------------------------------------
# :func:`~skdance.datasets.load_multimodal` returns two AnnData objects with
# the same cells: gene expression (1,000 genes, log-normalised) and proteins
# (134 antibodies, CLR-normalised), the competition's units.
# :func:`~skdance.datasets.split_multimodal` holds out whole batches, as the
# competition did: the model never sees the test donor (``s1d2``).
import matplotlib.pyplot as plt
import numpy as np
from sklearn.decomposition import TruncatedSVD
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline

from skdance.datasets import load_multimodal, split_multimodal
from skdance.metrics import rmse
from skdance.multimodal.prediction import BABEL
from skdance.plotting import predicted_vs_measured

rna, prot = load_multimodal("neurips2021_bmmc_cite_starter")
rna_train, prot_train, rna_test, prot_test = split_multimodal(rna, prot)
X_train, X_test = rna_train.X, rna_test.X
Y_train, Y_test = prot_train.X.toarray(), prot_test.X.toarray()
print(f"train: {X_train.shape[0]} cells, test: {X_test.shape[0]} cells")

# %%
# Fit, predict, score
# -------------------
# A modality predictor is a scikit-learn regressor with a matrix target:
# ``fit(X, Y)`` and ``predict(X)`` return one column per protein. The
# training mean, the same profile for every cell, is the floor any model has
# to beat. BABEL runs with its default schedule (early stopping on a
# validation part of the training cells).
predictions = {
    "ridge (SVD)": make_pipeline(
        TruncatedSVD(n_components=50, random_state=0), Ridge(alpha=1.0)
    )
    .fit(X_train, Y_train)
    .predict(X_test),
    "BABEL": BABEL(random_state=0).fit(X_train, Y_train).predict(X_test),
}
training_mean = np.tile(Y_train.mean(axis=0), (X_test.shape[0], 1))
print(f"training mean: RMSE {rmse(Y_test, training_mean):.3f}")
for name, Y_pred in predictions.items():
    print(f"{name:>13}: RMSE {rmse(Y_test, Y_pred):.3f}")

# %%
# Predicted against measured proteins
# -----------------------------------
# One panel per protein and model: every test cell's measured level (x) and
# predicted level (y), the diagonal and Pearson's r in the title. CD4 marks
# helper T cells (and, more weakly, monocytes), CD8 cytotoxic T cells, CD19
# B cells and CD14 classical monocytes; a good prediction separates the
# positive and negative cells.
proteins = ["CD4", "CD8", "CD19", "CD14"]
fig = predicted_vs_measured(
    Y_test, predictions, prot.var_names, features=proteins, panel_size=2.3
)
plt.show()

# %%
# What to read next
# -----------------
# - :doc:`/choosing/modality_prediction`: every predictor on the full
#   benchmark (GEX to ADT, ADT to GEX, GEX to ATAC and back).
# - :class:`skdance.multimodal.prediction.BABEL`,
#   :class:`skdance.multimodal.prediction.ScMoGNN`,
#   :class:`skdance.multimodal.prediction.CMAE` and
#   :class:`skdance.multimodal.prediction.ScMM`; all of them also fit a
#   MuData (``mudata_mods=("rna", "prot")``).
