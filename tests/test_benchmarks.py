"""The main job (``python -m benchmarks all --quick``) runs offline, writes tables."""

import pandas as pd

from benchmarks import _runner
from benchmarks.__main__ import main


def test_quick_benchmark_writes_tables(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(_runner, "RESULTS", tmp_path)
    monkeypatch.setenv("SKDANCE_DATA", str(tmp_path / "no-data-here"))  # offline
    main(["all", "--quick", "-q"])
    out = capsys.readouterr().out
    annotation = pd.read_csv(tmp_path / "annotation_quick.csv")
    clustering = pd.read_csv(tmp_path / "clustering_quick.csv")
    assert set(annotation["model"]) == {
        "ACTINN",
        "ScDeepsort",
        "SVM",
        "Celltypist",
        "Celltypist+voting",
        "SingleCellNet",
    }
    assert {"macro_f1", "predict_time_s", "fold"} <= set(annotation.columns)
    assert set(clustering["model"]) == {
        "Leiden",
        "Louvain",
        "scDeepCluster",
        "scDCC",
        "scTAG",
        "scDSC",
        "graph-sc",
    }
    assert (annotation["accuracy"] > 0.6).all()
    # a tenth of the deep schedules: far above random labelling (ARI ~0), and
    # the graph baselines at their usual level
    assert (clustering["ari"] > 0.1).all()
    baselines = clustering[clustering["model"].isin(["Leiden", "Louvain"])]
    assert (baselines["ari"] > 0.5).all()
    assert {"fit_time_s", "peak_mem_mib", "dance_reported"} <= set(clustering.columns)
    imputation = pd.read_csv(tmp_path / "imputation_quick.csv")
    assert set(imputation["model"]) == {
        "gene mean",
        "MAGIC",
        "DeepImpute",
        "GraphSCI",
        "scGNN",
    }
    assert {"mse", "rmse", "mre", "pearson", "ari", "ari_masked_input"} <= set(
        imputation.columns
    )
    # every model recovers hidden counts better than leaving them at 0 (log1p
    # MSE of the zeros is ~1.15 on this subset)
    assert (imputation["mse"] < 1.0).all()
    md = (tmp_path / "clustering_quick.md").read_text()
    assert "| dataset | model |" in md and "| dataset | model |" in out


def test_dance_reference_numbers():
    from benchmarks import _tasks

    assert _tasks.dance_clustering("scDCC", "pbmc_10x_4k") == 0.82
    assert _tasks.dance_clustering("graph-sc", "worm_neuron_cell") == 0.57
    assert _tasks.dance_best_clustering("mouse_bladder_cell") == (0.68, "graph-sc")
    assert _tasks.dance_best_clustering("mouse_es_cell_subset") == (None, "")


def test_merge_keeps_rows_not_rerun():
    from benchmarks._runner import merge_results

    old = pd.DataFrame(
        {
            "dataset": ["a", "a", "b", "b"],
            "model": ["m1", "m2", "m1", "m2"],
            "ari": [0.1, 0.2, 0.3, 0.4],
        }
    )
    new = pd.DataFrame({"dataset": ["a"], "model": ["m2"], "ari": [0.9]})
    merged = merge_results(old, new)
    assert list(merged["dataset"]) == ["a", "a", "b", "b"]
    assert merged.set_index(["dataset", "model"])["ari"].to_dict() == {
        ("a", "m1"): 0.1,
        ("a", "m2"): 0.9,
        ("b", "m1"): 0.3,
        ("b", "m2"): 0.4,
    }
