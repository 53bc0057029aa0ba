"""Sphinx extension of the skdance docs: pages generated from the code and the results.

- ``generated/vocabulary.rst``: the parameter vocabulary table, from
  :mod:`skdance.utils._vocabulary` and the estimators' parameters.
- ``.. benchmark-results:: <task>``: a task's benchmark tables (mean ± std
  over seeds or folds, fit time, peak memory, DANCE's reported number) and a
  bar chart of the main score with its seed spread, rendered from
  ``benchmarks/results/<task>.csv`` at build time, so no number on a page is
  copied by hand.  ``:datasets:`` picks data sets: comma-separated names,
  where a name also selects the data sets whose first word it is (a
  multimodal starter selects both directions), or whitespace-separated names
  when none contains a space.
"""

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
# the errors: a lower score is better
LOWER_IS_BETTER = {"mse", "rmse", "mre"}
REFERENCE_COLUMNS = {
    "dance_reported": "DANCE",
    "dance_best": "DANCE's best",
}


def write_vocabulary(app):
    """Write ``generated/vocabulary.rst`` from skdance's vocabulary registry."""
    from skdance.utils import all_estimators
    from skdance.utils._vocabulary import vocabulary_table

    users = {}
    for name, cls in all_estimators():
        for param in cls._get_param_names():
            users.setdefault(param, []).append(name)
    out = Path(app.srcdir) / "generated" / "vocabulary.rst"
    out.parent.mkdir(exist_ok=True)
    text = vocabulary_table(users)
    if not out.exists() or out.read_text() != text:
        out.write_text(text)


def _select(datasets, option):
    """Data sets named by the ``:datasets:`` option, in the table's order."""
    if option is None:
        return list(datasets)
    option = option.strip()
    if "," in option:
        tokens = [t.strip() for t in option.split(",") if t.strip()]
    elif option in datasets or any(d.split(" ")[0] == option for d in datasets):
        tokens = [option]
    else:
        tokens = option.split()
    chosen = []
    for token in tokens:
        hits = [d for d in datasets if d == token or d.split(" ")[0] == token]
        if not hits:
            raise ValueError(
                f"no data set {token!r} in the results; they are {list(datasets)}"
            )
        chosen += [d for d in hits if d not in chosen]
    return [d for d in datasets if d in chosen]


def _cell(value):
    text = "—" if value is None or value != value else str(value)
    return text.replace("|", "\\|")


def _list_table(title, frame):
    lines = [f".. list-table:: {title}", "   :header-rows: 1", ""]
    rows = [list(frame.columns)] + frame.astype(object).to_numpy().tolist()
    for row in rows:
        lines.append("   * - " + _cell(row[0]))
        lines += ["     - " + _cell(v) for v in row[1:]]
    return lines + [""]


def _ranked(df, metric):
    """Mean and seed spread of ``metric`` per model, best first."""
    grouped = df.groupby("model", sort=False)[metric]
    stats = pd.DataFrame({"mean": grouped.mean(), "std": grouped.std(ddof=0)})
    return stats.sort_values("mean", ascending=metric in LOWER_IS_BETTER)


