"""Spatial domains: ARI/NMI of each slice's domains against its manual layers.

DANCE's protocol (paper appendix D.3, Table 10): every model clusters all
spots of one slice into as many domains as the slice has annotated layers;
ARI and NMI are computed on the annotated spots (the few unannotated ones
are clustered but not scored).  No model sees the labels: nothing here picks
epochs, resolutions or seeds by them (DANCE's published scripts choose
them by the labels' ARI).  Rows: two baselines
(non-spatial k-means on PCA, and the "smoothed PCA" a user could write in
ten lines) and every skdance spatial-domain model, 3 seeds.
"""

import warnings

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import NearestNeighbors
from sklearn.pipeline import make_pipeline

from benchmarks.tasks._base import DanceReference, Task, routed
from skdance.preprocessing import HighlyVariableGenes, Log1p, NormalizeTotal, ScaleGenes
from skdance.spatial.domain import STAGATE, EfNST, SpaGCN, SpatialLouvain, StLearn

# the baselines' gene selection and PCA (the issue's "ten lines")
N_GENES = 3000
N_PCS = 30
SMOOTH_NEIGHBORS = 6

# --quick: a tenth of SpaGCN's epochs; STAGATE a twentieth of its epochs on
# its 1,000 (not 3,000) most variable genes (~4 s of CPU on the shipped band)
QUICK_SPAGCN = {"max_epochs": 20}
QUICK_STAGATE = {"max_epochs": 50, "n_top_genes": 1000}
# EfNST: 5 of its 800 epochs on 10 (not 200) principal components (~1.5 s
# of CPU on the shipped band, most of it the Leiden resolution search)
QUICK_EFNST = {"max_epochs": 5, "n_components": 10}


def expression_pcs(seed, n_genes=N_GENES, n_pcs=N_PCS):
    """Top seurat_v3 genes, log-normalise, scale, PCA: the baselines' front."""
    return [
        HighlyVariableGenes(n_top_genes=n_genes, flavor="seurat_v3"),
        NormalizeTotal(target_sum=1e4),
        Log1p(),
        ScaleGenes(max_value=10),
        PCA(n_components=n_pcs, random_state=seed),
    ]


class SmoothedPCA(ClusterMixin, BaseEstimator):
    """Baseline: PCA averaged over each spot and its nearest spots, then a GMM.

    What a user could do in ten lines: top 3,000 seurat_v3 genes,
    log-normalise, scale, PCA 30, replace each spot's PCs by the mean over
    itself and its ``n_neighbors`` nearest spots (one hop), Gaussian mixture
    with ``n_clusters`` full-covariance components.
    """

    __metadata_request__fit = {"coords": True}

    def __init__(self, n_clusters=7, n_neighbors=SMOOTH_NEIGHBORS, random_state=0):
        self.n_clusters = n_clusters
        self.n_neighbors = n_neighbors
        self.random_state = random_state

    def fit(self, X, y=None, coords=None):
        if coords is None:
            raise ValueError("SmoothedPCA needs the spots' coords.")
        pcs = make_pipeline(*expression_pcs(self.random_state)).fit_transform(X)
        nn = NearestNeighbors(n_neighbors=self.n_neighbors + 1).fit(coords)
        _, idx = nn.kneighbors(coords)  # the spot itself first
        smoothed = pcs[idx].mean(axis=1).astype(np.float64)
        gmm = GaussianMixture(self.n_clusters, random_state=self.random_state)
        self.labels_ = gmm.fit_predict(smoothed)
        return self

    def fit_predict(self, X, y=None, coords=None):
        return self.fit(X, coords=coords).labels_


