"""The benchmark task registry, its generic runner and the main job.

The main job (``python -m benchmarks all --quick``) runs offline and writes
every task's tables; each task declares its datasets, full and quick
pipelines, evaluation, DANCE's numbers and protocol text; the runner runs any
registered task, including a tiny one defined here.
"""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, clone
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from benchmarks import _runner
from benchmarks.__main__ import main
from benchmarks._datasets import DATASETS, QUICK_DATASET, Data, DatasetSpec
from benchmarks.tasks import TASKS, get_task
from benchmarks.tasks._base import DanceReference, Task, Trial, consumed, routed
from skdance.utils._tags import get_skdance_tags

EXPECTED_TASKS = [
    "annotation",
    "clustering",
    "imputation",
    "deconvolution",
    "spatial_domain",
    "modality_prediction",
    "modality_matching",
    "joint_embedding",
]
# every quick run uses data shipped inside the package (offline): the PBMC
# subset for the single-cell tasks, the band of DLPFC slice 151673 for the
# spatial one, the NeurIPS CITE starter for the multimodal ones
QUICK_SPATIAL = "dlpfc_151673_subset"
QUICK_MULTIMODAL = "neurips2021_bmmc_cite_starter"
QUICK_REAL = {
    "spatial_domain": QUICK_SPATIAL,
    "modality_prediction": QUICK_MULTIMODAL,
    "modality_matching": QUICK_MULTIMODAL,
    "joint_embedding": QUICK_MULTIMODAL,
}


# -- the registry ------------------------------------------------------------
def test_every_task_registered_in_order():
    assert list(TASKS) == EXPECTED_TASKS
    for name, task in TASKS.items():
        assert isinstance(task, Task) and task.name == name
        assert get_task(name) is task
    with pytest.raises(ValueError, match="unknown task"):
        get_task("no-such-task")


def _params(model):
    steps = model.steps if isinstance(model, Pipeline) else [("", model)]
    return [(type(s).__name__, s.get_params(deep=False)) for _, s in steps]


@pytest.mark.parametrize("name", EXPECTED_TASKS)
def test_task_declares_everything(name):
    task = TASKS[name]
    # datasets: the full run's, all in the catalogue and providing what the
    # task needs; the quick run's is the shipped one
    assert task.datasets and set(task.datasets) <= set(DATASETS)
    for spec in task.dataset_specs():
        assert set(task.requires) <= spec.provides
    quick_spec = DATASETS[QUICK_REAL[name]] if name in QUICK_REAL else None
    assert task.dataset_specs(quick=True) == [quick_spec or QUICK_DATASET]
    with pytest.raises(SystemExit, match="unknown datasets"):
        task.dataset_specs(["no-such-data"])
    # columns: the runner's own plus the metrics, one run column
    assert task.run_column in ("seed", "fold")
    assert {"dataset", "model", task.run_column, "fit_time_s", "peak_mem_mib"} <= set(
        task.columns
    )
    assert task.metrics and set(task.metrics) <= set(task.columns)
    # DANCE's numbers: a paper table, numbers per model in its column order
    ref = task.reference
    assert isinstance(ref, DanceReference) and ref.table.startswith("Table ")
    assert all(len(v) == len(ref.columns) for v in ref.scores.values())
    assert set(ref.comparable.values()) <= set(ref.columns)
    # protocol text, full and quick (the quick one says what quick runs)
    full, quick = task.describe(), task.describe(quick=True)
    assert full.startswith("Mean ± std over ")
    assert quick.startswith("Quick run: ") and task.quick_text in quick
    # pipelines, full and quick, on a trial of the shipped data: the same
    # models, the quick ones with shorter settings somewhere
    quick_spec = quick_spec or QUICK_DATASET
    data = quick_spec.load()
    trial = next(iter(task.trials(data, quick_spec, 0, quick=True)))
    assert isinstance(trial, Trial)
    full_models = task.models(trial, 0, quick=False)
    quick_models = task.models(trial, 0, quick=True)
    assert list(full_models) == list(quick_models)
    assert set(task.baselines) <= set(full_models)
    assert any(_params(full_models[m]) != _params(quick_models[m]) for m in full_models)
    assert task.runs([0, 1, 2], None, quick=True) == [0]


