"""Side information through Pipeline and GridSearchCV with metadata routing.

Per-cell side information (scDCC's partial labels, spatial coordinates) is
declared for scikit-learn's metadata routing, so model selection slices it
with the cells of each fold.
"""

import os
from numbers import Integral, Real
from pathlib import Path

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn import config_context
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.model_selection import GridSearchCV, KFold, cross_validate
from sklearn.neighbors import kneighbors_graph
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.utils._param_validation import Interval

from skdance.clustering import ScDCC, make_partial_labels
from skdance.datasets import load_pbmc_4k_subset
from skdance.graph import RadiusGraph
from skdance.metrics import ari_scorer
from skdance.nn import history_values
from skdance.preprocessing import HighlyVariableGenes
from skdance.spatial.domain import BaseSpatialDomain


class ExpressionAndPosition(BaseSpatialDomain):
    """k-means on spatially smoothed expression PCs (a test model).

    The smallest real consumer of the spatial-domain contract: the
    coordinates reach ``_fit`` through ``fit(X, coords=...)`` or
    ``obsm[spatial_key]``; each spot's PCs are averaged with those of its 6
    nearest spots (weight ``spatial_weight``), as stLearn-like smoothing.
    ``coords_`` records what ``fit`` received, for the routing tests.
    """

    _parameter_constraints = {
        "n_clusters": [Interval(Integral, 1, None, closed="left")],
        "spatial_weight": [Interval(Real, 0, None, closed="left")],
        "spatial_key": [str],
    }

    def __init__(self, n_clusters=5, *, spatial_weight=1.0, spatial_key="spatial"):
        self.n_clusters = n_clusters
        self.spatial_weight = spatial_weight
        self.spatial_key = spatial_key

    def _fit(self, X, coords):
        dense = X.toarray() if sp.issparse(X) else X
        logged = np.log1p(dense / dense.sum(axis=1, keepdims=True) * 1e4)
        expr = PCA(10, random_state=0).fit_transform(logged)
        near = kneighbors_graph(coords, 6)
        smoothed = (expr + self.spatial_weight * (near @ expr) / 6) / (
            1 + self.spatial_weight
        )
        km = KMeans(self.n_clusters, n_init=3, random_state=0)
        self.labels_ = km.fit_predict(smoothed)
        self.coords_ = coords


@pytest.fixture(scope="module")
def bulb():
    path = Path(os.environ["SKDANCE_DATA"]) / "mouse_olfactory_bulb_st" / "mob_st.h5ad"
    adata = ad.read_h5ad(path)
    layers = np.asarray(adata.obs["layer"].astype(str))
    return adata, layers


def test_spatial_model_reads_coords_from_keyword_or_anndata(bulb):
    adata, _ = bulb
    coords = np.asarray(adata.obsm["spatial"], dtype=float)
    from_kw = ExpressionAndPosition().fit_predict(adata.X, coords=coords)
    from_obsm = ExpressionAndPosition().fit_predict(adata)
    np.testing.assert_array_equal(from_kw, from_obsm)
    with pytest.raises(ValueError, match="requires coords"):
        ExpressionAndPosition().fit(adata.X)
    with pytest.raises(ValueError, match=r"obsm\['xy'\]"):
        ExpressionAndPosition(spatial_key="xy").fit(adata)


def test_gridsearch_routes_coords_to_fit_and_scorer(bulb):
    adata, layers = bulb
    X = sp.csr_matrix(adata.X)
    coords = np.asarray(adata.obsm["spatial"], dtype=float)
    pipe = Pipeline(
        [
            ("hvg", HighlyVariableGenes(n_top_genes=500, flavor="cell_ranger")),
            ("domains", ExpressionAndPosition()),
        ]
    )
    cv = KFold(3, shuffle=True, random_state=0)
    with config_context(enable_metadata_routing=True):
        scorer = ari_scorer.set_score_request(coords=True)
        search = GridSearchCV(
            pipe, {"domains__spatial_weight": [0.0, 1.0]}, scoring=scorer, cv=cv
        )
        search.fit(X, layers, coords=coords)
        folds = cross_validate(
            pipe,
            X,
            layers,
            params={"coords": coords},
            scoring=scorer,
            cv=cv,
            return_estimator=True,
            return_indices=True,
        )
    # every spatial-domain model scores far above chance on the layers
    assert (search.cv_results_["mean_test_score"] > 0.2).all()
    np.testing.assert_array_equal(search.best_estimator_[-1].coords_, coords)
    # each fold's model received exactly its own spots' coordinates, and the
    # scorer's clone got the test spots' ones (it raises without coords)
    for est, train in zip(folds["estimator"], folds["indices"]["train"]):
        np.testing.assert_array_equal(est[-1].coords_, coords[train])
    assert (folds["test_score"] > 0.2).all()
    # the shared scorer was not modified by set_score_request
    assert ari_scorer.get_metadata_routing().score.requests == {}


def test_spatial_graph_builder_in_a_routed_pipeline(bulb):
    adata, _ = bulb
    coords = np.asarray(adata.obsm["spatial"], dtype=float)
    pipe = make_pipeline(
        HighlyVariableGenes(n_top_genes=200, flavor="cell_ranger"),
        RadiusGraph(radius=1.5),
    )
    with config_context(enable_metadata_routing=True):
        A = pipe.fit_transform(adata.X, coords=coords)
    expected = RadiusGraph(radius=1.5).fit_transform(adata.X, coords=coords)
    assert A.shape == (adata.n_obs, adata.n_obs) and A.nnz > 0
    assert (A != expected).nnz == 0


@pytest.fixture(scope="module")
def pbmc():
    X, y = load_pbmc_4k_subset()
    rows = np.r_[0:100, 500:600, 1000:1100]
    return sp.csr_matrix(X)[rows], np.asarray(y)[rows]


def test_gridsearch_over_scdcc_pipeline_slices_constraints(pbmc):
    X, y = pbmc
    known = make_partial_labels(y, 0.3, random_state=0)
    pipe = Pipeline(
        [
            ("hvg", HighlyVariableGenes(n_top_genes=300, flavor="cell_ranger")),
            (
                "scdcc",
                ScDCC(
                    n_clusters=3,
                    n_pairs=300,
                    hidden_dims=(32, 16),
                    latent_dim=8,
                    pretrain_epochs=5,
                    max_epochs=4,
                    random_state=0,
                ),
            ),
        ]
    )
    with config_context(enable_metadata_routing=True):
        search = GridSearchCV(
            pipe,
            {"scdcc__must_link_weight": [0.5, 1.0]},
            scoring=ari_scorer,
            cv=KFold(2, shuffle=True, random_state=0),
        )
        # before per-cell constraints this raised "ml_pairs holds row indices
        # outside [0, 150)" on the first fold
        search.fit(X, y, constraint_labels=known)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    constraint = history_values(
        search.best_estimator_[-1].history_, "constraint_loss", phase="cluster"
    )
    assert np.all(np.asarray(constraint) > 0)  # the constraints were used
