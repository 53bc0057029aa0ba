"""Default spot networks of the spatial-domain models across spot layouts.

Visium (hexagonal array), ST (square array) and single-cell resolution
(cells scattered irregularly: uniform random points) alike: the default
network leaves no spot without neighbours, keeps the published first ring
on the arrays, and a network that does leave spots alone says which.
"""

import re
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from skdance.graph import RadiusGraph, SpatialGaussianGraph
from skdance.graph._spatial import (
    is_regular_array,
    isolated_spots,
    nearest_spot_scales,
    spot_spacing,
)
from skdance.spatial.domain import STAGATE, SpaGCN, StLearn
from skdance.testing import fast_instance
from skdance.utils import all_estimators
from skdance.utils._tags import get_skdance_tags

STAGATE_FAST = {"hidden_dims": (8,), "latent_dim": 3, "max_epochs": 0}


pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


def _hex(n=12, pitch=1.0):
    """Visium-like hexagonal array: rows offset by half a pitch."""
    return pitch * np.array(
        [[x + 0.5 * (y % 2), y * np.sqrt(3) / 2] for y in range(n) for x in range(n)]
    )


def _square(n=12, pitch=1.0):
    """ST-like square array."""
    return pitch * np.array([[x, y] for y in range(n) for x in range(n)], float)


def _scattered(n=500, seed=0):
    """Cells at single-cell resolution: uniform random (Poisson) points."""
    return np.random.default_rng(seed).uniform(0, 100, size=(n, 2))


