"""Imputation: DANCE's masking protocol, scores, DeepImpute and the MAGIC baseline."""

import numpy as np
import pytest
import scipy.sparse as sp

from skdance.datasets import load_pbmc_4k_subset
from skdance.graph import (
    AdaptiveKernelGraph,
    CellGeneGraph,
    GeneCorrelationGraph,
    KNNGraph,
    PrunedKNNGraph,
)
from skdance.imputation import MAGIC, DeepImpute, imputation_scores, mask_dropout
from skdance.imputation.deepimpute import weighted_mse
from skdance.nn import history_values


@pytest.fixture(scope="module")
def masked_pbmc():
    X, y = load_pbmc_4k_subset()
    X_masked, mask = mask_dropout(X, 0.1, random_state=0)
    return X, X_masked, mask, y


def test_mask_dropout_follows_dance(masked_pbmc):
    X, X_masked, mask, _ = masked_pbmc
    assert sp.issparse(X_masked) and X_masked.shape == X.shape
    hidden = mask.toarray()
    dense, masked = X.toarray(), X_masked.toarray()
    # only non-zero entries are hidden, they become 0, the rest is untouched
    assert (dense[hidden] > 0).all() and (masked[hidden] == 0).all()
    np.testing.assert_array_equal(masked[~hidden], dense[~hidden])
    # floor(10%) of each cell's detected genes (cells with > 5 genes)
    detected = (dense > 0).sum(axis=1)
    expected = np.where(detected > 5, np.floor(0.1 * detected), 0)
    np.testing.assert_array_equal(hidden.sum(axis=1), expected)
    # the exponential weights favour low counts
    assert np.median(dense[hidden]) <= np.median(dense[dense > 0])
    # deterministic, input untouched, dense input gives dense output
    again, mask2 = mask_dropout(X, 0.1, random_state=0)
    assert (mask2 != mask).nnz == 0
    dense_out, _ = mask_dropout(dense, 0.1, random_state=0)
    np.testing.assert_array_equal(dense_out, masked)
    np.testing.assert_array_equal(X.toarray(), dense)


def test_mask_dropout_rejects_bad_input():
    with pytest.raises(ValueError, match="rate"):
        mask_dropout(np.ones((3, 3)), 1.5)
    with pytest.raises(ValueError, match="Negative"):
        mask_dropout(-np.ones((3, 3)), 0.1)
    with pytest.raises(ValueError, match="distribution"):
        mask_dropout(np.ones((3, 3)), 0.1, distribution="normal")


def test_imputation_scores_known_values():
    true = np.array([[3.0, 1.0], [0.0, 7.0]])
    mask = np.array([[True, False], [False, True]])
    pred = np.array([[1.0, 5.0], [9.0, 7.0]])
    s = imputation_scores(true, pred, mask, log1p=False)
    assert s["mse"] == pytest.approx(2.0)  # errors -2 and 0
    assert s["rmse"] == pytest.approx(np.sqrt(2.0))
    assert s["mre"] == pytest.approx((2 / 3 + 0) / 2)
    s = imputation_scores(true, pred, mask)
    assert s["mse"] == pytest.approx((np.log(2) - np.log(4)) ** 2 / 2)
    with pytest.raises(ValueError, match="same shape"):
        imputation_scores(true, pred[:1], mask)


def test_weighted_mse_weights_by_target():
    import torch

    y = torch.tensor([[0.0, 2.0]])
    assert float(weighted_mse(y, torch.tensor([[5.0, 1.0]]))) == pytest.approx(1.0)


@pytest.fixture(scope="module")
def deepimpute(masked_pbmc):
    _, X_masked, _, _ = masked_pbmc
    model = DeepImpute(
        n_targets_per_network=256, learning_rate=1e-3, max_epochs=40, random_state=0
    )
    return model.fit(X_masked)


def test_deepimpute_beats_zeros_and_keeps_observed(masked_pbmc, deepimpute):
    X, X_masked, mask, _ = masked_pbmc
    out = deepimpute.transform(X_masked)
    assert sp.issparse(out) and out.shape == X.shape
    assert out.min() >= 0
    # "restore" policy: every observed count is returned unchanged
    observed = X_masked.nonzero()
    np.testing.assert_array_equal(
        np.asarray(out[observed]).ravel(), np.asarray(X_masked[observed]).ravel()
    )
    # non-target genes are untouched
    targets = np.unique(np.concatenate(deepimpute.targets_))
    others = np.setdiff1d(np.arange(X.shape[1]), targets)
    assert (out[:, others] != X_masked[:, others]).nnz == 0
    zeros = imputation_scores(X, X_masked, mask)
    scores = imputation_scores(X, out, mask)
    # measured ~0.5 vs 1.15 for leaving the zeros; Pearson ~0.5 vs 0
    assert scores["mse"] < 0.75 * zeros["mse"]
    assert scores["pearson"] > 0.3


