import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import clone
from sklearn.datasets import make_blobs

from skdance.graph import (
    CellGeneGraph,
    GeneCorrelationGraph,
    KNNGraph,
    MutualNNGraph,
    RadiusGraph,
    SpatialGaussianGraph,
)
from skdance.nn import normalize_adjacency, to_edge_index, to_torch_sparse

X, _ = make_blobs(n_samples=120, centers=3, n_features=5, random_state=0)


@pytest.mark.parametrize("mode", ["connectivity", "distance", "umap"])
def test_knn_graph_symmetric_without_self_loops(mode):
    A = KNNGraph(n_neighbors=6, mode=mode).fit_transform(X)
    assert A.shape == (120, 120) and sp.issparse(A)
    assert abs(A - A.T).max() < 1e-6
    assert A.diagonal().max() == 0
    # every cell keeps at least its 6 own neighbours
    assert (np.diff(A.indptr) >= 6).all()


def test_knn_umap_matches_scanpy_connectivities():
    import anndata
    import scanpy as sc

    ad = anndata.AnnData(X.astype(np.float32))
    sc.pp.neighbors(ad, n_neighbors=10, use_rep="X", method="umap")
    ours = KNNGraph(n_neighbors=9, mode="umap").fit_transform(X.astype(np.float32))
    np.testing.assert_allclose(
        ours.toarray(), ad.obsp["connectivities"].toarray(), atol=1e-5
    )


def test_knn_neighbours_are_nearest():
    A = KNNGraph(n_neighbors=1, symmetrize=False).fit_transform(X)
    d = ((X[:, None] - X[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    np.testing.assert_array_equal(A.indices, d.argmin(axis=1))


def test_mutual_nn_is_subset_of_knn():
    knn = KNNGraph(n_neighbors=5, symmetrize=False).fit_transform(X)
    mnn = MutualNNGraph(n_neighbors=5).fit_transform(X)
    assert ((mnn - mnn.multiply(knn)) != 0).nnz == 0
    batch = np.repeat([0, 1], 60)
    cross = MutualNNGraph(n_neighbors=5).fit(X).transform(X, batch=batch)
    r, c = cross.nonzero()
    assert r.size > 0 and (batch[r] != batch[c]).all()


def test_radius_graph_links_close_spots_only():
    coords = np.array([[0, 0], [0, 1], [0, 3], [10, 10]], dtype=float)
    X = np.ones((4, 3))
    A = RadiusGraph(radius=2.5).fit_transform(X, coords=coords).toarray()
    np.testing.assert_array_equal(
        A, [[0, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 0]]
    )


def test_spatial_gaussian_search_hits_p():
    coords = np.random.default_rng(0).uniform(0, 100, size=(200, 2))
    A = SpatialGaussianGraph(p=0.5).fit_transform(np.ones((200, 5)), coords=coords)
    A = A.toarray()
    assert np.allclose(np.diag(A), 1.0)
    assert A.sum(axis=1).mean() - 1 == pytest.approx(0.5, abs=1e-6)


def test_spatial_gaussian_length_scale_is_public_and_reused():
    coords = np.random.default_rng(0).uniform(0, 100, size=(200, 2))
    builder = SpatialGaussianGraph(p=0.5)
    length = builder.search_length_scale(coords)
    assert not hasattr(builder, "n_features_in_")  # nothing fitted
    searched = builder.fit_transform(np.ones((200, 5)), coords=coords)
    fixed = clone(builder).set_params(length_scale=length)
    assert fixed.search_length_scale(coords[:10]) == length  # given, not searched
    np.testing.assert_array_equal(
        fixed.fit_transform(np.ones((200, 5)), coords=coords).toarray(),
        searched.toarray(),
    )
    with pytest.raises(ValueError, match="p"):
        SpatialGaussianGraph(p=-1.0).search_length_scale(coords)


def test_coordinates_reach_any_builder_through_one_function():
    from skdance.graph._fit import build_graph, fit_graph, needs_coords

    coords = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 0.0], [5.5, 0.0]])
    cells = np.arange(12.0).reshape(4, 3)
    # the declared need routes the coordinates: side information for the
    # spatial builders, the input itself for the others
    assert needs_coords(RadiusGraph) and needs_coords(SpatialGaussianGraph())
    assert not needs_coords(KNNGraph()) and not needs_coords(MutualNNGraph)
    radius = RadiusGraph(radius=2.0)
    A = build_graph(radius, cells, coords=coords)
    assert radius.n_features_in_ == 3  # fitted in place, on the cells
    np.testing.assert_array_equal(
        A.toarray(), radius.transform(cells, coords).toarray()
    )
    knn = KNNGraph(n_neighbors=1)
    B = fit_graph(knn, None, cells, coords=coords)
    assert not hasattr(knn, "n_features_in_")  # fit_graph fits a clone
    np.testing.assert_array_equal(
        B.toarray(), KNNGraph(n_neighbors=1).fit_transform(coords).toarray()
    )
    # without coordinates a builder links X, and a spatial one asks for them
    C = fit_graph(None, KNNGraph(n_neighbors=1), cells)
    np.testing.assert_array_equal(
        C.toarray(), KNNGraph(n_neighbors=1).fit_transform(cells).toarray()
    )
    with pytest.raises(ValueError, match="coords"):
        build_graph(RadiusGraph(), cells)
    with pytest.raises(ValueError, match=r"spatial_graph must return the spot"):
        build_graph(
            KNNGraph(n_neighbors=1),
            cells,
            coords=coords,
            shape=(5, 5),
            name="spatial_graph",
            what="spot network",
        )


