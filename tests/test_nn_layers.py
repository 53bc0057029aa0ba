"""The shared torch layers of skdance.nn: blocks, graph layers, encoders, inputs."""

from functools import partial

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch import nn

from skdance.graph import CellGeneGraph, KNNGraph
from skdance.nn import (
    GCN,
    FCLayers,
    GaussianEncoder,
    GraphAttention,
    GraphConv,
    NBHeads,
    ZINBHeads,
    cell_gene_inputs,
    gaussian_kl,
    mean_one_edge_weights,
    to_torch_sparse,
)


def _types(block):
    return [type(m).__name__ for m in block]


def test_fc_layers_blocks():
    net = FCLayers([6, 5, 4], batch_norm=True, dropout=0.2)
    assert _types(net[0]) == ["Linear", "BatchNorm1d", "ReLU", "Dropout"]
    assert _types(net[1]) == ["Linear", "BatchNorm1d", "ReLU"]  # no dropout after
    net = FCLayers([6, 5, 4], dropout=0.2, dropout_input=True, last_activation=False)
    assert _types(net[0]) == ["Dropout", "Linear", "ReLU"]
    assert _types(net[1]) == ["Dropout", "Linear"]
    net = FCLayers([6, 4], activation=None)
    assert _types(net[0]) == ["Linear"]
    net = FCLayers([6, 5, 4], last_activation=nn.Softplus)
    assert _types(net[1]) == ["Linear", "Softplus"]
    assert [lin.out_features for lin in net.linear_layers()] == [5, 4]
    assert net(torch.ones(3, 6)).shape == (3, 4)


def test_fc_layers_draw_parameters_as_a_plain_sequential():
    torch.manual_seed(0)
    net = FCLayers([6, 5, 4], batch_norm=True)
    torch.manual_seed(0)
    ref = [nn.Linear(6, 5), nn.BatchNorm1d(5), nn.Linear(5, 4)]
    for got, want in zip(net.linear_layers(), [ref[0], ref[2]]):
        assert torch.equal(got.weight, want.weight)


def test_zinb_heads_extend_nb_heads():
    torch.manual_seed(0)
    zinb = ZINBHeads(3, 4)
    torch.manual_seed(0)
    nb = NBHeads(3, 4)
    h = torch.randn(5, 3) * 20  # large values hit the clamps
    mean, disp, pi = zinb(h)
    for got, want in zip((mean, disp), nb(h)):
        assert torch.equal(got, want)
    assert mean.min() >= 1e-5 and mean.max() <= 1e6 and disp.max() <= 1e4
    assert ((pi >= 0) & (pi <= 1)).all()


@pytest.fixture
def graph():
    rng = np.random.default_rng(0)
    A = KNNGraph(n_neighbors=3).fit_transform(rng.normal(size=(12, 2)))
    A = sp.csr_matrix(A + sp.identity(12))
    return A, torch.from_numpy(rng.normal(size=(12, 5)).astype(np.float32))


@pytest.mark.parametrize("bias", [True, False])
def test_graph_conv_is_a_propagated_linear_layer(graph, bias):
    A, x = graph
    conv = GraphConv(5, 3, bias=bias)
    adj = to_torch_sparse(A, normalize="sym")
    dense = adj.to_dense()
    expected = dense @ conv.lin(x)
    torch.testing.assert_close(conv(x, adj), expected)
    torch.testing.assert_close(conv(x, dense), expected)
    torch.testing.assert_close(conv(x, adj.to_sparse_coo()), expected)


def test_graph_conv_initialisations():
    torch.manual_seed(0)
    plain = GraphConv(5, 3)
    torch.manual_seed(0)
    assert torch.equal(plain.lin.weight, nn.Linear(5, 3).weight)
    glorot = GraphConv(5, 3, init="glorot")
    assert torch.count_nonzero(glorot.lin.bias) == 0
    before = glorot.lin.weight.clone()
    glorot.reset_parameters()
    assert not torch.equal(before, glorot.lin.weight)
    with pytest.raises(ValueError, match="init must be"):
        GraphConv(5, 3, init="kaiming")


def test_gcn_draws_all_layers_before_glorot(graph):
    """DSTG's and scDSC's order: every Linear first, then Glorot on each."""
    A, x = graph
    torch.manual_seed(0)
    gcn = GCN([5, 4, 3], bias=False, init="glorot")
    torch.manual_seed(0)
    layers = [nn.Linear(5, 4, bias=False), nn.Linear(4, 3, bias=False)]
    for layer in layers:
        nn.init.xavier_uniform_(layer.weight)
    for conv, layer in zip(gcn.convs, layers):
        assert torch.equal(conv.lin.weight, layer.weight)
    adj = to_torch_sparse(A, normalize="sym")
    expected = adj.to_dense() @ layers[1](torch.relu(adj.to_dense() @ layers[0](x)))
    torch.testing.assert_close(gcn(x, adj), expected)


@pytest.mark.parametrize("scale", ["log_var", "log_std"])
def test_gaussian_encoder(graph, scale):
    A, x = graph
    adj = to_torch_sparse(A, normalize="sym")
    enc = GaussianEncoder(5, 2, layer=partial(GraphConv, bias=False), scale=scale)
    z, mean, log_scale = enc(x, adj)  # training mode: a sample
    assert not torch.equal(z, mean)
    torch.testing.assert_close(mean, enc.mean(x, adj))
    enc.eval()
    z, mean, _ = enc(x, adj)
    assert torch.equal(z, mean)
    assert not torch.equal(enc(x, adj, sample=True)[0], mean)
    kw = {"log_std": log_scale} if scale == "log_std" else {"log_var": log_scale}
    torch.testing.assert_close(enc.kl(mean, log_scale), gaussian_kl(mean, **kw))
    # the sample's spread is the scale's: std = exp(log_std) = exp(log_var / 2)
    enc = GaussianEncoder(1, 1, scale=scale)
    with torch.no_grad():
        enc.mean.weight.zero_(), enc.mean.bias.zero_()
        enc.log_scale.weight.zero_()
        enc.log_scale.bias.fill_(np.log(4.0))
    torch.manual_seed(0)
    std = enc(torch.zeros(20000, 1), sample=True)[0].std().item()
    assert std == pytest.approx(4.0 if scale == "log_std" else 2.0, rel=0.03)


