"""Run tasks, collect per-seed rows, write CSV and Markdown tables."""

import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold

from benchmarks import _tasks
from benchmarks._measure import PeakMemory
from skdance.metrics import (
    adjusted_rand_score,
    cluster_accuracy,
    normalized_mutual_info_score,
)

RESULTS = Path(__file__).resolve().parent / "results"


def _log(verbose, msg):
    if verbose:
        print(msg, flush=True)


N_FOLDS = 5


def run_annotation(dsets, models, folds, verbose=True):
    """Stratified 5-fold cross-validation (one fixed split per dataset)."""
    rows = []
    for dset in dsets:
        X, y = dset.load()
        splits = list(
            StratifiedKFold(N_FOLDS, shuffle=True, random_state=0).split(X, y)
        )
        for fold in folds:
            train, test = splits[fold]
            for name, pipe in _tasks.annotation_models(dset, fold).items():
                if models and name not in models:
                    continue
                with PeakMemory() as m:
                    pipe.fit(X[train], y[train])
                start = time.perf_counter()
                pred = pipe.predict(X[test])
                predict_s = time.perf_counter() - start
                acc = float(np.mean(pred == y[test]))
                f1 = float(f1_score(y[test], pred, average="macro"))
                rows.append(
                    {
                        "dataset": dset.name,
                        "model": name,
                        "fold": fold,
                        "accuracy": acc,
                        "macro_f1": f1,
                        "fit_time_s": m.seconds,
                        "predict_time_s": predict_s,
                        "peak_mem_mib": m.peak_mib,
                        "dance_reported": None,
                    }
                )
                _log(
                    verbose,
                    f"  {dset.name:28s} {name:14s} fold={fold} acc={acc:.3f} "
                    f"macro-F1={f1:.3f} fit={m.seconds:.1f}s",
                )
    return pd.DataFrame(rows)