def _counts(n, n_genes=30, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.poisson(2.0, size=(n, n_genes)).astype(np.float64)
    X[: n // 2, :8] += rng.poisson(6.0, size=(n // 2, 8))
    return X


def _off_diagonal_degrees(A):
    A = sp.csr_matrix(A, copy=True)
    A.setdiag(0)
    A.eliminate_zeros()
    return np.diff(A.indptr)


def _fit_quietly(model, X, coords):
    """Fit, failing on any warning about spots without neighbours."""
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*no spatial neighbour.*")
        return model.fit(X, coords=coords)


def _isolation_warning(record):
    messages = [str(w.message) for w in record if "no spatial neighbour" in str(w)]
    assert len(messages) == 1, messages
    return messages[0]


# ---------------------------------------------------------------------------
# layout detection
# ---------------------------------------------------------------------------
def test_arrays_are_regular_and_scattered_cells_are_not():
    rng = np.random.default_rng(0)
    assert is_regular_array(_hex(pitch=137.9))
    assert is_regular_array(_square(pitch=200.0))
    # Visium's registration puts spots a pixel or so off the lattice
    assert is_regular_array(_hex(pitch=137.9) + rng.normal(0, 0.5, (144, 2)))
    # an array with spots missing is still an array
    assert is_regular_array(np.delete(_hex(), rng.choice(144, 30, False), axis=0))
    assert not is_regular_array(_scattered())
    assert not is_regular_array(_scattered(n=2000, seed=1))


def test_nearest_spot_scales_are_one_on_an_array_but_at_cut_off_spots():
    coords = np.vstack([_hex(), [[40.0, 40.0]]])
    scales = nearest_spot_scales(coords)
    np.testing.assert_array_equal(scales[:-1], 1.0)
    assert scales[-1] > 20
    scattered = nearest_spot_scales(_scattered())
    assert np.median(scattered) == pytest.approx(1.0) and scattered.std() > 0.2


# ---------------------------------------------------------------------------
# STAGATE's default network
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "coords, ring", [(_hex(pitch=137.9), 6), (_square(pitch=200.0), 4)]
)
def test_stagate_default_is_the_first_ring_on_arrays(coords, ring):
    # STAGATE's published Visium network: the first ring, nothing beyond
    n = coords.shape[0]
    model = STAGATE(**STAGATE_FAST, random_state=0)
    A = _fit_quietly(model, _counts(n), coords).adjacency_
    degrees = _off_diagonal_degrees(A)
    assert degrees.max() == ring and np.median(degrees) == ring
    rows, cols = sp.triu(A, k=1).nonzero()
    dist = np.linalg.norm(coords[rows] - coords[cols], axis=1)
    np.testing.assert_allclose(dist, spot_spacing(coords))  # first ring only
    expected = RadiusGraph(radius=1.3 * spot_spacing(coords)).fit_transform(
        np.ones((n, 1)), coords=coords
    )
    assert (A - sp.identity(n) != expected).nnz == 0


def test_stagate_default_links_every_cell_at_single_cell_resolution():
    # measured on these 500 cells: a radius of 1.3 spacings alone gives 1.1
    # neighbours per cell and none to 31% of the cells
    coords = _scattered()
    model = _fit_quietly(STAGATE(**STAGATE_FAST, random_state=0), _counts(500), coords)
    degrees = _off_diagonal_degrees(model.adjacency_)
    assert degrees.min() >= 6 and 6.5 < degrees.mean() < 8
    assert abs(model.adjacency_ - model.adjacency_.T).nnz == 0
    assert model.spatial_graph_.min_neighbors == 6


def test_stagate_default_links_a_spot_cut_off_from_the_array():
    coords = np.vstack([_hex(), [[40.0, 40.0]]])
    model = _fit_quietly(STAGATE(**STAGATE_FAST, random_state=0), _counts(145), coords)
    degrees = _off_diagonal_degrees(model.adjacency_)
    assert degrees[-1] == 1 and degrees[:-1].max() == 6


def test_stagate_names_the_spots_a_too_small_radius_leaves_alone():
    coords = np.vstack([_square(), [[30.0, 30.0], [-20.0, 5.0]]])  # 144, 145
    graph = RadiusGraph(radius=1.2)  # the grid's first ring; two strays
    with pytest.warns(UserWarning) as record:
        STAGATE(spatial_graph=graph, **STAGATE_FAST, random_state=0).fit(
            _counts(146), coords=coords
        )
    message = _isolation_warning(record)
    assert "STAGATE: 2 of 146 spots" in message and "spots 144, 145)" in message
    # a radius below the spacing leaves every spot alone: the first few named
    with pytest.warns(UserWarning) as record:
        STAGATE(spatial_graph=RadiusGraph(radius=0.5), **STAGATE_FAST).fit(
            _counts(146), coords=coords
        )
    message = _isolation_warning(record)
    assert "146 of 146 spots (100.0%)" in message
    assert re.search(r"spots 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, \.\.\.\)", message)


# ---------------------------------------------------------------------------
# RadiusGraph's neighbour floor
# ---------------------------------------------------------------------------
def test_radius_graph_floor_links_each_spot_to_its_nearest():
    coords = _scattered()
    X = np.ones((500, 1))
    plain = RadiusGraph(radius=3.0).fit_transform(X, coords=coords)
    assert isolated_spots(plain).size > 0
    A = RadiusGraph(radius=3.0, min_neighbors=6).fit_transform(X, coords=coords)
    assert (A != A.T).nnz == 0 and A.diagonal().max() == 0
    assert np.diff(A.indptr).min() >= 6 and isolated_spots(A).size == 0
    assert (plain - plain.multiply(A)).nnz == 0  # the radius edges are kept
    # every spot is linked to its 6 nearest
    order = np.argsort(np.linalg.norm(coords[:, None] - coords[None], axis=2), 1)
    for i in range(0, 500, 50):
        assert set(order[i, 1:7]) <= set(A[i].indices)
    # distance weights, and nothing changes where the radius already links
    D = RadiusGraph(radius=3.0, min_neighbors=6, mode="distance").fit_transform(
        X, coords=coords
    )
    np.testing.assert_allclose(
        D.data, np.linalg.norm(coords[D.nonzero()[0]] - coords[D.indices], axis=1)
    )
    grid = _square()
    ring = RadiusGraph(radius=1.3).fit_transform(np.ones((144, 1)), coords=grid)
    floored = RadiusGraph(radius=1.3, min_neighbors=1).fit_transform(
        np.ones((144, 1)), coords=grid
    )
    assert (ring != floored).nnz == 0


def test_isolated_spots_counts_weights_off_the_diagonal():
    A = np.array([[1.0, 0.5, 0.0], [0.5, 1.0, 1e-4], [0.0, 1e-4, 1.0]])
    np.testing.assert_array_equal(isolated_spots(A), [])
    np.testing.assert_array_equal(isolated_spots(A, min_weight=1e-3), [2])
    np.testing.assert_array_equal(isolated_spots(sp.identity(3)), [0, 1, 2])


# ---------------------------------------------------------------------------
# StLearn's SME neighbourhood
# ---------------------------------------------------------------------------
def test_stlearn_default_neighbourhood_links_every_cell():
    # 3 spacings alone leave 8 of these 500 cells (1.6%) with no neighbour
    coords = _scattered()
    X = _counts(500)
    model = _fit_quietly(
        StLearn(3, weights="physical_distance", n_components=5, random_state=0),
        X,
        coords,
    )
    assert model.spatial_graph_.min_neighbors == 6
    assert model.spatial_graph_.radius == pytest.approx(3.0 * spot_spacing(coords))
    assert isolated_spots(model.sme_weights_).size == 0
    # an explicit radius is used as given, and the spots it leaves are named
    with pytest.warns(UserWarning) as record:
        explicit = StLearn(
            3,
            weights="physical_distance",
            spatial_graph=RadiusGraph(radius=3.0 * spot_spacing(coords)),
            n_components=5,
        ).fit(X, coords=coords)
    alone = isolated_spots(explicit.sme_weights_)
    assert alone.size == 8 and explicit.spatial_graph_.min_neighbors == 0
    message = _isolation_warning(record)
    assert "StLearn: 8 of 500 spots" in message
    assert ", ".join(map(str, alone)) in message


def test_stlearn_default_keeps_the_array_neighbourhood():
    coords = _hex(pitch=137.9)
    X = _counts(144)
    kwargs = {"weights": "physical_distance", "n_components": 5}
    default = _fit_quietly(StLearn(3, **kwargs, random_state=0), X, coords)
    assert default.spatial_graph_.min_neighbors == 1
    radius = RadiusGraph(radius=3.0 * spot_spacing(coords))
    explicit = StLearn(3, spatial_graph=radius, **kwargs, random_state=0)
    explicit.fit(X, coords=coords)
    assert (default.sme_weights_ != explicit.sme_weights_).nnz == 0
    np.testing.assert_array_equal(default.labels_, explicit.labels_)


def test_stlearn_radius_below_one_spacing_warns():
    coords = _square()
    with pytest.warns(UserWarning) as record:
        model = StLearn(3, spatial_graph=RadiusGraph(radius=0.5), n_components=5).fit(
            _counts(144), coords=coords
        )
    assert (model.sme_weights_ != sp.identity(144)).nnz == 0
    assert "144 of 144 spots" in _isolation_warning(record)


# ---------------------------------------------------------------------------
# SpaGCN's Gaussian kernel
# ---------------------------------------------------------------------------
SPAGCN_FAST = {"init": "kmeans", "n_components": 5, "max_epochs": 2}


def _received_weight(model, coords):
    graph = model.spatial_graph_
    assert graph.length_scale == model.length_scale_
    A = graph.fit_transform(np.zeros((coords.shape[0], 1)), coords=coords)
    return np.asarray(A.sum(axis=1)).ravel() - 1.0


def test_spagcn_default_kernel_reaches_every_cell():
    # SpaGCN's global kernel gives 28 of these 500 cells less than 1e-3 from
    # all the others together (the least 7e-13)
    coords = _scattered()
    model = _fit_quietly(SpaGCN(2, **SPAGCN_FAST, random_state=0), _counts(500), coords)
    received = _received_weight(model, coords)
    assert received.min() > 0.2  # measured 0.21
    assert received.mean() == pytest.approx(0.5, rel=1e-3)  # SpaGCN's p


def test_spagcn_default_kernel_is_spagcns_on_an_array():
    coords = _hex(pitch=137.9)
    X = _counts(144)
    local = _fit_quietly(SpaGCN(2, **SPAGCN_FAST, random_state=0), X, coords)
    spagcn_kernel = SpatialGaussianGraph(search_steps=50)  # no local scaling
    plain = SpaGCN(2, spatial_graph=spagcn_kernel, **SPAGCN_FAST, random_state=0).fit(
        X, coords=coords
    )
    assert local.length_scale_ == plain.length_scale_
    np.testing.assert_array_equal(local.embedding_, plain.embedding_)


def test_spagcn_names_the_spots_a_too_small_length_scale_leaves_alone():
    coords = np.vstack([_square(), [[30.0, 30.0]]])
    with pytest.warns(UserWarning) as record:
        SpaGCN(
            2, spatial_graph=SpatialGaussianGraph(length_scale=1.0), **SPAGCN_FAST
        ).fit(_counts(145), coords=coords)
    message = _isolation_warning(record)
    assert "SpaGCN: 1 of 145 spots" in message and "(spots 144)" in message
    assert "raise the spatial_graph's p or length_scale" in message
    assert "set its local_scaling=True" in message


# ---------------------------------------------------------------------------
# degenerate coordinates
# ---------------------------------------------------------------------------
SPATIAL_DOMAIN = [
    cls for _, cls in all_estimators() if get_skdance_tags(cls).task == "spatial_domain"
]


def test_the_spatial_domain_models_are_found():
    names = {cls.__name__ for cls in SPATIAL_DOMAIN}
    assert {"STAGATE", "SpaGCN", "StLearn", "SpatialLouvain"} <= names


@pytest.mark.parametrize("Estimator", SPATIAL_DOMAIN, ids=lambda c: c.__name__)
def test_spots_at_one_position_raise(Estimator):
    X = _counts(40)
    same = np.tile([[3.0, 7.0]], (40, 1))
    est = fast_instance(Estimator)
    with pytest.raises(ValueError, match="all 40 spots share one position"):
        est.fit(X, coords=same)
    # the caller's coordinates are left as they were
    np.testing.assert_array_equal(same, np.tile([[3.0, 7.0]], (40, 1)))
    # one spot elsewhere is enough
    moved = same.copy()
    moved[0] = [4.0, 7.0]
    fitted = fast_instance(Estimator).fit(X, coords=moved)
    if hasattr(fitted, "transform"):
        with pytest.raises(ValueError, match="share one position"):
            fitted.transform(X, coords=same)


def test_spatial_louvain_is_reproducible_by_default():
    # as Leiden and Louvain (scanpy's default seed): two default fits agree
    from skdance.spatial.domain import SpatialLouvain

    X = np.random.default_rng(0).poisson(1.0, size=(200, 30)).astype(float)
    X[X.sum(axis=1) == 0, 0] = 1.0
    coords = np.random.default_rng(1).uniform(0, 10, size=(200, 2))
    assert SpatialLouvain().random_state == 0
    first = SpatialLouvain(n_clusters=3).fit_predict(X, coords=coords)
    second = SpatialLouvain(n_clusters=3).fit_predict(X, coords=coords)
    np.testing.assert_array_equal(first, second)
