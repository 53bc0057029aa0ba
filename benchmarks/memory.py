"""Peak memory of deep model fits as the number of cells grows.

Run as ``SKDANCE_DATA=<the data folder> python -m benchmarks.memory``.

Models: every model of the tasks in :data:`MEMORY_TASKS` (clustering,
imputation) that trains in epochs, built by the task's own entries
(``Task.models``: the pipeline the benchmark runs, with its gene selection)
and offered the task's side information through metadata routing (scDCC's
known labels), exactly as ``python -m benchmarks`` builds it; a model added
to one of those tasks is measured here without another edit.  Every
parameter of a model that ends in ``epochs`` is set to 1 (the deep
clusterers: 1 pretraining + 1 clustering epoch; graph-sc and DeepImpute: 1
epoch): the memory of a full fit is that of one epoch, only the time
differs.

Cells: the 4,271 real PBMC 4k cells (2,000 genes, raw counts, CSR) resampled
with replacement to 4k, 16k and 64k cells, each copy binomially thinned
(every count kept with a per-cell probability drawn from U(0.5, 1)), so the
larger sets hold realistic, distinct cells.  The matrix stays CSR.

Every (model, cells) pair is fitted in a fresh subprocess: the data are made
first, then the RSS is sampled every 5 ms during ``fit``; the table gives the
peak RSS increase over the RSS just before ``fit``.  A run whose RSS passes
``--limit-gib`` (default 12) is killed and recorded as "did not fit".  Runs
go one at a time.

Writes ``benchmarks/results/memory.csv`` and ``memory.md``.
"""

import argparse
import csv
import ctypes
import ctypes.util
import gc
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

# the tasks whose trained-in-epochs models are measured, in this order
MEMORY_TASKS = ("clustering", "imputation")
# the catalogue entry the cells come from (raw counts: the count models run)
SOURCE = "pbmc_10x_4k"
CELLS = (4000, 16000, 64000)
RESULTS = Path(__file__).resolve().parent / "results"


def make_cells(n_cells, seed=0):
    """``n_cells`` PBMC cells resampled from the real ones with binomial thinning.

    Returns
    -------
    X : scipy.sparse.csr_matrix of shape (n_cells, 2000), float32
        Counts (every cell keeps at least one count).
    y : ndarray of shape (n_cells,)
        Cell type of the source cell.
    """
    import scipy.sparse as sp

    from skdance.datasets import load_pbmc_10x_4k

    X0, y0 = load_pbmc_10x_4k()
    X0 = sp.csr_matrix(X0, dtype=np.float32)
    rng = np.random.default_rng(seed)
    src = rng.integers(0, X0.shape[0], n_cells)
    X = X0[src]
    keep = rng.uniform(0.5, 1.0, n_cells)
    row = np.repeat(np.arange(n_cells), np.diff(X.indptr))
    data = rng.binomial(X.data.astype(np.int64), keep[row]).astype(np.float32)
    empty = np.add.reduceat(data, X.indptr[:-1]) == 0
    if empty.any():  # (rare) fully thinned cells keep their counts
        data[np.isin(row, np.flatnonzero(empty))] = X.data[
            np.isin(row, np.flatnonzero(empty))
        ]
    X = sp.csr_matrix((data, X.indices, X.indptr), shape=X.shape)
    X.eliminate_zeros()
    return X, np.asarray(y0)[src]


def memory_models(X, y, names=None):
    """Return the measured models, built by their tasks' entries, at 1 epoch.

    Parameters
    ----------
    X : sparse matrix of shape (n_cells, n_genes)
        The cells (raw counts).
    y : array-like of shape (n_cells,)
        Their cell types (the clusterers' ``n_clusters``, scDCC's known
        labels).
    names : collection of str or None
        Only these models (default: all).

    Returns
    -------
    dict
        Model name -> ``(estimator, metadata)``: the task's full-run entry
        (seed 0) with every ``*epochs`` parameter set to 1, and the side
        information the task offers every model (fit takes what it
        requests).  Only models with an ``*epochs`` parameter are listed.
    """
    from benchmarks._datasets import DATASETS, Data
    from benchmarks.tasks import get_task
    from benchmarks.tasks._base import Trial

    data = Data(X=X, y=np.asarray(y))
    models = {}
    for task_name in MEMORY_TASKS:
        task = get_task(task_name)
        metadata = task.metadata(data, 0)
        trial = Trial("memory", DATASETS[SOURCE], {"data": data}, metadata=metadata)
        for name, model in task.models(trial, 0).items():
            epochs = [k for k in model.get_params() if k.endswith("epochs")]
            if not epochs or (names is not None and name not in names):
                continue
            if name in models:
                raise RuntimeError(f"model name {name!r} is in two memory tasks")
            models[name] = (model.set_params(**dict.fromkeys(epochs, 1)), metadata)
    return models


