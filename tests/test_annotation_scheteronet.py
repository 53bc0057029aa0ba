"""ScHeteroNet: one- and two-hop graphs, the network, training, novelty scores."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.model_selection import train_test_split

from skdance.annotation import ScHeteroNet
from skdance.annotation.scheteronet import ScHeteroNetModule, heteronet_adjacencies
from skdance.datasets import load_pbmc_4k_subset
from skdance.graph import KNNGraph
from skdance.nn import history_values, to_torch_sparse

FAST = {
    "n_top_genes": 300,
    "hidden_dim": 16,
    "decoder_dims": (16, 32),
    "max_epochs": 20,
    "random_state": 0,
}


@pytest.fixture(scope="module")
def pbmc_split():
    X, y = load_pbmc_4k_subset()
    return train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)


@pytest.fixture(scope="module")
def fitted(pbmc_split):
    X_tr, _, y_tr, _ = pbmc_split
    X_before = X_tr.copy()
    model = ScHeteroNet(**FAST).fit(X_tr, y_tr.astype(str))
    assert (X_tr != X_before).nnz == 0  # the input is not modified
    return model


def _original_operators(neighbours):
    """The original's steps on a dense 0/1 matrix (torch_sparse / gcn_norm)."""
    n = len(neighbours)
    A = np.zeros((n, n))
    for i, js in enumerate(neighbours):
        A[i, js] = 1.0
        A[i, i] = 1.0  # kneighbors_graph(include_self=True)
    P = A.T  # SparseTensor(row=col, col=row): messages along edge_index
    P2 = ((P @ P) > 0).astype(float) - P  # pattern of spspmm, minus P
    P2[P2 < 0] = 0

    def gcn_norm(M):
        d = M.sum(axis=1)
        inv = np.divide(1.0, np.sqrt(d), out=np.zeros_like(d), where=d > 0)
        return inv[:, None] * M * inv[None, :]

    d = P.sum(axis=1)
    return gcn_norm(P), gcn_norm(P2), P / d[:, None]


def test_adjacencies_match_the_original_construction():
    rng = np.random.default_rng(0)
    n, k = 12, 3
    neighbours = [
        rng.choice(np.delete(np.arange(n), i), k, replace=False) for i in range(n)
    ]
    A = sp.lil_matrix((n, n))
    for i, js in enumerate(neighbours):
        A[i, js] = 0.5  # weights are ignored
    one, two, prop = heteronet_adjacencies(A.tocsr())
    expected = _original_operators(neighbours)
    for got, want in zip((one, two, prop), expected):
        np.testing.assert_allclose(got.toarray(), want, rtol=1e-6, atol=1e-7)
    # the strict two-hop graph shares no edge with the one-hop graph
    assert not (two.multiply(one) != 0).nnz and not two.diagonal().any()
    np.testing.assert_allclose(np.asarray(prop.sum(axis=1)).ravel(), 1.0, rtol=1e-6)


def test_network_concatenates_embedding_and_both_hops():
    torch.manual_seed(0)
    module = ScHeteroNetModule(n_genes=5, hidden_dim=3, n_classes=2, decoder_dims=(4,))
    x = torch.rand(6, 5)
    E = np.random.default_rng(1).normal(size=(6, 2))
    one, two, _ = heteronet_adjacencies(
        KNNGraph(n_neighbors=2, symmetrize=False).fit_transform(E)
    )
    ops = tuple(to_torch_sparse(m) for m in (one, one.T.tocsr(), two, two.T.tocsr()))
    z = module.embedding(x, ops)
    h0 = torch.relu(module.embed(x)).detach().numpy()
    want = np.hstack([h0, one.toarray() @ h0, two.toarray() @ h0])
    assert z.shape == (6, 9)
    np.testing.assert_allclose(z.detach().numpy(), want, rtol=1e-5, atol=1e-6)
    assert module(x, ops).shape == (6, 2)
    mean, disp, pi = module.heads(module.decoder(z))
    assert mean.shape == disp.shape == pi.shape == (6, 5)


def test_accuracy_proba_and_training_record(pbmc_split, fitted):
    _, X_te, _, y_te = pbmc_split
    # floor well below the ~0.85 it reaches here; chance is ~0.30
    assert fitted.score(X_te, y_te.astype(str)) > 0.7
    proba = fitted.predict_proba(X_te)
    assert proba.shape == (X_te.shape[0], fitted.classes_.size)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    assert fitted.genes_.size == 300 and fitted.reference_.shape[1] == 300
    assert fitted.module_.embed.in_features == 300
    # the ZINB term is trained and recorded beside the cross-entropy
    nll, zinb = (
        history_values(fitted.history_, "nll"),
        history_values(fitted.history_, "zinb"),
    )
    assert len(nll) == 20 and all(z > 0 for z in zinb)
    assert nll[-1] < 0.5 * nll[0]
    valid = history_values(fitted.history_, "valid_loss")
    assert fitted.best_epoch_ == int(np.argmin(valid))


