"""Every Python example of the README runs exactly as written, on shipped data."""

import re
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.rst"
USER_GUIDE = ROOT / "doc" / "user_guide" / "side_information.rst"
# the README's Python examples; each has a test below, by index
N_README_BLOCKS = 7


def _python_blocks(path=README):
    text = path.read_text()
    blocks = re.findall(r"\.\. code-block:: python\n\n((?:    .*\n|\n)+)", text)
    return [re.sub(r"^    ", "", b, flags=re.M) for b in blocks]


def _run(index, path=README):
    code = _python_blocks(path)[index]
    namespace = {}
    exec(compile(code, str(path), "exec"), namespace)
    return code, namespace


pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


def test_readme_setup_commands():
    text = README.read_text()
    assert "pip install -r requirements.txt" in text
    assert "python -m pytest" in text
    assert "python -m benchmarks all --quick" in text
    ci = (ROOT / ".ci" / "run").read_text()
    assert "\npip install -r requirements.txt\n" in ci and "\npython -m pytest\n" in ci


def test_readme_is_short_and_self_contained():
    # (tests/test_self_contained.py checks it points at nothing outside the
    # repository, with the docs)
    text = README.read_text()
    assert len(text.splitlines()) < 250
    # the documents the README points to exist
    for name in re.findall(r"``(doc/[\w./]+\.rst)``", README.read_text()):
        assert (ROOT / name).is_file(), name


def test_every_block_is_tested():
    # a new README example needs a test below (and N_README_BLOCKS bumped)
    assert len(_python_blocks()) == N_README_BLOCKS
    assert not any("SKDANCE_DATA" in block for block in _python_blocks())


def test_readme_annotation_example(capsys):
    code, ns = _run(0)
    assert "GridSearchCV" in code and "stratify=y" in code and "SVM" in code
    assert "load_pbmc_4k_subset()" in code  # shipped data, no data folder
    assert ns["X"].shape == (1200, 2000)
    assert ns["search"].best_params_["svm__C"] in (0.01, 1.0)
    # a linear SVM on 8 PBMC types, 240 held-out cells
    assert ns["test_accuracy"] > 0.8
    assert "test accuracy" in capsys.readouterr().out


def test_readme_spatial_domain_example():
    from matplotlib import pyplot as plt
    from sklearn.metrics import adjusted_rand_score

    code, ns = _run(1)
    assert "tl.fit(" in code and "sc.pl.spatial" in code
    adata = ns["adata"]
    assert adata.n_obs == 1062
    domains = adata.obs["domain"]
    assert isinstance(domains.dtype, pd.CategoricalDtype)
    assert domains.cat.categories.size == 7
    assert adata.obsm["X_domain"].shape[0] == adata.n_obs
    record = adata.uns["domain"]
    assert record["estimator"] == "SpaGCN" and record["params"]["n_clusters"] == 7
    # the domains follow the manual layers far above chance
    assert adjusted_rand_score(adata.obs["layer"].astype(str), domains) > 0.3
    assert plt.get_fignums()  # sc.pl.spatial drew a figure
    plt.close("all")


def test_readme_multimodal_example(capsys):
    code, ns = _run(2)
    assert "return_mudata=True" in code and "mudata_mods" not in code
    mdata = ns["mdata"]
    assert list(mdata.mod) == ["rna", "prot", "prot_pred"]
    assert mdata.obsm["X_jointpca"].shape == (600, 20)
    assert mdata.obsm["X_umap"].shape == (600, 2)
    assert mdata.uns["jointpca"]["estimator"] == "JointPCA"
    pred, prot = mdata["prot_pred"], mdata["prot"]
    assert pred.shape == prot.shape == (600, 134)
    assert list(pred.var_names) == list(prot.var_names)
    assert np.isfinite(np.asarray(pred.X)).all()
    assert "prot_pred" in capsys.readouterr().out


def test_readme_deconvolution_example(capsys):
    from skdance.metrics import proportion_mse

    code, ns = _run(3)
    assert "make_pseudo_spots" in code and "tl.predict" in code
    props, true_props = ns["props"], ns["true_props"]
    assert props.shape == true_props.shape == (100, 8)
    np.testing.assert_allclose(props.sum(axis=1), 1.0, atol=1e-6)
    uniform = np.full_like(true_props, 1 / true_props.shape[1])
    assert proportion_mse(true_props, props) < proportion_mse(true_props, uniform)
    table = ns["spot_data"].obsm["proportions"]
    assert isinstance(table, pd.DataFrame) and table.shape == (100, 8)
    assert list(table.columns) == [str(c) for c in ns["model"].classes_]
    np.testing.assert_allclose(table.to_numpy(), props)  # coords read from obsm
    assert "proportion MSE" in capsys.readouterr().out


def test_readme_history_example(capsys):
    code, ns = _run(4)
    assert "history_" in code and 'device="cpu"' in code
    phases = pd.DataFrame(ns["model"].history_)["phase"].value_counts()
    assert phases["pretrain"] == 5 and 1 <= phases["cluster"] <= 5
    out = capsys.readouterr().out
    assert "pretrain" in out and "cluster" in out


def test_readme_persistence_example(capsys):
    code, ns = _run(5)
    assert "joblib.dump" in code and "joblib.load" in code
    assert ns["same"] is True
    assert type(ns["loaded"]) is type(ns["model"])
    assert "same predictions after loading: True" in capsys.readouterr().out


def test_readme_check_estimator_example():
    code, ns = _run(6)
    assert "fast_instance" in code and "expected_failed_checks" in code
    failed = ns["failed"]
    assert failed and all(isinstance(r, str) and r for r in failed.values())
    statuses = {r["check_name"]: r["status"] for r in ns["results"]}
    assert len(statuses) > 20
    assert set(statuses.values()) <= {"passed", "xfail", "skipped"}
    assert {name for name, s in statuses.items() if s == "xfail"} <= set(failed)


def test_user_guide_routing_example(capsys):
    code, ns = _run(0, USER_GUIDE)
    assert "constraint_labels=known" in code and "enable_metadata_routing" in code
    search = ns["search"]
    assert search.best_params_["scdcc__must_link_weight"] in (0.5, 1.0)
    assert 0.2 < search.best_score_ <= 1.0  # far above chance on 8 types
    assert "scdcc__must_link_weight" in capsys.readouterr().out