def test_deepimpute_predictors_per_target_and_candidates(small_masked):
    _, X_masked, _ = small_masked
    X_small = X_masked[:200, :60]
    kw = {"n_targets_per_network": 8, "max_epochs": 1, "random_state": 0}
    one = DeepImpute(n_predictors_per_target=1, **kw).fit(X_small)
    for targets, inputs in zip(one.targets_, one.predictors_):
        assert 0 < inputs.size <= targets.size
    dense = X_small.toarray()
    cv = dense.std(axis=0) / np.maximum(dense.mean(axis=0), 1e-12)
    top = np.argsort(-cv, kind="stable")[:10]
    few = DeepImpute(n_candidate_predictors=10, **kw).fit(X_small)
    assert set(np.concatenate(few.predictors_)) <= set(top)


def test_deepimpute_subsets_and_inputs(masked_pbmc, deepimpute):
    _, X_masked, _, _ = masked_pbmc
    for targets, inputs in zip(deepimpute.targets_, deepimpute.predictors_):
        assert targets.size == 256
        # predictors come from outside the subset, n_predictors_per_target at most
        assert not np.isin(inputs, targets).any()
        assert 0 < inputs.size <= 5 * targets.size
    # targets are the genes ranked highest by var / (1 + mean)
    dense = X_masked.toarray()
    metric = dense.var(axis=0, ddof=1) / (1 + dense.mean(axis=0))
    chosen = np.concatenate(deepimpute.targets_)
    assert metric[chosen].min() >= np.sort(metric)[::-1][chosen.size - 1] - 1e-12
    history = deepimpute.history_
    n_epochs = len(history_values(history, "train_loss", phase="train"))
    assert n_epochs <= 40 and len(history_values(history, "valid_loss")) > 0
    assert 0 <= deepimpute.best_epoch_ < n_epochs


@pytest.mark.parametrize("policy", ["max", "predict"])
def test_deepimpute_policies(masked_pbmc, deepimpute, policy):
    _, X_masked, _, _ = masked_pbmc
    from sklearn.base import clone

    model = clone(deepimpute).set_params(policy=policy, max_epochs=2)
    out = model.fit(X_masked).transform(X_masked).toarray()
    targets = np.unique(np.concatenate(model.targets_))
    if policy == "max":
        assert (out >= X_masked.toarray() - 1e-9).all()
    else:  # target genes are the network's output, observed counts replaced
        assert not np.allclose(out[:, targets], X_masked[:, targets].toarray())


def test_magic_baseline(masked_pbmc):
    X, X_masked, mask, _ = masked_pbmc
    out = MAGIC(random_state=0).fit_transform(X_masked)
    assert out.shape == X.shape and out.min() >= 0
    # library sizes are kept (square-root diffusion then rescaling)
    scores = imputation_scores(X, out, mask)
    assert scores["mse"] < imputation_scores(X, X_masked, mask)["mse"]
    assert scores["pearson"] > 0.6  # measured ~0.82
    with pytest.raises(ValueError, match="zero total counts"):
        MAGIC().fit_transform(np.vstack([X[:20].toarray(), np.zeros((1, 2000))]))


def test_magic_graph_parameter(masked_pbmc):
    _, X_masked, _, _ = masked_pbmc
    X = X_masked[:150, :200]
    default = MAGIC(n_components=10, random_state=0).fit_transform(X)
    explicit = MAGIC(
        graph=AdaptiveKernelGraph(n_neighbors=5, decay=1.0),
        n_components=10,
        random_state=0,
    ).fit_transform(X)
    np.testing.assert_array_equal(default, explicit)
    knn = MAGIC(graph=KNNGraph(n_neighbors=10), n_components=10, random_state=0)
    out = knn.fit_transform(X)
    assert out.shape == X.shape and not np.allclose(out, default)
    with pytest.raises(ValueError, match="graph must return the"):
        MAGIC(graph=GeneCorrelationGraph(), n_components=10).fit_transform(X)


