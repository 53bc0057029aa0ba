"""scverse in and out: MuData input, feature names of both modalities, skdance.tl.

Every paired estimator (discovered, not listed) takes a MuData and gives what
it gives on the two matrices; every other estimator rejects a MuData at once
with a clear error (``numpy.asarray(mdata)`` hangs, so a missed check would
hang).  ``skdance.tl`` writes each task's result where scanpy and squidpy
read it, and two round trips end in scanpy plot calls on the written keys.
"""

import signal
import warnings
from contextlib import contextmanager

import anndata as ad
import matplotlib
import mudata as md
import numpy as np
import pandas as pd
import pytest
import scanpy as sc
import scipy.sparse as sp

from skdance import tl
from skdance.datasets import load_multimodal, load_spatial_dataset
from skdance.testing import (
    check_data,
    estimator_output,
    fast_instance,
    fit_estimator,
)
from skdance.utils import all_estimators
from skdance.utils._tags import get_skdance_tags

matplotlib.use("Agg")

PAIRED_TASKS = ("joint_embedding", "modality_prediction", "modality_matching")
ESTIMATORS = all_estimators()
PAIRED = [(n, c) for n, c in ESTIMATORS if get_skdance_tags(c).task in PAIRED_TASKS]
SINGLE = [(n, c) for n, c in ESTIMATORS if (n, c) not in PAIRED]