def _final_step(model):
    return model.steps[-1][1] if isinstance(model, Pipeline) else model


@pytest.mark.parametrize("name", EXPECTED_TASKS)
def test_every_model_entry_is_complete(name):
    # a model is one entry of its task: a name and the estimator built for
    # the trial; what the task offers as side information reaches it through
    # routing alone, so a model that needs the coordinates (its tags)
    # requests them, and every offered keyword has a taker
    task = TASKS[name]
    spec = DATASETS[QUICK_REAL[name]] if name in QUICK_REAL else QUICK_DATASET
    trial = next(iter(task.trials(spec.load(), spec, 0, quick=True)))
    models = task.models(trial, 0, quick=True)
    assert models and all(isinstance(m, str) and m for m in models)
    takers = set()
    for model_name, model in models.items():
        assert isinstance(model, BaseEstimator), model_name
        assert clone(model).get_params(deep=False).keys() == (
            model.get_params(deep=False).keys()
        )
        taken = set(consumed(model, "fit_predict", trial.metadata))
        taken |= set(consumed(model, "predict", trial.metadata))
        takers |= taken
        if "coords" in trial.metadata and (
            get_skdance_tags(_final_step(model)).requires_coords
        ):
            assert "coords" in taken, f"{name}: {model_name} does not request coords"
    assert takers == set(trial.metadata)


class _Consumer(BaseEstimator):
    """Record the coordinates its fit received (it requests them)."""

    __metadata_request__fit = {"coords": True}

    def fit(self, X, y=None, coords=None):
        self.coords_ = coords
        return self


def test_routed_gives_each_model_what_it_requests():
    X, coords = np.ones((4, 2)), np.arange(8.0).reshape(4, 2)
    offered = {"coords": coords, "constraint_labels": np.zeros(4)}
    pipe = Pipeline([("dummy", "passthrough"), ("use", _Consumer())])
    assert set(consumed(pipe, "fit", offered)) == {"coords"}
    routed(pipe, "fit", X, metadata=offered)
    np.testing.assert_array_equal(pipe[-1].coords_, coords)
    # a model that requests nothing is called without any metadata (an
    # unrequested keyword would be an error under routing)
    lr = LogisticRegression()
    assert consumed(lr, "fit", offered) == {}
    routed(lr, "fit", X, np.array([0, 1, 0, 1]), metadata=offered)
    assert routed(_Consumer(), "fit", X, metadata=None).coords_ is None


def test_memory_measures_the_task_entries():
    import scipy.sparse as sp

    from benchmarks import memory
    from skdance.datasets import load_pbmc_4k_subset
    from skdance.nn import history_values

    X, y = load_pbmc_4k_subset()
    X, y = sp.csr_matrix(X)[::6], np.asarray(y)[::6]  # 200 cells
    models = memory.memory_models(X, y)
    # every model of the memory tasks that trains in epochs, by its task's name
    trial = Trial("memory", DATASETS[memory.SOURCE], {"data": Data(X=X, y=y)})
    expected = [
        m
        for t in memory.MEMORY_TASKS
        for m, est in TASKS[t].models(trial, 0).items()
        if any(k.endswith("epochs") for k in est.get_params())
    ]
    assert list(models) == expected
    assert {"scDCC", "graph-sc", "DeepImpute"} <= set(models)
    for model, _ in models.values():
        epochs = {k: v for k, v in model.get_params().items() if k.endswith("epochs")}
        assert set(epochs.values()) == {1}
    # scDCC gets the clustering task's known labels through routing
    model, metadata = models["scDCC"]
    assert set(consumed(model, "fit", metadata)) == {"constraint_labels"}
    routed(model, "fit", X, metadata=metadata)
    loss = history_values(model[-1].history_, "constraint_loss", phase="cluster")
    assert np.all(np.asarray(loss) > 0)


