"""Joint embedding: one embedding of paired cells, scored by its clusters.

DANCE's multimodal task 3 (paper appendix D.2, Table 9).  Every model fits
on the training cells of the fixed split the other multimodal tasks use
(whole held-out batches; a random 80/20 split of a one-batch set) and
embeds the held-out cells, so the one model that trains with cell types
(JAE) never sees the labels it is scored on.  On the held-out cells:
k-means with k = the number of their cell types (n_init=10, seeded by the
run), ARI and NMI against the types (SNARE-seq's unassigned 'Mis' cells
and sci-CAR's unannotated ones are embedded but not scored).  Batch view:
scIB's graph connectivity (Luecken et al. 2022;
``skdance.metrics.graph_connectivity``) of all cells, training and
held-out embedded together, per cell type: where the held-out cells are
another batch (the NeurIPS starters, SNARE-seq, sci-CAR) a type split by
batch scores below 1.

Rows: PCA of GEX alone, of the second modality alone and of both
(``skdance.multimodal.embedding.JointPCA``, the baselines the issue sets)
and each skdance model.  Models whose likelihood needs counts (scMVAE,
DCCA) get raw counts where the set ships them; the others the
competition's units (log-normalised GEX, CLR ADT, binarised ATAC).
"""

import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.utils import get_tags

from benchmarks.tasks._base import DanceReference, Task, Trial
from benchmarks.tasks.modality_prediction import held_out
from skdance.metrics import graph_connectivity
from skdance.multimodal import embedding
from skdance.multimodal.embedding import JointPCA

# The deep joint embeddings, one entry per model: benchmark name -> (class
# in skdance.multimodal.embedding, extra parameters, inputs).  Inputs:
# "units" (the competition's) or "counts" (raw counts where the set ships
# them, for the models whose likelihood takes counts).  A model whose fit
# requires y (its tags) is trained with the training cells' types.
EMBEDDERS = (
    ("scMoGNN", "ScMoGNNEmbedding", {}, "units"),
    ("scMoGNNv2", "ScMoGNNEmbedding", {"variant": "v2"}, "units"),
    ("scMVAE", "ScMVAE", {}, "counts"),
    ("JAE", "JAE", {}, "units"),
    ("DCCA", "DCCA", {}, "counts"),
)
INPUTS = {name: inputs for name, _, _, inputs in EMBEDDERS}
# cells scored: every labelled cell but SNARE-seq's unassigned ('Mis') and
# sci-CAR's unannotated ones (NaN labels, 'nan' as strings)
UNSCORED = ("Mis", "nan")
# the set drawn as UMAPs (two batches: the training one and the held-out one)
FIGURE_DATASET = "neurips2021_bmmc_cite_starter"


def _counts(name):
    """Raw counts of a paired set: (gex, mod2 or None where none shipped)."""
    from skdance.datasets import load_multimodal

    rna, mod2 = load_multimodal(name)
    gex = sp.csr_matrix(rna.layers["counts"], dtype=np.float32)
    counts2 = mod2.layers.get("counts")
    return gex, None if counts2 is None else sp.csr_matrix(counts2, dtype=np.float32)


def embedder_zoo(run, quick):
    """Benchmark name -> the skdance joint embeddings of :data:`EMBEDDERS`."""
    epochs = {"max_epochs": 20} if quick else {}
    return {
        name: getattr(embedding, cls_name)(random_state=run, **params, **epochs)
        for name, cls_name, params, _ in EMBEDDERS
    }


