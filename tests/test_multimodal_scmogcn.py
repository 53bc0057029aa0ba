"""scMoGNN for modality prediction and matching (and its shared graph code)."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from sklearn.utils._param_validation import InvalidParameterError

from skdance.datasets._base import fetch_file
from skdance.graph import (
    CellGeneGraph,
    GeneCorrelationGraph,
    correlation_links,
    gene_set_links,
    read_gene_sets,
)
from skdance.multimodal._scmogcn import FeaturePropagation, bipartite_matching
from skdance.multimodal.matching.scmogcn import ScMoGNNMatcher
from skdance.multimodal.prediction import scmogcn as scmogcn_prediction
from skdance.multimodal.prediction.scmogcn import ScMoGNN
from skdance.nn import MeanAggregation, SparseTargetMSE, cell_feature_graph
from skdance.preprocessing import LSI

FAST = {"hidden_dim": 8, "n_layers": 2, "max_epochs": 5, "random_state": 0}
FAST_MATCH = {
    "n_components": 6,
    "hidden_dims": (16,),
    "latent_dim": 4,
    "max_epochs": 5,
    "random_state": 0,
}


def _paired(n=60, p=25, q=6, seed=0):
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(n, 3))
    X = rng.poisson(np.exp(Z @ rng.normal(scale=0.5, size=(3, p)))).astype(float)
    Y = Z @ rng.normal(size=(3, q)) + rng.normal(scale=0.1, size=(n, q))
    return X, Y


# -- shared graph code -------------------------------------------------------
def test_mean_aggregation_forward_and_gradient():
    rng = np.random.default_rng(0)
    W = sp.random(7, 5, density=0.5, random_state=0, format="lil") * 3.0
    W[3] = 0  # a node without in-edges receives zeros
    W = sp.csr_matrix(W)
    deg = np.maximum(np.diff(sp.csr_matrix(W).indptr), 1)
    dense = torch.tensor(W.toarray() / deg[:, None], dtype=torch.float32)
    h = torch.tensor(rng.normal(size=(5, 4)), dtype=torch.float32, requires_grad=True)
    out = MeanAggregation(W)(h)
    torch.testing.assert_close(out, dense @ h)
    (out**2).sum().backward()
    expected = 2 * dense.T @ (dense @ h)
    torch.testing.assert_close(h.grad, expected.detach())
    # edge dropout keeps the degrees: the expectation is the plain mean
    torch.manual_seed(0)
    drops = torch.stack([MeanAggregation(W)(h, 0.5) for _ in range(200)]).mean(0)
    torch.testing.assert_close(drops, (dense @ h).detach(), atol=0.3, rtol=0.1)


def test_correlation_links_match_gene_correlation_graph():
    X, _ = _paired(n=80, p=30)
    X[:, 4] = 2.0  # a constant feature has no links
    expected = GeneCorrelationGraph(threshold=0.3).fit_transform(X).toarray()
    for M in (X, sp.csr_matrix(X)):
        links = correlation_links(M, 0.3).toarray()
        np.testing.assert_allclose(links, expected, atol=1e-10)
    assert correlation_links(X, 0.3, weighted=False).data.tolist() == [1.0] * int(
        (expected > 0).sum()
    )


def test_gene_set_links_from_dict_and_gmt(tmp_path):
    X, _ = _paired(n=40, p=6)
    names = [f"g{i}" for i in range(6)]
    sets = {"a": ["g0", "g1", "g2", "absent"], "b": ["g2", "g5"]}
    gmt = tmp_path / "sets.gmt"
    gmt.write_text("a\tdesc\tg0\tg1\tg2\tabsent\nb\t\tg2\tg5\n")
    assert read_gene_sets(gmt) == sets
    links = gene_set_links(sets, names, X)
    assert (links != links.T).nnz == 0 and links.diagonal().sum() == 0
    linked = {tuple(p) for p in np.argwhere(links.toarray() > 0)}
    assert linked == {(0, 1), (1, 0), (0, 2), (2, 0), (1, 2), (2, 1), (2, 5), (5, 2)}
    cos = X[:, 2] @ X[:, 5] / np.linalg.norm(X[:, 2]) / np.linalg.norm(X[:, 5])
    assert links[2, 5] == pytest.approx(cos)
    np.testing.assert_allclose(
        gene_set_links(gmt, names, sp.csr_matrix(X)).toarray(), links.toarray()
    )
    with pytest.raises(ValueError, match="list of feature names"):
        read_gene_sets({"a": "g0"})
    with pytest.raises(ValueError, match="no gene set"):
        (tmp_path / "empty.gmt").write_text("\n")
        read_gene_sets(tmp_path / "empty.gmt")


def test_feature_propagation_is_inductive_and_lsi_sparse_equals_dense():
    X, _ = _paired(n=50, p=20)
    R = LSI(5, random_state=0).fit_transform(X)
    np.testing.assert_allclose(
        np.abs(LSI(5, random_state=0).fit_transform(sp.csr_matrix(X))), np.abs(R)
    )
    prop = FeaturePropagation(4)
    layers = prop.fit_transform(R)
    assert len(layers) == 3 and layers[0].shape == (50, 5)
    again = prop.transform(R[10:20])
    for a, b in zip(again, layers):
        np.testing.assert_allclose(a, b[10:20], atol=1e-10)


def test_bipartite_matching_assignment_and_fallback():
    E = np.linalg.qr(np.random.default_rng(0).normal(size=(6, 6)))[0]
    perm = np.array([3, 0, 5, 1, 2, 4])
    M = bipartite_matching(E, E[perm], threshold_quantile=None)
    assert sp.issparse(M) and (M.sum(axis=1) == 1).all()
    assert (M.toarray().argmax(1) == np.argsort(perm)).all()
    # a threshold that leaves no full assignment returns the kept scores
    rect = bipartite_matching(np.ones((3, 2)), np.ones((4, 2)) / np.sqrt(2), 0.99)
    assert rect.shape == (3, 4)


# -- prediction ----------------------------------------------------------------
def test_prediction_shapes_and_history():
    X, Y = _paired()
    model = ScMoGNN(**FAST).fit(X[:50], Y[:50])
    pred = model.predict(X[50:])
    assert pred.shape == (10, 6)
    assert model.n_iter_ == len(model.history_) == 5
    assert {"train_loss", "valid_loss"} <= set(model.history_[0])
    assert not model.output_relu_  # Y has negative values
    assert all(p.device.type == "cpu" for p in model.module_.parameters())
    assert len(model.feature_states_) == 2


def test_prediction_sparse_equals_dense_and_is_per_cell():
    X, Y = _paired()
    Y = np.abs(Y)
    dense = ScMoGNN(**FAST).fit(X[:50], Y[:50])
    sparse = ScMoGNN(**FAST).fit(sp.csr_matrix(X[:50]), sp.csr_matrix(Y[:50]))
    assert dense.output_relu_ and (dense.predict(X) >= 0).all()
    np.testing.assert_array_equal(
        dense.predict(X[50:]), sparse.predict(sp.csr_matrix(X[50:]))
    )
    # inductive: a cell's prediction does not depend on the cells beside it
    whole = dense.predict(X)
    np.testing.assert_allclose(dense.predict(X[[55, 3]]), whole[[55, 3]], rtol=1e-5)


def test_prediction_training_cells_get_their_graph_output():
    X, Y = _paired()
    model = ScMoGNN(validation_fraction=0.0, feature_graph="drop", **FAST)
    model.fit(X, Y)
    graph = cell_feature_graph(X)
    with torch.no_grad():
        out, _ = model.module_(graph)
    np.testing.assert_allclose(model.predict(X), out.numpy(), rtol=1e-4, atol=1e-5)
    assert model.feature_links_.nnz == 0 and model.best_epoch_ is None


def test_prediction_feature_links_and_options():
    X, Y = _paired()
    names = [f"g{i}" for i in range(X.shape[1])]
    frame = pd.DataFrame(X, columns=names)
    sets = {"s1": names[:8], "s2": names[5:12]}
    model = ScMoGNN(gene_sets=sets, **FAST).fit(frame, Y)
    assert model.feature_links_.nnz > 0
    assert model.module_.encoder.feature_to_feature is not None
    # a custom feature builder, minibatches, the previous-state residual
    model = ScMoGNN(
        feature_graph=GeneCorrelationGraph(threshold=0.2),
        graph=CellGeneGraph(weight="fraction"),
        batch_size=16,
        residual="previous",
        **FAST,
    ).fit(X, Y)
    assert model.predict(X[:4]).shape == (4, 6)
    with pytest.raises(ValueError, match="feature names"):
        ScMoGNN(gene_sets=sets, **FAST).fit(X, Y)
    with pytest.raises(ValueError, match="share a gene set"):
        ScMoGNN(gene_sets={"s": ["nope", "g1"]}, **FAST).fit(frame, Y)
    with pytest.raises(ValueError, match="residual"):
        ScMoGNN(residual="sum", **FAST).fit(X, Y)
    with pytest.raises(ValueError, match="features"):
        ScMoGNN(**FAST).fit(X, Y).predict(X[:, :-1])


# -- matching --------------------------------------------------------------------
def test_matching_shapes_sparse_equals_dense():
    X, Y = _paired(n=70)
    model = ScMoGNNMatcher(**FAST_MATCH).fit(X[:50], Y[:50])
    S = model.match(X[50:], Y[50:])
    assert sp.issparse(S) and S.shape == (20, 20)
    np.testing.assert_allclose(np.asarray(S.sum(axis=1)).ravel(), 1.0)
    assert model.reducers_[0] is not None and model.reducers_[1] is None
    assert model.n_iter_ == len(model.history_) == 5
    assert {"loss_matching", "valid_accuracy"} <= set(model.history_[0])
    sparse = ScMoGNNMatcher(**FAST_MATCH).fit(sp.csr_matrix(X[:50]), Y[:50])
    np.testing.assert_array_equal(
        S.toarray(), sparse.match(sp.csr_matrix(X[50:]), Y[50:]).toarray()
    )
    soft = model.set_params(bipartite_matching=False).match(X[50:], Y[50:])
    assert isinstance(soft, np.ndarray) and (soft > 0).all()
    perm = np.random.default_rng(0).permutation(20)
    np.testing.assert_allclose(model.match(X[50:], Y[50:][perm]), soft[:, perm])


def test_matching_errors():
    X, Y = _paired()
    with pytest.raises(ValueError, match="n_components"):
        ScMoGNNMatcher(n_components=(4, 5, 6)).fit(X, Y)
    with pytest.raises(InvalidParameterError, match="'hidden_dims' parameter"):
        ScMoGNNMatcher(hidden_dims=(0,)).fit(X, Y)
    with pytest.raises(ValueError, match="same cells"):
        ScMoGNNMatcher(**FAST_MATCH).fit(X, Y[:-1])
    with pytest.raises(ValueError, match="n_layers"):
        ScMoGNNMatcher(n_layers=1).fit(X, Y)


# -- real data: NeurIPS 2021 CITE-seq starter, train s1d1 -> test s1d2 ---------
@pytest.fixture(scope="module")
def cite():
    # the organisers' files, shipped inside the package
    rna = ad.read_h5ad(fetch_file("neurips2021_bmmc_cite_starter_rna"))
    adt = ad.read_h5ad(fetch_file("neurips2021_bmmc_cite_starter_mod2"))
    train = (rna.obs["batch"] == "s1d1").to_numpy()
    return rna, adt, train


def test_prediction_beats_training_mean_on_cite(cite):
    rna, adt, train = cite
    torch.set_num_threads(1)
    model = ScMoGNN(
        hidden_dim=32,
        n_layers=2,
        feature_graph="drop",
        max_epochs=60,
        patience=None,
        random_state=0,
    ).fit(rna[train], adt[train])
    truth = adt[~train].X.toarray()
    baseline = np.sqrt(np.mean((truth - adt[train].X.toarray().mean(0)) ** 2))
    rmse = -model.score(rna[~train], adt[~train])
    assert rmse < 0.9 * baseline  # measured: 0.65 vs 0.79


def test_matching_beats_random_on_cite(cite):
    rna, adt, train = cite
    torch.set_num_threads(1)
    model = ScMoGNNMatcher(
        hidden_dims=(256,), max_epochs=30, patience=None, random_state=0
    ).fit(rna[train], adt[train])
    n = int((~train).sum())
    assert model.score(rna[~train], adt[~train]) * n > 3  # measured: ~7


def test_sparse_target_mse_equals_elementwise_loss_and_gradient():
    Y = sp.random(9, 7, density=0.3, random_state=1, format="csr") * 2.0
    torch.manual_seed(0)
    lin = torch.nn.Linear(4, 7)
    H = torch.randn(9, 4, requires_grad=True)
    closed = SparseTargetMSE(Y)(H, lin)
    grads = torch.autograd.grad(closed, [H, lin.weight, lin.bias])
    exact = torch.nn.functional.mse_loss(
        lin(H), torch.tensor(Y.toarray(), dtype=torch.float32)
    )
    expected = torch.autograd.grad(exact, [H, lin.weight, lin.bias])
    assert closed.item() == pytest.approx(exact.item(), rel=1e-6)
    for got, want in zip(grads, expected):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_prediction_large_sparse_target_is_not_densified(monkeypatch):
    # the closed-form loss (taken for large sparse targets) trains the same
    # model as the elementwise one, up to float rounding
    X, Y = _paired()
    Y = sp.csr_matrix(np.where(np.abs(Y) > 1.0, np.abs(Y), 0.0))
    small = ScMoGNN(**FAST).fit(X[:50], Y[:50])
    monkeypatch.setattr(scmogcn_prediction, "_DENSE_TARGET_MAX", 0)

    def no_dense(*args, **kwargs):
        raise AssertionError("the training targets were densified")

    monkeypatch.setattr(scmogcn_prediction, "dense_rows", no_dense)
    large = ScMoGNN(**FAST).fit(X[:50], Y[:50])
    np.testing.assert_allclose(
        large.predict(X[50:]), small.predict(X[50:]), rtol=1e-4, atol=1e-5
    )
    valid = [h["valid_loss"] for h in small.history_]
    assert [h["valid_loss"] for h in large.history_] == pytest.approx(valid, rel=1e-5)
