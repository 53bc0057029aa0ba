"""Celltypist's mini-batch SGD, feature selection and majority voting."""

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from skdance.annotation import Celltypist, majority_vote
from skdance.annotation.celltypist import default_over_clustering_resolution
from skdance.datasets import load_pbmc_4k_subset
from skdance.preprocessing import Log1p, NormalizeTotal


@pytest.fixture(scope="module")
def pbmc_split():
    X, y = load_pbmc_4k_subset()
    X = Log1p().fit_transform(NormalizeTotal(target_sum=1e4).fit_transform(X))
    return train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)


def test_majority_vote_semantics():
    pred = np.array(["B", "B", "T", "T", "T", "NK", "T"])
    clusters = np.array([0, 0, 0, 1, 1, 2, 2])
    np.testing.assert_array_equal(
        majority_vote(pred, clusters), ["B", "B", "B", "T", "T", "NK", "NK"]
    )
    # cluster 2 is a 1:1 tie (the smallest label wins); below min_prop=0.6 it
    # keeps its per-cell labels, cluster 0 (2/3 B) still votes
    np.testing.assert_array_equal(
        majority_vote(pred, clusters, min_prop=0.6),
        ["B", "B", "B", "T", "T", "NK", "T"],
    )
    with pytest.raises(ValueError, match="equal length"):
        majority_vote(pred, clusters[:-1])


def test_default_resolution_follows_celltypist():
    sizes = [100, 4_999, 5_000, 19_999, 30_000, 50_000, 150_000, 300_000]
    assert [default_over_clustering_resolution(n) for n in sizes] == [
        5,
        5,
        10,
        10,
        15,
        20,
        25,
        30,
    ]


def test_minibatch_schedule_and_errors(pbmc_split):
    X_tr, X_te, y_tr, y_te = pbmc_split
    n = X_tr.shape[0]  # 900 cells
    model = Celltypist(
        use_sgd=True,
        mini_batch=True,
        batch_size=200,
        batch_number=3,
        max_epochs=4,
        random_state=0,
    ).fit(X_tr, y_tr)
    # 3 batches of 200 cells per epoch (600 < 900 cells drawn), 4 epochs
    assert model.n_iter_ == 12
    assert model.score(X_te, y_te) > 0.6
    # batch_number larger than the data: every cell once per epoch
    model = Celltypist(
        use_sgd=True, mini_batch=True, batch_size=200, max_epochs=2, random_state=0
    ).fit(X_tr, y_tr)
    assert model.n_iter_ == 2 * int(np.ceil(n / 200))
    with pytest.raises(ValueError, match="more cells"):
        Celltypist(use_sgd=True, mini_batch=True, batch_size=n).fit(X_tr, y_tr)


def test_feature_selection_keeps_top_genes_per_class(pbmc_split):
    X_tr, _, y_tr, _ = pbmc_split
    model = Celltypist(feature_selection=True, n_top_genes=20, random_state=0)
    model.fit(X_tr, y_tr)
    n_classes = model.classes_.size
    assert 20 <= model.genes_.size <= 20 * n_classes
    assert model.mean_.shape == model.std_.shape == (model.genes_.size,)


def test_majority_voting_over_clusters(pbmc_split):
    X_tr, X_te, y_tr, y_te = pbmc_split
    plain = Celltypist(random_state=0).fit(X_tr, y_tr)
    voting = Celltypist(majority_voting=True, random_state=0).fit(X_tr, y_tr)
    per_cell = plain.predict(X_te)
    voted = voting.predict(X_te)
    clusters = voting.over_clustering_
    assert clusters.shape == (X_te.shape[0],)
    # over-clustering: many more clusters than the 8 cell types
    assert np.unique(clusters).size > 8
    for c in np.unique(clusters):
        assert np.unique(voted[clusters == c]).size == 1
    np.testing.assert_array_equal(voted, majority_vote(per_cell, clusters))
    # a user-supplied clustering is used as given; proba stays per cell
    given = np.arange(X_te.shape[0]) % 3
    np.testing.assert_array_equal(
        plain.predict(X_te, over_clustering=given), majority_vote(per_cell, given)
    )
    np.testing.assert_array_equal(voting.predict_proba(X_te), plain.predict_proba(X_te))
    with pytest.raises(ValueError, match="one label per cell"):
        plain.predict(X_te, over_clustering=given[:-1])
