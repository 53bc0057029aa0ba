"""Novel cell-type detection: scHeteroNet's novelty score with one type held out.

Run as ``SKDANCE_DATA=<the data folder> python -m benchmarks.novelty``.

Protocol.  For every dataset of the annotation task and seeds 0, 1 and 2,
the training and test cells are fold ``seed`` of the annotation task's fixed
stratified 5-fold split.  One cell type is held out of the training cells:
among the types with at least :data:`MIN_HELD_OUT_CELLS` training cells,
ordered by their number of training cells (smallest first, ties by name),
the ``seed``-th.  It is chosen from the training labels alone; the test
labels are read only to mark the held-out type's test cells as novel.  The
models are fitted on the other types' training cells and scored on every
test cell:

* ``auroc``: area under the ROC curve of "known type vs novel type" of
  :meth:`skdance.annotation.ScHeteroNet.score_samples` (higher: known),
  with its defaults (energy propagated twice over the cell graph);
* ``auroc_no_propagation``: the same with ``propagation_steps=0`` (each
  cell's own energy), on the same fitted model;
* ``auroc_msp``: the baseline, the maximum softmax probability of a
  logistic regression on scHeteroNet's preprocessing (4,000 ``cell_ranger``
  highly variable genes of the counts, scaled to the median total, log1p);
* ``known_accuracy`` and ``known_accuracy_lr``: accuracy of scHeteroNet and
  of the logistic regression on the test cells of the known types.

Writes ``benchmarks/results/annotation_novelty.csv`` and ``.md``.
"""

import argparse
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline

from benchmarks._datasets import DATASETS
from benchmarks.tasks.annotation import TASK as ANNOTATION
from skdance.annotation import ScHeteroNet
from skdance.preprocessing import HighlyVariableGenes, Log1p, NormalizeTotal

RESULTS = Path(__file__).resolve().parent / "results"
STEM = "annotation_novelty"
#: Smallest number of training cells of a type that may be held out.
MIN_HELD_OUT_CELLS = 20
SEEDS = (0, 1, 2)
METRICS = (
    "auroc",
    "auroc_no_propagation",
    "auroc_msp",
    "known_accuracy",
    "known_accuracy_lr",
)
PROTOCOL = (
    "Mean ± std over seeds 0, 1, 2. Seed s: fold s of the annotation task's "
    "fixed stratified 5-fold split; the held-out type is the s-th smallest "
    f"(by training cells) of the types with at least {MIN_HELD_OUT_CELLS} "
    "training cells, chosen from the training labels alone; the models are "
    "fitted on the other types' training cells and scored on all test cells. "
    "auroc: known vs novel test cells by ScHeteroNet.score_samples (defaults: "
    "energy propagated twice over the cell graph); auroc_no_propagation: each "
    "cell's own energy; auroc_msp: maximum softmax probability of a logistic "
    "regression on the same preprocessing (4,000 cell_ranger HVGs, median-total "
    "scaling, log1p; the genes as given for log-normalised data). "
    "known_accuracy(_lr): accuracy on the known-type test cells. n_novel: mean "
    "number of novel test cells. fit_time_s: mean wall time of ScHeteroNet's fit "
    "(one torch thread)."
)


def held_out_type(y_train, seed, min_cells=MIN_HELD_OUT_CELLS):
    """Return the type to hold out for ``seed``, from the training labels alone.

    Parameters
    ----------
    y_train : array-like of shape (n_cells,)
        Training labels.
    seed : int
        Rank of the type among the eligible ones, smallest first (wraps
        around when there are fewer).
    min_cells : int, default=MIN_HELD_OUT_CELLS
        Types with fewer training cells are not held out.

    Returns
    -------
    label
        The held-out type.

    Examples
    --------
    >>> held_out_type(["a"] * 30 + ["b"] * 25 + ["c"] * 5, 0)
    'b'
    """
    types, sizes = np.unique(np.asarray(y_train), return_counts=True)
    eligible = [(n, str(t), t) for t, n in zip(types, sizes) if n >= min_cells]
    if not eligible:
        raise ValueError(f"no cell type has {min_cells} training cells or more.")
    eligible.sort(key=lambda item: item[:2])
    return eligible[seed % len(eligible)][2]


def msp_baseline(counts=True, n_top_genes=4000):
    """Logistic regression on scHeteroNet's preprocessing.

    Counts: ``n_top_genes`` ``cell_ranger`` genes, median-total scaling,
    log1p; log-normalised input: the genes as they are (scHeteroNet's
    ``normalize=False``).
    """
    if not counts:
        return LogisticRegression(max_iter=1000)
    return make_pipeline(
        HighlyVariableGenes(
            n_top_genes=n_top_genes, flavor="cell_ranger", log_normalize=False
        ),
        NormalizeTotal(),
        Log1p(),
        LogisticRegression(max_iter=1000),
    )


