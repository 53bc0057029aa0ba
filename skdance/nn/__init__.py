"""Shared torch building blocks: graph conversion, layers, losses, DEC, training."""

from skdance.nn._adjacency import (
    mean_one_edge_weights,
    normalize_adjacency,
    to_edge_index,
    to_torch_sparse,
)
from skdance.nn._bipartite import CellGeneInputs, cell_gene_inputs
from skdance.nn._chunked import (
    checkpointed_sum,
    full_batch_counts,
    reconstruction_mse,
    zinb_loss,
)
from skdance.nn._counts import (
    CountNormalizer,
    NormalizedCounts,
    column_mean_std,
    dense_rows,
    median_total,
    size_factors,
    stack_rows,
)
from skdance.nn._dec import (
    kl_clustering_loss,
    student_t_assignment,
    target_distribution,
)
from skdance.nn._engine import (
    TORCH_CONSTRAINTS,
    VALIDATION_CONSTRAINTS,
    StopTraining,
    Trainer,
    check_device,
    clip_gradients_in_step,
    history_values,
    skorch_history,
    validation_split,
)
from skdance.nn._graph_layers import (
    GCN,
    GraphAttention,
    GraphConv,
    TAGLayer,
    propagate_hops,
    sparse_matmul,
)
from skdance.nn._layers import (
    DispAct,
    FCLayers,
    GaussianEncoder,
    MeanAct,
    NBHeads,
    ZINBHeads,
)
from skdance.nn._losses import (
    balanced_adjacency_bce,
    bernoulli_nll,
    gaussian_kl,
    gaussian_nll,
    nb_nll,
    zinb_nll,
)
from skdance.nn._reconstruction import EdgeSampler, adjacency_reconstruction_loss
from skdance.nn._training import minibatches, progress, seeded

__all__ = [
    "TORCH_CONSTRAINTS",
    "VALIDATION_CONSTRAINTS",
    "StopTraining",
    "Trainer",
    "check_device",
    "clip_gradients_in_step",
    "history_values",
    "skorch_history",
    "validation_split",
    "CellGeneInputs",
    "CountNormalizer",
    "EdgeSampler",
    "DispAct",
    "FCLayers",
    "GCN",
    "GaussianEncoder",
    "GraphAttention",
    "GraphConv",
    "MeanAct",
    "NBHeads",
    "NormalizedCounts",
    "TAGLayer",
    "ZINBHeads",
    "adjacency_reconstruction_loss",
    "balanced_adjacency_bce",
    "bernoulli_nll",
    "cell_gene_inputs",
    "checkpointed_sum",
    "column_mean_std",
    "dense_rows",
    "full_batch_counts",
    "gaussian_kl",
    "gaussian_nll",
    "kl_clustering_loss",
    "mean_one_edge_weights",
    "median_total",
    "minibatches",
    "nb_nll",
    "normalize_adjacency",
    "progress",
    "propagate_hops",
    "reconstruction_mse",
    "seeded",
    "size_factors",
    "sparse_matmul",
    "stack_rows",
    "student_t_assignment",
    "target_distribution",
    "to_edge_index",
    "to_torch_sparse",
    "zinb_loss",
    "zinb_nll",
]