class SpatialDomainTask(Task):
    """Spatial domains of real slices, n_clusters = number of annotated layers."""

    name = "spatial_domain"
    metrics = ("ari", "nmi")
    requires = ("labels", "coords")
    baselines = ("k-means (PCA)", "smoothed PCA")
    columns = (
        "dataset",
        "model",
        "seed",
        "ari",
        "nmi",
        "n_clusters_found",
        "n_clusters_true",
        "fit_time_s",
        "peak_mem_mib",
        "dance_reported",
    )
    datasets = (
        "dlpfc_151673",
        "dlpfc_151676",
        "dlpfc_151510",
        "starmap_bz5",
        "mouse_olfactory_bulb",
    )
    # DANCE paper Table 10 (ARI, "current").  Slice 151507's counts are not
    # reachable; 151510 (same donor) is put beside its numbers as an
    # orientation only, not a comparison.
    reference = DanceReference(
        table="Table 10",
        metric="ARI",
        columns=("151673", "151676", "151507"),
        scores={
            "SpaGCN": (0.51, 0.41, 0.45),
            "STAGATE": (0.59, 0.60, 0.608),
            # EfNST is not in Table 10: DANCE's README gives it on 151676
            # only, with the histology image, 0.33 with DANCE 1.0's port
            # (put here, beside the image-less row) and 0.52 with DANCE 2.0's
            # pipeline search selected on the test labels (the original
            # paper: 0.51)
            "EfNST (no image)": (None, 0.33, None),
            "stLearn": (0.30, 0.29, 0.31),
            "Louvain": (0.31, 0.2528, 0.28),
        },
        comparable={
            "dlpfc_151673": "151673",
            "dlpfc_151676": "151676",
            "dlpfc_151510": "151507",
        },
    )
    quick_text = (
        "seed 0 on the shipped band of DLPFC slice 151673 (1,062 spots "
        "across its 7 layers, 3,000 genes); SpaGCN trains a tenth of its "
        "epochs, STAGATE a twentieth on its 1,000 most variable genes, "
        "EfNST 5 of its 800 epochs on 10 principal components."
    )

    def __init__(self):
        self.maps = {}

    @property
    def quick_datasets(self):
        from benchmarks._datasets import DATASETS

        return (DATASETS["dlpfc_151673_subset"],)

    def protocol(self, quick=False):
        return (
            "seeds; ARI and NMI on the annotated spots (all spots are "
            "clustered), n_clusters = number of annotated layers; "
            "dance_reported: DANCE Table 10 (151510 beside DANCE's 151507, "
            "a different slice of the same donor: orientation only)"
        )

    def models(self, trial, run, quick=False):
        y = trial.inputs["data"].y
        k = int(pd.Series(y).dropna().nunique())
        seed = run
        spagcn = QUICK_SPAGCN if quick else {}
        stagate = QUICK_STAGATE if quick else {}
        efnst = QUICK_EFNST if quick else {}
        return {
            "k-means (PCA)": make_pipeline(
                *expression_pcs(seed), KMeans(k, n_init=10, random_state=seed)
            ),
            "smoothed PCA": SmoothedPCA(n_clusters=k, random_state=seed),
            # DANCE's model names; both normalise raw counts themselves
            "Louvain": SpatialLouvain(n_clusters=k, random_state=seed),
            "stLearn": StLearn(n_clusters=k, random_state=seed),
            "SpaGCN": SpaGCN(n_clusters=k, random_state=seed, **spagcn),
            # STAGATE selects its 3,000 genes and normalises itself
            "STAGATE": STAGATE(n_clusters=k, random_state=seed, **stagate),
            # EfNST's expression branch: no histology image here
            "EfNST (no image)": EfNST(n_clusters=k, random_state=seed, **efnst),
        }

    def metadata(self, data, run):
        """Return the spots' coordinates (routed to the models that request them)."""
        return {"coords": data.coords}

    def fit(self, name, model, trial, run):
        data = trial.inputs["data"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return routed(model, "fit_predict", data.X, metadata=trial.metadata)

    def score(self, name, output, trial):
        y = trial.inputs["data"].y
        known = np.asarray(pd.notna(y))
        labels = np.asarray(output)
        self.maps.setdefault(trial.name, {"coords": trial.inputs["data"].coords})
        self.maps[trial.name].setdefault("truth", y)
        self.maps[trial.name].setdefault(name, labels)  # the first seed's map
        return {
            "ari": adjusted_rand_score(y[known], labels[known]),
            "nmi": normalized_mutual_info_score(y[known], labels[known]),
            "n_clusters_found": int(np.unique(labels).size),
            "n_clusters_true": int(pd.Series(y[known]).nunique()),
        }

    def reference_columns(self, model, dataset):
        return {"dance_reported": self.reference.get(model, dataset)}

    def finish(self, results_dir, quick=False, stem=None):
        """Flag models below the smoothed PCA; one PNG per slice of domains."""
        table = self.table_stem(quick, stem)
        if (results_dir / f"{table}.csv").exists():
            below = below_baseline(pd.read_csv(results_dir / f"{table}.csv"))
            with open(results_dir / f"{table}.md", "a") as md:
                md.write("\n" + below_baseline_text(below))
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from skdance.plotting import spatial_domains_panel

        figures = results_dir / "figures"
        figures.mkdir(parents=True, exist_ok=True)
        written = []
        for dataset, maps in self.maps.items():
            maps = dict(maps)
            coords, truth = maps.pop("coords"), maps.pop("truth")
            fig_stem = f"spatial_domain_{dataset}{'_quick' if quick else ''}"
            maps = _merged_maps(figures / f"{fig_stem}_labels.csv", coords, truth, maps)
            fig = spatial_domains_panel(coords, maps, truth=truth)
            fig.savefig(figures / f"{fig_stem}.png", dpi=80)
            plt.close(fig)
            written.append(figures / f"{fig_stem}.png")
        self.maps = {}
        return written


def below_baseline(df, baseline="smoothed PCA", metric="ari"):
    """Models whose mean ``metric`` on a dataset is below the baseline's.

    Parameters
    ----------
    df : pandas.DataFrame
        Result rows with ``dataset``, ``model`` and ``metric``.
    baseline : str
        The model to beat.
    metric : str
        Higher is better.

    Returns
    -------
    pandas.DataFrame
        ``dataset``, ``model``, ``metric`` (its mean) and ``baseline`` (the
        baseline's mean on that dataset), in the table's order; the other
        baseline rows (k-means) are left out.
    """
    means = df.groupby(["dataset", "model"], sort=False)[metric].mean()
    rows = []
    for (dataset, model), value in means.items():
        if model in SpatialDomainTask.baselines or (dataset, baseline) not in means:
            continue
        floor = means[(dataset, baseline)]
        if value < floor:
            rows.append(
                {"dataset": dataset, "model": model, metric: value, baseline: floor}
            )
    return pd.DataFrame(rows, columns=["dataset", "model", metric, baseline])


def below_baseline_text(below, baseline="smoothed PCA", metric="ari"):
    """Markdown paragraph naming the models below the baseline."""
    head = f"Models whose mean {metric.upper()} is below the {baseline} baseline: "
    if below.empty:
        return head + "none.\n"
    items = [
        f"{r.model} on {r.dataset} ({r[metric]:.3f} < {r[baseline]:.3f})"
        for _, r in below.iterrows()
    ]
    return head + "; ".join(items) + ".\n"


def _merged_maps(path, coords, truth, maps):
    """Keep every model's first-seed domains of a slice in ``path`` (CSV).

    A ``--merge`` run of some models adds or replaces their columns, so the
    figure always shows every model run so far.
    """
    table = pd.DataFrame({"x": coords[:, 0], "y": coords[:, 1], "truth": truth})
    if path.exists():
        old = pd.read_csv(path)
        same = len(old) == len(table) and np.allclose(old[["x", "y"]], coords[:, :2])
        if same:
            table = old
    for name, labels in maps.items():
        table[name] = np.asarray(labels)
    table.to_csv(path, index=False)
    models = [c for c in table.columns if c not in ("x", "y", "truth")]
    return {name: table[name].to_numpy() for name in models}


TASK = SpatialDomainTask()