def test_graph_attention_rows_sum_to_one_and_match_dense(graph):
    A, x = graph
    A = sp.csr_matrix(A)
    A.sort_indices()
    torch.manual_seed(0)
    layer = GraphAttention(5, 3)
    out, att = layer(x, to_torch_sparse(A), return_attention=True)
    # one weight per edge, rows sum to 1 over the neighbours
    row_sums = np.add.reduceat(att.detach().numpy(), A.indptr[:-1])
    np.testing.assert_allclose(row_sums, 1.0, rtol=1e-6)
    # the dense formula of DANCE eqs. 64, 66-67
    g = x @ layer.weight
    e = torch.sigmoid((g @ layer.att_self)[:, None] + (g @ layer.att_neighbor)[None, :])
    mask = torch.from_numpy(A.toarray() > 0)
    w = torch.where(mask, torch.exp(e), torch.zeros(()))
    dense_att = w / w.sum(dim=1, keepdim=True)
    torch.testing.assert_close(att, dense_att[mask])
    torch.testing.assert_close(out, dense_att @ g)
    # the adjacency's layout and values do not matter, its pattern does
    B = A.copy()
    B.data = np.arange(1.0, B.nnz + 1)
    for adj in (to_torch_sparse(B, layout="coo"), to_torch_sparse(B).to_dense()):
        torch.testing.assert_close(layer(x, adj), out)


def test_graph_attention_gradients_and_tied_decoder(graph):
    A, x = graph
    adj = to_torch_sparse(A)
    torch.manual_seed(0)
    enc, dec = GraphAttention(5, 3), GraphAttention(3, 5)
    x = x.clone().requires_grad_()
    h, att = enc(x, adj, return_attention=True)
    # STAGATE's decoder: the encoder's weights transposed, its attention reused
    recon = dec(torch.nn.functional.elu(h), adj, weight=enc.weight.T, attention=att)
    ((recon - x.detach()) ** 2).sum().backward()
    for p in (x, enc.weight, enc.att_self, enc.att_neighbor):
        assert p.grad is not None and p.grad.abs().sum() > 0
    assert dec.weight.grad is None  # tied: its own weights unused
    assert torch.equal(enc(x, None), x @ enc.weight)  # attention-free layer


def test_graph_attention_gradcheck(graph):
    A, x = graph
    adj = to_torch_sparse(A).to(torch.float64)
    layer = GraphAttention(5, 2).double()
    x = x[:, :5].double().requires_grad_()
    w = torch.randn(5, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, w: layer(x, adj, weight=w), (x, w))


def test_cell_gene_inputs():
    X = sp.csr_matrix(np.array([[1.0, 3.0, 0.0], [0.0, 2.0, 2.0], [4.0, 0.0, 0.0]]))
    inputs = cell_gene_inputs(None, X)
    frac = X.multiply(1 / X.sum(axis=1)).tocsr()
    np.testing.assert_allclose(inputs.weights.toarray(), frac.toarray())
    np.testing.assert_allclose(
        inputs.edge_weights.toarray(), mean_one_edge_weights(frac).toarray()
    )
    np.testing.assert_array_equal(inputs.self_loops, [1, 1, 1])
    np.testing.assert_array_equal(inputs.in_degree, [3, 3, 2])
    plain = cell_gene_inputs(CellGeneGraph(), X, edge_norm=False)
    np.testing.assert_array_equal(plain.self_loops, 0)
    np.testing.assert_array_equal(plain.in_degree, [2, 2, 1])
    features = np.arange(6.0).reshape(3, 2)
    np.testing.assert_allclose(
        plain.cell_features(features), (X.toarray() / X.sum(axis=1)) @ features
    )
    with pytest.raises(ValueError, match="cells \\+ genes"):
        cell_gene_inputs(KNNGraph(n_neighbors=1), X)


def test_stack_rows_fills_one_float64_array_from_chunks():
    from skdance.nn import stack_rows

    X = np.random.default_rng(0).normal(size=(7, 3)).astype(np.float32)
    calls = []

    def block(start, stop):
        calls.append((start, stop))
        return torch.from_numpy(X[start:stop])

    out = stack_rows(block, 7, chunk_rows=3)
    assert calls == [(0, 3), (3, 6), (6, 7)]
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, X.astype(np.float64))
    assert stack_rows(block, 0).shape == (0, 0)


def test_sparse_matmul_with_prebuilt_transpose_matches_torch_gradient():
    from skdance.nn import sparse_matmul, to_torch_sparse

    A = sp.random(7, 5, density=0.4, random_state=1, format="csr", dtype=np.float32)
    h = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    grads = []
    for adj_t in (None, to_torch_sparse(A.T)):
        x = h.clone().requires_grad_(True)
        out = sparse_matmul(to_torch_sparse(A), x, adj_t)
        (out * torch.arange(21.0).reshape(7, 3)).sum().backward()
        torch.testing.assert_close(out, torch.from_numpy(A.toarray()) @ h)
        grads.append(x.grad)
    torch.testing.assert_close(grads[0], grads[1])
    # a dense operator takes the plain product
    dense = torch.from_numpy(A.toarray())
    torch.testing.assert_close(sparse_matmul(dense, h), dense @ h)
