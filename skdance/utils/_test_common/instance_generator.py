"""Fast instances and reasoned expected failures for the common checks.

One table per estimator class (imbalanced-learn's ``instance_generator``
style): ``INIT_PARAMS`` holds fast constructor parameters (tiny networks, a
few epochs), ``EXPECTED_FAILED_CHECKS`` the scikit-learn checks a class does
not pass, each with the reason.  Used by ``tests/test_common.py`` and exposed
through :mod:`skdance.utils.estimator_checks`.
"""

from skdance.annotation import ACTINN, ScDeepsort, SingleCellNet
from skdance.clustering import (
    GraphSC,
    Leiden,
    Louvain,
    ScDCC,
    ScDeepCluster,
    ScDSC,
    ScTAG,
)
from skdance.graph import (
    CellGeneGraph,
    GeneCorrelationGraph,
    KNNGraph,
    MutualNNGraph,
    RadiusGraph,
    SpatialGaussianGraph,
)
from skdance.imputation import MAGIC, DeepImpute, GraphSCI, ScGNN
from skdance.preprocessing import GeneAligner, HighlyVariableGenes
from skdance.spatial import CARD, DSTG, SpatialDecon, SPOTlight

# Fast constructor parameters per class (tiny models, few iterations).
INIT_PARAMS = {
    SingleCellNet: {"n_trees": 10, "n_rand": 5},
    # the checks' data are real-valued blobs, not counts: ACTINN's own count
    # scaling is off here and exercised on real counts in test_annotation.py
    ACTINN: {
        "hidden_dims": (16, 8),
        "learning_rate": 0.01,
        "max_epochs": 30,
        "normalize": False,
        "random_state": 0,
    },
    ScDeepsort: {
        "n_components": 4,
        "hidden_dim": 16,
        "learning_rate": 0.01,
        "max_epochs": 30,
        "random_state": 0,
    },
    DeepImpute: {
        "sub_outputdim": 4,
        "hidden_dim": 8,
        "max_epochs": 3,
        "batch_size": 16,
        "random_state": 0,
    },
    MAGIC: {"knn": 2, "n_pca": 2, "random_state": 0},
    GraphSCI: {"hidden_dims": (8, 4), "max_epochs": 3, "random_state": 0},
    ScGNN: {
        "n_neighbors": 3,
        "prune": "stats",
        "pretrain_epochs": 3,
        "em_epochs": 2,
        "cluster_epochs": 2,
        "impute_epochs": 2,
        "gae_epochs": 2,
        "max_iter": 1,
        "random_state": 0,
    },
    SpatialDecon: {"max_iter": 50},
    SPOTlight: {"max_iter": 50, "random_state": 0},
    # the checks' blobs have no gene 3.5-fold above the other types' mean
    CARD: {"fold_change": 0.0, "max_iter": 20, "random_state": 0},
    DSTG: {"n_pseudo_spots": 20, "max_epochs": 3, "n_cc": 2, "random_state": 0},
    KNNGraph: {"n_neighbors": 2},
    MutualNNGraph: {"n_neighbors": 2},
    RadiusGraph: {"radius": 1.0},
    Leiden: {"graph": None},
    Louvain: {"graph": None},
    # seurat_v3's loess needs hundreds of genes; the checks use 2-10 features.
    # seurat_v3 is tested against scanpy on real data in test_preprocessing.py.
    HighlyVariableGenes: {"n_top_genes": 2, "flavor": "cell_ranger"},
    ScDeepCluster: {
        "n_clusters": 3,
        "encoder_dims": (16, 8),
        "latent_dim": 4,
        "pretrain_epochs": 3,
        "max_epochs": 3,
        "batch_size": 32,
        "random_state": 0,
    },
    ScDCC: {
        "n_clusters": 3,
        "encoder_dims": (16, 8),
        "latent_dim": 4,
        "pretrain_epochs": 3,
        "max_epochs": 3,
        "batch_size": 32,
        "random_state": 0,
    },
    ScTAG: {
        "n_clusters": 3,
        "graph": KNNGraph(n_neighbors=3),
        "graph_pcs": None,
        "hidden_dim": 8,
        "latent_dim": 4,
        "decoder_dims": (8,),
        "adj_dim": 4,
        "pretrain_epochs": 3,
        "max_epochs": 3,
        "random_state": 0,
    },
    ScDSC: {
        "n_clusters": 3,
        "graph": KNNGraph(n_neighbors=3),
        "encoder_dims": (16, 8),
        "latent_dims": (8, 4),
        "pretrain_epochs": 3,
        "max_epochs": 3,
        "update_interval": 2,
        "batch_size": 32,
        "random_state": 0,
    },
    GraphSC: {
        "n_clusters": 3,
        "n_components": 4,
        "hidden_dim": 8,
        "latent_dim": 4,
        "max_epochs": 2,
        "batch_size": 32,
        "random_state": 0,
    },
}