@contextmanager
def time_limit(seconds):
    """Fail (instead of hanging the suite) when the block runs too long."""

    def handler(signum, frame):
        raise TimeoutError(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, handler)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _muon(mods):
    """A MuData of ``mods`` (mudata's pull-on-update notice silenced)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return md.MuData(mods)


def _mudata(data, n=None):
    n = data.X.shape[0] if n is None else n
    rna = ad.AnnData(
        data.X[:n, : data.n_features_mod1],
        var=pd.DataFrame(index=data.genes[: data.n_features_mod1]),
        obs=pd.DataFrame({"cell_type": data.y[:n]}, index=[f"c{i}" for i in range(n)]),
    )
    prot = ad.AnnData(
        data.mod2[:n],
        var=pd.DataFrame(index=[f"p{i}" for i in range(data.mod2.shape[1])]),
        obs=pd.DataFrame(index=rna.obs_names),
    )
    return _muon({"rna": rna, "prot": prot}), rna, prot


def test_paired_estimators_are_all_covered():
    # 5 joint embeddings, 4 predictors, 4 matchers
    assert len(PAIRED) == 13


def _labels(cls, data):
    # cell types only for the embedding that requires them
    return data.y if cls.__name__ == "JAE" else None


def _fit_pair(est, X, Y, y):
    task = get_skdance_tags(est).task
    if task == "joint_embedding":
        return est.fit((X, Y), y)
    return est.fit(X, Y)


@pytest.mark.parametrize("name,cls", PAIRED)
def test_paired_estimators_take_a_mudata(name, cls):
    data = check_data()
    mdata, rna, prot = _mudata(data)
    y = _labels(cls, data)
    task = get_skdance_tags(cls).task
    reference = _fit_pair(fast_instance(cls), rna, prot, y)
    for call in ("fit(M)", "fit(M, M)"):
        est = fast_instance(cls)
        with time_limit(120):
            if task == "joint_embedding":
                est.fit(mdata, y)
                got, want = est.transform(mdata), reference.transform((rna, prot))
            elif call == "fit(M)":
                est.fit(mdata)
            else:
                est.fit(mdata, mdata)
            if task == "modality_prediction":
                got, want = est.predict(mdata), reference.predict(rna)
                assert est.score(mdata) == pytest.approx(reference.score(rna, prot))
            elif task == "modality_matching":
                got, want = est.match(mdata), reference.match(rna, prot)
                assert est.score(mdata) == pytest.approx(reference.score(rna, prot))
        got = got.toarray() if sp.issparse(got) else got
        want = want.toarray() if sp.issparse(want) else want
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(est.feature_names_mod2_, prot.var_names)


@pytest.mark.parametrize("name,cls", PAIRED)
def test_mudata_mods_choose_the_modalities(name, cls):
    data = check_data()
    mdata, rna, prot = _mudata(data)
    # a third modality first: mudata_mods picks the right two
    three = _muon({"atac": prot.copy(), "rna": rna, "prot": prot})
    est = fast_instance(cls).set_params(mudata_mods=("rna", "prot"))
    with time_limit(120):
        est.fit(three, _labels(cls, data))
    assert est.n_features_in_ == rna.n_vars
    assert est.n_features_mod2_ == prot.n_vars
    bad = fast_instance(cls).set_params(mudata_mods=("rna", "adt"))
    with pytest.raises(ValueError, match=r"\['adt'\].*has \['rna', 'prot'\]"):
        bad.fit(mdata, _labels(cls, data))
    with pytest.raises(ValueError, match="two distinct modality names"):
        fast_instance(cls).set_params(mudata_mods=("rna", "rna")).fit(
            mdata, _labels(cls, data)
        )
    single = _muon({"rna": rna})
    with pytest.raises(ValueError, match="needs two paired modalities"):
        fast_instance(cls).fit(single, _labels(cls, data))


@pytest.mark.parametrize("name,cls", PAIRED)
def test_paired_mudata_with_unaligned_cells_is_rejected(name, cls):
    data = check_data()
    _, rna, prot = _mudata(data)
    shuffled = prot[::-1].copy()
    mdata = _muon({"rna": rna, "prot": shuffled})
    with pytest.raises(ValueError, match="same cells in the same order"):
        fast_instance(cls).fit(mdata, _labels(cls, data))


@pytest.mark.parametrize("name,cls", SINGLE)
def test_single_modality_estimators_reject_a_mudata_at_once(name, cls):
    data = check_data()
    mdata, _, _ = _mudata(data)
    est = fast_instance(cls)
    tags = get_skdance_tags(cls)
    with time_limit(30), pytest.raises(ValueError, match="not a MuData"):
        if tags.task in ("annotation", "deconvolution"):
            est.fit(mdata, data.y)
        elif hasattr(est, "fit_predict") and not hasattr(est, "transform"):
            est.fit_predict(mdata)
        else:
            est.fit(mdata)
    # and once fitted, at predict / transform time (where there is one)
    if hasattr(est, "predict") or hasattr(est, "transform"):
        fitted = fit_estimator(fast_instance(cls), data.X, data)
        with time_limit(30), pytest.raises(ValueError, match="not a MuData"):
            estimator_output(fitted, mdata, data)


# -- second-modality feature names are checked like the first's -------------
def _reversed(prot):
    return prot[:, prot.var_names[::-1]].copy()


@pytest.mark.parametrize("name,cls", PAIRED)
def test_second_modality_names_are_checked(name, cls):
    data = check_data()
    _, rna, prot = _mudata(data)
    est = _fit_pair(fast_instance(cls), rna, prot, _labels(cls, data))
    task = get_skdance_tags(cls).task
    flipped = _reversed(prot)
    frame = pd.DataFrame(flipped.X, columns=flipped.var_names)
    for Y in (flipped, frame):
        with pytest.raises(ValueError, match="second-modality feature names"):
            if task == "joint_embedding":
                est.transform((rna, Y))
            elif task == "modality_matching":
                est.match(rna, Y)
            else:
                est.score(rna, Y)
        if task == "modality_matching":
            with pytest.raises(ValueError, match="second-modality feature names"):
                est.score(rna, Y)
    # the fitted order passes
    if task == "modality_prediction":
        assert np.isfinite(est.score(rna, prot))


def test_refit_without_names_forgets_the_old_ones():
    data = check_data()
    _, rna, prot = _mudata(data)
    cls = dict(ESTIMATORS)["BABEL"]
    est = fast_instance(cls).fit(rna, prot)
    assert hasattr(est, "feature_names_mod2_")
    est.fit(rna.X, prot.X)
    assert not hasattr(est, "feature_names_mod2_")


# -- skdance.tl: results where scanpy and squidpy read them ------------------
def test_spatial_round_trip_ends_in_a_scanpy_plot(tmp_path):
    from skdance.spatial.domain import STAGATE

    path = tmp_path / "slice.h5ad"
    load_spatial_dataset("dlpfc_151673_subset", return_anndata=True)[:400].write_h5ad(
        path
    )
    adata = sc.read_h5ad(path)
    before = adata.X.copy()
    model = STAGATE(n_clusters=5, max_epochs=20, random_state=0)
    assert tl.fit(model, adata, key_added="domain") is None
    assert adata.obs["domain"].dtype == "category"
    assert adata.obs["domain"].cat.categories.size == 5
    assert adata.obsm["X_domain"].shape == (400, model.latent_dim)
    assert adata.uns["domain"]["estimator"] == "STAGATE"
    assert adata.uns["domain"]["params"]["n_clusters"] == 5
    assert (adata.X != before).nnz == 0  # the input is not modified
    ax = sc.pl.spatial(adata, color="domain", spot_size=10, show=False)
    assert ax is not None
    adata.write_h5ad(tmp_path / "written.h5ad")  # every key is storable
    again = sc.read_h5ad(tmp_path / "written.h5ad")
    assert list(again.obs["domain"]) == list(adata.obs["domain"])


def test_cite_mudata_round_trip_ends_in_umap():
    from skdance.multimodal.embedding import JointPCA

    mdata = load_multimodal("neurips2021_bmmc_cite_starter", return_mudata=True)
    tl.fit(JointPCA(n_components=10, n_block_components=10, random_state=0), mdata)
    assert mdata.obsm["X_jointpca"].shape == (600, 10)
    assert mdata.uns["jointpca"]["estimator"] == "JointPCA"
    sc.pp.neighbors(mdata, use_rep="X_jointpca")
    sc.tl.umap(mdata, random_state=0)
    assert mdata.obsm["X_umap"].shape == (600, 2)
    assert np.isfinite(mdata.obsm["X_umap"]).all()
    sc.pl.umap(mdata, color="rna:cell_type", show=False)


def test_copy_follows_scanpy():
    from skdance.clustering import Louvain

    adata = ad.AnnData(check_data().X)
    out = tl.fit(Louvain(random_state=0), adata, copy=True)
    assert "louvain" in out.obs and "louvain" not in adata.obs
    assert tl.fit(Louvain(random_state=0), adata) is None
    assert "louvain" in adata.obs


def test_deconvolution_writes_proportions_with_cell_type_columns():
    from skdance.spatial.deconvolution import SpatialDecon

    data = check_data()
    ref = ad.AnnData(data.X, obs=pd.DataFrame({"type": data.y.astype(str)}))
    ref.var_names = data.genes
    spots = ad.AnnData(data.X[:30] + data.X[30:60], var=ref.var.copy())
    model = SpatialDecon()
    tl.fit(model, ref, y="type")
    tl.predict(model, spots, key_added="proportions")
    P = spots.obsm["proportions"]
    assert isinstance(P, pd.DataFrame)
    assert list(P.columns) == [str(c) for c in model.classes_]
    np.testing.assert_allclose(P.sum(axis=1), 1.0)
    assert list(P.index) == list(spots.obs_names)


def test_predicted_modality_goes_into_the_mudata_and_imputation_into_a_layer():
    from skdance.imputation import MAGIC
    from skdance.multimodal.prediction import BABEL

    data = check_data()
    mdata, rna, prot = _mudata(data)
    model = fast_instance(BABEL)
    tl.fit(model, mdata)
    tl.predict(model, mdata, key_added="prot_pred")
    assert "prot_pred" in mdata.mod
    assert list(mdata["prot_pred"].var_names) == list(prot.var_names)
    np.testing.assert_allclose(mdata["prot_pred"].X, model.predict(rna))
    # an AnnData of the first modality: the prediction comes back as AnnData
    pred = tl.predict(model, rna)
    assert pred.shape == prot.shape and list(pred.obs_names) == list(rna.obs_names)
    adata = ad.AnnData(data.X)
    tl.fit(fast_instance(MAGIC), adata, key_added="magic")
    assert adata.layers["magic"].shape == adata.shape


def test_graphs_go_into_obsp_as_scanpy_and_squidpy_name_them():
    from skdance.graph import KNNGraph, RadiusGraph

    data = check_data()
    adata = ad.AnnData(data.X, obsm={"spatial": data.coords})
    tl.fit(RadiusGraph(radius=2.0), adata)
    n = data.X.shape[0]
    assert adata.obsp["spatial_connectivities"].shape == (n, n)
    assert adata.uns["spatial_neighbors"]["connectivities_key"] == (
        "spatial_connectivities"
    )
    tl.fit(KNNGraph(n_neighbors=5), adata, key_added="expr")
    assert adata.obsp["expr_connectivities"].nnz > 0
    sc.tl.leiden(
        adata,
        adjacency=adata.obsp[adata.uns["expr_neighbors"]["connectivities_key"]],
        key_added="leiden",
        flavor="igraph",
        n_iterations=2,
    )
    assert adata.obs["leiden"].nunique() > 1


def test_tl_rejects_what_it_cannot_write():
    data = check_data()
    with pytest.raises(TypeError, match="AnnData or a MuData"):
        tl.fit(fast_instance(dict(ESTIMATORS)["Louvain"]), data.X)
    with pytest.raises(ValueError, match="key_added"):
        tl.fit(
            fast_instance(dict(ESTIMATORS)["Louvain"]), ad.AnnData(data.X), key_added=""
        )
