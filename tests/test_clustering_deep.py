"""ScDeepCluster, ScDCC, ScTAG, ScDSC and GraphSC on a small real PBMC subset.

Each model is fitted once with short schedules; the tests check that it
learns (beats a random labelling by a clear margin, losses go down), what it
records, and the method-specific pieces (constraints, graphs, fusion, the DEC
head).  Same-seed fits and fitted pickles of every estimator are checked in
test_common.py.
"""

import inspect

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.metrics import adjusted_rand_score

from skdance.clustering import (
    GraphSC,
    ScDCC,
    ScDeepCluster,
    ScDSC,
    ScTAG,
    draw_constraint_pairs,
    make_partial_labels,
)
from skdance.datasets import load_pbmc_4k_subset
from skdance.graph import KNNGraph
from skdance.nn import (
    get_likelihood,
    history_values,
    student_t_assignment,
    target_distribution,
)


@pytest.fixture(scope="module")
def pbmc():
    X, y = load_pbmc_4k_subset()
    return X[:500], y[:500]


FAST = {
    "ScDeepCluster": ScDeepCluster(
        n_clusters=8, pretrain_epochs=40, max_epochs=30, random_state=0
    ),
    "ScDCC": ScDCC(
        n_clusters=8, n_pairs=1000, pretrain_epochs=40, max_epochs=20, random_state=0
    ),
    "ScTAG": ScTAG(n_clusters=8, pretrain_epochs=80, max_epochs=30, random_state=0),
    "ScDSC": ScDSC(n_clusters=8, pretrain_epochs=30, max_epochs=40, random_state=0),
    "GraphSC": GraphSC(n_clusters=8, max_epochs=10, random_state=0),
}
# ARI floors on this subset, well below what the short schedules reach
# (ScDeepCluster ~0.6, ScDCC ~0.5, ScTAG ~0.6, ScDSC ~0.5, GraphSC ~0.65)
# and far above random.
FLOORS = {
    "ScDeepCluster": 0.3,
    "ScDCC": 0.3,
    "ScTAG": 0.3,
    "ScDSC": 0.3,
    "GraphSC": 0.45,
}


def _fit(name, X, y):
    est = clone(FAST[name])
    if name == "ScDCC":
        known = make_partial_labels(y, 0.2, random_state=0)
        return est.fit(X, constraint_labels=known)
    return est.fit(X)


@pytest.fixture(scope="module")
def fitted(pbmc):
    X, y = pbmc
    return {name: _fit(name, X, y) for name in FAST}


@pytest.mark.parametrize("name", list(FAST))
def test_ari_floor_on_real_cells(name, pbmc, fitted):
    _, y = pbmc
    labels = fitted[name].labels_
    assert labels.shape == y.shape
    assert set(np.unique(labels)) <= set(range(fitted[name].n_clusters))
    assert adjusted_rand_score(y, labels) > FLOORS[name]


@pytest.mark.parametrize(
    "name,phase",
    [
        ("ScDeepCluster", "pretrain"),
        ("ScDCC", "pretrain"),
        ("ScTAG", "pretrain"),
        ("ScDSC", "pretrain"),
        ("GraphSC", "train"),
    ],
)
def test_losses_decrease(name, phase, fitted):
    loss = history_values(fitted[name].history_, "train_loss", phase=phase)
    assert np.isfinite(loss).all()
    assert loss[-1] < 0.95 * loss[0]


@pytest.mark.parametrize("name", list(FAST))
def test_transform_matches_training_embedding(name, pbmc, fitted):
    X, _ = pbmc
    est = fitted[name]
    np.testing.assert_allclose(est.transform(X), est.embedding_, atol=1e-4)


def test_scdcc_with_constraints_same_seed_same_fit(pbmc):
    # the common checks fit ScDCC without constraint labels
    X, y = pbmc
    small = clone(FAST["ScDCC"]).set_params(max_epochs=2, pretrain_epochs=2)
    a = _fit_est(small, "ScDCC", X[:200], y[:200])
    b = _fit_est(clone(small), "ScDCC", X[:200], y[:200])
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_array_equal(a.embedding_, b.embedding_)


def _fit_est(est, name, X, y):
    if name == "ScDCC":
        known = make_partial_labels(y, 0.1, random_state=0)
        return est.set_params(n_pairs=200).fit(X, constraint_labels=known)
    return est.fit(X)


def test_scdcc_constraints_are_satisfied_more_than_by_chance(pbmc, fitted):
    X, y = pbmc
    known = make_partial_labels(y, 0.2, random_state=0)
    ml, cl = draw_constraint_pairs(known, 1000, random_state=0)
    labels = fitted["ScDCC"].labels_
    assert np.mean(labels[ml[:, 0]] == labels[ml[:, 1]]) > 0.7
    assert np.mean(labels[cl[:, 0]] != labels[cl[:, 1]]) > 0.7
    constraint = history_values(fitted["ScDCC"].history_, "constraint_loss")
    assert np.isfinite(constraint).all()