_GRAPH_REASON = (
    "graph builders return an n_samples x n_samples (or genes x genes) "
    "adjacency over the rows passed to transform, so transforming a subset of "
    "rows is not a subset of the full result, by design"
)
_GENE_GRAPH_REASON = (
    "the output has one row per gene, not per sample, by design (GraphSCI's gene graph)"
)
_BIPARTITE_REASON = (
    "the output is the (n_cells + n_genes) square adjacency of the bipartite "
    "cell-gene graph, not one row per sample, by design (graph-sc, scDeepsort)"
)
_ALIGNER_REASON = (
    "GeneAligner exists to accept data whose columns differ from fit and "
    "reindex them by name, so it must not raise on other feature names"
)
_PAIRS_REASON = (
    "SingleCellNet classifies by gene-pair order features (x_a > x_b), which "
    "discard magnitudes; the check's 2-feature Gaussian blobs give a single "
    "pair, which cannot separate 3 classes, by design of the method"
)
_COMPOSITION_REASON = (
    "scDeepsort sees a cell only through the graph: which genes it expresses "
    "and each gene's share of the cell's total (edge weights and weighted gene "
    "features), so magnitudes are discarded; the check's shifted 2-feature "
    "blobs reduce to one ratio, which does not separate 3 classes to 0.83"
)
_ORDER = {
    "check_methods_subset_invariance": _GRAPH_REASON,
    "check_methods_sample_order_invariance": _GRAPH_REASON,
}

_SIZE_FACTOR_REASON = (
    "the check's random (sparse, or zero-shifted 1-feature) data contain cells "
    "with zero total counts; a count-likelihood model has no size factor for "
    "them and raises a clear ValueError asking to filter empty cells"
)
_COUNTS_REASON = (
    "check_clustering standardises its blobs, giving negative values; a ZINB "
    "count model rejects them with a clear ValueError"
)
_EMPTY_CELLS = dict.fromkeys(
    (
        "check_estimators_dtypes",
        "check_estimator_sparse_matrix",
        "check_estimator_sparse_array",
        "check_estimator_sparse_tag",
        "check_fit2d_1feature",
    ),
    _SIZE_FACTOR_REASON,
)
_SCDEEPCLUSTER = _EMPTY_CELLS | {
    "check_clustering": _COUNTS_REASON,
    "check_clustering(readonly_memmap=True)": _COUNTS_REASON,
}

_TRANSDUCTIVE = dict.fromkeys(
    ("check_methods_subset_invariance", "check_methods_sample_order_invariance"),
    "transform embeds the rows passed through a graph built over those rows "
    "(a transductive graph model), so a row's embedding depends on the others",
)

_PROPORTIONS_REASON = (
    "predict returns the (n_spots, n_types) matrix of cell-type proportions "
    "(DESIGN.md section 2); the sparse checks assert a 1-D prediction"
)
_PROPORTIONS = dict.fromkeys(
    ("check_estimator_sparse_matrix", "check_estimator_sparse_array"),
    _PROPORTIONS_REASON,
)
_BATCH_SCALED_REASON = (
    "SPOTlight scales every gene to unit variance over the spots passed "
    "together (as the method does), so a spot's estimate depends on the others"
)
_COORDS_REASON = (
    "CARD's spatial prior needs the spots' coordinates: predict without "
    "coords= raises a clear ValueError (issue contract); the checks call "
    "predict(X) alone"
)
_DSTG_REASON = (
    "DSTG is transductive (DESIGN.md section 2): predict trains the GCN on "
    "the graph linking pseudo-spots to the spots passed, so a spot's estimate "
    "depends on the others"
)

