"""scGNN 2.0 (ScGNN2): its graph, losses, cluster count, EM loop and outputs."""

import copy

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.utils._param_validation import InvalidParameterError

from skdance.datasets import load_pbmc_4k_subset
from skdance.graph import CellGeneGraph, KNNGraph
from skdance.imputation import ScGNN2, imputation_scores, mask_dropout
from skdance.imputation import scgnn2 as scgnn2_module
from skdance.imputation.scgnn import _regulariser_weights
from skdance.imputation.scgnn2 import (
    _trim_clusters,
    cluster_ae_loss,
    scgnn2_cell_graph,
)
from skdance.preprocessing import normalize_rows

FAST = {
    "hidden_dims": (32, 16),
    "pretrain_epochs": 40,
    "em_epochs": 10,
    "cluster_epochs": 10,
    "gae_epochs": 20,
    "learning_rate": 1e-2,
    "random_state": 0,
}


@pytest.fixture(scope="module")
def masked():
    X, _ = load_pbmc_4k_subset()
    X = X[:400]
    genes = np.argsort(-np.asarray(X.sum(axis=0)).ravel())[:80]
    X = sp.csr_matrix(X[:, genes])
    X_masked, mask = mask_dropout(X, 0.1, random_state=0)
    return X, X_masked, mask


@pytest.fixture(scope="module")
def fitted(masked):
    _, X_masked, _ = masked
    before = X_masked.copy()
    model = ScGNN2(max_iter=2, graph_tol=0.0, **FAST)
    out = model.fit_transform(X_masked)
    assert (X_masked != before).nnz == 0  # the input is not modified
    return model, out


def test_cell_graph_neighbours_weights_and_symmetry():
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(100, 3))
    W = scgnn2_cell_graph(Z)  # round(0.05 * 100) = 5 neighbours
    assert (W != W.T).nnz == 0 and W.diagonal().max() == 0
    out_degree = np.diff(W.tocsr().indptr)
    assert out_degree.min() >= 5
    # each cell's 5 nearest cells are linked, with 1 / distance
    d = np.linalg.norm(Z[:, None] - Z[None], axis=2)
    np.fill_diagonal(d, np.inf)
    nearest = np.argsort(d, axis=1)[:, :5]
    rows = np.repeat(np.arange(100), 5)
    np.testing.assert_allclose(
        W[rows, nearest.ravel()].A1, 1 / d[rows, nearest.ravel()], rtol=1e-10
    )
    # the other links are the mutual counterparts of these
    linked = np.zeros((100, 100), dtype=bool)
    linked[rows, nearest.ravel()] = True
    np.testing.assert_array_equal(W.toarray() > 0, linked | linked.T)
    # a count, and the floor of one neighbour on tiny inputs
    assert np.diff(scgnn2_cell_graph(Z, n_neighbors=2).indptr).min() >= 2
    assert scgnn2_cell_graph(Z[:4]).nnz > 0


def test_cluster_ae_loss_matches_the_dense_original():
    """scGNN 2.0's "Celltype" loss on one cluster, with its dense matrices."""
    rng = np.random.default_rng(0)
    n, g = 30, 6
    A = sp.random(n, n, density=0.2, random_state=0)
    A = sp.csr_matrix(((A + A.T) > 0).astype(float))
    labels = rng.integers(0, 3, n)
    cells = np.flatnonzero(labels == 1)
    recon = torch.rand(cells.size, g, dtype=torch.float64)
    target = torch.rand(cells.size, g, dtype=torch.float64)
    observed = torch.from_numpy(
        rng.random((cells.size, g)) * (rng.random((1, g)) > 0.5)
    )
    module = torch.nn.Linear(3, 2).double()
    # the original: row-normalised full matrices, restricted to the cluster
    G = normalize_rows(A, 1.0).toarray()[np.ix_(cells, cells)]
    B = np.full((cells.size, cells.size), 1.0 / cells.size)
    err = ((recon - target) ** 2).numpy()
    nz = observed.numpy() != 0
    l1 = sum(p.abs().sum().item() for p in module.parameters())
    expected = (
        0.3 * err.sum()
        + np.linalg.norm((observed.numpy() - recon.numpy())[nz])
        + 0.3 * (G @ err).sum()
        + 0.1 * (B @ err).sum()
        + l1
    )
    weights = _regulariser_weights(normalize_rows(A, 1.0), labels, cells, 0.3, 0.3, 0.1)
    weights = torch.from_numpy(weights.astype(np.float64))
    loss = cluster_ae_loss(recon, target, observed, weights, module)
    np.testing.assert_allclose(loss.item(), expected, rtol=1e-6)


def test_trim_clusters_pools_beyond_thirty():
    labels = np.arange(20).repeat(10)
    np.testing.assert_array_equal(_trim_clusters(labels), labels)
    # 32 clusters: 30 and 31 and the clusters of at most 5 cells are pooled
    labels = np.concatenate([np.arange(30).repeat(10), [30] * 10, [31] * 10])
    labels[:6] = 29  # cluster 0 keeps 4 cells
    trimmed = _trim_clusters(labels)
    assert np.unique(trimmed).size == 30  # 1..29 and the pooled one
    pooled = trimmed[labels == 30][0]
    assert (trimmed[labels >= 30] == pooled).all()
    assert (trimmed[labels == 0] == pooled).all()