class JointEmbeddingTask(Task):
    """Embed paired cells; ARI/NMI of k-means on held-out cells, graph connectivity."""

    name = "joint_embedding"
    metrics = ("ari", "nmi", "graph_conn")
    requires = ("labels", "mod2")
    baselines = ("GEX PCA", "mod2 PCA", "concat PCA")
    columns = (
        "dataset",
        "model",
        "seed",
        "ari",
        "nmi",
        "graph_conn",
        "split",
        "n_train",
        "n_test",
        "n_types",
        "inputs",
        "fit_time_s",
        "peak_mem_mib",
        "dance_reported",
    )
    datasets = (
        "neurips2021_bmmc_cite_starter",
        "teaseq_pbmc",
        "cbmc_citeseq",
        "snareseq_mouse_cortex",
        "neurips2021_bmmc_multiome_starter",
        "scicar_mouse_kidney",
    )
    # DANCE Table 9 (ARI on the full competition test data): orientation only
    reference = DanceReference(
        table="Table 9",
        metric="ARI",
        columns=("GEX2ADT", "GEX2ATAC"),
        scores={
            "scMoGNN": (0.706, 0.702),
            "scMoGNNv2": (0.734, None),
            "scMVAE": (0.499, 0.577),
            "JAE": (0.705, 0.735),
            "DCCA": (0.35, 0.381),
        },
        comparable={
            "neurips2021_bmmc_cite_starter GEX+ADT": "GEX2ADT",
            "neurips2021_bmmc_multiome_starter GEX+ATAC": "GEX2ATAC",
        },
    )
    quick_text = (
        "seed 0, the NeurIPS CITE starter (train s1d1, embed s1d2; shipped); "
        "the deep models train 20 epochs."
    )

    def __init__(self):
        self.figure = {}

    @property
    def quick_datasets(self):
        from benchmarks._datasets import DATASETS

        return (DATASETS[FIGURE_DATASET],)

    def protocol(self, quick=False):
        return (
            "model seeds (and k-means seeds) on a fixed split (held-out "
            "batches; 'random': 80/20 of a one-batch set): every model fits "
            "on the training cells (JAE with their cell types) and embeds "
            "the held-out ones; ari / nmi: k-means (k = held-out cell types) "
            "on the held-out embedding; graph_conn: scIB's graph connectivity "
            "of all cells embedded together (1 = every type one connected "
            "piece across batches); inputs: competition units or raw counts; "
            "dance_reported: DANCE Table 9 on the full competition data "
            "(orientation only)"
        )

    def trials(self, data, spec, run, quick=False):
        test, split = held_out(data, spec)
        gex, mod2 = sp.csr_matrix(data.X), sp.csr_matrix(data.mod2)
        counts_gex, counts_mod2 = _counts(spec.name)
        types = np.asarray(data.y).astype(str)
        kind = "ADT" if "adt" in spec.modalities else "ATAC"
        scored = test & ~np.isin(types, UNSCORED)
        yield Trial(
            f"{spec.name} GEX+{kind}",
            spec,
            {
                "units": (gex, mod2),
                "counts": (counts_gex, counts_mod2),
                "test": test,
                "scored": scored[test],
                "types": types,
                "batch": np.asarray(data.batch).astype(str),
            },
            extra={
                "split": split,
                "n_train": int((~test).sum()),
                "n_test": int(test.sum()),
                "n_types": int(np.unique(types[scored]).size),
            },
        )

    def models(self, trial, run, quick=False):
        return {
            "GEX PCA": JointPCA(modalities="mod1", random_state=run),
            "mod2 PCA": JointPCA(modalities="mod2", random_state=run),
            "concat PCA": JointPCA(random_state=run),
            **embedder_zoo(run, quick),
        }

    def _inputs(self, name, trial):
        """Return the pair a model embeds and its units (counts where needed)."""
        units, counts = trial.inputs["units"], trial.inputs["counts"]
        if INPUTS.get(name, "units") == "units":
            return units, "units"
        if counts[1] is None:  # CBMC ships its proteins normalised only
            return (counts[0], units[1]), "GEX counts"
        return counts, "counts"

    def fit(self, name, model, trial, run):
        (X1, X2), which = self._inputs(name, trial)
        test = trial.inputs["test"]
        # the cell types of the training cells go to the models that need them
        supervised = get_tags(model).target_tags.required
        y = trial.inputs["types"][~test] if supervised else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            model.fit((X1[~test], X2[~test]), y)
            Z = np.asarray(model.transform((X1, X2)), dtype=np.float64)
        return {"Z": Z, "inputs": which, "run": run}

    def score(self, name, output, trial):
        Z, run = output["Z"], output["run"]
        test, scored = trial.inputs["test"], trial.inputs["scored"]
        types = trial.inputs["types"]
        Z_test, truth = Z[test][scored], types[test][scored]
        k = np.unique(truth).size
        labels = KMeans(k, n_init=10, random_state=run).fit_predict(Z_test)
        keep = ~np.isin(types, UNSCORED)
        if trial.name.startswith(FIGURE_DATASET):
            self.figure.setdefault("truth", (types, trial.inputs["batch"], test))
            self.figure.setdefault(name, Z)  # the first seed's embedding
        return {
            "ari": adjusted_rand_score(truth, labels),
            "nmi": normalized_mutual_info_score(truth, labels),
            "graph_conn": graph_connectivity(Z[keep], types[keep]),
            "inputs": output["inputs"],
        }

    def reference_columns(self, model, dataset):
        return {"dance_reported": self.reference.get(model, dataset)}

    def finish(self, results_dir, quick=False, stem=None):
        """UMAPs of every model's embedding of the NeurIPS CITE starter."""
        if "truth" not in self.figure:
            return []
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from skdance.plotting import embedding_umaps, umap_coordinates

        types, batch, test = self.figure.pop("truth")
        batch = np.where(test, batch + " (held out)", batch + " (train)")
        figures = results_dir / "figures"
        figures.mkdir(parents=True, exist_ok=True)
        stem = f"joint_embedding_cite{'_quick' if quick else ''}"
        layouts = {name: umap_coordinates(Z) for name, Z in self.figure.items()}
        layouts = _merged_layouts(figures / f"{stem}_umap.csv", types, layouts)
        fig = embedding_umaps(layouts, types, batch, layouts=layouts)
        path = figures / f"{stem}.png"
        fig.savefig(path, dpi=80)
        plt.close(fig)
        self.figure = {}
        return [path]


def _merged_layouts(path, types, layouts):
    """Keep every model's first-seed UMAP layout in ``path`` (CSV).

    A ``--merge`` run of some models adds or replaces their columns, so the
    figure always shows every model run so far, baselines first.
    """
    import pandas as pd

    table = pd.DataFrame({"cell_type": types})
    if path.exists():
        old = pd.read_csv(path)
        if len(old) == len(table) and (old["cell_type"].astype(str) == types).all():
            table = old
    for name, xy in layouts.items():
        table[f"{name} x"], table[f"{name} y"] = xy[:, 0], xy[:, 1]
    table.to_csv(path, index=False)
    names = [c[:-2] for c in table.columns if c.endswith(" x")]
    order = list(JointEmbeddingTask.baselines) + [n for n, *_ in EMBEDDERS]
    names.sort(key=lambda n: order.index(n) if n in order else len(order))
    return {n: table[[f"{n} x", f"{n} y"]].to_numpy() for n in names}


TASK = JointEmbeddingTask()