EXPECTED_FAILED_CHECKS = {
    SpatialDecon: _PROPORTIONS,
    SPOTlight: _PROPORTIONS | {"check_methods_subset_invariance": _BATCH_SCALED_REASON},
    CARD: _PROPORTIONS
    | dict.fromkeys(
        (
            "check_fit_score_takes_y",
            "check_estimators_dtypes",
            "check_dtype_object",
            "check_pipeline_consistency",
            "check_estimators_pickle",
            "check_estimators_pickle(readonly_memmap=True)",
            "check_f_contiguous_array_estimator",
            "check_methods_sample_order_invariance",
            "check_methods_subset_invariance",
            "check_dict_unchanged",
            "check_fit_idempotent",
        ),
        _COORDS_REASON,
    ),
    DSTG: _PROPORTIONS
    | dict.fromkeys(
        ("check_methods_subset_invariance",),
        _DSTG_REASON,
    )
    | {
        "check_methods_sample_order_invariance": "DSTG trains on the spots "
        "passed: their order is the node order of the link graph, which "
        "decides ties between equally near mutual neighbours and the summation "
        "order of the graph convolutions, so a permuted batch trains a slightly "
        "different network (fails on some runs)"
    },
    # MAGIC diffuses over a graph of the cells passed to transform (as the
    # method does), and scales cells by library size (empty cells rejected)
    MAGIC: {
        "check_methods_subset_invariance": "transform diffuses each cell's "
        "expression over a graph built on the cells passed together (MAGIC is "
        "transductive by design), so a cell's output depends on the others",
        "check_estimators_dtypes": _SIZE_FACTOR_REASON,
    },
    # GraphSCI's ZINB likelihood needs size factors (empty cells rejected)
    GraphSCI: _EMPTY_CELLS,
    KNNGraph: _ORDER,
    MutualNNGraph: _ORDER,
    RadiusGraph: _ORDER,
    SpatialGaussianGraph: _ORDER,
    CellGeneGraph: {
        **_ORDER,
        "check_transformer_general": _BIPARTITE_REASON,
        "check_transformer_general(readonly_memmap=True)": _BIPARTITE_REASON,
        "check_transformer_data_not_an_array": _BIPARTITE_REASON,
    },
    GeneCorrelationGraph: {
        **_ORDER,
        "check_transformer_general": _GENE_GRAPH_REASON,
        "check_transformer_data_not_an_array": _GENE_GRAPH_REASON,
    },
    GeneAligner: {"check_dataframe_column_names_consistency": _ALIGNER_REASON},
    ScDeepCluster: _SCDEEPCLUSTER,
    ScDCC: _SCDEEPCLUSTER,
    ScDSC: _SCDEEPCLUSTER,
    ScTAG: _SCDEEPCLUSTER | _TRANSDUCTIVE,
    # graph-sc's transform is per cell (gene features and block degrees from fit)
    GraphSC: _SCDEEPCLUSTER,
    # a cell without expressed genes has no edges in scDeepsort's graph: it is
    # rejected with a clear ValueError (same message as the count models)
    ScDeepsort: _EMPTY_CELLS
    | dict.fromkeys(
        (
            "check_classifiers_train",
            "check_classifiers_train(readonly_memmap=True)",
            "check_classifiers_train(readonly_memmap=True,X_dtype=float32)",
        ),
        _COMPOSITION_REASON,
    ),
    SingleCellNet: {
        "check_classifiers_train": _PAIRS_REASON,
        "check_classifiers_train(readonly_memmap=True)": _PAIRS_REASON,
        "check_classifiers_train(readonly_memmap=True,X_dtype=float32)": _PAIRS_REASON,
    },
}


def _construct_instance(Estimator):
    """Return an instance of ``Estimator`` with its fast parameters."""
    return Estimator(**INIT_PARAMS.get(Estimator, {}))


def _get_expected_failed_checks(estimator):
    """Return ``{check name: reason}`` for the checks ``estimator`` fails."""
    return dict(EXPECTED_FAILED_CHECKS.get(type(estimator), {}))
