import numpy as np
import pytest
from sklearn import config_context
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.model_selection import GridSearchCV, KFold

from skdance.clustering import Leiden
from skdance.metrics import (
    ari_scorer,
    cluster_accuracy,
    graph_connectivity,
    masked_mse,
    masked_rmse,
    matching_score,
    nmi_scorer,
    rmse,
)
from skdance.spatial.domain import SpatialLouvain


def test_cluster_accuracy_permutation_invariant():
    y = np.array([0, 0, 1, 1, 2, 2])
    assert cluster_accuracy(y, [2, 2, 0, 0, 1, 1]) == 1.0
    assert cluster_accuracy(y, [0, 0, 0, 0, 0, 0]) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="different lengths"):
        cluster_accuracy(y, [0, 1])


def test_rmse_and_masked_mse():
    assert rmse([[0.0, 0.0]], [[3.0, 4.0]]) == pytest.approx(np.sqrt(12.5))
    X = np.array([[1.0, 2.0], [3.0, 4.0]])
    P = np.array([[1.0, 0.0], [0.0, 4.0]])
    mask = np.array([[False, True], [True, False]])
    assert masked_mse(X, P, mask) == pytest.approx((4 + 9) / 2)
    assert masked_rmse(X, P, mask) == pytest.approx(np.sqrt(6.5))
    with pytest.raises(ValueError, match="selects no entries"):
        masked_mse(X, P, np.zeros_like(mask))


def test_matching_score():
    assert matching_score(np.eye(3)) == 1.0
    assert matching_score(np.full((4, 4), 0.25)) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="row-stochastic"):
        matching_score(np.ones((2, 2)))


def test_clustering_scorers_in_grid_search():
    X, y = make_blobs(n_samples=150, centers=3, cluster_std=0.5, random_state=0)
    # a transductive clusterer (fit_predict only) is scored on each fold
    grid = GridSearchCV(
        Leiden(random_state=0),
        {"resolution": [0.05, 1.0]},
        scoring={"ari": ari_scorer, "nmi": nmi_scorer},
        refit="ari",
        cv=KFold(3, shuffle=True, random_state=0),
    )
    grid.fit(X, y)
    assert grid.best_score_ > 0.9
    # an inductive one is scored with predict
    score = ari_scorer(KMeans(3, n_init=3, random_state=0).fit(X), X, y)
    assert score > 0.9


def test_clustering_scorer_says_how_to_route_coords():
    # two domains side by side on a 10 x 8 grid of spots
    rng = np.random.default_rng(0)
    coords = np.c_[np.arange(80) % 10, np.arange(80) // 10].astype(float)
    y = (coords[:, 0] >= 5).astype(int)
    X = rng.poisson(np.where(y[:, None] == 1, 4.0, 1.0), size=(80, 30)).astype(float)
    model = SpatialLouvain(2, n_components=5, random_state=0)
    # coords reach the searched model's fit, not the scorer's refitted clone
    search = GridSearchCV(
        model,
        {"resolution": [1.0]},
        scoring=ari_scorer,
        cv=KFold(2, shuffle=True, random_state=0),
        error_score="raise",
    )
    with pytest.raises(ValueError, match=r"set_score_request\(coords=True\)") as info:
        search.fit(X, y, coords=coords)
    message = str(info.value)
    assert "requires coords" in message
    assert "sklearn.set_config(enable_metadata_routing=True)" in message
    with config_context(enable_metadata_routing=True):
        with pytest.raises(
            ValueError, match=r"set_score_request\(coords=True\)"
        ) as info:
            ari_scorer(model, X, y)
        # routing is on already: the message does not ask to turn it on
        assert "enable_metadata_routing" not in str(info.value)
        search.set_params(scoring=ari_scorer.set_score_request(coords=True))
        assert search.fit(X, y, coords=coords).best_score_ > 0.5
    assert ari_scorer(model, X, y, coords=coords) > 0.5


def test_graph_connectivity_counts_islands_per_type():
    rng = np.random.default_rng(0)
    # type "a" in two far batches (islands), type "b" one blob
    a = np.r_[rng.normal(size=(30, 3)), rng.normal(size=(10, 3)) + 50.0]
    b = rng.normal(size=(20, 3)) + 100.0
    Z = np.r_[a, b]
    labels = np.array(["a"] * 40 + ["b"] * 20)
    # a: largest piece 30 of 40 cells; b: whole
    assert graph_connectivity(Z, labels, n_neighbors=5) == pytest.approx(
        (30 / 40 + 1.0) / 2
    )
    # the two batches of "a" brought together: every type connected
    a_mixed = np.r_[a[:30], a[30:] - 50.0]
    assert graph_connectivity(np.r_[a_mixed, b], labels, n_neighbors=5) == 1.0


def test_graph_connectivity_rejects_bad_input():
    with pytest.raises(ValueError, match="one row per label"):
        graph_connectivity(np.zeros((20, 2)), ["a"] * 19)
    with pytest.raises(ValueError, match="NaN"):
        graph_connectivity(np.full((20, 2), np.nan), ["a"] * 20)
    with pytest.raises(ValueError, match="more than n_neighbors"):
        graph_connectivity(np.zeros((10, 2)), ["a"] * 10, n_neighbors=15)
