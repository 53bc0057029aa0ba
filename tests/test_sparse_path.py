"""Sparse data path: count normaliser, mini-batch densification, sampled GAE loss."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy.sparse import _compressed

from skdance.clustering import ScDeepCluster, ScTAG
from skdance.graph import KNNGraph
from skdance.imputation import DeepImpute
from skdance.nn import (
    CountNormalizer,
    EdgeSampler,
    adjacency_reconstruction_loss,
    column_mean_std,
)
from skdance.nn._counts import CHUNK_ROWS
from skdance.testing import INIT_PARAMS


@pytest.fixture(scope="module")
def counts():
    rng = np.random.default_rng(0)
    X = rng.poisson(0.4, (700, 60)).astype(np.float64)
    X[:, 3] *= rng.uniform(0.5, 3.0, 700)  # some non-integer values
    X[:, 7] = 0.0  # an undetected gene
    X[X.sum(axis=1) == 0, 0] = 1.0
    return X


def test_count_normalizer_matches_the_dense_computation(counts):
    # what BaseCountClusterer computed on the dense float32 matrix before
    dense = counts.astype(np.float32)
    totals = dense.sum(axis=1)
    median = float(np.median(totals))
    logged = np.log1p(dense / (totals / median)[:, None])
    mean, std = logged.mean(axis=0), logged.std(axis=0)
    std[std == 0] = 1.0
    expected = (logged - mean) / std

    norm = CountNormalizer(chunk_rows=64).fit(sp.csr_matrix(counts))
    assert norm.median_total_ == median
    np.testing.assert_array_equal(norm.gene_mean_, mean)
    np.testing.assert_array_equal(norm.gene_std_, std)
    data = norm.transform(sp.csr_matrix(counts))
    assert sp.issparse(data.counts) and sp.issparse(data.logged)
    rows = np.array([5, 0, 699, 5])
    c, x, s = data.batch(rows)
    np.testing.assert_array_equal(x.numpy(), expected[rows])
    np.testing.assert_array_equal(c.numpy(), dense[rows])
    np.testing.assert_allclose(s.numpy(), (totals / median)[rows], rtol=1e-6)
    # dense input gives the same statistics
    dense_norm = CountNormalizer().fit(counts)
    np.testing.assert_array_equal(dense_norm.gene_mean_, norm.gene_mean_)
    np.testing.assert_array_equal(dense_norm.gene_std_, norm.gene_std_)
    # chunked inference covers every row once, in order
    out = data.map_normed(lambda t: t[:, :2], chunk_rows=100)
    np.testing.assert_array_equal(out.numpy(), expected[:, :2])


def test_column_mean_std_is_numpys(counts):
    for dtype in (np.float32, np.float64):
        A = counts.astype(dtype)
        total, mean, std = column_mean_std(sp.csr_matrix(A), chunk_rows=33)
        np.testing.assert_array_equal(total, A.sum(axis=0))
        np.testing.assert_array_equal(mean, A.mean(axis=0))
        np.testing.assert_array_equal(std, A.std(axis=0))


@pytest.fixture
def densified_rows(monkeypatch):
    """Record the number of rows of every sparse matrix turned dense."""
    seen = []
    original = _compressed._cs_matrix.toarray

    def spy(self, *args, **kwargs):
        seen.append(self.shape[0])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(_compressed._cs_matrix, "toarray", spy)
    return seen


def _large_counts(n_cells, n_genes=40, seed=0):
    rng = np.random.default_rng(seed)
    X = sp.random(n_cells, n_genes, density=0.2, random_state=seed, format="csr") * 5
    X.data = np.ceil(X.data)
    X = X.tolil()
    X[np.arange(n_cells), rng.integers(0, n_genes, n_cells)] = 1.0
    return sp.csr_matrix(X), rng.integers(0, 3, n_cells)


@pytest.mark.parametrize(
    "make",
    [
        lambda: ScDeepCluster(
            n_clusters=3,
            hidden_dims=(8,),
            latent_dim=2,
            pretrain_epochs=1,
            max_epochs=1,
            batch_size=512,
            random_state=0,
        ),
        lambda: DeepImpute(
            n_targets_per_network=8,
            hidden_dim=4,
            max_epochs=1,
            batch_size=512,
            random_state=0,
        ),
    ],
    ids=["ScDeepCluster", "DeepImpute"],
)
def test_minibatch_models_never_densify_the_whole_matrix(make, densified_rows):
    n_cells = CHUNK_ROWS + 1500
    X, y = _large_counts(n_cells)
    model = make()
    model.fit(X)
    model.transform(X)
    assert densified_rows, "the spy saw no densification"
    assert max(densified_rows) <= CHUNK_ROWS < n_cells


def _random_graph(n=30, k=3, seed=0):
    rng = np.random.default_rng(seed)
    A = KNNGraph(n_neighbors=k).fit_transform(rng.normal(size=(n, 4)))
    return sp.csr_matrix((A + A.T + sp.identity(n)) > 0, dtype=np.float32)


@pytest.mark.parametrize("kind", ["mse", "balanced_bce"])
def test_sampled_adjacency_loss_is_unbiased(kind):
    target = _random_graph()
    h = torch.from_numpy(np.random.default_rng(1).normal(size=(30, 3))).float()
    exact = float(
        adjacency_reconstruction_loss(h, torch.from_numpy(target.toarray()), kind=kind)
    )
    sampler = EdgeSampler(target, torch.Generator().manual_seed(0))
    draws = [
        float(adjacency_reconstruction_loss(h, None, kind=kind, sampler=sampler))
        for _ in range(500)
    ]
    # (seeded draws: the mean is within ~6 standard errors of the exact loss)
    assert np.mean(draws) == pytest.approx(exact, rel=0.015)
    assert np.std(draws) > 0  # it is an estimate, not the exact loss


def test_edge_sampler_draws_zeros_only_and_is_seeded():
    target = _random_graph()
    a = EdgeSampler(target, torch.Generator().manual_seed(3))
    b = EdgeSampler(target, torch.Generator().manual_seed(3))
    for _ in range(5):
        neg_a, neg_b = a.negatives(), b.negatives()
        assert torch.equal(neg_a, neg_b)
        assert neg_a.shape == (2, target.nnz)
        rows, cols = neg_a.tolist()
        assert (target.toarray()[rows, cols] == 0).all()
    assert a.n_negative == 30 * 30 - target.nnz


def test_sctag_sampled_loss_is_deterministic_and_auto_is_dense_when_small():
    X = sp.csr_matrix(np.random.default_rng(0).poisson(1.0, (60, 40)).astype(float))
    params = dict(INIT_PARAMS[ScTAG])  # the fast instance of the common checks
    first = ScTAG(adjacency_loss="sampled", **params).fit(X)
    second = ScTAG(adjacency_loss="sampled", **params).fit(X)
    np.testing.assert_array_equal(first.embedding_, second.embedding_)
    auto = ScTAG(**params).fit(X)  # 60 cells: the exact loss
    dense = ScTAG(adjacency_loss="dense", **params).fit(X)
    np.testing.assert_array_equal(auto.embedding_, dense.embedding_)
    assert not np.array_equal(first.embedding_, dense.embedding_)


def test_chunked_full_batch_losses_match_the_one_piece_losses(monkeypatch, counts):
    from skdance.nn import (
        ZINBHeads,
        _chunked,
        full_batch_counts,
        reconstruction_mse,
        zinb_loss,
    )

    data = CountNormalizer().fit_transform(sp.csr_matrix(counts))
    sf = torch.from_numpy(data.size_factors)
    torch.manual_seed(0)
    heads, recon = ZINBHeads(5, counts.shape[1]), torch.nn.Linear(5, counts.shape[1])
    hidden = torch.randn(counts.shape[0], 5, requires_grad=True)
    normed = data.normed_tensor()

    def losses(dense_counts):
        hidden.grad = None
        loss = zinb_loss(heads, hidden, dense_counts, sf) + reconstruction_mse(
            recon, hidden, normed
        )
        loss.backward()
        return loss.item(), hidden.grad.clone()

    one_piece = full_batch_counts(data)
    assert isinstance(one_piece, torch.Tensor)
    expected, expected_grad = losses(one_piece)
    monkeypatch.setattr(_chunked, "FULL_BATCH_ENTRIES", 4 * 50 * counts.shape[1])
    chunked = full_batch_counts(data)
    assert chunked is data  # counts stay sparse, densified 50 rows at a time
    got, grad = losses(chunked)
    assert got == pytest.approx(expected, rel=1e-5)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("kind", ["mse", "balanced_bce"])
def test_sampled_adjacency_loss_in_edge_chunks_is_the_same(monkeypatch, kind):
    from skdance.nn import _reconstruction

    target = _random_graph()
    h = torch.randn(30, 3, requires_grad=True)

    def loss_and_grad():
        h.grad = None
        sampler = EdgeSampler(target, torch.Generator().manual_seed(0))
        loss = adjacency_reconstruction_loss(h, None, kind=kind, sampler=sampler)
        loss.backward()
        return loss.item(), h.grad.clone()

    whole, whole_grad = loss_and_grad()
    monkeypatch.setattr(_reconstruction, "EDGE_CHUNK", 7)
    chunked, chunked_grad = loss_and_grad()
    assert chunked == pytest.approx(whole, rel=1e-6)
    torch.testing.assert_close(chunked_grad, whole_grad)
