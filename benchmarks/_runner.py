"""The generic runner: any registered task, fixed seeds, CSV and Markdown tables.

For every dataset of a task and every seed (or fold), the task prepares its
trials; every model is cloned, fitted on each trial under :class:`PeakMemory`
(wall time and peak RSS increase), scored, and becomes one row with DANCE's
reference columns.  Rows go to ``benchmarks/results/<task>.csv`` (or
``<task>_quick.csv``) and their mean ± std to the ``.md`` beside it.
"""

import gc
import os
import platform
import time
import warnings
from pathlib import Path

import pandas as pd
from sklearn.base import clone

from benchmarks._measure import PeakMemory
from benchmarks.tasks import TASKS, get_task

RESULTS = Path(__file__).resolve().parent / "results"

__all__ = ["RESULTS", "TASKS", "merge_results", "run", "summarize", "to_markdown"]


def _log(verbose, msg):
    if verbose:
        print(msg, flush=True)


def on_device(model, device):
    """``model`` with every ``device`` parameter (nested too) set to ``device``."""
    if device is None:
        return model
    keys = [k for k in model.get_params() if k == "device" or k.endswith("__device")]
    return model.set_params(**dict.fromkeys(keys, device)) if keys else model


def run_trials(
    task, spec, data, run, models=None, quick=False, verbose=True, device=None
):
    """Rows of every selected model on the trials of one (dataset, run)."""
    rows = []
    for trial in task.trials(data, spec, run, quick):
        for name, model in task.models(trial, run, quick).items():
            if models and name not in models and name not in task.baselines:
                continue
            model = on_device(clone(model), device)
            with PeakMemory() as m:
                output = task.fit(name, model, trial, run)
            row = {
                "dataset": trial.name,
                "model": name,
                task.run_column: run,
                **trial.extra,
                **task.score(name, output, trial),
                "fit_time_s": m.seconds,
                "peak_mem_mib": m.peak_mib,
                **task.reference_columns(name, _reference_key(task, trial, spec)),
            }
            if set(row) != set(task.columns):
                raise RuntimeError(
                    f"{task.name}: row columns {sorted(row)} differ from the "
                    f"declared {sorted(task.columns)}"
                )
            rows.append({c: row[c] for c in task.columns})
            _log(verbose, task.log_line(rows[-1]))
    return rows


def _reference_key(task, trial, spec):
    """Return the dataset name DANCE's numbers are keyed by (row, else spec).

    A task whose trials split one dataset into rows DANCE reports apart
    (modality directions: "<set> GEX2ADT") names those rows in its reference.
    """
    comparable = getattr(task.reference, "comparable", {})
    return trial.name if trial.name in comparable else spec.name