def test_cell_gene_graph_structure():
    counts = np.array([[1.0, 0.0, 3.0], [0.0, 2.0, 2.0]])
    A = CellGeneGraph(weight="fraction", self_loops=True).fit_transform(counts)
    A = A.toarray()
    assert A.shape == (5, 5)
    np.testing.assert_allclose(A, A.T)
    np.testing.assert_allclose(A[:2, 2:], [[0.25, 0, 0.75], [0, 0.5, 0.5]])
    np.testing.assert_allclose(np.diag(A), 1.0)
    assert (A[:2, :2] - np.eye(2)).max() == 0 and (A[2:, 2:] - np.eye(3)).max() == 0


def test_gene_correlation_graph():
    rng = np.random.default_rng(1)
    a = rng.normal(size=200)
    G = np.column_stack([a, 2 * a + 0.01 * rng.normal(size=200), rng.normal(size=200)])
    A = GeneCorrelationGraph(threshold=0.9).fit_transform(G).toarray()
    assert A.shape == (3, 3) and A[0, 1] > 0.99 and A[0, 2] == 0 and A[2, 2] == 0


def test_graph_builder_is_cloneable_parameter():
    g = KNNGraph(n_neighbors=4)
    assert clone(g).get_params()["n_neighbors"] == 4


def test_adjacency_helpers_agree_with_pyg_gcn():
    from torch_geometric.nn import GCNConv

    A = KNNGraph(n_neighbors=5, mode="umap").fit_transform(X)
    x = torch.from_numpy(X.astype(np.float32))
    torch.manual_seed(0)
    conv = GCNConv(5, 3)
    edge_index, edge_weight = to_edge_index(A)
    expected = conv(x, edge_index, edge_weight)
    S = to_torch_sparse(A, normalize="sym", add_self_loops=True)
    ours = torch.sparse.mm(S, x @ conv.lin.weight.T) + conv.bias
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)


def test_normalize_adjacency_row_and_sym():
    A = sp.csr_matrix(np.array([[0, 1.0], [1.0, 0]]))
    np.testing.assert_allclose(
        normalize_adjacency(A, mode="row").toarray(), [[0.5, 0.5], [0.5, 0.5]]
    )
    np.testing.assert_allclose(
        normalize_adjacency(A, mode="sym", add_self_loops=False).toarray(),
        [[0, 1], [1, 0]],
    )


@pytest.mark.parametrize("metric", ["correlation", "cosine"])
@pytest.mark.parametrize("mode", ["connectivity", "distance"])
def test_knn_angular_metrics_match_sklearn(metric, mode):
    from sklearn.neighbors import NearestNeighbors

    X = np.random.default_rng(0).random((120, 25))
    A = KNNGraph(n_neighbors=5, metric=metric, mode=mode, symmetrize=False)
    ref = NearestNeighbors(n_neighbors=6, metric=metric).fit(X)
    diff = A.fit_transform(X) - ref.kneighbors_graph(None, 5, mode=mode)
    assert abs(diff).max() < 1e-10


def test_tag_layer_matches_pyg_tagconv():
    from torch_geometric.nn import TAGConv

    from skdance.nn import TAGLayer

    A = sp.random(40, 40, density=0.1, random_state=0, format="csr")
    A = A + A.T
    adj = to_torch_sparse(A, normalize="sym", add_self_loops=True)
    x = torch.randn(40, 6)
    ours = TAGLayer(6, 4, hops=3)
    ref = TAGConv(6, 4, K=3, normalize=False)
    with torch.no_grad():
        for k, lin in enumerate(ref.lins):
            lin.weight.copy_(ours.lin.weight[:, 6 * k : 6 * (k + 1)])
        ref.bias.copy_(ours.lin.bias)
    torch.testing.assert_close(ours(x, adj), ref(x, adj), atol=1e-5, rtol=1e-5)


def test_spatial_builders_read_coords_as_side_information():
    import anndata as ad

    rng = np.random.default_rng(0)
    X = rng.poisson(1.0, (30, 8)).astype(float)
    coords = rng.uniform(0, 10, (30, 2))
    direct = RadiusGraph(radius=3.0).fit_transform(X, coords=coords)
    adata = ad.AnnData(X, obsm={"xy": coords})
    from_adata = RadiusGraph(radius=3.0, spatial_key="xy").fit_transform(adata)
    assert (direct != from_adata).nnz == 0
    builder = RadiusGraph(radius=3.0)
    assert builder.fit(X).n_features_in_ == 8
    with pytest.raises(ValueError, match="requires coords"):
        builder.transform(X)
    with pytest.raises(ValueError, match="obsm"):
        RadiusGraph(spatial_key="missing").fit_transform(adata)
    with pytest.raises(ValueError, match="one row per cell"):
        builder.transform(X, coords=coords[:20])
    with pytest.raises(ValueError, match="takes no coords"):
        KNNGraph(n_neighbors=3).fit_transform(X, coords=coords)


def test_mutual_nn_reads_batch_from_obs():
    import anndata as ad
    import pandas as pd

    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 4))
    batch = np.repeat(["ref", "spot"], 20)
    adata = ad.AnnData(X, obs=pd.DataFrame({"b": batch}, index=map(str, range(40))))
    direct = MutualNNGraph(n_neighbors=3).fit_transform(X, batch=batch)
    keyed = MutualNNGraph(n_neighbors=3, batch_key="b").fit_transform(adata)
    assert (direct != keyed).nnz == 0
    with pytest.raises(ValueError, match="one row per cell"):
        MutualNNGraph(n_neighbors=3).fit(X).transform(X, batch=batch[:10])


def test_umap_weights_leave_torch_threads_alone():
    # numba's runtime resets the OpenMP thread count torch uses; a Leiden fit
    # must not change how (and how reproducibly) torch models train after it
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        X = np.random.default_rng(0).normal(size=(60, 5))
        KNNGraph(n_neighbors=5, mode="umap").fit_transform(X)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
