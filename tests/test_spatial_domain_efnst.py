"""EfNST: augmented expression, MLP + variational graph autoencoder, Leiden."""

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import clone
from torch.nn import functional as F

from skdance.clustering import Leiden
from skdance.graph import KNNGraph, to_igraph
from skdance.spatial.domain import EfNST
from skdance.spatial.domain.efnst import (
    _RESOLUTIONS,
    EfNSTModule,
    ResGatedGraphConv,
    _edge_tensors,
    augmentation_weights,
    efficientnet_b0_encoder,
    image_features,
)
from skdance.utils import check_random_state_int

FAST = {
    "n_components": 20,
    "hidden_dims": (16, 8),
    "graph_dims": (16, 4),
    "decoder_dims": (16,),
    "max_epochs": 20,
}

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


@pytest.fixture(scope="module")
def grid():
    """Counts of 144 spots on a square lattice (pitch 2), two halves."""
    rng = np.random.default_rng(0)
    coords = np.c_[np.repeat(np.arange(12), 12), np.tile(np.arange(12), 12)] * 2.0
    X = rng.poisson(3.0, size=(144, 60)).astype(np.float64)
    left = coords[:, 0] < 12
    X[left, :15] += rng.poisson(12.0, size=(left.sum(), 15))
    return X, coords, left.astype(int)


@pytest.fixture(scope="module")
def fitted(grid):
    X, coords, _ = grid
    return EfNST(n_clusters=2, random_state=0, **FAST).fit(X, coords=coords)


class _MeanColour(torch.nn.Module):
    """A tiny image encoder: each tile's mean colour per channel."""

    def forward(self, x):
        return x.mean(dim=(2, 3))


def test_gated_layer_matches_pytorch_geometric():
    pyg = pytest.importorskip("torch_geometric.nn")
    torch.manual_seed(0)
    ours = ResGatedGraphConv(5, 3)
    with torch.no_grad():
        ours.bias.normal_()
    theirs = pyg.ResGatedGraphConv(5, 3)
    with torch.no_grad():
        for mine, other in [
            (ours.key, theirs.lin_key),
            (ours.query, theirs.lin_query),
            (ours.value, theirs.lin_value),
        ]:
            other.weight.copy_(mine.weight)
            other.bias.copy_(mine.bias)
        theirs.lin_skip.weight.copy_(ours.skip.weight)
        theirs.bias.copy_(ours.bias)
    x = torch.randn(6, 5)
    edges = torch.tensor([[0, 1, 2, 3, 4, 5, 0, 2], [1, 0, 3, 2, 5, 4, 0, 4]])
    torch.testing.assert_close(ours(x, edges), theirs(x, edges))


def test_weights_exclude_the_spot_and_keep_the_three_heaviest():
    # spot 0 with five neighbours in reach, of decreasing expression
    # correlation, and one far spot that correlates perfectly
    coords = np.array([[0.0, 0], [1, 0], [0, 1], [-1, 0], [0, -1], [1, 1], [9, 9]])
    base = np.array([0.0, 1.0, 2.0, 3.0])
    noise = np.array([[0, 0, 0, 0], [0, 1, 0, 0], [0, 2, 0, 0], [0, 0, 3, 0]])
    pcs = np.vstack(
        [base, base + noise[1], base + noise[2], base + noise[3], -base, base, base]
    )
    W = augmentation_weights(coords, pcs, radius=1.5, n_neighbors=3)
    row = W[0].toarray().ravel()
    assert row[0] == 0  # not itself
    assert row[6] == 0  # out of reach (1.5 spacings)
    assert row[4] == 0  # anti-correlated: the lightest of five candidates
    assert np.count_nonzero(row) == 3
    np.testing.assert_allclose(row.sum(), 1.0)
    candidates = np.array([1, 2, 3, 4, 5])  # in reach, not itself
    corr = np.corrcoef(pcs)[0, candidates]
    kept = candidates[np.argsort(-corr)[:3]]
    np.testing.assert_array_equal(np.flatnonzero(row), np.sort(kept))
    np.testing.assert_allclose(
        row[kept], np.sort(corr)[::-1][:3] / np.sort(corr)[::-1][:3].sum()
    )