def _job(task_name, spec, run, models, quick, verbose, threads=None, device=None):
    """One (dataset, run) in a worker process, ``threads`` torch threads."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    task = get_task(task_name)
    return run_trials(task, spec, spec.load(), run, models, quick, verbose, device)


def collect(
    task, specs, runs, models=None, quick=False, verbose=True, jobs=1, device=None
):
    """Return the result rows of ``task`` over ``specs`` x ``runs`` as a DataFrame."""
    if jobs == 1:
        rows = []
        for spec in specs:
            data = spec.load()
            for r in runs:
                rows += run_trials(task, spec, data, r, models, quick, verbose, device)
    else:
        from joblib import Parallel, delayed

        # one torch thread per worker process: the jobs share the cores
        results = Parallel(n_jobs=jobs)(
            delayed(_job)(
                task.name, spec, r, models, quick, verbose, threads=1, device=device
            )
            for spec in specs
            for r in runs
        )
        rows = [row for rs in results for row in rs]
    return pd.DataFrame(rows, columns=list(task.columns))


def _machine(device=None):
    """Describe the machine the results were measured on."""
    import torch

    text = (
        f"{os.cpu_count()} CPU cores ({platform.machine()}, {platform.system()}), "
        f"{torch.get_num_threads()} torch thread(s)"
    )
    if device is not None and torch.device(device).type == "cuda":
        text += f", torch models on {torch.cuda.get_device_name(device)}"
    return text


def summarize(df, metrics, digits=3):
    """Mean ± std over seeds (or folds) per dataset and model."""
    keys = ["dataset", "model"]
    agg = df.groupby(keys, sort=False)
    runs = "folds" if "fold" in df else "seeds"
    out = agg.size().rename(runs).reset_index()
    for col in metrics:
        mean, std = agg[col].mean().to_numpy(), agg[col].std(ddof=0).to_numpy()
        out[col] = [
            "—" if a != a else f"{a:.{digits}f} ± {b:.{digits}f}"
            for a, b in zip(mean, std)
        ]
    out["fit_time_s"] = agg["fit_time_s"].mean().round(1).to_numpy()
    if "predict_time_s" in df:
        out["predict_time_s"] = agg["predict_time_s"].mean().round(2).to_numpy()
    out["peak_mem_mib"] = agg["peak_mem_mib"].max().round(0).to_numpy()
    for extra in ("dance_reported", "dance_best"):
        if extra in df:
            first = agg[extra].first().to_numpy()
            out[extra] = ["—" if v is None or v != v else v for v in first]
    return out


def merge_results(old, new):
    """Rows of ``old`` that were not rerun, then ``new``.

    A row is identified by (dataset, model) and, where both tables have it,
    the run column (``seed`` or ``fold``): rerunning one seed of a model
    replaces that seed's row and keeps the others.
    """
    keys = ["dataset", "model"]
    keys += [c for c in ("seed", "fold") if c in old.columns and c in new.columns]
    rerun = set(map(tuple, new[keys].astype(str).to_numpy()))
    keep = [tuple(row) not in rerun for row in old[keys].astype(str).to_numpy()]
    with warnings.catch_warnings():
        # all-empty columns (a reference number no dataset has) read as NaN
        # whatever pandas decides about their dtype
        warnings.simplefilter("ignore", FutureWarning)
        df = pd.concat([old[keep], new], ignore_index=True)
    # group each dataset's rows together, datasets in their first-seen order
    datasets = list(old["dataset"]) + list(new["dataset"])
    order = {d: i for i, d in enumerate(pd.unique(pd.Series(datasets)))}
    return df.sort_values(
        "dataset", key=lambda c: c.map(order), kind="stable", ignore_index=True
    )


def to_markdown(table):
    """Write a DataFrame as a GitHub Markdown table."""
    cols = list(table.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in table.iterrows():
        lines.append("| " + " | ".join(str(row[c]) for c in cols) + " |")
    return "\n".join(lines)


def header(task, quick=False, jobs=1, device=None):
    """Return the text above a results table: protocol, machine, measures."""
    return (
        f"# {task.name}{' (quick)' if quick else ''}\n\n"
        f"{task.describe(quick)}; fit time is the mean of the pipeline `fit` "
        f"(or `fit_predict`) wall time on {_machine(device)}"
        + (
            f" shared by {jobs} worker processes (one torch thread each)"
            if jobs > 1
            else ""
        )
        + "; peak memory is the largest RSS increase during a fit, from a "
        "baseline taken after returning freed heap memory to the OS (memory "
        "the process still holds can make it read low)."
    )


def run(
    task,
    dataset_names=None,
    models=None,
    seeds=(0, 1, 2),
    quick=False,
    verbose=True,
    jobs=1,
    merge=False,
    folds=None,
    results_dir=None,
    device=None,
):
    """Run one registered task and write its tables; return the result rows.

    Parameters
    ----------
    task : str or Task
        A name in :data:`benchmarks.tasks.TASKS` (or the task itself).
    dataset_names : list of str or None
        Datasets to run (default: the task's own list); ignored when quick.
    models : list of str or None
        Models to run (default all; the task's baselines always run).
    seeds : sequence of int
        Seeds of the seeded tasks (the first only when quick).
    quick : bool
        The task's quick configuration on the shipped dataset, one seed or
        fold; writes ``<task>_quick.*``.
    verbose : bool
        Print a line per fitted model.
    jobs : int
        (dataset, run) pairs in parallel processes, one torch thread each.
    merge : bool
        Keep the existing rows of the (dataset, model) pairs not rerun.
    folds : list of int or None
        Folds of the cross-validated tasks (default all).
    results_dir : path or None
        Where to write (default ``benchmarks/results``).
    device : str or None
        Set every ``device`` parameter of the models (e.g. ``"cuda"``); None
        keeps the models' own (CPU).  A device other than ``"cpu"`` writes
        ``<task>[_quick]_<device>.*`` beside the CPU tables.
    """
    task = get_task(task) if isinstance(task, str) else task
    specs = task.dataset_specs(dataset_names, quick)
    runs = task.runs(seeds, folds, quick)
    jobs = max(1, min(jobs, len(specs) * len(runs)))  # no idle workers
    _log(
        verbose,
        f"[{task.name}] {len(specs)} dataset(s), {task.run_column}s {runs}",
    )
    start = time.perf_counter()
    # what exists before the first fit (modules, the registry) is never
    # garbage: freeze it, so that the collection PeakMemory runs before every
    # fit walks only what the fits allocate (~0.2-0.4 s a fit otherwise)
    gc.collect()
    gc.freeze()
    try:
        df = collect(task, specs, runs, models, quick, verbose, jobs, device)
    finally:
        # a caller that goes on (a notebook, the docs' gallery) collects as usual
        gc.unfreeze()
    results = Path(results_dir) if results_dir is not None else RESULTS
    results.mkdir(parents=True, exist_ok=True)
    stem = f"{task.name}_quick" if quick else task.name
    if device is not None and str(device) != "cpu":
        stem += "_" + str(device).replace(":", "")
    if merge and (results / f"{stem}.csv").exists():
        df = merge_results(pd.read_csv(results / f"{stem}.csv"), df)
    table = summarize(df, task.metrics, digits=task.digits)
    df.to_csv(results / f"{stem}.csv", index=False)
    md = to_markdown(table)
    (results / f"{stem}.md").write_text(
        header(task, quick, jobs, device) + "\n\n" + md + "\n"
    )
    for path in task.finish(results, quick, stem=stem):
        _log(verbose, f"{task.name}: written {path}")
    elapsed = time.perf_counter() - start
    print(
        f"\n{task.name}: written {results / stem}.csv and .md "
        f"({elapsed:.1f} s)\n\n{md}\n",
        flush=True,
    )
    return df