def _figure(task, df, datasets, path):
    """Bar chart of the main score per data set: mean over runs, seed spread."""
    import matplotlib.pyplot as plt

    metric = task.metrics[0]
    baselines = set(task.baselines)
    n = len(datasets)
    n_cols = min(n, 2)
    n_rows = -(-n // n_cols)
    n_models = df.groupby("dataset")["model"].nunique().max()
    fig, axes = plt.subplots(
        n_rows,
        n_cols,
        figsize=(4.8 * n_cols, (0.34 * n_models + 1.2) * n_rows + 0.4),
        squeeze=False,
        layout="constrained",
    )
    reference = "dance_reported" if "dance_reported" in df else None
    any_reference = False
    for ax, name in zip(axes.flat, datasets):
        part = df[df["dataset"] == name]
        stats = _ranked(part, metric)
        y = np.arange(len(stats))[::-1]
        colours = ["0.65" if m in baselines else "C0" for m in stats.index]
        ax.barh(y, stats["mean"], xerr=stats["std"], color=colours, capsize=2)
        if reference is not None:
            dance = pd.to_numeric(
                part.groupby("model", sort=False)[reference].first(), errors="coerce"
            ).reindex(stats.index)
            shown = dance.notna().to_numpy()
            if shown.any():
                any_reference = True
                ax.plot(
                    dance.to_numpy()[shown], y[shown], "D", color="C3", markersize=6
                )
        ax.set_yticks(y, stats.index, fontsize=10)
        ax.set_title(name, fontsize=10)
        arrow = "lower is better" if metric in LOWER_IS_BETTER else "higher is better"
        ax.set_xlabel(f"{metric} ({arrow})", fontsize=10)
        ax.tick_params(axis="x", labelsize=9)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    handles = [
        plt.Rectangle((0, 0), 1, 1, color="C0", label="model"),
        plt.Rectangle((0, 0), 1, 1, color="0.65", label="baseline"),
    ]
    if any_reference:
        handles.append(
            plt.Line2D([], [], marker="D", color="C3", ls="", label="DANCE (paper)")
        )
    fig.legend(handles=handles, loc="outside upper center", ncols=3, fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


class BenchmarkResults(SphinxDirective):
    """``.. benchmark-results:: task``: tables and a chart from the task's CSV."""

    required_arguments = 1
    option_spec = {"datasets": directives.unchanged}

    def run(self):
        from benchmarks._runner import summarize
        from benchmarks.tasks import TASKS

        name = self.arguments[0]
        if name not in TASKS:
            raise self.error(f"unknown task {name!r}; choose from {list(TASKS)}")
        task = TASKS[name]
        csv = RESULTS / f"{name}.csv"
        self.env.note_dependency(str(csv))
        df = pd.read_csv(csv)
        try:
            datasets = _select(
                list(pd.unique(df["dataset"])), self.options.get("datasets")
            )
        except ValueError as exc:
            raise self.error(str(exc)) from exc
        df = df[df["dataset"].isin(datasets)]
        table = summarize(df, task.metrics, task.digits)
        table = table.rename(columns=REFERENCE_COLUMNS)
        table["peak_mem_mib"] = table["peak_mem_mib"].astype("Int64")
        table = table.rename(
            columns={"fit_time_s": "fit (s)", "peak_mem_mib": "memory (MiB)"}
        )
        if "predict_time_s" in table:
            table = table.rename(columns={"predict_time_s": "predict (s)"})
        runs = "folds" if "fold" in df else "seeds"
        metric = task.metrics[0]
        lines = [_cell(task.describe(False)) + ".", ""]
        # one file per selection of data sets: two blocks of a task that
        # start with the same data set must not overwrite each other's chart
        key = hashlib.sha1("|".join(datasets).encode()).hexdigest()[:10]
        image = Path(self.env.srcdir) / "generated" / "benchmarks" / f"{name}-{key}.png"
        _figure(task, df, datasets, image)
        lines += [
            f".. figure:: /generated/benchmarks/{image.name}",
            f"   :alt: {metric} of every {name} model per data set",
            "",
            f"   {metric}: mean over {runs} (bars) and their standard deviation "
            "(whiskers), best first; grey bars are the task's baselines, red "
            "diamonds DANCE's paper numbers where it reports one. The tables "
            "below are in the same order.",
            "",
        ]
        for dataset in datasets:
            part = table[table["dataset"] == dataset].drop(columns="dataset")
            order = _ranked(df[df["dataset"] == dataset], metric).index
            part = part.set_index("model").loc[order].reset_index()
            lines += _list_table(dataset, part)
        container = nodes.container(classes=["benchmark-results"])
        self.state.nested_parse(StringList(lines, source=str(csv)), 0, container)
        return [container]


class NoveltyResults(SphinxDirective):
    """``.. novelty-results::``: the novel-type detection table (one type held out)."""

    def run(self):
        from benchmarks.novelty import METRICS, PROTOCOL, STEM

        csv = RESULTS / f"{STEM}.csv"
        self.env.note_dependency(str(csv))
        df = pd.read_csv(csv)
        rows = []
        for dataset, part in df.groupby("dataset", sort=False):
            row = {"dataset": dataset, "novel test cells": int(part["n_novel"].mean())}
            for metric in METRICS:
                values = part[metric]
                row[metric] = f"{values.mean():.3f} ± {values.std(ddof=0):.3f}"
            row["fit (s)"] = f"{part['fit_time_s'].mean():.1f}"
            rows.append(row)
        lines = [_cell(PROTOCOL), ""]
        lines += _list_table("Novel cell-type detection", pd.DataFrame(rows))
        container = nodes.container(classes=["benchmark-results"])
        self.state.nested_parse(StringList(lines, source=str(csv)), 0, container)
        return [container]


_TORCH_THREADS = []


def reset_torch_threads(gallery_conf, fname):
    """Give every gallery example the torch thread count the build started with.

    The first parallel numba call (scanpy's neighbours, UMAP) sets the
    process's OpenMP thread count, which torch then uses; without the reset
    every later example trains with that count instead.
    """
    import torch

    if not _TORCH_THREADS:
        _TORCH_THREADS.append(torch.get_num_threads())
    torch.set_num_threads(_TORCH_THREADS[0])


def skip_foreign_member(app, what, name, obj, skip, options):
    """Leave out members that other libraries define and document.

    A class page lists the methods skdance writes; what scikit-learn's
    mixins and metadata routing (``set_fit_request``, ``set_output``, ...)
    or ``torch.nn.Module`` add is documented by those libraries, with
    cross-references that only resolve in their own docs.
    """
    if what != "class" or skip:
        return skip
    target = getattr(obj, "__func__", obj)
    module = getattr(target, "__module__", None) or ""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    if module and not module.startswith("skdance"):
        return True
    return None


def setup(app):
    """Register the directive, the member filter and the vocabulary page."""
    app.connect("builder-inited", write_vocabulary)
    app.connect("autodoc-skip-member", skip_foreign_member)
    app.add_directive("benchmark-results", BenchmarkResults)
    app.add_directive("novelty-results", NoveltyResults)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
