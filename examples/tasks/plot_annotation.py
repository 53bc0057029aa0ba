"""
Cell-type annotation
====================

Train a classifier on cells whose type is known, then predict the type of new
cells. This example compares :class:`~skdance.annotation.ACTINN`, a small
neural network, with a linear support vector machine
(:class:`~skdance.annotation.SVM`) on log-normalised, scaled genes, the
simple baseline of the benchmark. Both are scored by accuracy and macro-F1 on
held-out cells, and a confusion matrix shows which types each model mixes up.

The example is small so that it runs in seconds: 1,200 PBMCs shipped with
skdance, one train/test split. The full benchmark (five data sets, five
folds, every annotation model) is on :doc:`/choosing/annotation`.
"""

# %%
# Load the data and hold out a test set
# -------------------------------------
# :func:`~skdance.datasets.load_pbmc_4k_subset` returns raw UMI counts (a
# sparse matrix of 1,200 cells x 2,000 genes) and a cell-type label per cell.
# The source file numbers the eight types 1 to 8 and gives no names.
# A stratified split keeps every type's share in both halves.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import ConfusionMatrixDisplay, accuracy_score, f1_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline

from skdance.annotation import ACTINN, SVM
from skdance.datasets import load_pbmc_4k_subset
from skdance.preprocessing import HighlyVariableGenes, Log1p, NormalizeTotal, ScaleGenes

X, y = load_pbmc_4k_subset()
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)
print(f"train: {X_train.shape[0]} cells, test: {X_test.shape[0]} cells")
types, counts = np.unique(y, return_counts=True)
print("cells per type:", dict(zip(types.tolist(), counts.tolist())))

# %%
# Fit a deep model and the baseline
# ---------------------------------
# ACTINN takes raw counts and does its own preprocessing (scaling to a
# common library size, log2 and gene filters). The SVM sits at the end of a
# scikit-learn :class:`~sklearn.pipeline.Pipeline` that selects the 1,000
# most variable genes, normalises each cell to 10,000 counts, takes
# ``log1p`` and scales each gene. Both run with their default settings.
actinn = ACTINN(random_state=0).fit(X_train, y_train)
svm = make_pipeline(
    HighlyVariableGenes(n_top_genes=1000),
    NormalizeTotal(target_sum=1e4),
    Log1p(),
    ScaleGenes(max_value=10),
    SVM(random_state=0),
).fit(X_train, y_train)

predictions = {"ACTINN": actinn.predict(X_test), "SVM": svm.predict(X_test)}
for name, pred in predictions.items():
    accuracy = accuracy_score(y_test, pred)
    macro_f1 = f1_score(y_test, pred, average="macro")
    print(f"{name:>6}: accuracy {accuracy:.3f}, macro-F1 {macro_f1:.3f}")

# %%
# Which types are confused?
# -------------------------
# Each row of a confusion matrix is a true type and sums to 1: the diagonal
# is the fraction of that type's cells labelled correctly, the rest of the
# row says where the others went. Accuracy is dominated by the large types;
# the rows of the small ones (type 8 has fewer than 40 cells in all) show
# what macro-F1 measures.
fig, axes = plt.subplots(1, 2, figsize=(10, 4.6), layout="constrained")
for ax, (name, pred) in zip(axes, predictions.items()):
    ConfusionMatrixDisplay.from_predictions(
        y_test,
        pred,
        labels=types,
        display_labels=[f"type {t}" for t in types],
        normalize="true",
        values_format=".2f",
        cmap="Blues",
        colorbar=False,
        ax=ax,
        text_kw={"fontsize": 8},
    )
    ax.set_title(f"{name} (accuracy {accuracy_score(y_test, pred):.2f})")
    ax.tick_params(axis="x", labelrotation=45)
axes[1].set_ylabel("")
plt.show()

# %%
# What to read next
# -----------------
# - :doc:`/choosing/annotation`: every annotation model on the full
#   benchmark, with run times and memory.
# - :class:`skdance.annotation.ACTINN`, :class:`skdance.annotation.SVM`,
#   :class:`skdance.annotation.ScDeepsort` and
#   :class:`skdance.annotation.Celltypist`: the parameters of each model.
