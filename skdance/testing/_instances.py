"""Fast instances and reasoned expected failures for the common checks.

One table per estimator class (imbalanced-learn's ``instance_generator``
style): ``INIT_PARAMS`` holds fast constructor parameters (tiny networks, a
few epochs).  The scikit-learn checks a class does not pass are derived
from its declared skdance tags (:mod:`skdance.utils._tags`: transductive,
requires coordinates, rejects empty cells, output shape), each tag with one
reason, plus a short ``METHOD_FAILED_CHECKS`` table for what no tag
describes.  Every listed check fails on every run (``xfail_strict``).
Exposed through :mod:`skdance.testing`.

The design: ``doc/architecture.rst``, section ``architecture-checks``.
"""

from skdance.annotation import (
    ACTINN,
    SVM,
    Celltypist,
    ScDeepsort,
    ScHeteroNet,
    SingleCellNet,
)
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
    AdaptiveKernelGraph,
    KNNGraph,
    MutualNNGraph,
    PrunedKNNGraph,
    RadiusGraph,
)
from skdance.imputation import MAGIC, DeepImpute, GraphSCI, ScGNN, ScGNN2
from skdance.multimodal.embedding import (
    DCCA,
    JAE,
    JointPCA,
    ScMoGNNEmbedding,
    ScMVAE,
)
from skdance.multimodal.matching import (
    CCAMatcher,
    CMAEMatcher,
    ScMMMatcher,
    ScMoGNNMatcher,
)
from skdance.multimodal.prediction import BABEL, CMAE, ScMM, ScMoGNN
from skdance.preprocessing import GeneAligner, HighlyVariableGenes
from skdance.spatial import CARD, DSTG, SpatialDecon, SPOTlight
from skdance.spatial.deconvolution import STdGCN
from skdance.spatial.domain import STAGATE, EfNST, SpaGCN, SpatialLouvain, StLearn
from skdance.utils import get_skdance_tags

_CMAE_FAST = {
    "hidden_dims": (16, 8),
    "latent_dim": 4,
    "discriminator_dim": 8,
    "max_epochs": 3,
    "batch_size": 16,
    "learning_rate": 1e-3,
    "random_state": 0,
}
_SCMM_FAST = {
    "hidden_dims": (8,),
    "mod2_hidden_dims": (4,),
    "latent_dim": 2,
    "max_epochs": 3,
    "kl_warmup_epochs": 1,
    "learning_rate": 1e-2,
    "batch_size": 16,
    "random_state": 0,
}

