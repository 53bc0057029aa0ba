"""ScDeepCluster on small real subsets: learns, is deterministic, pickles."""

import inspect
import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone

from skdance.clustering import ScDeepCluster
from skdance.datasets import load_pbmc_4k_subset
from skdance.metrics import adjusted_rand_score
from skdance.nn import (
    history_values,
    student_t_assignment,
    target_distribution,
    zinb_nll,
)


@pytest.fixture(scope="module")
def pbmc():
    X, y = load_pbmc_4k_subset()
    return X[:600], y[:600]


@pytest.fixture(scope="module")
def fitted(pbmc):
    X, _ = pbmc
    return ScDeepCluster(
        n_clusters=8, pretrain_epochs=40, max_epochs=30, random_state=0
    ).fit(X)


def test_ari_floor_on_real_cells(pbmc, fitted):
    _, y = pbmc
    assert set(np.unique(fitted.labels_)) <= set(range(8))
    assert adjusted_rand_score(y, fitted.labels_) > 0.3


def test_losses_decrease(fitted):
    pre = history_values(fitted.history_, "train_loss", phase="pretrain")
    assert len(pre) == 40 and pre[-1] < 0.9 * pre[0]
    cluster = history_values(fitted.history_, "train_loss", phase="cluster")
    assert fitted.n_iter_ >= 1 and np.isfinite(cluster).all()


def test_history_records_and_device(pbmc, fitted):
    history = fitted.history_
    for row in history:
        assert {"phase", "epoch", "train_loss", "seconds"} <= set(row)
    phases = [row["phase"] for row in history]
    assert list(dict.fromkeys(phases)) == ["pretrain", "cluster"]
    assert phases.count("pretrain") == 40
    assert phases.count("cluster") == fitted.n_iter_ <= 30
    changed = history_values(history, "changed", phase="cluster")
    assert len(changed) == fitted.n_iter_ and all(0 <= c <= 1 for c in changed)
    assert not hasattr(fitted, "pretrain_loss_")
    assert not hasattr(fitted, "cluster_loss_")
    signature = list(inspect.signature(ScDeepCluster).parameters)
    assert signature[-3:] == ["device", "random_state", "verbose"]
    assert next(fitted.module_.parameters()).device.type == "cpu"
    if torch.cuda.is_available():
        pytest.skip("CUDA is available: device='cuda' is valid here")
    X, _ = pbmc
    with pytest.raises(ValueError, match="cuda"):
        ScDeepCluster(n_clusters=2, pretrain_epochs=1, device="cuda").fit(X[:50])


def test_label_change_rule_stops_clustering(pbmc):
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


def test_predict_transform_consistent(pbmc, fitted):
    X, _ = pbmc
    np.testing.assert_allclose(fitted.transform(X), fitted.embedding_, atol=1e-5)
    np.testing.assert_array_equal(fitted.predict(X), fitted.labels_)
    assert fitted.cluster_centers_.shape == (8, 32)


def test_deterministic_and_picklable(pbmc):
    X, _ = pbmc
    est = ScDeepCluster(n_clusters=5, pretrain_epochs=3, max_epochs=3, random_state=1)
    a = clone(est).fit(X[:200])
    b = clone(est).fit(X[:200])
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_array_equal(a.embedding_, b.embedding_)
    restored = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(restored.predict(X[:50]), a.predict(X[:50]))


def test_requires_n_clusters_and_counts(pbmc):
    X, _ = pbmc
    with pytest.raises(ValueError, match="requires n_clusters"):
        ScDeepCluster(pretrain_epochs=1, max_epochs=1).fit(X[:50])
    with pytest.raises(ValueError, match="larger than the number of cells"):
        ScDeepCluster(n_clusters=60, pretrain_epochs=1).fit(X[:50])
    dense = X[:50].toarray()
    dense[0] = 0
    with pytest.raises(ValueError, match="zero total counts"):
        ScDeepCluster(n_clusters=2, pretrain_epochs=1).fit(dense)


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
    good = zinb_nll(x, mean, disp, torch.full_like(x, 0.2))
    bad = zinb_nll(x, mean * 3, disp, torch.full_like(x, 0.2))
    no_dropout = zinb_nll(x, mean, disp, torch.full_like(x, 1e-4))
    assert good < bad and good < no_dropout