def test_adaptive_kernel_graph():
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(30, 4))
    K = AdaptiveKernelGraph(n_neighbors=3, decay=2.0).fit_transform(Z)
    assert (K != K.T).nnz == 0
    np.testing.assert_allclose(K.diagonal(), 1.0)
    assert ((K.data > 0) & (K.data <= 1)).all()
    # each cell's kernel is evaluated on its 3 * 3 nearest neighbours
    assert (np.diff(K.indptr) >= 10).all()


@pytest.fixture(scope="module")
def small_masked(masked_pbmc):
    X, X_masked, mask, _ = masked_pbmc
    genes = np.argsort(-np.asarray(X_masked.sum(axis=0)).ravel())[:300]
    return X[:, genes], X_masked[:, genes], mask[:, genes]


def test_graphsci_imputes_from_the_gene_graph(small_masked):
    from skdance.imputation import GraphSCI

    X, X_masked, mask = small_masked
    model = GraphSCI(hidden_dims=(64, 32), max_epochs=60, random_state=0)
    out = model.fit_transform(X_masked)
    assert out.shape == X.shape and out.min() >= 0 and np.isfinite(out).all()
    assert model.gene_latent_.shape == (300, 300)
    assert (model.adjacency_ != model.adjacency_.T).nnz == 0
    loss = history_values(model.history_, "train_loss", phase="train")
    assert len(loss) == 60 and loss[-1] < 0.2 * loss[0]
    # the ZINB mean beats leaving the hidden entries at zero
    scores = imputation_scores(X, out, mask)
    assert scores["mse"] < 0.8 * imputation_scores(X, X_masked, mask)["mse"]
    # the output follows the genes' levels (measured 0.55; 0.03 when the mean
    # head starts every gene at the same level)
    assert scores["pearson"] > 0.35
    # deterministic under random_state; transform is per cell (inductive)
    again = GraphSCI(hidden_dims=(64, 32), max_epochs=60, random_state=0)
    np.testing.assert_allclose(again.fit_transform(X_masked), out, rtol=1e-5)
    np.testing.assert_allclose(model.transform(X_masked[:7]), out[:7], rtol=1e-5)
    with pytest.raises(ValueError, match="gene adjacency"):
        from skdance.graph import KNNGraph

        GraphSCI(graph=KNNGraph(n_neighbors=3), max_epochs=1).fit(X_masked)


def test_ltmg_signals_code_components_by_mean():
    from skdance.imputation.scgnn import ltmg_signals

    rng = np.random.default_rng(0)
    low = rng.normal(1.0, 0.1, 60)
    high = rng.normal(4.0, 0.1, 60)
    gene = np.concatenate([np.zeros(30), low, high])
    E = np.column_stack([gene, np.r_[np.zeros(145), np.ones(5)]])
    S = ltmg_signals(E, random_state=0)
    assert (S[:30, 0] == 0).all()  # zeros are below the truncation
    assert (S[30:90, 0] == 1).all() and (S[90:, 0] == 2).all()
    # too few expressing cells for a mixture: every non-zero entry is 1
    assert (S[145:, 1] == 1).all() and (S[:145, 1] == 0).all()


@pytest.mark.parametrize("method", ["isolation_forest", "stats"])
def test_pruned_knn_graph(method):
    from skdance.graph import PrunedKNNGraph

    rng = np.random.default_rng(0)
    Z = np.vstack([rng.normal(0, 1, (40, 5)), rng.normal(20, 1, (40, 5))])
    builder = PrunedKNNGraph(n_neighbors=10, prune=method, random_state=0)
    A = builder.fit_transform(Z)
    assert A.shape == (80, 80) and (A != A.T).nnz == 0 and A.diagonal().sum() == 0
    # pruning removes edges, and the two far-apart groups stay disconnected
    assert A.nnz < 80 * 10 * 2
    assert A[:40, 40:].nnz == 0
    degree = np.asarray(A.sum(axis=1)).ravel()
    assert degree.min() >= 1


def test_scgnn_regulariser_weights_match_dense_products():
    """eq. 5 as scGNN computes it, with dense matrices, on a random batch."""
    import scipy.sparse as sp

    from skdance.imputation.scgnn import _regulariser_weights
    from skdance.preprocessing._utils import normalize_rows

    rng = np.random.default_rng(0)
    n, g = 30, 7
    A = sp.random(n, n, density=0.2, random_state=0)
    A = ((A + A.T) > 0).astype(float)
    labels = rng.choice(["a", "b", "c"], n)
    rows = rng.choice(n, 12, replace=False)
    err = rng.random((12, g))
    G = normalize_rows(A, 1.0).toarray()
    B = (labels[:, None] == labels[None, :]).astype(float)
    B /= B.sum(axis=1, keepdims=True)
    dense = (
        0.1 * err.sum()
        + 0.9 * (G[np.ix_(rows, rows)] @ err).sum()
        + 0.5 * (B[np.ix_(rows, rows)] @ err).sum()
    )
    w = _regulariser_weights(sp.csr_matrix(G), labels, rows, 0.1, 0.9, 0.5)
    assert w.shape == (12,)
    np.testing.assert_allclose((w @ err).sum(), dense, rtol=1e-5)