def _clustering_job(dset, seed, models, quick, verbose, threads=None):
    """All models on one dataset for one seed (one worker process)."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    X, y = dset.load()
    k = int(np.unique(y).size)
    base = dset.name  # the mouse ES subset is not DANCE's file: no reference
    best, best_model = _tasks.dance_best_clustering(base)
    rows = []
    for name, pipe in _tasks.clustering_models(dset, seed, k, quick).items():
        if models and name not in models:
            continue
        pipe = clone(pipe)
        params = _tasks.clustering_fit_params(name, y, seed)
        with PeakMemory() as m, warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            labels = pipe.fit_predict(X, **params)
        rows.append(
            {
                "dataset": dset.name,
                "model": name,
                "seed": seed,
                "ari": adjusted_rand_score(y, labels),
                "nmi": normalized_mutual_info_score(y, labels),
                "acc": cluster_accuracy(y, labels),
                "n_clusters_found": int(np.unique(labels).size),
                "n_clusters_true": k,
                "fit_time_s": m.seconds,
                "peak_mem_mib": m.peak_mib,
                "dance_reported": _tasks.dance_clustering(name, base),
                "dance_best": None if best is None else f"{best:.2f} ({best_model})",
            }
        )
        r = rows[-1]
        _log(
            verbose,
            f"  {dset.name:28s} {name:13s} seed={seed} "
            f"ARI={r['ari']:.3f} NMI={r['nmi']:.3f} fit={m.seconds:.1f}s",
        )
    return rows


def run_clustering(dsets, models, seeds, verbose=True, quick=False, jobs=1):
    tasks = [(d, s) for d in dsets for s in seeds]
    if jobs == 1:
        results = [_clustering_job(d, s, models, quick, verbose) for d, s in tasks]
    else:
        from joblib import Parallel, delayed

        # one torch thread per worker process: the jobs share the cores
        results = Parallel(n_jobs=jobs)(
            delayed(_clustering_job)(d, s, models, quick, verbose, threads=1)
            for d, s in tasks
        )
    return pd.DataFrame([r for rs in results for r in rs])


def _leiden_ari(X, y, seed, n_clusters):
    """ARI of scanpy-recipe Leiden clusters (k = number of labels) on counts."""
    pipe = _tasks.imputation_clustering(seed, n_clusters)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return adjusted_rand_score(y, pipe.fit_predict(X))


def _gene_mean_imputation(X):
    """Baseline: each gene's mean count, scaled by the cell's library size."""
    lib = np.asarray(X.sum(axis=1), dtype=np.float64).ravel()
    gene_share = np.asarray(X.sum(axis=0), dtype=np.float64).ravel() / lib.sum()
    return lib[:, None] * gene_share[None, :]


def run_imputation(dsets, models, seeds, verbose=True, quick=False):
    """DANCE's protocol: hide 10% of each cell's counts, impute, score them."""
    from skdance.imputation import imputation_scores, mask_dropout

    rows = []
    for dset in dsets:
        X, y = dset.load()
        for seed in seeds:
            X_masked, mask = mask_dropout(X, _tasks.MASK_RATE, random_state=seed)
            genes = _tasks.imputation_genes(X_masked)
            Xt, Xm, mk = X[:, genes], X_masked[:, genes], mask[:, genes]
            k = None if y is None else int(np.unique(y).size)
            ari_input = None if y is None else _leiden_ari(Xm, y, seed, k)
            candidates = {"gene mean": None, **_tasks.imputation_models(seed, quick)}
            for name, model in candidates.items():
                if models and name not in models:
                    continue
                with PeakMemory() as m:
                    imputed = (
                        _gene_mean_imputation(Xm)
                        if model is None
                        else clone(model).fit_transform(Xm)
                    )
                scores = imputation_scores(Xt, imputed, mk)
                ari = None if y is None else _leiden_ari(imputed, y, seed, k)
                rows.append(
                    {
                        "dataset": dset.name,
                        "model": name,
                        "seed": seed,
                        **scores,
                        "ari": ari,
                        "ari_masked_input": ari_input,
                        "n_genes": int(genes.size),
                        "n_hidden": int(mk.sum()),
                        "fit_time_s": m.seconds,
                        "peak_mem_mib": m.peak_mib,
                    }
                )
                _log(
                    verbose,
                    f"  {dset.name:20s} {name:10s} seed={seed} "
                    f"MSE={scores['mse']:.3f} MRE={scores['mre']:.3f} "
                    f"r={scores['pearson']:.3f} fit={m.seconds:.1f}s",
                )
    return pd.DataFrame(rows)


def _split_reference_spots(X, y, seed, n_spots, layout):
    """Disjoint reference / spot cells (stratified halves) and pseudo-spots."""
    from sklearn.model_selection import train_test_split

    from skdance.datasets import make_pseudo_spots

    types, counts = np.unique(y, return_counts=True)
    keep = np.isin(y, types[counts >= _tasks.DECONV_MIN_CELLS])
    X, y = X[keep], y[keep]
    ref, rest = train_test_split(
        np.arange(y.size), test_size=0.5, stratify=y, random_state=seed
    )
    spots, props, coords = make_pseudo_spots(
        X[rest], y[rest], n_spots=n_spots, layout=layout, random_state=seed
    )
    return X[ref], y[ref], spots, props, coords


def _mean_type_pearson(P, Q):
    """Mean over cell types of the Pearson r between true and predicted columns."""
    rs = [
        np.corrcoef(P[:, k], Q[:, k])[0, 1]
        for k in range(P.shape[1])
        if P[:, k].std() > 0 and Q[:, k].std() > 0
    ]
    return float(np.mean(rs)) if rs else float("nan")


def run_deconvolution(dsets, models, seeds, verbose=True, quick=False):
    """Pseudo-spots from held-out cells; MSE and mean per-type Pearson r."""
    from skdance.metrics import proportion_mse

    n_spots = 100 if quick else _tasks.DECONV_SPOTS
    rows = []
    for dset in dsets:
        X, y = dset.load()
        for seed in seeds:
            for layout in _tasks.DECONV_LAYOUTS:
                X_ref, y_ref, spots, P, coords = _split_reference_spots(
                    X, y, seed, n_spots, layout
                )
                genes = _tasks.top_genes(X_ref, _tasks.DECONV_GENES)
                X_ref, spots = X_ref[:, genes], spots[:, genes]
                name = f"{dset.name} ({layout})"
                uniform_mse = proportion_mse(P, np.full_like(P, 1.0 / P.shape[1]))
                rows.append(
                    {
                        "dataset": name,
                        "model": "uniform",
                        "seed": seed,
                        "mse": uniform_mse,
                        "pearson": float("nan"),
                        "fit_time_s": 0.0,
                        "peak_mem_mib": 0.0,
                    }
                )
                for mname, model in _tasks.deconvolution_models(seed, quick).items():
                    if models and mname not in models:
                        continue
                    with PeakMemory() as m:
                        Q = clone(model).fit(X_ref, y_ref).predict(spots, coords=coords)
                    mse = proportion_mse(P, Q)
                    rows.append(
                        {
                            "dataset": name,
                            "model": mname,
                            "seed": seed,
                            "mse": mse,
                            "pearson": _mean_type_pearson(P, Q),
                            "fit_time_s": m.seconds,
                            "peak_mem_mib": m.peak_mib,
                        }
                    )
                    _log(
                        verbose,
                        f"  {name:32s} {mname:12s} seed={seed} "
                        f"MSE={mse:.4f} (uniform {uniform_mse:.4f}) "
                        f"fit+predict={m.seconds:.1f}s",
                    )
    return pd.DataFrame(rows)


TASKS = {
    "annotation": (run_annotation, ["accuracy", "macro_f1"]),
    "clustering": (run_clustering, ["ari", "nmi", "acc"]),
    "imputation": (
        run_imputation,
        ["mse", "rmse", "mre", "pearson", "ari", "ari_masked_input"],
    ),
    "deconvolution": (run_deconvolution, ["mse", "pearson"]),
}


def _machine():
    """Describe the machine the results were measured on."""
    import os
    import platform

    return f"{os.cpu_count()} CPU cores ({platform.machine()}, {platform.system()})"


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
    """Rows of ``old`` whose (dataset, model) was not rerun, then ``new``."""
    rerun = set(zip(new["dataset"], new["model"]))
    keep = [(d, m) not in rerun for d, m in zip(old["dataset"], old["model"])]
    df = pd.concat([old[keep], new], ignore_index=True)
    # group each dataset's rows together, datasets in their first-seen order
    order = {d: i for i, d in enumerate(pd.unique(pd.concat([old, new])["dataset"]))}
    return df.sort_values(
        "dataset", key=lambda c: c.map(order), kind="stable", ignore_index=True
    )


def to_markdown(table):
    cols = list(table.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in table.iterrows():
        lines.append("| " + " | ".join(str(row[c]) for c in cols) + " |")
    return "\n".join(lines)


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
):
    func, metrics = TASKS[task]
    folds = list(range(N_FOLDS)) if folds is None else list(folds)
    if quick:
        dsets, seeds, folds = [_tasks.QUICK_DATASET], seeds[:1], folds[:1]
    else:
        names = dataset_names or _tasks.DEFAULT_DATASETS[task]
        unknown = set(names) - set(_tasks.DATASETS)
        if unknown:
            raise SystemExit(
                f"unknown datasets {sorted(unknown)}; "
                f"choose from {list(_tasks.DATASETS)}"
            )
        dsets = [_tasks.DATASETS[n] for n in names]
    if task == "clustering":
        _log(verbose, f"[{task}] {len(dsets)} dataset(s), seeds {list(seeds)}")
        df = func(dsets, models, list(seeds), verbose, quick=quick, jobs=jobs)
        runs = "seeds"
    elif task == "deconvolution":
        _log(verbose, f"[{task}] {len(dsets)} dataset(s), seeds {list(seeds)}")
        df = func(dsets, models, list(seeds), verbose, quick=quick)
        runs = (
            f"seeds (each seed splits the cells into reference and spot "
            f"halves and draws {_tasks.DECONV_SPOTS} pseudo-spots of 2-8 "
            "spot-half cells, laid out at random or with spatially smooth "
            "compositions); MSE of the proportions over spots and types; "
            "pearson = mean over cell types of the correlation between true "
            "and predicted proportions across spots; fit time = fit + "
            "predict (DSTG trains in predict); 'uniform' predicts 1/K"
        )
    elif task == "imputation":
        _log(verbose, f"[{task}] {len(dsets)} dataset(s), seeds {list(seeds)}")
        df = func(dsets, models, list(seeds), verbose, quick=quick)
        runs = (
            f"seeds (each seed hides a different {_tasks.MASK_RATE:.0%} of "
            "every cell's counts); MSE, RMSE and Pearson on log1p counts, MRE "
            "= mean |log1p(x_hat) - log1p(x)| / log1p(x) over the hidden "
            "entries; ARI of Leiden clusters of the imputed (ari) and the "
            "masked (ari_masked_input) counts; 'gene mean' imputes each "
            "gene's mean share of the masked counts times the cell's "
            "library size"
        )
    else:
        _log(verbose, f"[{task}] {len(dsets)} dataset(s), folds {folds}")
        df = func(dsets, models, folds, verbose)
        runs = f"the folds of a fixed stratified {N_FOLDS}-fold split"
    RESULTS.mkdir(exist_ok=True)
    stem = f"{task}_quick" if quick else task
    if merge and (RESULTS / f"{stem}.csv").exists():
        df = merge_results(pd.read_csv(RESULTS / f"{stem}.csv"), df)
    table = summarize(df, metrics, digits=4 if task == "deconvolution" else 3)
    df.to_csv(RESULTS / f"{stem}.csv", index=False)
    md = to_markdown(table)
    (RESULTS / f"{stem}.md").write_text(
        f"# {task}{' (quick)' if quick else ''}\n\n"
        f"Mean ± std over {runs}; fit time is the mean of the pipeline `fit` "
        f"(or `fit_predict`) wall time on {_machine()}"
        + (
            f" shared by {jobs} worker processes (one torch thread each)"
            if jobs > 1 and task == "clustering"
            else ""
        )
        + "; peak memory is the largest RSS increase during a fit, from a "
        "baseline taken after returning freed heap memory to the OS (memory "
        "the process still holds can make it read low).\n\n" + md + "\n"
    )
    print(f"\n{task}: written {RESULTS / stem}.csv and .md\n\n{md}\n", flush=True)
    return df
