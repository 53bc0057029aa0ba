"""Baselines on real (shipped) data: accuracy floors, method-specific pieces.

Same-seed fits and fitted pickles of every estimator: test_common.py.
"""

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline

from skdance.annotation import SVM, Celltypist, SingleCellNet
from skdance.clustering import Leiden, Louvain
from skdance.datasets import load_pbmc_4k_subset
from skdance.graph import KNNGraph
from skdance.preprocessing import HighlyVariableGenes, Log1p, NormalizeTotal, ScaleGenes


@pytest.fixture(scope="module")
def pbmc_split():
    X, y = load_pbmc_4k_subset()
    return train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)


# Floors sit well below what these methods reach here (SVM/Celltypist ~0.88,
# SingleCellNet ~0.75) and far above chance (~0.30 for the majority class).
@pytest.mark.parametrize(
    "clf,floor",
    [
        (SVM(random_state=0), 0.8),
        (Celltypist(random_state=0), 0.8),
        (Celltypist(feature_selection=True, n_top_genes=50, random_state=0), 0.75),
        (Celltypist(use_sgd=True, random_state=0), 0.75),
        (
            Celltypist(
                use_sgd=True,
                mini_batch=True,
                batch_size=200,
                balance_cell_type=True,
                random_state=0,
            ),
            0.75,
        ),
        (Celltypist(majority_voting=True, random_state=0), 0.75),
        (SingleCellNet(n_trees=300, random_state=0), 0.65),
    ],
    ids=[
        "svm",
        "celltypist",
        "celltypist-fs",
        "celltypist-sgd",
        "celltypist-minibatch",
        "celltypist-voting",
        "scn",
    ],
)
def test_annotation_accuracy(pbmc_split, clf, floor):
    X_tr, X_te, y_tr, y_te = pbmc_split
    pipe = make_pipeline(NormalizeTotal(target_sum=1e4), Log1p(), clf)
    pipe.fit(X_tr, y_tr)
    pred = pipe.predict(X_te)
    assert np.mean(pred == y_te) > floor
    proba = pipe.predict_proba(X_te)
    assert proba.shape == (X_te.shape[0], 8)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)  # float32 input


def test_singlecellnet_pairs_and_rand_class(pbmc_split):
    X_tr, _, y_tr, _ = pbmc_split
    scn = make_pipeline(
        NormalizeTotal(target_sum=1e4),
        Log1p(),
        SingleCellNet(n_trees=50, random_state=0),
    ).fit(X_tr, y_tr)[-1]
    assert scn.gene_pairs_.shape[1] == 2
    assert (scn.gene_pairs_[:, 0] != scn.gene_pairs_[:, 1]).all()
    assert scn.forest_.n_classes_ == scn.classes_.size + 1  # the "rand" class
    # a shuffled profile looks like no cell type: lower top score than real cells
    rng = np.random.default_rng(0)
    real = Log1p().fit_transform(NormalizeTotal(target_sum=1e4).fit_transform(X_tr))
    real = real[:50].toarray()
    shuffled = np.array([rng.permutation(row) for row in real])
    top_real = scn.forest_.predict_proba(scn._pair_features(real))[:, :-1].max(1)
    top_rand = scn.forest_.predict_proba(scn._pair_features(shuffled))[:, :-1].max(1)
    assert top_rand.mean() < top_real.mean()


@pytest.mark.parametrize("cls", [Leiden, Louvain])
def test_clustering_on_real_data(cls):
    X, y = load_pbmc_4k_subset()
    pipe = make_pipeline(
        HighlyVariableGenes(n_top_genes=1000),
        NormalizeTotal(target_sum=1e4),
        Log1p(),
        ScaleGenes(max_value=10),
        PCA(n_components=30, random_state=0),
        cls(n_clusters=8, random_state=0),
    )
    labels = pipe.fit_predict(X)
    assert np.unique(labels).size == 8
    # a random labelling scores ~0; Leiden/Louvain reach ~0.6 here
    assert adjusted_rand_score(y, labels) > 0.4


@pytest.mark.parametrize("cls", [Leiden, Louvain])
def test_community_clustering_is_reproducible_by_default(cls):
    # Gaussian noise has no clear communities: the partition depends on the
    # optimiser's seed, so two fits agree only when the seed is fixed
    X = np.random.default_rng(0).normal(size=(300, 5))
    assert cls().random_state == 0
    first, second = cls().fit_predict(X), cls().fit_predict(X)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(cls(random_state=0).fit_predict(X), first)


def test_leiden_graph_parameter_is_cloned_and_tunable():
    X, _ = load_pbmc_4k_subset()
    Xp = PCA(10, random_state=0).fit_transform(
        Log1p().fit_transform(NormalizeTotal().fit_transform(X)).toarray()
    )
    graph = KNNGraph(n_neighbors=10)
    model = Leiden(graph=graph, random_state=0).fit(Xp)
    assert not hasattr(graph, "n_features_in_")  # the passed builder stays unfitted
    assert model.adjacency_.shape == (1200, 1200)
    model.set_params(graph__n_neighbors=30)
    assert model.get_params()["graph__n_neighbors"] == 30


def test_leiden_max_iter_bounds_the_optimisation_passes():
    X = np.random.default_rng(0).normal(size=(60, 5))
    # no pass leaves every cell alone; -1 (the default) runs to convergence
    assert Leiden(max_iter=0).fit(X).n_clusters_ == 60
    converged = Leiden().fit(X)
    assert Leiden().max_iter == -1 and converged.n_clusters_ < 60
    # n_iter_ counts the passes: the last one of a converged run no longer
    # improves, so stopping one pass earlier gives the same partition
    assert converged.n_iter_ >= 2 and Leiden(max_iter=2).fit(X).n_iter_ == 2
    shorter = Leiden(max_iter=converged.n_iter_ - 1).fit(X)
    np.testing.assert_array_equal(shorter.labels_, converged.labels_)
    assert "max_iter" not in Louvain().get_params()  # igraph has no such limit
    with pytest.raises(ValueError, match="'max_iter' parameter of Leiden"):
        Leiden(max_iter=-2).fit(X)