def test_dance_reference_numbers():
    ref = TASKS["clustering"].reference
    assert ref.get("scDCC", "pbmc_10x_4k") == 0.82
    assert ref.get("graph-sc", "worm_neuron_cell") == 0.57
    assert ref.best("mouse_bladder_cell") == (0.68, "graph-sc")
    # the mouse ES subset is not DANCE's file: no number beside ours
    assert ref.best("mouse_es_cell_subset") == (None, "")
    assert ref.get("scDCC", "mouse_es_cell_subset") is None
    cols = TASKS["clustering"].reference_columns("scTAG", "pbmc_10x_4k")
    assert cols == {"dance_reported": 0.75, "dance_best": "0.82 (scDCC)"}
    # annotation quotes Table 5 but none of its datasets is here
    assert TASKS["annotation"].reference.get("SVM", "pbmc_10x_4k") is None
    assert TASKS["annotation"].reference.scores["ACTINN"][0] == 0.860


# -- datasets: aligned views, paired modalities, coordinates -------------------
def _paired_spatial(n=60, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1, 2], n // 3)
    X = rng.poisson(1.0 + 3.0 * (y[:, None] == np.arange(12) % 3), (n, 12))
    mod2 = rng.normal(y[:, None], 0.3, (n, 4))
    coords = np.c_[y * 10.0 + rng.random(n), rng.random(n)]
    return Data(X.astype(float), y, mod2=mod2, coords=coords, batch=np.arange(n) % 2)


def test_data_carries_aligned_views():
    data = _paired_spatial()
    assert data.paired and data.spatial and data.n_obs == 60
    X, y = data  # the single-modality view
    assert X is data.X and y is data.y
    sub = data.subset(np.arange(10, 20))
    assert sub.X.shape == (10, 12) and sub.mod2.shape == (10, 4)
    np.testing.assert_array_equal(sub.coords, data.coords[10:20])
    np.testing.assert_array_equal(sub.batch, data.batch[10:20])
    with pytest.raises(ValueError, match="aligned by row"):
        Data(np.zeros((5, 3)), coords=np.zeros((4, 2)))


def test_data_from_anndata():
    ad = pytest.importorskip("anndata")
    data = _paired_spatial()
    obs = pd.DataFrame(
        {"cell_type": data.y, "batch": data.batch},
        index=[f"c{i}" for i in range(data.n_obs)],
    )
    rna = ad.AnnData(data.X, obs=obs, obsm={"spatial": data.coords})
    adt = ad.AnnData(data.mod2, obs=obs[[]])
    spatial = Data.from_anndata(rna, label_key="cell_type", spatial_key="spatial")
    assert spatial.spatial and not spatial.paired
    np.testing.assert_array_equal(spatial.coords, data.coords)
    paired = Data.from_paired(rna, adt, label_key="cell_type", batch_key="batch")
    assert paired.paired and paired.mod2.shape == (60, 4)
    np.testing.assert_array_equal(paired.y, data.y)
    with pytest.raises(ValueError, match="same cells"):
        Data.from_paired(rna, adt[::-1])


def test_dataset_spec_checks_declared_views():
    spec = DatasetSpec("tiny", _paired_spatial, modalities=("gex", "adt"), spatial=True)
    assert spec.provides == {"labels", "coords", "mod2"}
    assert spec.load().paired
    wrong = DatasetSpec("tiny", _paired_spatial)  # says: no coords, no mod2
    with pytest.raises(ValueError, match="against its description"):
        wrong.load()


# -- the generic runner on a tiny task -------------------------------------------
class _Centroid(BaseEstimator):
    """Predict the label of the nearest class centroid of the coordinates."""

    __metadata_request__fit = {"coords": True}
    __metadata_request__predict = {"coords": True}

    def fit(self, X, y, coords=None):
        self.classes_ = np.unique(y)
        self.centers_ = np.array([coords[y == c].mean(0) for c in self.classes_])
        return self

    def predict(self, X, coords=None):
        d = ((coords[:, None] - self.centers_[None]) ** 2).sum(-1)
        return self.classes_[d.argmin(1)]