def model_names():
    """Return the names of the measured models, in their tasks' order.

    Built on the shipped PBMC subset (offline): which models train in
    epochs depends on the tasks' entries, not on the cells.
    """
    import scipy.sparse as sp

    from skdance.datasets import load_pbmc_4k_subset

    X, y = load_pbmc_4k_subset()
    return list(memory_models(sp.csr_matrix(X), y))


def _release():
    gc.collect()
    lib = ctypes.util.find_library("c")
    if lib:
        try:
            ctypes.CDLL(lib).malloc_trim(0)
        except (OSError, AttributeError):
            pass


def worker(name, n_cells):
    """Fit one model on ``n_cells`` cells; print a JSON line with the result."""
    import torch

    torch.set_num_threads(int(os.environ.get("SKDANCE_BENCH_THREADS", "1")))
    from benchmarks.tasks._base import routed

    X, y = make_cells(n_cells)
    model, metadata = memory_models(X, y, names={name})[name]
    proc = psutil.Process()
    _release()
    base = peak = proc.memory_info().rss
    stop = threading.Event()

    def sample():
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, proc.memory_info().rss)
            stop.wait(0.005)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    start = time.perf_counter()
    routed(model, "fit", X, metadata=metadata)
    seconds = time.perf_counter() - start
    stop.set()
    thread.join()
    peak = max(peak, proc.memory_info().rss)
    print(
        json.dumps(
            {
                "model": name,
                "cells": n_cells,
                "genes": X.shape[1],
                "nnz": int(X.nnz),
                "peak_rss_increase_mib": round((peak - base) / 2**20),
                "seconds": round(seconds, 1),
                "status": "ok",
            }
        ),
        flush=True,
    )