def test_cluster_count_is_louvain_scaled_and_smoothed(monkeypatch):
    counts = iter([10, 20])
    monkeypatch.setattr(scgnn2_module, "_louvain_count", lambda W, seed: next(counts))
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(50, 2))
    W = scgnn2_cell_graph(latent)
    model = ScGNN2()
    labels, k_float = model._clusters(W, latent, None, 0)
    assert k_float == pytest.approx(8.0) and np.unique(labels).size == 8
    # 0.95 * 8 + 0.05 * (0.8 * 20) = 8.4, rounded to 8
    labels, k_float = model._clusters(W, latent, k_float, 0)
    assert k_float == pytest.approx(8.4) and np.unique(labels).size == 8


def test_imputes_better_than_zeros_and_is_deterministic(masked, fitted):
    X, X_masked, mask = masked
    model, out = fitted
    assert out.shape == X.shape and out.min() >= 0 and np.isfinite(out).all()
    assert (
        imputation_scores(X, out, mask)["mse"]
        < imputation_scores(X, X_masked, mask)["mse"]
    )
    np.testing.assert_array_equal(model.imputed_, out)
    again = ScGNN2(max_iter=2, graph_tol=0.0, **FAST).fit_transform(X_masked)
    np.testing.assert_allclose(again, out, rtol=1e-6)


def test_em_loop_phases_and_attributes(masked, fitted):
    X, _, _ = masked
    model, _ = fitted
    phases = [(r["phase"], r.get("iteration")) for r in model.history_]
    assert list(dict.fromkeys(phases)) == [
        ("pretrain", None),
        ("graph_ae", 0),
        ("cluster_ae", 0),
        ("em", 0),
        ("graph_ae", 1),
        ("cluster_ae", 1),
    ]  # the last iteration stops after its cluster autoencoders
    assert model.n_iter_ == 2
    em = [r for r in model.history_ if r["phase"] == "em"]
    assert len(em) == 10 and {"graph_change", "threshold"} <= set(em[-1])
    # one cluster autoencoder run per cluster of each iteration
    runs = {(r["iteration"], r["cluster"]) for r in model.history_ if "cluster" in r}
    assert {c for i, c in runs if i == 1} == set(np.unique(model.labels_))
    n = X.shape[0]
    assert model.labels_.shape == (n,) and np.unique(model.labels_).size >= 2
    assert model.adjacency_.shape == (n, n) and model.embedding_.shape == (n, 16)
    assert model.signals_ is None
    assert not model.module_.training


def test_stops_when_the_graph_settles(masked):
    _, X_masked, _ = masked
    kw = FAST | {"pretrain_epochs": 5, "cluster_epochs": 2, "em_epochs": 2}
    model = ScGNN2(max_iter=5, graph_tol=1e9, **kw).fit(X_masked[:150])
    assert model.n_iter_ == 1
    assert {r["phase"] for r in model.history_} == {
        "pretrain",
        "graph_ae",
        "cluster_ae",
        "em",
    }


def test_transform_returns_the_fitted_cells_and_imputes_new_ones(masked, fitted):
    X, X_masked, _ = masked
    model, out = fitted
    order = np.random.default_rng(0).permutation(X.shape[0])[:50]
    np.testing.assert_array_equal(model.transform(X_masked[order]), out[order])
    np.testing.assert_array_equal(model.transform(X_masked.toarray()), out)
    # a cell not seen in fit: the final feature autoencoder's reconstruction
    new = X.toarray()[:3].astype(np.float64) + 1.0
    imputed = model.transform(new)
    with torch.no_grad():
        module = copy.deepcopy(model.module_).double()
        recon = module(torch.log1p(torch.from_numpy(new)))[0]
    np.testing.assert_allclose(imputed, np.expm1(recon.numpy()), rtol=1e-10)


def test_ltmg_signals_are_optional(masked):
    _, X_masked, _ = masked
    kw = FAST | {"pretrain_epochs": 2, "cluster_epochs": 1, "gae_epochs": 2}
    model = ScGNN2(max_iter=1, regulatory_signal_weight=0.9, **kw)
    model.fit(X_masked[:100, :20])
    assert model.signals_.shape == (100, 20) and model.signals_.max() >= 1


@pytest.mark.parametrize("params", [{"graph": "knn"}, {"max_iter": 0}])
def test_bad_parameters(masked, params):
    _, X_masked, _ = masked
    with pytest.raises(InvalidParameterError):
        ScGNN2(**params).fit(X_masked[:20])
    with pytest.raises(ValueError, match="two widths"):
        ScGNN2(hidden_dims=(8,)).fit(X_masked[:20])


def test_graph_builder_parameter(masked):
    _, X_masked, _ = masked
    kw = FAST | {"pretrain_epochs": 2, "cluster_epochs": 1, "gae_epochs": 2}
    builder = KNNGraph(n_neighbors=4)
    model = ScGNN2(graph=builder, max_iter=1, **kw).fit(X_masked[:100])
    A = model.adjacency_
    assert (A != A.T).nnz == 0 and A.diagonal().max() == 0
    assert set(np.unique(A.data)) == {1.0} and np.diff(A.indptr).min() >= 4
    assert not hasattr(builder, "n_features_in_")  # cloned, not fitted
    with pytest.raises(ValueError, match="graph must return the"):
        ScGNN2(graph=CellGeneGraph(), **kw).fit(X_masked[:30, :20])