class _OnMod2(BaseEstimator):
    """Logistic regression on the paired modality (side information)."""

    __metadata_request__fit = {"mod2": True}
    __metadata_request__predict = {"mod2": True}

    def fit(self, X, y, mod2=None):
        self.model_ = LogisticRegression().fit(mod2, y)
        return self

    def predict(self, X, mod2=None):
        return self.model_.predict(mod2)


class TinyTask(Task):
    """Predict labels from expression, from the paired modality or from space.

    The paired modality and the coordinates are side information: offered
    to every model, taken by the models that request them.
    """

    name = "tiny"
    metrics = ("accuracy",)
    columns = ("dataset", "model", "seed", "accuracy", "n_test", "fit_time_s")
    columns += ("peak_mem_mib", "dance_reported")
    datasets = ()
    quick_datasets = (
        DatasetSpec("tiny", _paired_spatial, modalities=("gex", "adt"), spatial=True),
    )
    requires = ("labels", "coords", "mod2")
    baselines = ("majority",)
    reference = DanceReference("Table 0", "accuracy", ("d",), {"mod2": (0.5,)})
    quick_text = "the tiny task on 60 cells."

    def trials(self, data, spec, run, quick=False):
        rng = np.random.default_rng(run)
        test = rng.permutation(data.n_obs)[:20]
        train = np.setdiff1d(np.arange(data.n_obs), test)
        train, test = data.subset(train), data.subset(test)
        yield Trial(
            spec.name,
            spec,
            {
                "train": train,
                "test": test,
                "test_metadata": {"coords": test.coords, "mod2": test.mod2},
            },
            extra={"n_test": test.n_obs},
            metadata={"coords": train.coords, "mod2": train.mod2},
        )

    def models(self, trial, run, quick=False):
        return {
            "majority": DummyClassifier(),
            "expression": LogisticRegression(max_iter=200 if quick else 500),
            "mod2": _OnMod2(),
            "space": _Centroid(),
        }

    def fit(self, name, model, trial, run):
        train = trial.inputs["train"]
        return routed(model, "fit", train.X, train.y, metadata=trial.metadata)

    def score(self, name, output, trial):
        test = trial.inputs["test"]
        metadata = trial.inputs["test_metadata"]
        pred = routed(output, "predict", test.X, metadata=metadata)
        return {"accuracy": float(np.mean(pred == test.y))}

    def reference_columns(self, model, dataset):
        return {"dance_reported": self.reference.scores.get(model, (None,))[0]}