def test_partial_labels_and_pairs_follow_labels():
    y = np.repeat(np.array(["a", "b", "c", "d"]), 25)
    known = make_partial_labels(y, 0.5, random_state=0)
    assert known.shape == y.shape and (known >= 0).sum() == 50
    codes = np.unique(y, return_inverse=True)[1]
    assert (known[known >= 0] == codes[known >= 0]).all()
    ml, cl = draw_constraint_pairs(known, 500, random_state=0)
    assert len(ml) + len(cl) == 500
    assert (y[ml[:, 0]] == y[ml[:, 1]]).all() and (y[cl[:, 0]] != y[cl[:, 1]]).all()
    assert (ml[:, 0] != ml[:, 1]).all()
    assert set(np.unique(np.concatenate([ml.ravel(), cl.ravel()]))) <= set(
        np.flatnonzero(known >= 0)
    )
    # unknown as None in an object vector works the same
    named = np.where(known >= 0, y, None)
    ml2, cl2 = draw_constraint_pairs(named, 500, random_state=0)
    np.testing.assert_array_equal(ml, ml2)
    np.testing.assert_array_equal(cl, cl2)
    with pytest.raises(ValueError, match="label_fraction"):
        make_partial_labels(y, 0)


def test_scdcc_rejects_bad_constraint_labels(pbmc):
    X, _ = pbmc
    est = ScDCC(n_clusters=3, pretrain_epochs=1, max_epochs=1)
    with pytest.raises(ValueError, match="one row per cell"):
        est.fit(X[:50], constraint_labels=np.zeros(49, dtype=int))
    with pytest.raises(ValueError, match="1-dimensional"):
        est.fit(X[:50], constraint_labels=np.zeros((50, 2), dtype=int))


def test_graph_parameter_is_cloned_and_used(pbmc):
    X, _ = pbmc
    graph = KNNGraph(n_neighbors=5)
    est = ScTAG(
        n_clusters=4,
        graph=graph,
        n_components=20,
        pretrain_epochs=1,
        max_epochs=1,
        random_state=0,
    ).fit(X[:120])
    assert not hasattr(graph, "n_features_in_")  # the parameter stays unfitted
    degrees = np.diff(est.adjacency_.indptr)
    assert degrees.min() >= 5
    est = ScDSC(
        n_clusters=4, graph=graph, pretrain_epochs=1, max_epochs=1, random_state=0
    ).fit(X[:120])
    assert est.adjacency_.shape == (120, 120)


def test_scdsc_autoencoder_weight_one_feeds_autoencoder_layers_to_gcn():
    torch.manual_seed(0)
    from skdance.clustering.scdsc import ScDSCModule

    module = ScDSCModule(6, (5, 4), (3, 2), 2).eval()
    x = torch.randn(7, 6)
    adj = torch.eye(7).to_sparse_csr()
    _, _, pred_a, *_ = module(x, adj, 1.0)
    # with autoencoder_weight=1 the GCN's inner outputs are ignored: changing its first
    # layer must not change the prediction
    with torch.no_grad():
        module.gcn.convs[0].lin.weight.add_(1.0)
    _, _, pred_b, *_ = module(x, adj, 1.0)
    torch.testing.assert_close(pred_a, pred_b)
    torch.testing.assert_close(pred_a.sum(1), torch.ones(7))


@pytest.mark.parametrize("cls", [ScDeepCluster, ScDCC, ScTAG, ScDSC, GraphSC])
def test_requires_n_clusters_and_counts(cls, pbmc):
    X, _ = pbmc
    with pytest.raises(ValueError, match="requires n_clusters"):
        cls(max_epochs=1).fit(X[:50])
    with pytest.raises(ValueError, match="larger than the number of cells"):
        cls(n_clusters=60, max_epochs=1).fit(X[:50])
    dense = X[:50].toarray()
    dense[0, 0] = -1
    with pytest.raises(ValueError, match="Negative"):
        cls(n_clusters=2, max_epochs=1).fit(dense)


# phases each model records, and whether every clustering epoch has "changed"
PHASES = {
    "ScDeepCluster": ["pretrain", "cluster"],
    "ScDCC": ["pretrain", "cluster"],
    "ScTAG": ["pretrain", "cluster"],
    "ScDSC": ["pretrain", "cluster"],
    "GraphSC": ["train"],
}