def run_one(name, n_cells, limit_gib, timeout):
    """Run :func:`worker` in a fresh process; kill it above ``limit_gib``."""
    import skdance

    env = dict(os.environ)
    root = str(Path(skdance.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    cmd = [sys.executable, "-m", "benchmarks.memory", "--worker", name, str(n_cells)]
    err = tempfile.TemporaryFile(mode="w+")
    child = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=err, text=True
    )
    proc = psutil.Process(child.pid)
    start, status = time.perf_counter(), None
    max_rss = 0
    while child.poll() is None:
        try:
            max_rss = max(max_rss, proc.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        if max_rss > limit_gib * 2**30:
            status = f"did not fit (RSS over {limit_gib:g} GiB)"
        elif time.perf_counter() - start > timeout:
            status = f"did not finish in {timeout:g} s"
        if status:
            child.kill()
            break
        time.sleep(0.05)
    out, _ = child.communicate()
    err.seek(0)
    stderr = err.read()
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if status is None and child.returncode == 0 and lines:
        return json.loads(lines[-1])
    if status is None and ("MemoryError" in stderr or "Unable to allocate" in stderr):
        last = [ln for ln in stderr.splitlines() if "allocate" in ln or "Memory" in ln]
        status = f"did not fit ({last[-1].strip()[-90:] if last else 'MemoryError'})"
    if status is None:
        sys.stderr.write(stderr[-3000:])
    return {
        "model": name,
        "cells": n_cells,
        "peak_rss_increase_mib": None,
        "seconds": round(time.perf_counter() - start, 1),
        "status": status or f"failed (exit {child.returncode})",
    }


def machine_line():
    """One line describing the machine and library versions."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = psutil.virtual_memory().total / 2**30
    threads = os.environ.get("SKDANCE_BENCH_THREADS", "1")
    return (
        f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB RAM; torch "
        f"{torch.__version__} on CPU, {threads} torch thread(s); "
        f"Python {platform.python_version()}"
    )


def _read_rows(path):
    rows = []
    with open(path) as fh:
        for r in csv.DictReader(fh):
            r["cells"] = int(r["cells"])
            mib = r["peak_rss_increase_mib"]
            r["peak_rss_increase_mib"] = int(float(mib)) if mib else None
            rows.append(r)
    return rows


def _cell(row):
    if row is None:
        return "—"
    mib = row["peak_rss_increase_mib"]
    return row["status"] if mib is None else f"{mib:,}"


def write(rows, out, machine, baseline=None, baseline_label="before"):
    """Write the CSV and the Markdown table (with a baseline column if given)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fields = ["model", "cells", "peak_rss_increase_mib", "seconds", "status"]
    with open(out.with_suffix(".csv"), "w", newline="") as fh:
        writer = csv.DictWriter(fh, fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    lines = [
        "# Peak memory of a fit vs. number of cells",
        "",
        "Real PBMC 4k cells (2,000 genes, raw counts kept as CSR) resampled to "
        "n cells with binomial thinning; one fresh process per (model, cells); "
        "peak RSS increase during `fit` over the RSS just before it (sampled "
        "every 5 ms). Each model is its benchmark pipeline (gene selection "
        "included) with every epochs parameter set to 1 (deep clusterers: 1 "
        "pretraining + 1 clustering epoch). Made by "
        "`python -m benchmarks.memory`.",
        "",
        f"Machine: {machine}.",
        "",
    ]
    base = {(r["model"], int(r["cells"])): r for r in baseline or []}
    head = "| model | cells | peak RSS increase (MiB) | seconds | status |"
    rule = "|---|---|---|---|---|"
    if base:
        head += (
            f" {baseline_label}: peak RSS increase (MiB) | {baseline_label}: seconds |"
        )
        rule += "---|---|"
    lines += [head, rule]
    for r in rows:
        mib = r["peak_rss_increase_mib"]
        line = (
            f"| {r['model']} | {r['cells']:,} | "
            f"{'—' if mib is None else f'{mib:,}'} | {r['seconds']} | {r['status']} |"
        )
        if base:
            b = base.get((r["model"], int(r["cells"])))
            line += f" {_cell(b)} | {'—' if b is None else b['seconds']} |"
        lines.append(line)
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


def main(argv=None):
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models", nargs="*", help="model names (default: every measured model)"
    )
    parser.add_argument("--cells", nargs="*", type=int, default=list(CELLS))
    parser.add_argument("--limit-gib", type=float, default=12.0)
    parser.add_argument("--timeout", type=float, default=3600.0)
    parser.add_argument("--out", type=Path, default=RESULTS / "memory")
    parser.add_argument(
        "--merge", action="store_true", help="update rows of an existing CSV"
    )
    parser.add_argument(
        "--baseline", type=Path, help="CSV of an earlier run, shown beside"
    )
    parser.add_argument("--baseline-label", default="before")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker[0], int(args.worker[1]))
        return
    known = model_names()
    if args.models is None:
        args.models = known
    unknown = sorted(set(args.models) - set(known))
    if unknown:
        parser.error(f"unknown models {unknown}; choose from {known}")
    rows = []
    csv_path = args.out.with_suffix(".csv")
    if args.merge and csv_path.exists():
        rows = _read_rows(csv_path)
    baseline = _read_rows(args.baseline) if args.baseline else None
    machine = machine_line()
    if not args.models or not args.cells:  # rewrite the tables only
        write(rows, args.out, machine, baseline, args.baseline_label)
    for name in args.models:
        for n_cells in args.cells:
            result = run_one(name, n_cells, args.limit_gib, args.timeout)
            print(json.dumps(result), flush=True)
            rows = [
                r
                for r in rows
                if not (r["model"] == name and int(r["cells"]) == n_cells)
            ]
            rows.append(result)
            order = {m: i for i, m in enumerate(known)}
            rows.sort(key=lambda r: (order.get(r["model"], 99), int(r["cells"])))
            write(rows, args.out, machine, baseline, args.baseline_label)


if __name__ == "__main__":
    main()