def test_same_seed_same_fit(pbmc_split, fitted):
    X_tr, X_te, y_tr, _ = pbmc_split
    again = ScHeteroNet(**FAST).fit(X_tr, y_tr.astype(str))
    np.testing.assert_array_equal(again.predict_proba(X_te), fitted.predict_proba(X_te))


def test_score_samples_is_the_propagated_negative_energy(pbmc_split, fitted):
    _, X_te, _, _ = pbmc_split
    logits, prop = fitted._query_logits(fitted._check_predict_input(X_te))
    e = torch.logsumexp(logits, dim=1).numpy()
    n_ref = fitted.reference_.shape[0]
    P = prop.toarray().astype(np.float64)
    for steps in (0, 1, 3):
        model = fitted.set_params(propagation_steps=steps, propagation_alpha=0.3)
        want = e.copy()
        for _ in range(steps):
            want = 0.3 * want + 0.7 * (P @ want)
        np.testing.assert_allclose(model.score_samples(X_te), want[n_ref:], rtol=1e-5)
    fitted.set_params(propagation_steps=2)
    # higher means more typical: the energy of confident cells is larger
    scores = fitted.score_samples(X_te)
    confident = fitted.predict_proba(X_te).max(axis=1) > 0.9
    assert scores[confident].mean() > scores[~confident].mean()


def test_rare_types_are_left_out_with_a_warning(pbmc_split):
    X_tr, _, y_tr, _ = pbmc_split
    y = y_tr.astype(str).copy()
    y[:5] = "tiny"
    params = FAST | {"max_epochs": 2, "n_top_genes": 100}
    with pytest.warns(UserWarning, match="tiny"):
        model = ScHeteroNet(**params).fit(X_tr, y)
    assert "tiny" not in model.classes_ and list(model.dropped_classes_) == ["tiny"]
    kept = ScHeteroNet(**params, min_cells_per_type=1).fit(X_tr, y)
    assert "tiny" in kept.classes_


def test_log_normalised_input_skips_the_zinb_term(pbmc_split):
    X_tr, X_te, y_tr, _ = pbmc_split
    logged = sp.csr_matrix(X_tr, dtype=np.float64)
    logged.data = np.log1p(logged.data)
    model = ScHeteroNet(**FAST | {"max_epochs": 3}, normalize=False).fit(logged, y_tr)
    assert model.median_total_ is None
    assert history_values(model.history_, "zinb") == [0.0, 0.0, 0.0]
    assert model.predict(X_te).shape == (X_te.shape[0],)


def test_errors(pbmc_split):
    X_tr, _, y_tr, _ = pbmc_split
    with pytest.raises(ValueError, match="Negative values"):
        ScHeteroNet(**FAST).fit(-X_tr.toarray(), y_tr)
    with pytest.raises(ValueError, match="at least 2 cell types"):
        ScHeteroNet(**FAST).fit(X_tr, np.full(X_tr.shape[0], "a"))
    with pytest.raises(ValueError, match="min_counts"):
        ScHeteroNet(**FAST, min_counts=1e9).fit(X_tr, y_tr)


def test_novelty_benchmark_holds_out_a_type_chosen_from_training_labels(pbmc_split):
    from benchmarks.novelty import held_out_type, novelty_trial

    y = ["a"] * 30 + ["b"] * 25 + ["c"] * 5 + ["d"] * 25
    # smallest eligible first (ties by name); "c" has too few cells
    assert [held_out_type(y, s) for s in range(4)] == ["b", "d", "a", "b"]
    with pytest.raises(ValueError, match="20 training cells"):
        held_out_type(["a"] * 19, 0)
    X_tr, X_te, y_tr, y_te = pbmc_split
    params = {"n_top_genes": 100, "max_epochs": 3, "hidden_dim": 8}
    row = novelty_trial(X_tr, y_tr, X_te, y_te, 1, model_params=params)
    assert row["held_out"] == str(held_out_type(y_tr, 1))
    assert row["n_novel"] == np.sum(y_te == held_out_type(y_tr, 1))
    for key in ("auroc", "auroc_no_propagation", "auroc_msp", "known_accuracy"):
        assert 0.0 <= row[key] <= 1.0