def test_morphology_factor_is_clipped_cosine():
    coords = np.array([[0.0, 0], [1, 0], [2, 0]])
    pcs = np.array([[1.0, 2, 3], [1, 2, 3.5], [1, 2.1, 3]])
    morph = np.array([[1.0, 0], [-1, 0.1], [1, 1]])  # 1 faces away from 0
    W = augmentation_weights(coords, pcs, morph, radius=2.5, n_neighbors=2)
    assert W[0, 1] == 0 and W[0, 2] == pytest.approx(1.0)


def test_edge_loss_equals_the_dense_original(grid):
    X, coords, _ = grid
    n = 30
    torch.manual_seed(0)
    module = EfNSTModule(10, (8, 6), (8, 3), (8,), dropout=0.0)
    A = KNNGraph(n_neighbors=4).fit_transform(coords[:n])
    A = ((A + A.T) > 0).astype(float) + sp.identity(n)
    edges = _edge_tensors(A)
    x = torch.randn(n, 10)
    norm = n * n / ((n * n - (A.nnz - n)) * 2.0)
    torch.manual_seed(1)
    _, _, bce, kl = module.loss(x, x, edges, edges, norm, (10.0, 0.1, 0.1))
    torch.manual_seed(1)
    h, mu, log_sigma = module.encode(x, edges)
    z = torch.cat([h, mu + torch.randn_like(mu) * torch.exp(log_sigma)], dim=1)
    preds = torch.sigmoid(z @ z.T)
    mask = torch.from_numpy(A.toarray()).float()
    dense = norm * F.binary_cross_entropy_with_logits(preds * mask, mask)
    torch.testing.assert_close(bce, dense)
    ref_kl = (
        -0.5
        / n
        * torch.mean(
            torch.sum(1 + 2 * log_sigma - mu**2 - torch.exp(log_sigma) ** 2, 1)
        )
    )
    torch.testing.assert_close(kl, ref_kl)


def test_fit_shapes_and_domains(fitted, grid):
    X, _, truth = grid
    model = fitted
    assert model.labels_.shape == (144,)
    assert model.embedding_.shape == (144, 8 + 4)
    assert set(np.unique(model.labels_)) == set(range(model.n_clusters_))
    assert np.unique(model.unrefined_labels_).size == 2
    assert len(model.history_) == 20 and model.n_iter_ == 20
    assert model.morphology_ is None
    # every spot is augmented by 3 others, with weights summing to 1
    W = model.augmentation_weights_
    assert (np.diff(W.indptr) == 3).all()
    np.testing.assert_allclose(np.asarray(W.sum(axis=1)).ravel(), 1.0)
    assert (W.diagonal() == 0).all()
    # the spot graph is symmetric with self loops
    A = model.adjacency_
    assert (A != A.T).nnz == 0 and (A.diagonal() == 1).all()
    agree = np.mean(model.unrefined_labels_ == truth)
    assert max(agree, 1 - agree) > 0.9


def test_deterministic_and_input_unchanged(fitted, grid):
    X, coords, _ = grid
    X0, c0 = X.copy(), coords.copy()
    again = EfNST(n_clusters=2, random_state=0, **FAST).fit(X, coords=coords)
    np.testing.assert_array_equal(again.labels_, fitted.labels_)
    np.testing.assert_array_equal(again.embedding_, fitted.embedding_)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(coords, c0)


def test_sparse_input_gives_the_same_augmentation(fitted, grid):
    X, coords, _ = grid
    model = EfNST(n_clusters=2, random_state=0, **{**FAST, "max_epochs": 1})
    model.fit(sp.csr_matrix(X), coords=coords)
    np.testing.assert_allclose(
        model.augmentation_weights_.toarray(),
        fitted.augmentation_weights_.toarray(),
        atol=1e-8,
    )


def test_resolution_is_the_first_hit_of_efnst_scan(fitted):
    # EfNST's _priori_cluster: from the top of the grid, the first resolution
    # with n_clusters communities (6 here: near the top, a short scan)
    z = fitted.embedding_
    seed = check_random_state_int(0)
    graph = to_igraph(KNNGraph(n_neighbors=15, mode="umap").fit_transform(z))
    leiden = Leiden(random_state=seed)
    for res in _RESOLUTIONS:
        labels = leiden.partition(graph, float(res), seed)
        if np.unique(labels).size == 6:
            break
    model = clone(fitted).set_params(n_clusters=6)
    found = model._cluster(z, seed)
    assert model.resolution_ == pytest.approx(float(res))
    np.testing.assert_array_equal(found, np.unique(labels, return_inverse=True)[1])


