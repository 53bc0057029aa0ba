"""Bad input gets a clear ValueError from skdance, not a deep traceback.

Every discovered estimator is fitted as its skdance tags say (labels for
annotation and deconvolution, coordinates where needed), with its fast
parameters, on small real counts with one defect each.
"""

import numpy as np
import pytest
import scipy.sparse as sp

from skdance.annotation import Celltypist
from skdance.clustering import Leiden, Louvain
from skdance.graph import KNNGraph
from skdance.testing import (
    check_data,
    check_instance,
    estimator_output,
    fast_instance,
    fit_estimator,
)
from skdance.utils import all_estimators
from skdance.utils._tags import get_skdance_tags

ESTIMATORS = all_estimators()
COUNT_ESTIMATORS = [
    (n, c) for n, c in ESTIMATORS if get_skdance_tags(fast_instance(c)).counts
]
# estimators whose fitted model applies to new cells on the fitted genes
PREDICTING = [
    (n, c)
    for n, c in ESTIMATORS
    if hasattr(c, "transform") or hasattr(c, "predict")
    if n != "GeneAligner"  # reindexes other gene sets by name, by design
]


@pytest.mark.parametrize("name,cls", ESTIMATORS)
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_inf_rejected(name, cls, bad):
    data = check_data()
    X = data.X.copy()
    X[3, 2] = bad
    with pytest.raises(ValueError, match="NaN|infinity"):
        fit_estimator(fast_instance(cls), X, data)


@pytest.mark.parametrize("name,cls", COUNT_ESTIMATORS)
@pytest.mark.parametrize("sparse", [False, True])
def test_negative_counts_rejected(name, cls, sparse):
    data = check_data()
    X = data.X.copy()
    X[0, 0] = -1
    X = sp.csr_matrix(X) if sparse else X
    with pytest.raises(ValueError, match="Negative values in data passed to"):
        fit_estimator(fast_instance(cls), X, data)


def test_count_tags_cover_the_count_models():
    # the parametrisation above is not empty by accident
    names = {n for n, _ in COUNT_ESTIMATORS}
    assert {"ScDeepCluster", "DeepImpute", "CARD", "NormalizeTotal"} <= names


@pytest.mark.parametrize("name,cls", PREDICTING)
def test_wrong_number_of_genes_after_fit(name, cls):
    data = check_data()
    est = fit_estimator(check_instance(cls), data.X, data)
    with pytest.raises(ValueError, match="features"):
        estimator_output(est, data.X[:, :-1], data)


@pytest.mark.parametrize("name,cls", ESTIMATORS)
def test_one_dimensional_input(name, cls):
    data = check_data()
    with pytest.raises(ValueError, match="2D array"):
        fit_estimator(fast_instance(cls), data.X[0], data)


@pytest.mark.parametrize("name,cls", ESTIMATORS)
def test_empty_matrix(name, cls):
    data = check_data()
    with pytest.raises(ValueError, match="0 sample"):
        fit_estimator(fast_instance(cls), np.empty((0, data.X.shape[1])), data)


@pytest.mark.parametrize("cls", [Leiden, Louvain])
def test_more_clusters_than_cells(cls):
    X = check_data().X
    with pytest.raises(ValueError, match="n_clusters=500 is larger than the number"):
        cls(n_clusters=500).fit(X)


def test_knn_more_neighbours_than_cells():
    X = check_data().X
    with pytest.raises(ValueError, match="n_neighbors=15 must be smaller"):
        KNNGraph(n_neighbors=15).fit_transform(X[:10])


def test_single_class_rejected():
    X = check_data().X
    with pytest.raises(ValueError, match="at least 2 cell types"):
        Celltypist().fit(X, np.zeros(X.shape[0]))


# -- the second modality of the multimodal tasks -------------------------------
PAIRED = [
    (n, c)
    for n, c in ESTIMATORS
    if get_skdance_tags(c).task in ("modality_prediction", "modality_matching")
]


def test_paired_estimators_are_all_covered():
    assert {n for n, _ in PAIRED} >= {
        "ScMoGNN",
        "BABEL",
        "CMAE",
        "ScMM",
        "CCAMatcher",
        "ScMoGNNMatcher",
        "CMAEMatcher",
        "ScMMMatcher",
    }


@pytest.mark.parametrize("name,cls", PAIRED)
def test_second_modality_defects_rejected(name, cls):
    data = check_data()
    Y = data.mod2.copy()
    with pytest.raises(ValueError, match="same cells"):
        fast_instance(cls).fit(data.X, Y[:-5])
    Y[2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fast_instance(cls).fit(data.X, Y)
    with pytest.raises(ValueError, match="target y is None"):
        fast_instance(cls).fit(data.X, None)
    est = fit_estimator(fast_instance(cls), data.X, data)
    if get_skdance_tags(cls).task == "modality_matching":
        with pytest.raises(ValueError, match="features"):
            est.match(data.X, data.mod2[:, :-1])
        # score needs the paired cells: a different number of Y cells is not
        with pytest.raises(ValueError, match="needs paired cells"):
            est.score(data.X, data.mod2[:-3])


# -- the joint embeddings: [mod1 | mod2] blocks or a pair ---------------------
JOINT = [(n, c) for n, c in ESTIMATORS if get_skdance_tags(c).task == "joint_embedding"]


def test_joint_embeddings_are_all_covered():
    assert {n for n, _ in JOINT} >= {"JointPCA"}


@pytest.mark.parametrize("name,cls", JOINT)
def test_joint_embedding_layout_defects_rejected(name, cls):
    data = check_data()
    est = check_instance(cls)
    k = est.n_features_mod1
    with pytest.raises(ValueError, match="n_features_mod1"):
        fit_estimator(
            check_instance(cls).set_params(n_features_mod1=None), data.X, data
        )
    with pytest.raises(ValueError, match="n_features_mod1"):
        fit_estimator(
            check_instance(cls).set_params(n_features_mod1=data.X.shape[1]),
            data.X,
            data,
        )
    with pytest.raises(ValueError, match="same cells"):
        est.fit((data.X[:, :k], data.X[:-5, k:]), data.y)
    fitted = fit_estimator(check_instance(cls), data.X, data)
    with pytest.raises(ValueError, match="features"):
        fitted.transform(data.X[:, :-1])
