"""SpaGCN on real spatial data: STARmap mPFC (1,049 cells) and the olfactory bulb."""

import os
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.spatial import cKDTree
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from skdance.spatial.domain.spagcn import (
    SpaGCN,
    SpaGCNModule,
    histology_coords,
    refine_domains,
)

ad = pytest.importorskip("anndata")

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


def _read(relative):
    # without the data folder, conftest.py reports the test as skipped
    adata = ad.read_h5ad(Path(os.environ["SKDANCE_DATA"]) / relative)
    labels = adata.obs["layer"].astype(object).to_numpy()
    annotated = ~adata.obs["layer"].isna().to_numpy()
    return adata, labels, annotated


@pytest.fixture(scope="module")
def starmap():
    return _read("starmap_mpfc/20180417_BZ5_control.h5ad")


@pytest.fixture(scope="module")
def bulb():
    # the 2,000 genes with the most counts keep the API tests fast
    adata, labels, annotated = _read("mouse_olfactory_bulb_st/mob_st.h5ad")
    totals = np.asarray(adata.X.sum(axis=0)).ravel()
    top = np.sort(np.argsort(-totals, kind="stable")[:2000])
    return adata[:, top].copy(), labels, annotated


@pytest.fixture(scope="module")
def starmap_fit(starmap):
    """SpaGCN with its published defaults (Louvain + resolution search)."""
    adata, labels, annotated = starmap
    n_layers = len(set(labels[annotated]))
    return SpaGCN(n_clusters=n_layers, random_state=0).fit(adata)


# fast settings on the bulb's 262 spots (k-means start, no search)
FAST = {"init": "kmeans", "max_epochs": 30, "refine_shape": "square"}


def test_beats_kmeans_on_the_same_pca(starmap, starmap_fit):
    # measured (seeds 0/1/2): SpaGCN 0.381 / 0.392 / 0.355, k-means on the
    # same 50 PCs 0.263 / 0.264 / 0.263 (no spatial information)
    adata, labels, annotated = starmap
    model = starmap_fit
    pcs = model.pca_.transform(model._log_normalized(adata.X))
    kmeans = KMeans(model.n_clusters, n_init=10, random_state=0).fit_predict(pcs)
    ours = adjusted_rand_score(labels[annotated], model.labels_[annotated])
    base = adjusted_rand_score(labels[annotated], kmeans[annotated])
    assert ours > base + 0.05, (ours, base)


def test_resolution_search_hits_n_clusters(starmap_fit):
    model = starmap_fit
    assert model.n_clusters_ == model.n_clusters == 4
    assert np.unique(model.unrefined_labels_).size == 4
    assert set(np.unique(model.labels_)) <= set(range(4))
    # the search's runs are recorded with their resolution; it starts at 0.4
    tried = [r["resolution"] for r in model.history_ if r["phase"] == "search"]
    assert tried[0] == pytest.approx(0.4) and model.resolution_ in tried


def test_history_recorded(starmap_fit):
    model = starmap_fit
    cluster = [r for r in model.history_ if r["phase"] == "cluster"]
    assert len(cluster) == model.n_iter_ >= 1
    assert [r["epoch"] for r in cluster] == list(range(model.n_iter_))
    for record in cluster:
        assert {"train_loss", "changed", "seconds"} <= set(record)
        assert np.isfinite(record["train_loss"]) and record["train_loss"] >= 0
        assert 0.0 <= record["changed"] <= 1.0
    # stopped early by the label-change rule, or ran every epoch
    assert model.n_iter_ == model.max_epochs or cluster[-1]["changed"] < model.tol


def test_refine_changes_only_spots_outvoted_by_their_neighbours(starmap, starmap_fit):
    adata, _, _ = starmap
    model = starmap_fit
    before, after = model.unrefined_labels_, model.labels_
    coords = adata.obsm["spatial"]
    np.testing.assert_array_equal(after, refine_domains(before, coords, "hexagon"))
    # each spot's window: itself and its 6 nearest spots (brute force here)
    window = cKDTree(coords).query(coords, k=7)[1]
    votes = before[window]
    own = (votes == before[:, None]).sum(axis=1)
    changed = np.flatnonzero(after != before)
    assert changed.size > 0
    for i in changed:
        # the spot's own domain was a minority and the new one a majority
        assert own[i] < 3 and (votes[i] == after[i]).sum() > 3
    # a spot agreeing with at least 3 of the 7 is never moved
    assert np.all(after[own >= 3] == before[own >= 3])


def test_transform_is_the_embedding_on_the_training_spots(starmap, starmap_fit):
    adata, _, _ = starmap
    model = starmap_fit
    Z = model.transform(adata)
    assert Z.shape == (adata.n_obs, model.n_components_) == model.embedding_.shape
    np.testing.assert_allclose(Z, model.embedding_, rtol=1e-4, atol=1e-4)