def _image_of_halves(coords, scale):
    """An RGB image, red where x < 12 (the left half), blue elsewhere."""
    size = int((coords.max() + 4) * scale)
    image = np.zeros((size, size, 3), dtype=np.uint8)
    cut = int(11 * scale)
    image[:, :cut, 0] = 200
    image[:, cut:, 2] = 200
    return image


def test_image_features_of_tiles():
    image = np.zeros((30, 30, 3), dtype=np.uint8)
    image[:, 15:] = 255
    feats = image_features(
        image, [[5, 15], [25, 15], [15, 15]], _MeanColour(), tile_size=6, input_size=6
    )
    mean = np.array([0.485, 0.456, 0.406])
    std = np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(feats[0], (0 - mean) / std, rtol=1e-5)
    np.testing.assert_allclose(feats[1], (1 - mean) / std, rtol=1e-5)
    np.testing.assert_allclose(feats[2], (0.5 - mean) / std, rtol=1e-5)


def test_image_path_end_to_end(grid):
    X, coords, _ = grid
    scale = 5.0
    image = _image_of_halves(coords, scale)
    model = EfNST(
        n_clusters=2,
        image_encoder=_MeanColour(),
        image_scale=scale,
        tile_size=6,
        encoder_input_size=12,
        n_image_components=2,
        random_state=0,
        **{**FAST, "max_epochs": 2},
    ).fit(X, coords=coords, image=image)
    assert model.morphology_.shape == (144, 2)
    # red and blue tiles point in opposite directions after the PCA: no spot
    # is augmented from across the colour boundary
    red = coords[:, 0] < 11
    W = model.augmentation_weights_.tocoo()
    assert not np.any(red[W.row] != red[W.col])
    # the same features given precomputed (AnnData obsm) give the same weights
    feats = image_features(
        image, coords * scale, _MeanColour(), tile_size=6, input_size=12
    )
    adata = ad.AnnData(X, obsm={"spatial": coords, "X_morphology": feats})
    other = EfNST(
        n_clusters=2, n_image_components=2, random_state=0, **{**FAST, "max_epochs": 2}
    ).fit(adata)
    np.testing.assert_allclose(
        other.augmentation_weights_.toarray(), W.toarray(), atol=1e-10
    )


def test_image_errors(grid):
    X, coords, _ = grid
    image = _image_of_halves(coords, 1.0)
    feats = np.ones((144, 3))
    with pytest.raises(ValueError, match="either image= or morphology="):
        EfNST(**FAST).fit(X, coords=coords, image=image, morphology=feats)
    with pytest.raises(ValueError, match="image_encoder_weights="):
        EfNST(**FAST).fit(X, coords=coords, image=image)
    with pytest.raises(ValueError, match="10 rows"):
        EfNST(**FAST).fit(X, coords=coords, morphology=feats[:10])
    with pytest.raises(ValueError, match="outside the image"):
        EfNST(image_encoder=_MeanColour(), image_scale=100.0, **FAST).fit(
            X, coords=coords, image=image
        )
    with pytest.raises(ValueError, match="RGB"):
        image_features(np.zeros((5, 5)), [[1, 1]], _MeanColour())


def test_default_encoder_needs_torchvision(tmp_path):
    try:
        import torchvision  # noqa: F401
    except Exception:
        pass
    else:
        pytest.skip("torchvision imports here")
    with pytest.raises(ImportError, match="torchvision"):
        efficientnet_b0_encoder(tmp_path / "efficientnet_b0.pth")


def test_no_augmentation_and_errors(grid):
    X, coords, _ = grid
    model = EfNST(
        n_clusters=2, augment_weight=0.0, random_state=0, **{**FAST, "max_epochs": 1}
    ).fit(X, coords=coords)
    assert model.labels_.shape == (144,)
    with pytest.raises(ValueError, match="min_cells"):
        EfNST(min_cells=1000, **FAST).fit(X, coords=coords)
