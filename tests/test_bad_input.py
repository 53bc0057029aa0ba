"""Bad input gets a clear ValueError from skdance, not a deep traceback."""

import numpy as np
import pytest
import scipy.sparse as sp

from skdance.annotation import ACTINN, SVM, Celltypist, ScDeepsort, SingleCellNet
from skdance.clustering import Leiden, Louvain
from skdance.graph import CellGeneGraph, KNNGraph
from skdance.imputation import MAGIC, DeepImpute, GraphSCI, ScGNN
from skdance.preprocessing import HighlyVariableGenes, Log1p, NormalizeTotal, ScaleGenes

rng = np.random.default_rng(0)
COUNTS = rng.poisson(3.0, size=(40, 12)).astype(float)
LABELS = np.repeat([0, 1], 20)

TRANSFORMERS = [
    NormalizeTotal(),
    Log1p(),
    ScaleGenes(),
    HighlyVariableGenes(n_top_genes=4, flavor="seurat"),
    KNNGraph(n_neighbors=3),
    DeepImpute(sub_outputdim=4, hidden_dim=8, max_epochs=2),
    MAGIC(n_pca=4),
    GraphSCI(hidden_dims=(8, 4), max_epochs=2),
    ScGNN(
        n_neighbors=3,
        prune="stats",
        pretrain_epochs=2,
        em_epochs=1,
        cluster_epochs=1,
        impute_epochs=1,
        gae_epochs=1,
        max_iter=1,
    ),
]
CLASSIFIERS = [
    SVM(),
    Celltypist(),
    SingleCellNet(n_trees=10),
    ACTINN(max_epochs=2),
    ScDeepsort(n_components=4, hidden_dim=8, max_epochs=2),
]
CLUSTERERS = [Leiden(), Louvain()]
ALL = TRANSFORMERS + CLASSIFIERS + CLUSTERERS


def _fit(est, X):
    if est in CLASSIFIERS:
        return est.fit(X, LABELS[: X.shape[0]] if X.ndim == 2 else LABELS)
    return est.fit(X)


@pytest.mark.parametrize("est", ALL, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_inf_rejected(est, bad):
    X = COUNTS.copy()
    X[3, 2] = bad
    with pytest.raises(ValueError, match="NaN|infinity"):
        _fit(est, X)


@pytest.mark.parametrize(
    "est",
    [NormalizeTotal(), Log1p(), HighlyVariableGenes(n_top_genes=4), CellGeneGraph()],
    ids=lambda e: type(e).__name__,
)
@pytest.mark.parametrize("sparse", [False, True])
def test_negative_counts_rejected(est, sparse):
    X = COUNTS.copy()
    X[0, 0] = -1
    X = sp.csr_matrix(X) if sparse else X
    with pytest.raises(ValueError, match="Negative values in data passed to"):
        est.fit(X)


@pytest.mark.parametrize(
    "est", TRANSFORMERS + CLASSIFIERS, ids=lambda e: type(e).__name__
)
def test_wrong_number_of_genes_at_predict(est):
    _fit(est, COUNTS)
    method = est.transform if hasattr(est, "transform") else est.predict
    with pytest.raises(ValueError, match="features"):
        method(COUNTS[:, :-1])


@pytest.mark.parametrize("est", ALL, ids=lambda e: type(e).__name__)
def test_one_dimensional_input(est):
    with pytest.raises(ValueError, match="2D array"):
        _fit(est, COUNTS[0])


@pytest.mark.parametrize("est", ALL, ids=lambda e: type(e).__name__)
def test_empty_matrix(est):
    with pytest.raises(ValueError, match="0 sample"):
        _fit(est, np.empty((0, 12)))


@pytest.mark.parametrize("cls", [Leiden, Louvain])
def test_more_clusters_than_cells(cls):
    with pytest.raises(ValueError, match="n_clusters=50 is larger than the number"):
        cls(n_clusters=50).fit(COUNTS)


def test_knn_more_neighbours_than_cells():
    with pytest.raises(ValueError, match="n_neighbors=15 must be smaller"):
        KNNGraph(n_neighbors=15).fit_transform(COUNTS[:10])


def test_single_class_rejected():
    with pytest.raises(ValueError, match="at least 2 cell types"):
        Celltypist().fit(COUNTS, np.zeros(40))


def test_inputs_not_modified():
    X = COUNTS.copy()
    Xs = sp.csr_matrix(COUNTS)
    for est in ALL:
        _fit(est, X)
        _fit(est, Xs)
    np.testing.assert_array_equal(X, COUNTS)
    np.testing.assert_array_equal(Xs.toarray(), COUNTS)