def test_gene_name_filter_is_spagcns():
    # SpaGCN's prefilter_specialgenes: case-sensitive ERCC / MT- prefixes
    rng = np.random.default_rng(0)
    coords = np.array([[x, y] for x in range(8) for y in range(8)], dtype=float)
    names = ["ERCC-00002", "MT-CO1", "Ercc1", "mt-Co1", "Gapdh", "Actb"]
    X = pd.DataFrame(rng.poisson(3.0, size=(64, 6)).astype(float), columns=names)
    model = SpaGCN(n_clusters=2, n_components=3, random_state=0, **FAST).fit(
        X, coords=coords
    )
    np.testing.assert_array_equal(model.genes_kept_, [0, 0, 1, 1, 1, 1])
    assert model.n_components_ == 3


def test_missing_coords_raise(bulb):
    adata, _, _ = bulb
    with pytest.raises(ValueError, match="coords"):
        SpaGCN(n_clusters=5, **FAST).fit(adata.X)
    bare = ad.AnnData(adata.X.copy())
    with pytest.raises(ValueError, match="spatial"):
        SpaGCN(n_clusters=5, **FAST).fit(bare)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present")
def test_absent_cuda_is_a_clear_error(bulb):
    adata, _, _ = bulb
    with pytest.raises(ValueError, match="cuda"):
        SpaGCN(n_clusters=5, device="cuda", **FAST).fit(adata)


def test_fixed_resolution_and_histology_coordinate(bulb):
    adata, _, _ = bulb
    model = SpaGCN(
        n_clusters=5, resolution=0.5, max_epochs=5, refine=False, random_state=0
    ).fit(adata)
    assert model.resolution_ == 0.5
    assert {r["phase"] for r in model.history_} == {"cluster"}
    np.testing.assert_array_equal(model.labels_, model.unrefined_labels_)
    # a third coordinate (SpaGCN's histology channel) enters the graph only
    xy = adata.obsm["spatial"]
    image = np.zeros((40, 40, 3))
    image[:, 20:] = 200.0
    xyz = histology_coords(xy, image, beta=3)
    assert xyz.shape == (adata.n_obs, 3)
    np.testing.assert_array_equal(xyz[:, :2], xy)
    three = SpaGCN(n_clusters=5, random_state=0, **FAST).fit(adata.X, coords=xyz)
    assert three.length_scale_ != model.length_scale_
    assert three.embedding_.shape == model.embedding_.shape


def test_refine_domains_on_a_grid():
    coords = np.array([[x, y] for x in range(5) for y in range(5)], dtype=float)
    labels = np.zeros(25, dtype=int)
    labels[12] = 1  # an isolated spot in the middle is absorbed
    labels[[0, 1, 5]] = 2  # a corner of 3 keeps its domain (>= 2 of 5 agree)
    refined = refine_domains(labels, coords, shape="square")
    expected = labels.copy()
    expected[12] = 0
    np.testing.assert_array_equal(refined, expected)
    with pytest.raises(ValueError, match="shape"):
        refine_domains(labels, coords, shape="circle")


def test_module_matches_spagcn_kernel():
    module = SpaGCNModule(3, 2, alpha=0.2)
    module.centers = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    h = torch.tensor([[0.0, 0.0], [0.5, 0.0]])
    q = module.assign(h)
    # SpaGCN: q = 1 / (1 + d²/alpha), raised to alpha + 1, rows normalised
    raw = (1.0 / (1.0 + torch.cdist(h, module.centers) ** 2 / 0.2)) ** 1.2
    torch.testing.assert_close(q, raw / raw.sum(dim=1, keepdim=True))
    torch.testing.assert_close(q[1], torch.tensor([0.5, 0.5]))
    # (A x) W + b equals A (x W) + b
    adj = torch.rand(4, 4)
    x = torch.rand(4, 3)
    torch.testing.assert_close(module.embed(adj @ x), module.embed(x, adj))


def test_transform_is_identical_after_a_pickle_round_trip():
    # 600 spots x 100 genes, 50 components: scikit-learn's randomized PCA
    # solver, whose components came out Fortran-ordered before pickling and
    # C-ordered after; the float32 projections then differed by up to 1e-6
    # here (7e-5 on real slices)
    rng = np.random.default_rng(0)
    coords = rng.uniform(0, 30, size=(600, 2))
    X = rng.poisson(2.0, size=(600, 100)).astype(np.float64)
    X[coords[:, 0] < 15, :10] += 5
    model = SpaGCN(2, init="kmeans", max_epochs=3, random_state=0)
    model.fit(X, coords=coords)
    assert model.pca_._fit_svd_solver == "randomized"
    before = model.transform(X, coords=coords)
    np.testing.assert_array_equal(before, model.embedding_)
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.transform(X, coords=coords), before)
