"""
Matching cells across modalities
================================

When two modalities are measured in different cells, or their pairing is lost,
a matcher scores how likely each profile of one modality is to come from the
same cell as each profile of the other. This example trains the deep model
:class:`~skdance.multimodal.matching.ScMoGNNMatcher` and the baseline
:class:`~skdance.multimodal.matching.CCAMatcher` (canonical correlation of
truncated-SVD components) on paired CITE-seq cells of one donor, then matches
the RNA and protein profiles of another donor. The score is the NeurIPS 2021
metric (:func:`~skdance.metrics.matching_score`): the mean probability put on
the true partners; the example also prints top-k accuracy and draws part of
the matching matrix.

The example is small so that it runs in seconds: the 600 cells of the NeurIPS
2021 CITE-seq starter shipped with skdance. The full benchmark is on
:doc:`/choosing/modality_matching`.
"""

# %%
# Paired training cells, a held-out donor to match
# ------------------------------------------------
# The same split as in modality prediction: the models learn on donor
# ``s1d1`` and match the cells of donor ``s1d2``. Row ``i`` of the test RNA
# and row ``i`` of the test proteins are the same cell, the pairing the
# model has to recover. (A real query comes in any order; shuffling the
# rows of either test modality gives both models' matrices with their rows
# and columns shuffled the same way, so the order gives nothing away.)
import matplotlib.pyplot as plt
import numpy as np
import scipy.sparse as sp

from skdance.datasets import load_multimodal, split_multimodal
from skdance.metrics import matching_score
from skdance.multimodal.matching import CCAMatcher, ScMoGNNMatcher

rna, prot = load_multimodal("neurips2021_bmmc_cite_starter")
rna_train, prot_train, rna_test, prot_test = split_multimodal(rna, prot)
n_test = rna_test.n_obs
print(f"train: {rna_train.n_obs} cells, test: {n_test} cells")

# %%
# Fit on pairs, match new cells
# -----------------------------
# ``fit(X, Y)`` takes paired cells; ``match(X, Y)`` returns an
# (n_rna, n_protein) matrix whose rows sum to 1 (sparse for CCAMatcher,
# which keeps each cell's 50 nearest candidates). Random guessing scores
# ``1 / n_test``, so the score is also printed as a multiple of it. Top-k
# accuracy is the fraction of cells whose true partner is among their k
# highest-scored candidates (ties counted against the model).
matchers = {
    "CCA": CCAMatcher(random_state=0),
    "scMoGNN": ScMoGNNMatcher(random_state=0),
}
matrices = {}
for name, matcher in matchers.items():
    matcher.fit(rna_train.X, prot_train.X)
    S = matcher.match(rna_test.X, prot_test.X)
    S = S.toarray() if sp.issparse(S) else np.asarray(S)
    matrices[name] = S
    score = matching_score(S)
    rank = (S >= S.diagonal()[:, None]).sum(axis=1) - 1  # others scored as high
    top = ", ".join(f"top-{k} {np.mean(rank < k):.2f}" for k in (1, 5, 10))
    print(f"{name:>7}: score {score:.4f} ({score * n_test:.1f} x random); {top}")

# %%
# The matching matrix
# -------------------
# A block of the matrix: 15 test cells of each of the four most common cell
# types, ordered by type, RNA profiles in rows and protein profiles in the
# same order in columns, so the true partners lie on the diagonal. The grey
# lines separate the cell types: probability that falls inside a type's
# square went to a cell of the right type, if not to the right cell.
types = rna_test.obs["cell_type"].astype(str)
common = types.value_counts().index[:4].tolist()
types = types.to_numpy()
block = np.concatenate([np.flatnonzero(types == t)[:15] for t in common])

fig, axes = plt.subplots(1, 2, figsize=(10, 4.6), layout="constrained")
for ax, (name, S) in zip(axes, matrices.items()):
    image = ax.imshow(S[np.ix_(block, block)], cmap="viridis", vmin=0)
    for edge in np.arange(15, block.size, 15) - 0.5:
        ax.axhline(edge, color="lightgrey", lw=0.8)
        ax.axvline(edge, color="lightgrey", lw=0.8)
    ticks = np.arange(7, block.size, 15)
    ax.set_yticks(ticks, common)
    ax.set_xticks(ticks, common, rotation=30, ha="right")
    ax.set_title(f"{name} (score {matching_score(S) * n_test:.1f} x random)")
    ax.set_xlabel("protein profile")
    fig.colorbar(image, ax=ax, shrink=0.7, label="matching probability")
axes[0].set_ylabel("RNA profile")
plt.show()

# %%
# What to read next
# -----------------
# - :doc:`/choosing/modality_matching`: every matcher on the full benchmark
#   (CITE-seq and multiome sets), with run times.
# - :class:`skdance.multimodal.matching.ScMoGNNMatcher`,
#   :class:`skdance.multimodal.matching.CCAMatcher`,
#   :class:`skdance.multimodal.matching.CMAEMatcher` and
#   :class:`skdance.multimodal.matching.ScMMMatcher`;
#   :func:`skdance.metrics.matching_score`.