@pytest.mark.parametrize("name", list(FAST))
def test_history_records_and_device(name, pbmc, fitted):
    est = fitted[name]
    history = est.history_
    assert isinstance(history, list) and history
    for row in history:
        assert {"phase", "epoch", "train_loss", "seconds"} <= set(row)
        assert np.isfinite(row["train_loss"]) and row["seconds"] >= 0
    phases = [row["phase"] for row in history]
    assert list(dict.fromkeys(phases)) == PHASES[name]
    params = est.get_params()
    if name == "GraphSC":
        assert len(history) == params["max_epochs"] == est.n_iter_
        assert [row["epoch"] for row in history] == list(range(len(history)))
    else:
        assert phases.count("pretrain") == params["pretrain_epochs"]
        assert phases.count("cluster") == est.n_iter_ <= params["max_epochs"]
        cluster = [row for row in history if row["phase"] == "cluster"]
        assert [row["epoch"] for row in cluster] == list(range(est.n_iter_))
        assert all(0 <= row["changed"] <= 1 for row in cluster)
    if name == "ScDCC":
        assert len(history_values(history, "constraint_loss")) == est.n_iter_
    for old in ("loss_", "pretrain_loss_", "cluster_loss_", "constraint_loss_"):
        assert not hasattr(est, old)
    # parameter order: ..., device, random_state, verbose
    signature = list(inspect.signature(type(est)).parameters)
    assert signature[-3:] == ["device", "random_state", "verbose"]
    assert params["device"] == "cpu"
    assert next(est.module_.parameters()).device.type == "cpu"
    if torch.cuda.is_available():
        pytest.skip("CUDA is available: device='cuda' is valid here")
    X, y = pbmc
    with pytest.raises(ValueError, match="cuda"):
        _fit_est(clone(est).set_params(device="cuda"), name, X[:50], y[:50])


def test_scdeepcluster_label_change_rule_stops_clustering(pbmc):
    X, _ = pbmc
    # tol=1: any update after the first stops, so one target update's epochs run
    est = ScDeepCluster(
        n_clusters=4,
        pretrain_epochs=1,
        max_epochs=10,
        update_interval=3,
        tol=1.0,
        random_state=0,
    ).fit(X[:100])
    assert est.n_iter_ == 3
    assert [r["epoch"] for r in est.history_ if r["phase"] == "cluster"] == [0, 1, 2]


def test_scdeepcluster_predict_and_centers(pbmc, fitted):
    X, _ = pbmc
    est = fitted["ScDeepCluster"]
    np.testing.assert_array_equal(est.predict(X), est.labels_)
    assert est.cluster_centers_.shape == (8, 32)


def test_dec_head_invariants():
    z = torch.randn(20, 4)
    centers = torch.randn(3, 4)
    q = student_t_assignment(z, centers)
    p = target_distribution(q)
    torch.testing.assert_close(q.sum(1), torch.ones(20))
    torch.testing.assert_close(p.sum(1), torch.ones(20))
    # DEC: p_ij = (q_ij^2 / f_j) / sum_k (q_ik^2 / f_k), f_j = sum_i q_ij
    w = q**2 / q.sum(0)
    torch.testing.assert_close(p, w / w.sum(1, keepdim=True))
    # Student-t kernel by hand for one entry
    d2 = ((z[0] - centers) ** 2).sum(1)
    k = 1 / (1 + d2)
    torch.testing.assert_close(q[0], k / k.sum())


def test_zinb_prefers_true_parameters():
    torch.manual_seed(0)
    mean = torch.full((2000, 1), 4.0)
    disp = torch.full((2000, 1), 2.0)
    nb = torch.distributions.NegativeBinomial(
        total_count=disp, logits=torch.log(mean / disp)
    )
    x = nb.sample()
    x[:400] = 0  # 20% dropout
    zinb = get_likelihood("zinb")
    good = zinb.nll(x, mean, disp, torch.full_like(x, 0.2)).mean()
    bad = zinb.nll(x, mean * 3, disp, torch.full_like(x, 0.2)).mean()
    no_dropout = zinb.nll(x, mean, disp, torch.full_like(x, 1e-4)).mean()
    assert good < bad and good < no_dropout


WIDTHS = [
    (ScDeepCluster, "hidden_dims"),
    (ScDCC, "hidden_dims"),
    (ScDSC, "hidden_dims"),
    (ScDSC, "latent_dims"),
    (ScTAG, "decoder_dims"),
]


@pytest.mark.parametrize(("cls", "param"), WIDTHS)
@pytest.mark.parametrize("bad", [(), (8, 0), (8.0,), 8])
def test_bad_layer_widths_fail_in_parameter_validation(cls, param, bad, pbmc):
    X, _ = pbmc
    est = cls(n_clusters=2, pretrain_epochs=1, max_epochs=1, **{param: bad})
    with pytest.raises(ValueError, match=f"'{param}' parameter of {cls.__name__}"):
        est.fit(X[:20])
    assert not hasattr(est, "normalizer_")  # rejected before any work


def test_scdcc_without_constraints_is_scdeepcluster(pbmc):
    # the constraint step is the only difference in the shared fit template
    X, _ = pbmc
    params = {"n_clusters": 4, "pretrain_epochs": 2, "max_epochs": 3}
    params["random_state"] = 0
    plain = ScDeepCluster(**params).fit(X[:120])
    constrained = ScDCC(**params).fit(X[:120])
    np.testing.assert_array_equal(constrained.embedding_, plain.embedding_)
    np.testing.assert_array_equal(constrained.labels_, plain.labels_)
    losses = history_values(constrained.history_)
    assert losses == history_values(plain.history_)
    n_iter = constrained.n_iter_
    assert history_values(constrained.history_, "constraint_loss") == [0.0] * n_iter
    assert n_iter == plain.n_iter_ >= 1
