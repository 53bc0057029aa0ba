"""ScDeepsort: the weighted cell-gene aggregation, training and inductive predict."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.model_selection import train_test_split

from skdance.annotation import ScDeepsort
from skdance.annotation.scdeepsort import ScDeepsortModule, log_normalize
from skdance.datasets import load_pbmc_4k_subset
from skdance.nn import history_values, to_torch_sparse


@pytest.fixture(scope="module")
def pbmc_split():
    X, y = load_pbmc_4k_subset()
    return train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)


@pytest.fixture(scope="module")
def fitted(pbmc_split):
    X_tr, _, y_tr, _ = pbmc_split
    model = ScDeepsort(n_components=50, max_epochs=60, random_state=0)
    return model.fit(X_tr, y_tr.astype(str))


def test_log_normalize_is_seurat_lognormalize():
    X = np.array([[1.0, 3.0, 0.0], [2.0, 0.0, 2.0]])
    expected = np.log1p(X / X.sum(axis=1, keepdims=True) * 1e4)
    np.testing.assert_allclose(log_normalize(X).toarray(), expected)


def test_aggregation_is_the_mean_over_weighted_in_edges():
    """Eq. 13 by hand: mean of beta_j * w_ij * h_j over genes and alpha * h_i."""
    rng = np.random.default_rng(0)
    module = ScDeepsortModule(
        n_genes=4, in_dim=3, hidden_dim=5, n_classes=2, dropout=0.0
    )
    with torch.no_grad():
        module.beta.copy_(torch.tensor([0.5, 2.0, 1.0, 3.0]))
        module.alpha.fill_(0.7)
    W = np.array([[1.0, 0.0, 2.0, 1.0], [0.0, 4.0, 0.0, 0.0]])
    genes = rng.normal(size=(4, 3))
    cells = rng.normal(size=(2, 3))
    beta = module.beta.detach().numpy()
    expected = np.empty((2, 3))
    for i in range(2):
        msgs = [beta[j] * W[i, j] * genes[j] for j in np.flatnonzero(W[i])]
        msgs.append(0.7 * cells[i])  # self loop, weight 1
        expected[i] = np.mean(msgs, axis=0)
    n_in = torch.tensor([4.0, 2.0])
    out = module.aggregate(
        to_torch_sparse(sp.csr_matrix(W)),
        torch.tensor(genes, dtype=torch.float32),
        torch.tensor(cells, dtype=torch.float32),
        torch.ones(2),
        n_in,
    )
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-5)


def test_accuracy_proba_and_learnt_gene_confidences(pbmc_split, fitted):
    _, X_te, _, y_te = pbmc_split
    # floor well below the ~0.87 it reaches here; chance is ~0.30
    assert fitted.score(X_te, y_te.astype(str)) > 0.75
    assert fitted.classes_.dtype.kind == "U"
    proba = fitted.predict_proba(X_te)
    assert proba.shape == (X_te.shape[0], fitted.classes_.size)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    assert fitted.gene_features_.shape == (X_te.shape[1], 50)
    # the per-gene confidences moved away from their initial value of 1
    beta = fitted.module_.beta.detach().numpy()
    assert beta.shape == (X_te.shape[1],) and np.abs(beta - 1).max() > 1e-3
    loss = history_values(fitted.history_)
    assert loss[-1] < 0.5 * loss[0]


def test_best_validation_epoch_is_kept(pbmc_split, fitted):
    scores = np.asarray(history_values(fitted.history_, "valid_accuracy"))
    assert scores.size == 60
    # the last epoch among the best ones (DANCE keeps ties' later epoch)
    assert fitted.best_epoch_ == np.flatnonzero(scores == scores.max())[-1]
    X_tr, _, y_tr, _ = pbmc_split
    last = ScDeepsort(
        n_components=20, max_epochs=5, validation_fraction=None, random_state=0
    ).fit(X_tr, y_tr)
    assert history_values(last.history_, "valid_accuracy") == []
    assert len(last.history_) == 5 and last.best_epoch_ == 4


def test_prediction_is_inductive(pbmc_split, fitted):
    """A cell's prediction does not depend on the cells predicted with it."""
    _, X_te, _, _ = pbmc_split
    alone = fitted.predict_proba(X_te[:7])
    together = fitted.predict_proba(X_te)[:7]
    np.testing.assert_allclose(alone, together, rtol=1e-5, atol=1e-7)


def test_normalize_false_takes_log_normalised_input(pbmc_split):
    X_tr, X_te, y_tr, y_te = pbmc_split
    kw = {"n_components": 20, "max_epochs": 10, "random_state": 0}
    a = ScDeepsort(**kw).fit(X_tr, y_tr)
    b = ScDeepsort(normalize=False, **kw).fit(log_normalize(X_tr), y_tr)
    np.testing.assert_allclose(
        a.predict_proba(X_te), b.predict_proba(log_normalize(X_te)), atol=1e-5
    )


def test_rejects_negative_values_and_empty_cells(pbmc_split):
    X_tr, _, y_tr, _ = pbmc_split
    X = X_tr[:60].toarray()
    y = y_tr[:60]
    bad = X.copy()
    bad[0, 0] = -1.0
    with pytest.raises(ValueError, match="Negative values"):
        ScDeepsort(normalize=False, max_epochs=1).fit(bad, y)
    empty = X.copy()
    empty[3] = 0.0
    with pytest.raises(ValueError, match="zero total counts"):
        ScDeepsort(max_epochs=1).fit(empty, y)
    model = ScDeepsort(n_components=5, max_epochs=1).fit(X, y)
    with pytest.raises(ValueError, match="zero total counts"):
        model.predict(empty)


def test_graph_parameter(pbmc_split):
    from skdance.graph import CellGeneGraph, KNNGraph

    X_tr, X_te, y_tr, _ = pbmc_split
    X_tr, y_tr = X_tr[:200], y_tr[:200]
    kw = {"n_components": 10, "max_epochs": 3, "random_state": 0}
    default = ScDeepsort(**kw).fit(X_tr, y_tr).predict_proba(X_te[:20])
    graph = CellGeneGraph(weight="fraction", self_loops=True)
    model = ScDeepsort(graph=graph, **kw).fit(X_tr, y_tr)
    np.testing.assert_array_equal(model.predict_proba(X_te[:20]), default)
    assert "n_features_in_" not in vars(model.graph)  # cloned, not fitted in place
    other = ScDeepsort(graph=CellGeneGraph(weight="expression"), **kw)
    assert not np.allclose(other.fit(X_tr, y_tr).predict_proba(X_te[:20]), default)
    with pytest.raises(ValueError, match="cells \\+ genes"):
        ScDeepsort(graph=KNNGraph(n_neighbors=3), **kw).fit(X_tr, y_tr)
