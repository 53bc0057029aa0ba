"""
Benchmarking your own model
===========================

The project's benchmark harness (the ``benchmarks`` folder of the
repository) runs every task's models on the same data, seeds and metrics and
writes the tables the :doc:`/choosing/index` pages show.  To see where a
model of your own stands, add it to a task as one more entry and run the
task: it is then fitted, timed and scored exactly like the published models
and the baselines.  Here a few lines of spatial clustering go against the
spatial-domain task's baselines and stLearn on the shipped DLPFC band.

``benchmarks`` is not installed with the package: this needs a clone of the
repository, with its root on ``sys.path`` (the documentation build puts it
there; from a shell, run ``PYTHONPATH=. python
examples/guides/plot_benchmark_own_model.py`` in the clone's root).
"""

# %%
# A model of your own
# -------------------
# Any scikit-learn clusterer with ``fit_predict`` fits the spatial-domain
# task.  Ours clusters each spot on its own expression next to the mean of
# its neighbours' (a simple form of neighbourhood augmentation): top genes,
# log-normalised and scaled, 30 principal components, the mean components
# of the ``n_neighbors`` nearest spots appended with weight
# ``neighbour_weight``, then k-means.
#
# The task offers the spots' coordinates to every model as ``coords`` and
# gives them to the models that request them through metadata routing, so
# the class declares the request (``__metadata_request__fit``), as skdance's
# spatial models do.
import tempfile

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors
from sklearn.pipeline import make_pipeline

from benchmarks._runner import run
from benchmarks.tasks.spatial_domain import SpatialDomainTask
from skdance.preprocessing import HighlyVariableGenes, Log1p, NormalizeTotal, ScaleGenes


class NeighbourKMeans(ClusterMixin, BaseEstimator):
    """k-means on each spot's components and its neighbours' mean components."""

    __metadata_request__fit = {"coords": True}

    def __init__(
        self, n_clusters=7, n_neighbors=6, neighbour_weight=0.8, random_state=0
    ):
        self.n_clusters = n_clusters
        self.n_neighbors = n_neighbors
        self.neighbour_weight = neighbour_weight
        self.random_state = random_state

    def fit(self, X, y=None, coords=None):
        if coords is None:
            raise ValueError("NeighbourKMeans needs the spots' coords.")
        pcs = make_pipeline(
            HighlyVariableGenes(n_top_genes=2000, flavor="seurat_v3"),
            NormalizeTotal(target_sum=1e4),
            Log1p(),
            ScaleGenes(max_value=10),
            PCA(n_components=30, random_state=self.random_state),
        ).fit_transform(X)
        nn = NearestNeighbors(n_neighbors=self.n_neighbors + 1).fit(coords)
        neighbours = nn.kneighbors(coords, return_distance=False)[:, 1:]
        w = self.neighbour_weight
        features = np.hstack(
            [np.sqrt(1 - w) * pcs, np.sqrt(w) * pcs[neighbours].mean(axis=1)]
        )
        kmeans = KMeans(self.n_clusters, n_init=10, random_state=self.random_state)
        self.labels_ = kmeans.fit_predict(features)
        return self

    def fit_predict(self, X, y=None, coords=None):
        return self.fit(X, coords=coords).labels_


# %%
# One more entry in a task
# ------------------------
# A task's ``models`` method returns ``{name: estimator}`` for one trial (a
# dataset and a seed); the runner clones, fits, times and scores every
# entry.  A subclass that adds one entry is all it takes: the number of
# domains is the number of annotated layers, as for every other model, and
# the seed is the run's.
class WithMyModel(SpatialDomainTask):
    def models(self, trial, run, quick=False):
        models = super().models(trial, run, quick)
        n_layers = pd.Series(trial.inputs["data"].y).dropna().nunique()
        models["NeighbourKMeans"] = NeighbourKMeans(
            n_clusters=n_layers, random_state=run
        )
        return models


# %%
# Running it
# ----------
# ``benchmarks._runner.run`` takes a task object as well as a name.
# ``quick=True`` runs the task's quick configuration (seed 0 on the shipped
# band of DLPFC slice 151673); ``models`` picks the models to fit besides
# the task's baselines, which always run: a k-means on expression
# components and the "smoothed PCA" a user could write in ten lines.  We
# add stLearn, one of the published models (``"SpaGCN"`` and ``"STAGATE"``
# take longer).  The tables go to a temporary folder, so the repository's
# own results are left alone.
with tempfile.TemporaryDirectory() as results_dir:
    rows = run(
        WithMyModel(),
        quick=True,
        models=["NeighbourKMeans", "stLearn"],
        results_dir=results_dir,
    )
rows[["model", "ari", "nmi", "fit_time_s"]]

# %%
# The task's main score, the ARI of the domains against the manual layers,
# of every model (one seed: the quick run is a smoke test; the full run
# uses three seeds on whole slices).
order = rows.sort_values("ari")
ours = order["model"] == "NeighbourKMeans"
fig, ax = plt.subplots(figsize=(7, 3), layout="constrained")
ax.barh(order["model"], order["ari"], color=np.where(ours, "C3", "C0"))
for y, value in enumerate(order["ari"]):
    ax.text(value + 0.005, y, f"{value:.2f}", va="center")
ax.set_xlabel("ARI against the manual layers (DLPFC 151673 band, seed 0)")
ax.set_xlim(0, order["ari"].max() * 1.15)
ax.set_title("Spatial domains: your model (red) beside the task's models")
plt.show()

# %%
# For the real comparison run the full task, every seed on the whole
# slices (they are downloaded separately, see :doc:`/user_guide/data`):
# ``run(WithMyModel(), models=["NeighbourKMeans", "SpaGCN"])``.  To make the
# model part of the benchmark for good, add the same entry to the task's
# ``models`` in ``benchmarks/tasks/spatial_domain.py``.
#
# What to read next
# -----------------
# - :doc:`/user_guide/benchmarks`: the runner's options, the quick run and
#   the outputs.
# - :doc:`/choosing/spatial_domain`: the full spatial-domain results.
# - :doc:`/user_guide/side_information`: how ``coords`` and other side
#   information reach a model through metadata routing.