def test_scgnn_end_to_end(small_masked):
    from skdance.imputation import ScGNN

    X, X_masked, mask = small_masked
    kw = {
        "graph": PrunedKNNGraph(prune="stats"),
        "pretrain_epochs": 60,
        "em_epochs": 20,
        "cluster_epochs": 10,
        "impute_epochs": 20,
        "gae_epochs": 30,
        "max_iter": 2,
        "random_state": 0,
    }
    model = ScGNN(**kw)
    out = model.fit_transform(X_masked)
    assert out.shape == X.shape and out.min() >= 0 and np.isfinite(out).all()
    assert 1 <= model.n_iter_ <= 2
    assert model.labels_.shape == (X.shape[0],) and np.unique(model.labels_).size >= 2
    assert model.signals_.shape == X.shape
    # better than leaving the hidden entries at zero
    assert (
        imputation_scores(X, out, mask)["mse"]
        < imputation_scores(X, X_masked, mask)["mse"]
    )
    # deterministic, and transform is per cell
    np.testing.assert_allclose(ScGNN(**kw).fit_transform(X_masked), out, rtol=1e-5)
    np.testing.assert_allclose(model.transform(X_masked[:5]), out[:5], rtol=1e-5)


def _tiny_imputers():
    from skdance.imputation import GraphSCI, ScGNN

    return {
        "DeepImpute": (
            DeepImpute(
                n_targets_per_network=32, hidden_dim=16, max_epochs=3, random_state=0
            ),
            ["train"],
        ),
        "GraphSCI": (
            GraphSCI(hidden_dims=(8, 8), max_epochs=3, random_state=0),
            ["train"],
        ),
        "ScGNN": (
            ScGNN(
                graph=PrunedKNNGraph(prune="stats"),
                pretrain_epochs=2,
                em_epochs=2,
                cluster_epochs=2,
                impute_epochs=2,
                gae_epochs=2,
                max_iter=1,
                random_state=0,
            ),
            ["pretrain", "graph_ae", "cluster_ae", "em", "impute"],
        ),
    }


@pytest.mark.parametrize("name", ["DeepImpute", "GraphSCI", "ScGNN"])
def test_torch_imputers_history_and_device(small_masked, name):
    import torch

    _, X_masked, _ = small_masked
    X_small = X_masked[:200, :60]
    model, phases = _tiny_imputers()[name]
    model.fit(X_small)
    history = model.history_
    assert all({"phase", "epoch", "train_loss", "seconds"} <= set(r) for r in history)
    assert list(dict.fromkeys(r["phase"] for r in history)) == phases
    assert all(np.isfinite(r["train_loss"]) for r in history)
    if name == "DeepImpute":  # 5% of the cells held out
        assert all("valid_loss" in r for r in history)
        assert 0 <= model.best_epoch_ < len(history)
    if name == "ScGNN":
        em = [r for r in history if r["phase"] == "em"]
        assert len(em) == 2 and {"graph_change", "ari"} <= set(em[-1])
        assert all(r["iteration"] == 0 for r in history if "iteration" in r)
        assert model.n_iter_ == 1  # EM iterations, not epochs
    else:
        assert model.n_iter_ == len(history)
    # the fitted module is on the CPU, in evaluation mode
    assert not model.module_.training
    assert all(p.device.type == "cpu" for p in model.module_.parameters())
    if torch.cuda.is_available():
        pytest.skip("CUDA is available: device='cuda' is valid here")
    with pytest.raises(ValueError, match="cuda"):
        _tiny_imputers()[name][0].set_params(device="cuda").fit(X_small)


def test_scgnn_graph_must_be_a_cell_graph(small_masked):
    from skdance.imputation import ScGNN

    _, X_masked, _ = small_masked
    model = ScGNN(graph=CellGeneGraph(), pretrain_epochs=1, max_iter=1)
    with pytest.raises(ValueError, match="graph must return the"):
        model.fit(X_masked[:30, :20])