def test_runner_runs_a_tiny_task(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(TASKS, "tiny", TinyTask())
    monkeypatch.setattr(_runner, "RESULTS", tmp_path)
    secs = main(["tiny", "--quick", "--seeds", "3", "4"])
    assert set(secs) == {"tiny"}
    df = pd.read_csv(tmp_path / "tiny_quick.csv")
    assert list(df.columns) == list(TinyTask.columns)
    assert list(df["model"]) == ["majority", "expression", "mod2", "space"]
    assert (df["seed"] == 3).all() and (df["n_test"] == 20).all()  # quick: 1 seed
    acc = df.set_index("model")["accuracy"]
    assert acc["mod2"] > 0.9 and acc["space"] > 0.9 and acc["majority"] < 0.6
    assert df.set_index("model")["dance_reported"].to_dict()["mod2"] == 0.5
    md = (tmp_path / "tiny_quick.md").read_text()
    assert md.startswith("# tiny (quick)\n\nQuick run: the tiny task on 60 cells.")
    assert "| dataset | model | seeds | accuracy |" in md
    assert "space" in capsys.readouterr().out
    # --models reruns one model (baselines always run); --merge keeps the rest
    main(["tiny", "--quick", "--seeds", "3", "--models", "space", "--merge", "-q"])
    merged = pd.read_csv(tmp_path / "tiny_quick.csv")
    assert sorted(merged["model"]) == sorted(df["model"])
    key = ["model", "seed", "accuracy", "n_test", "dance_reported"]
    pd.testing.assert_frame_equal(
        merged[key].sort_values("model", ignore_index=True),
        df[key].sort_values("model", ignore_index=True),
    )
    # the full run needs datasets providing coordinates and a second modality
    with pytest.raises(SystemExit, match="does not provide"):
        main(["tiny", "--datasets", "pbmc_10x_4k"])


def test_runner_rejects_rows_off_the_declared_columns(tmp_path):
    class Wrong(TinyTask):
        columns = ("dataset", "model", "seed", "accuracy", "fit_time_s")

    with pytest.raises(RuntimeError, match="differ from the declared"):
        _runner.run(Wrong(), quick=True, verbose=False, results_dir=tmp_path)


def test_merge_keeps_rows_not_rerun():
    old = pd.DataFrame(
        {
            "dataset": ["a", "a", "b", "b"],
            "model": ["m1", "m2", "m1", "m2"],
            "ari": [0.1, 0.2, 0.3, 0.4],
        }
    )
    new = pd.DataFrame({"dataset": ["a"], "model": ["m2"], "ari": [0.9]})
    merged = _runner.merge_results(old, new)
    assert list(merged["dataset"]) == ["a", "a", "b", "b"]
    assert merged.set_index(["dataset", "model"])["ari"].to_dict() == {
        ("a", "m1"): 0.1,
        ("a", "m2"): 0.9,
        ("b", "m1"): 0.3,
        ("b", "m2"): 0.4,
    }
    # with a run column, only the rerun seeds are replaced
    old["seed"] = [0, 0, 0, 0]
    old = pd.concat([old, old.assign(seed=1, ari=old["ari"] + 0.01)])
    new = pd.DataFrame({"dataset": ["a"], "model": ["m2"], "seed": [1], "ari": [0.9]})
    merged = _runner.merge_results(old, new).set_index(["dataset", "model", "seed"])
    assert len(merged) == 8
    assert merged.loc[("a", "m2", 1), "ari"] == 0.9
    assert merged.loc[("a", "m2", 0), "ari"] == 0.2


def test_ranking_test_counts_paired_wins():
    from benchmarks.tasks.modality_prediction import ranking_test

    # two rows x two seeds; a beats b in 3 of 4 runs, b and c tie once
    df = pd.DataFrame(
        {
            "dataset": ["r1"] * 6 + ["r2"] * 6,
            "seed": [0, 0, 0, 1, 1, 1] * 2,
            "model": ["a", "b", "c"] * 4,
            "rmse": [0.1, 0.2, 0.3, 0.1, 0.2, 0.2, 0.3, 0.2, 0.5, 0.1, 0.4, 0.5],
        }
    )
    table = ranking_test(df, order=("a", "b", "c")).set_index("better")
    assert table.loc["a", ["comparisons", "wins", "rows_won", "rows"]].tolist() == [
        4,
        3,
        2,
        2,
    ]
    assert table.loc["a", "p_sign"] == pytest.approx(5 / 16)
    # the tie is dropped: 3 comparisons, all won
    assert table.loc["b", ["comparisons", "wins"]].tolist() == [3, 3]
    assert table.loc["b", "p_sign"] == pytest.approx(1 / 8)
    # a model missing from the table drops its pairs
    assert ranking_test(df, order=("a", "z")).empty


def test_below_baseline_names_models_under_the_smoothed_pca():
    from benchmarks.tasks.spatial_domain import below_baseline, below_baseline_text

    df = pd.DataFrame(
        {
            "dataset": ["s1"] * 6 + ["s2"] * 3,
            "model": ["smoothed PCA", "k-means (PCA)", "STAGATE"] * 3,
            "seed": [0, 0, 0, 1, 1, 1, 0, 0, 0],
            "ari": [0.5, 0.1, 0.45, 0.5, 0.1, 0.6, 0.3, 0.2, 0.2],
        }
    )
    below = below_baseline(df)
    # s1: STAGATE's mean 0.525 beats 0.5; s2: 0.2 < 0.3; k-means is a baseline
    assert below[["dataset", "model"]].values.tolist() == [["s2", "STAGATE"]]
    assert below_baseline_text(below).endswith("STAGATE on s2 (0.200 < 0.300).\n")
    assert below_baseline_text(below.iloc[:0]).endswith("none.\n")


# -- the main job -----------------------------------------------------------------
COMMITTED = _runner.RESULTS


@pytest.mark.parametrize("name", EXPECTED_TASKS)
def test_committed_tables_keep_their_columns(name):
    # the committed full tables (not rerun by the tests) have exactly the
    # columns the task writes (the quick ones are not committed)
    df = pd.read_csv(COMMITTED / f"{name}.csv")
    assert list(df.columns) == list(TASKS[name].columns)


def test_missing_dataset_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    # a full run on a machine without the data folder: no traceback, one line
    # naming the data set and how to provide it, exit status 2, nothing run
    monkeypatch.setattr(_runner, "RESULTS", tmp_path)
    monkeypatch.setenv("SKDANCE_DATA", str(tmp_path / "absent"))
    with pytest.raises(SystemExit) as exit_:
        main(["spatial_domain", "--datasets", "dlpfc_151676", "-q"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "'dlpfc_151676' is not available" in err
    assert "SKDANCE_DATA" in err and "Traceback" not in err
    assert not list(tmp_path.glob("spatial_domain*"))


def test_quick_benchmark_writes_tables(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(_runner, "RESULTS", tmp_path)
    # offline, on a fresh machine: an empty data folder, so every task must
    # run on the data shipped inside the package
    (tmp_path / "data").mkdir()
    monkeypatch.setenv("SKDANCE_DATA", str(tmp_path / "data"))
    secs = main(["all", "--quick", "-q"])
    assert list(secs) == EXPECTED_TASKS
    out = capsys.readouterr().out
    tables = {t: pd.read_csv(tmp_path / f"{t}_quick.csv") for t in EXPECTED_TASKS}
    for name, df in tables.items():
        assert list(df.columns) == list(TASKS[name].columns)
        md = (tmp_path / f"{name}_quick.md").read_text()
        assert md.startswith(f"# {name} (quick)\n\nQuick run: ")
    annotation, clustering = tables["annotation"], tables["clustering"]
    assert set(annotation["model"]) == {
        "ACTINN",
        "ScDeepsort",
        "SVM",
        "Celltypist",
        "Celltypist+voting",
        "SingleCellNet",
        "ScHeteroNet",
    }
    assert (annotation["accuracy"] > 0.6).all()
    assert set(clustering["model"]) == {
        "Leiden",
        "Louvain",
        "scDeepCluster",
        "scDCC",
        "scTAG",
        "scDSC",
        "graph-sc",
    }
    # a tenth of the deep schedules: far above random labelling (ARI ~0), and
    # the graph baselines at their usual level
    assert (clustering["ari"] > 0.1).all()
    baselines = clustering[clustering["model"].isin(["Leiden", "Louvain"])]
    assert (baselines["ari"] > 0.5).all()
    imputation = tables["imputation"]
    assert set(imputation["model"]) == {
        "gene mean",
        "MAGIC",
        "DeepImpute",
        "GraphSCI",
        "scGNN",
        "scGNN 2.0",
    }
    assert (imputation["n_genes"] == 500).all()
    # every model recovers hidden counts better than leaving them at 0
    assert (imputation["mse"] < 1.0).all()
    deconvolution = tables["deconvolution"]
    assert set(deconvolution["model"]) == {
        "uniform",
        "SpatialDecon",
        "SPOTlight",
        "CARD",
        "DSTG",
        "STdGCN",
    }
    # every deconvolver beats 1/K on both layouts
    mse = deconvolution.pivot(index="dataset", columns="model", values="mse")
    assert (mse.drop(columns="uniform").lt(mse["uniform"], axis=0)).all().all()
    spatial = tables["spatial_domain"].set_index("model")
    assert set(spatial.index) >= {"k-means (PCA)", "smoothed PCA", "EfNST (no image)"}
    assert (spatial["n_clusters_true"] == 7).all()
    # the spatial models beat k-means on the expression alone
    assert spatial.loc["smoothed PCA", "ari"] > spatial.loc["k-means (PCA)", "ari"]
    assert (
        tmp_path / "figures" / "spatial_domain_dlpfc_151673_subset_quick.png"
    ).exists()
    prediction = tables["modality_prediction"].set_index("model")["rmse"]
    assert set(prediction.index) >= {"mean", "ridge (SVD)", "BABEL", "CMAE", "scMM"}
    # held-out batch s1d2: the linear baseline and BABEL beat the training mean
    assert prediction["ridge (SVD)"] < 0.8 * prediction["mean"]
    assert prediction["BABEL"] < 0.8 * prediction["mean"]
    assert (tmp_path / "figures" / "modality_prediction_cite_quick.png").exists()
    matching = tables["modality_matching"].set_index("model")
    assert set(matching.index) >= {"CCA", "CMAE", "scMM"}
    assert (matching["score_x_n"] > 2).all()  # 1 = random
    joint = tables["joint_embedding"].set_index("model")
    assert set(joint.index) >= {"GEX PCA", "mod2 PCA", "concat PCA"}
    assert set(joint.index) >= {"scMoGNN", "scMoGNNv2", "scMVAE", "JAE", "DCCA"}
    # held-out batch s1d2 (41 types): every baseline clusters far above
    # chance; the proteins alone beat GEX alone on these blood cells
    baselines = joint.loc[["GEX PCA", "mod2 PCA", "concat PCA"]]
    assert (baselines["ari"] > 0.15).all() and (baselines["nmi"] > 0.5).all()
    # the deep models, 20 epochs each: still clearly above chance (ARI 0)
    assert (joint["ari"] > 0.05).all() and (joint["nmi"] > 0.4).all()
    assert joint.loc["mod2 PCA", "ari"] > joint.loc["GEX PCA", "ari"]
    assert ((joint["graph_conn"] > 0) & (joint["graph_conn"] <= 1)).all()
    assert (tmp_path / "figures" / "joint_embedding_cite_quick.png").exists()
    assert "| dataset | model |" in out and "done in" in out


def test_quick_text_matches_the_quick_configuration():
    # the protocol text states what quick runs; keep the two together
    from benchmarks.tasks import annotation, deconvolution, imputation

    assert f"{imputation.QUICK_GENES} most variable genes" in TASKS[
        "imputation"
    ].describe(quick=True)
    assert f"{annotation.QUICK_SCDEEPSORT_EPOCHS} of its 300" in TASKS[
        "annotation"
    ].describe(quick=True)
    assert f"{deconvolution.QUICK_SPOTS} pseudo-spots" in TASKS[
        "deconvolution"
    ].describe(quick=True)
    assert isinstance(
        TASKS["imputation"].models(None, 0, True)["gene mean"], BaseEstimator
    )


def test_on_device_sets_every_device_parameter():
    from skdance.annotation import ACTINN
    from skdance.preprocessing import HighlyVariableGenes

    pipe = Pipeline([("hvg", HighlyVariableGenes()), ("clf", ACTINN())])
    moved = _runner.on_device(pipe, "cuda:1")
    assert moved.get_params()["clf__device"] == "cuda:1"
    assert _runner.on_device(ACTINN(), "cuda").device == "cuda"
    # models without a device (and device=None) are left alone
    assert _runner.on_device(pipe, None) is pipe
    lr = LogisticRegression()
    assert _runner.on_device(lr, "cuda").get_params() == lr.get_params()


def test_bin_cells_gives_measured_compositions():
    from benchmarks.tasks.deconvolution import bin_cells

    # 5 cells: two in square (0, 0), three in square (1, 0) of size 10
    coords = np.array([[1.0, 1], [2, 2], [11, 1], [12, 3], [15, 5]])
    X = np.arange(10, dtype=float).reshape(5, 2)
    y = np.array(["a", "b", "a", "Ambiguous", "a"])
    spots, P, centres, n = bin_cells(X, y, coords, np.array(["a", "b"]), 10.0)
    np.testing.assert_array_equal(spots.toarray(), [[2, 4], [18, 21]])
    # the Ambiguous cell adds expression but not composition
    np.testing.assert_array_equal(P, [[0.5, 0.5], [1.0, 0.0]])
    np.testing.assert_array_equal(n, [2, 2])
    np.testing.assert_array_equal(centres, [[6.0, 6.0], [16.0, 6.0]])