def novelty_trial(
    X_train, y_train, X_test, y_test, seed, *, counts=True, model_params=None
):
    """Hold one type out, fit, and score the novelty of the test cells.

    Parameters
    ----------
    X_train, y_train, X_test, y_test : arrays
        Training and test cells (raw counts) and their labels.
    seed : int
        Seed of the models and rank of the held-out type
        (:func:`held_out_type`).
    counts : bool, default=True
        Whether the input holds raw counts (else log-normalised values).
    model_params : dict, default=None
        Extra ScHeteroNet parameters (the benchmark uses its defaults).

    Returns
    -------
    row : dict
        The held-out type, its number of test cells and the metrics.
    """
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    held = held_out_type(y_train, seed)
    known = y_train != held
    novel = y_test == held
    params = {"random_state": seed, "normalize": counts, **(model_params or {})}
    model = ScHeteroNet(**params)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # rare types left out
        model.fit(X_train[known], y_train[known])
    fit_s = time.perf_counter() - start
    scores = model.score_samples(X_test)
    own = model.set_params(propagation_steps=0).score_samples(X_test)
    model.set_params(propagation_steps=params.get("propagation_steps", 2))
    pred = model.predict(X_test[~novel])
    lr = msp_baseline(counts, params.get("n_top_genes", 4000) or X_train.shape[1])
    lr.fit(X_train[known], y_train[known])
    msp = lr.predict_proba(X_test).max(axis=1)
    return {
        "held_out": str(held),
        "n_novel": int(novel.sum()),
        "n_known": int((~novel).sum()),
        "auroc": roc_auc_score(~novel, scores),
        "auroc_no_propagation": roc_auc_score(~novel, own),
        "auroc_msp": roc_auc_score(~novel, msp),
        "known_accuracy": float(np.mean(pred == y_test[~novel])),
        "known_accuracy_lr": float(
            np.mean(lr.predict(X_test[~novel]) == y_test[~novel])
        ),
        "fit_time_s": fit_s,
    }


def run(datasets=None, seeds=SEEDS, verbose=True):
    """Rows of every (dataset, seed): see the module docstring."""
    rows = []
    for name in datasets or ANNOTATION.datasets:
        spec = DATASETS[name]
        data = spec.load()
        X, y = data.X, np.asarray(data.y)
        folds = list(
            StratifiedKFold(ANNOTATION.n_folds, shuffle=True, random_state=0).split(
                X, y
            )
        )
        for seed in seeds:
            train, test = folds[seed]
            row = novelty_trial(
                X[train], y[train], X[test], y[test], seed, counts=spec.counts
            )
            rows.append({"dataset": name, "seed": seed, **row})
            if verbose:
                shown = " ".join(f"{m}={row[m]:.3f}" for m in METRICS)
                print(f"  {name:22s} seed={seed} held={row['held_out']} {shown}")
    return pd.DataFrame(rows)


def to_markdown(df):
    """Return the table: mean ± std over seeds per dataset, held-out types listed."""
    lines = [
        "# annotation: novel cell-type detection",
        "",
        PROTOCOL + f" Machine: {platform.machine()}, {platform.system()}.",
        "",
        "| dataset | held out (seeds) | n_novel | "
        + " | ".join(METRICS)
        + " | fit_time_s |",
        "|---|---|---|" + "---|" * (len(METRICS) + 1),
    ]
    for name, part in df.groupby("dataset", sort=False):
        cells = [f"{part[m].mean():.3f} ± {part[m].std(ddof=0):.3f}" for m in METRICS]
        held = ", ".join(part["held_out"].astype(str))
        lines.append(
            f"| {name} | {held} | {int(part['n_novel'].mean())} | "
            + " | ".join(cells)
            + f" | {part['fit_time_s'].mean():.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    """Parse the arguments, run, write the tables."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.novelty",
        description="Novel cell-type detection of ScHeteroNet (one type held out).",
    )
    parser.add_argument("--datasets", nargs="+", help="default: the annotation task's")
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the existing rows of the datasets not rerun",
    )
    args = parser.parse_args(argv)
    df = run(args.datasets, args.seeds)
    csv = RESULTS / f"{STEM}.csv"
    if args.merge and csv.exists():
        old = pd.read_csv(csv)
        old = old[~old["dataset"].isin(df["dataset"].unique())]
        df = pd.concat([old, df], ignore_index=True)
        order = {n: i for i, n in enumerate(ANNOTATION.datasets)}
        df = df.sort_values(
            ["dataset", "seed"],
            key=lambda c: c.map(order) if c.name == "dataset" else c,
        )
    df.to_csv(csv, index=False)
    (RESULTS / f"{STEM}.md").write_text(to_markdown(df))
    print(f"written {csv} and .md")


if __name__ == "__main__":
    main()