# Fast constructor parameters per class (tiny models, few iterations).
# Every estimator with a parameter that sets how long it runs (max_epochs,
# *_epochs, max_iter, n_iterations) has an entry that sets each of them
# (tests/test_common.py enforces it), so that no model runs its full
# schedule in the test suite; a default is restated where it is already
# fast on the check data.
INIT_PARAMS = {
    # the default logistic regression converges in a few of its iterations;
    # max_epochs counts only with use_sgd=True, mini_batch=True
    Celltypist: {"max_iter": 1000, "max_epochs": 10},
    # libsvm runs until its tolerance (max_iter=-1), quick on the check data
    SVM: {"max_iter": -1},
    SingleCellNet: {"n_trees": 10, "n_rand": 5},
    # the checks' data are real-valued blobs, not counts: ACTINN's own count
    # scaling is off here and exercised on real counts in test_annotation_actinn.py
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
    # as ACTINN: the checks' blobs are not counts, so the count path (scaling,
    # ZINB term) is off here and tested on real counts in
    # test_annotation_scheteronet.py; every blob type is kept
    ScHeteroNet: {
        "hidden_dim": 8,
        "decoder_dims": (4, 8),
        "graph": KNNGraph(n_neighbors=2, symmetrize=False),
        "min_cells_per_type": 1,
        "normalize": False,
        "learning_rate": 0.05,
        "max_epochs": 20,
        "random_state": 0,
    },
    DeepImpute: {
        "n_targets_per_network": 4,
        "hidden_dim": 8,
        "max_epochs": 3,
        "batch_size": 16,
        "random_state": 0,
    },
    MAGIC: {
        "graph": AdaptiveKernelGraph(n_neighbors=2),
        "n_components": 2,
        "random_state": 0,
    },
    GraphSCI: {"hidden_dims": (8, 4), "max_epochs": 3, "random_state": 0},
    ScGNN: {
        "graph": PrunedKNNGraph(n_neighbors=3, prune="stats"),
        "pretrain_epochs": 3,
        "em_epochs": 2,
        "cluster_epochs": 2,
        "impute_epochs": 2,
        "gae_epochs": 2,
        "max_iter": 1,
        "random_state": 0,
    },
    ScGNN2: {
        "hidden_dims": (8, 4),
        "pretrain_epochs": 2,
        "em_epochs": 1,
        "cluster_epochs": 1,
        "gae_epochs": 2,
        "max_iter": 1,
        "random_state": 0,
    },
    SpatialDecon: {"max_iter": 50},
    SPOTlight: {"max_iter": 50, "random_state": 0},
    # the checks' blobs have no gene 3.5-fold above the other types' mean
    CARD: {"fold_change": 0.0, "max_iter": 20, "random_state": 0},
    DSTG: {"n_pseudo_spots": 20, "max_epochs": 3, "n_cc": 2, "random_state": 0},
    STdGCN: {
        "n_pseudo_spots": 20,
        "n_markers": 5,
        "n_components": 2,
        "hidden_dim": 4,
        "max_epochs": 2,
        "random_state": 0,
    },
    KNNGraph: {"n_neighbors": 2},
    MutualNNGraph: {"n_neighbors": 2},
    AdaptiveKernelGraph: {"n_neighbors": 2},
    # one isolation forest per cell is slow on the checks' data; the forest
    # rule is tested in test_graph.py
    PrunedKNNGraph: {"n_neighbors": 3, "prune": "stats"},
    RadiusGraph: {"radius": 1.0},
    # max_iter=-1: until the partition stops improving (a few passes)
    Leiden: {"graph": None, "max_iter": -1},
    Louvain: {"graph": None},
    # seurat_v3's loess needs hundreds of genes; the checks use 2-10 features.
    # seurat_v3 is tested against scanpy on real data in test_preprocessing.py.
    HighlyVariableGenes: {"n_top_genes": 2, "flavor": "cell_ranger"},
    ScDeepCluster: {
        "n_clusters": 3,
        "hidden_dims": (16, 8),
        "latent_dim": 4,
        "pretrain_epochs": 3,
        "max_epochs": 3,
        "batch_size": 32,
        "random_state": 0,
    },
    ScDCC: {
        "n_clusters": 3,
        "hidden_dims": (16, 8),
        "latent_dim": 4,
        "pretrain_epochs": 3,
        "max_epochs": 3,
        "batch_size": 32,
        "random_state": 0,
    },
    ScTAG: {
        "n_clusters": 3,
        "graph": KNNGraph(n_neighbors=3),
        "n_components": None,
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
        "hidden_dims": (16, 8),
        "latent_dims": (8, 4),
        "pretrain_epochs": 3,
        "max_epochs": 3,
        "update_interval": 2,
        "batch_size": 32,
        "random_state": 0,
    },
    StLearn: {"n_clusters": 3, "n_components": 10},
    STAGATE: {
        "n_clusters": 3,
        "hidden_dims": (16,),
        "latent_dim": 4,
        "max_epochs": 5,
        "random_state": 0,
    },
    SpaGCN: {
        "n_clusters": 3,
        "init": "kmeans",
        "n_components": 5,
        "max_epochs": 3,
        "search_max_epochs": 3,  # the resolution search (init="louvain")
        "random_state": 0,
    },
    SpatialLouvain: {"n_clusters": 3, "n_components": 10},
    EfNST: {
        "n_clusters": 3,
        "n_components": 10,
        "hidden_dims": (8, 4),
        "graph_dims": (8, 2),
        "decoder_dims": (8,),
        "max_epochs": 3,
        "random_state": 0,
    },
    BABEL: {
        "hidden_dims": (16,),
        "mod2_hidden_dims": (8,),
        "latent_dim": 4,
        "max_epochs": 5,
        "batch_size": 32,
        "random_state": 0,
    },
    CMAE: _CMAE_FAST,
    CMAEMatcher: _CMAE_FAST,
    ScMM: _SCMM_FAST,
    ScMMMatcher: _SCMM_FAST,
    ScMoGNN: {"hidden_dim": 8, "n_layers": 2, "max_epochs": 3, "random_state": 0},
    ScMoGNNMatcher: {
        "n_components": 8,
        "hidden_dims": (16,),
        "latent_dim": 4,
        "max_epochs": 3,
        "random_state": 0,
    },
    CCAMatcher: {
        "n_svd_components": 5,
        "n_components": 2,
        "n_partners": 5,
        "random_state": 0,
    },
    # joint embeddings: scikit-learn's check data have as few as 2 features,
    # so mod1 is the first column and mod2 the rest; skdance's own checks on
    # 150 genes split them [130 | 20] (fitting.check_instance)
    JointPCA: {
        "n_features_mod1": 1,
        "n_components": 5,
        "n_block_components": 4,
        "n_top_genes": 50,
        "random_state": 0,
    },
    ScMoGNNEmbedding: {
        "n_features_mod1": 1,
        "latent_dim": 6,
        "n_lsi_components": 10,
        "hidden_dims": (16,),
        "max_epochs": 3,
        "random_state": 0,
    },
    ScMVAE: {
        "n_features_mod1": 1,
        "hidden_dims": (16, 8),
        "latent_dim": 3,
        "n_clusters": 3,
        "max_epochs": 3,
        "batch_size": 16,
        "random_state": 0,
    },
    JAE: {
        "n_features_mod1": 1,
        "latent_dim": 12,
        "svd_components": (8, None),
        "hidden_dims": (16,),
        "decoder_dims": (16,),
        "max_epochs": 4,
        "finetune_epochs": 2,
        "batch_size": 32,
        "random_state": 0,
    },
    DCCA: {
        "n_features_mod1": 1,
        "hidden_dims": (16,),
        "mod2_hidden_dims": (16, 8),
        "decoder_dims": (8,),
        "latent_dim": 3,
        "max_epochs": 2,
        "batch_size": 16,
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

# ---------------------------------------------------------------------------
# Expected failures derived from skdance's tags (skdance.utils._tags): one
# reason per declared property, applied to every class that declares it.
# ---------------------------------------------------------------------------
_GRAPH_REASON = (
    "graph builders return an n_samples x n_samples (or genes x genes) "
    "adjacency over the rows passed to transform, so transforming a subset or "
    "a permutation of rows is not a subset or permutation of the rows of the "
    "full result, by design"
)
_ADJACENCY = {
    "check_methods_subset_invariance": _GRAPH_REASON,
    "check_methods_sample_order_invariance": _GRAPH_REASON,
}
_GENE_GRAPH_REASON = (
    "the output has one row per gene, not per sample, by design (GraphSCI's gene graph)"
)
_BIPARTITE_REASON = (
    "the output is the (n_cells + n_genes) square adjacency of the bipartite "
    "cell-gene graph, not one row per sample, by design (graph-sc, scDeepsort)"
)
_OUTPUT = {
    "cell_adjacency": _ADJACENCY,
    "gene_adjacency": _ADJACENCY
    | dict.fromkeys(
        ("check_transformer_general", "check_transformer_data_not_an_array"),
        _GENE_GRAPH_REASON,
    ),
    "bipartite": _ADJACENCY
    | dict.fromkeys(
        (
            "check_transformer_general",
            "check_transformer_general(readonly_memmap=True)",
            "check_transformer_data_not_an_array",
        ),
        _BIPARTITE_REASON,
    ),
    "proportions": dict.fromkeys(
        ("check_estimator_sparse_matrix", "check_estimator_sparse_array"),
        "predict returns the (n_spots, n_types) matrix of cell-type proportions "
        "(the deconvolution task's output, by design); the sparse checks assert "
        "a 1-D prediction",
    ),
}
_EMPTY_CELLS_REASON = (
    "the check's random (sparse, or zero-shifted 1-feature) data contain cells "
    "with zero total counts; the method has no size factor (or no cell-gene "
    "edge) for them and raises a clear ValueError asking to filter empty cells"
)
_EMPTY_CELLS = {
    "fit": dict.fromkeys(
        (
            "check_estimators_dtypes",
            "check_estimator_sparse_matrix",
            "check_estimator_sparse_array",
            "check_estimator_sparse_tag",
            "check_fit2d_1feature",
        ),
        _EMPTY_CELLS_REASON,
    ),
    # only check_estimators_dtypes calls transform on such data
    "transform": {"check_estimators_dtypes": _EMPTY_CELLS_REASON},
}
_COUNTS_CLUSTERING = dict.fromkeys(
    ("check_clustering", "check_clustering(readonly_memmap=True)"),
    "check_clustering standardises its blobs, giving negative values; a count "
    "model rejects them with a clear ValueError",
)
_TRANSDUCTIVE = {
    "check_methods_subset_invariance": "transductive by design: the "
    "output for a cell comes from a graph built over, or a scaling across, the "
    "cells passed together, so a cell's output depends on the others"
}
_COORDS_REASON = (
    "needs the spots' coordinates as side information (coords= or "
    "adata.obsm[spatial_key]) and raises a clear ValueError without them; "
    "scikit-learn's checks cannot pass side information. skdance's own common "
    "checks (tests/test_common.py) run these estimators with coordinates"
)
_COORDS = {
    # every check that fits: the spatial-domain models need coordinates to
    # fit at all (bad expression is rejected first, so the input checks pass)
    "fit": dict.fromkeys(
        (
            "check_fit_score_takes_y",
            "check_estimators_overwrite_params",
            "check_dont_overwrite_parameters",
            "check_estimators_fit_returns_self",
            "check_readonly_memmap_input",
            "check_n_features_in_after_fitting",
            "check_estimators_dtypes",
            "check_dtype_object",
            "check_pipeline_consistency",
            "check_estimators_nan_inf",
            "check_estimator_sparse_tag",
            "check_estimator_sparse_array",
            "check_estimator_sparse_matrix",
            "check_estimators_pickle",
            "check_estimators_pickle(readonly_memmap=True)",
            "check_f_contiguous_array_estimator",
            "check_clustering",
            "check_clustering(readonly_memmap=True)",
            "check_methods_sample_order_invariance",
            "check_methods_subset_invariance",
            "check_fit2d_1feature",
            "check_dict_unchanged",
            "check_fit_idempotent",
            "check_fit_check_is_fitted",
            "check_n_features_in",
            "check_fit2d_predict1d",
        ),
        _COORDS_REASON,
    ),
    "predict": dict.fromkeys(
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
    # the spatial graph builders: fit needs no coordinates, and transform
    # validates X before it looks for them, so the checks of bad X passed to
    # transform (NaN, a 1-D row, another number of features) pass
    "transform": dict.fromkeys(
        (
            "check_fit_score_takes_y",
            "check_estimators_dtypes",
            "check_dtype_object",
            "check_pipeline_consistency",
            "check_estimators_pickle",
            "check_estimators_pickle(readonly_memmap=True)",
            "check_f_contiguous_array_estimator",
            "check_transformer_data_not_an_array",
            "check_transformer_general",
            "check_transformer_general(readonly_memmap=True)",
            "check_transformer_preserve_dtypes",
            "check_methods_sample_order_invariance",
            "check_methods_subset_invariance",
            "check_dict_unchanged",
            "check_fit_idempotent",
        ),
        _COORDS_REASON,
    ),
}

# ... and the transformer checks of those with an embedding (they fit first)
_COORDS_TRANSFORMER = dict.fromkeys(
    (
        "check_transformer_data_not_an_array",
        "check_transformer_general",
        "check_transformer_general(readonly_memmap=True)",
        "check_transformer_preserve_dtypes",
    ),
    _COORDS_REASON,
)


def _tag_derived_failures(estimator):
    """Return the expected failures implied by the estimator's skdance tags."""
    tags = get_skdance_tags(estimator)
    failed = dict(_OUTPUT.get(tags.output, {}))
    failed |= _EMPTY_CELLS.get(tags.rejects_empty_cells, {})
    if tags.counts and tags.task in ("clustering", "spatial_domain"):
        failed |= _COUNTS_CLUSTERING
    if tags.transductive:
        failed |= _TRANSDUCTIVE
    if not getattr(estimator, "_derives_check_coords", False):
        # a plain instance meets the checks without coordinates (skdance's
        # suite runs the with_check_coords subclass, which has them)
        failed |= _COORDS.get(tags.requires_coords, {})
        if tags.requires_coords == "fit" and hasattr(estimator, "transform"):
            failed |= _COORDS_TRANSFORMER
    return failed


# ---------------------------------------------------------------------------
# Method-specific failures, one reason each, where no tag describes them.
# ---------------------------------------------------------------------------
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
_CLASSIFIERS_TRAIN = (
    "check_classifiers_train",
    "check_classifiers_train(readonly_memmap=True)",
    "check_classifiers_train(readonly_memmap=True,X_dtype=float32)",
)

METHOD_FAILED_CHECKS = {
    CARD: {
        "check_methods_sample_order_invariance": "each spot's proportions "
        "start from a seeded Dirichlet draw taken in row order (CARD's R code "
        "draws them the same way), so a permuted batch starts elsewhere and "
        "the non-convex CAR-NMF reaches a different optimum"
    },
    ScTAG: {
        "check_methods_sample_order_invariance": "transform builds the cell "
        "graph over the cells passed (transductive), on a randomized PCA of "
        "them whose result depends on the row order, so a permuted batch gets "
        "a slightly different graph (fails on every run: float differences "
        "far above the check's tolerance)"
    },
    STAGATE: {
        "check_methods_sample_order_invariance": "the graph-attention layers "
        "sum each spot's neighbours in float32 in edge order, which follows "
        "the row order, so a permuted batch's embedding differs by rounding "
        "(about 1e-7 relative, above the check's rtol=1e-7 for float32)"
    },
    GeneAligner: {"check_dataframe_column_names_consistency": _ALIGNER_REASON},
    ScDeepsort: dict.fromkeys(_CLASSIFIERS_TRAIN, _COMPOSITION_REASON),
    SingleCellNet: dict.fromkeys(_CLASSIFIERS_TRAIN, _PAIRS_REASON),
}


def expected_failed_checks(estimator):
    """Return the scikit-learn checks ``estimator`` is expected to fail.

    Parameters
    ----------
    estimator : estimator instance
        A skdance estimator.

    Returns
    -------
    checks : dict of str to str
        Check name (as :func:`~sklearn.utils.estimator_checks.check_estimator`
        names it) to the reason it does not apply; empty when every check
        passes.  The table holds for the fast parameters of
        :func:`fast_instance`; other parameters may fail further checks
        (e.g. ``ACTINN(normalize=True)`` rejects the checks' negative
        values with a clear error).
    """
    failed = _tag_derived_failures(estimator)
    for cls in type(estimator).__mro__:  # with_check_coords subclasses too
        failed |= METHOD_FAILED_CHECKS.get(cls, {})
    return failed


def fast_instance(Estimator):
    """Return ``Estimator`` built with fast parameters (tiny nets, few epochs).

    Parameters
    ----------
    Estimator : type
        A public skdance estimator class.

    Returns
    -------
    estimator : Estimator
        The instance skdance's common tests check: ``Estimator`` with its
        entry of :data:`INIT_PARAMS` (defaults where it has none).
    """
    return Estimator(**INIT_PARAMS.get(Estimator, {}))
