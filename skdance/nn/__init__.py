"""Shared torch building blocks: graph conversion, layers, losses, DEC, training."""

from skdance.nn._adjacency import (
    mean_one_edge_weights,
    normalize_adjacency,
    to_edge_index,
    to_torch_sparse,
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
    history_values,
    skorch_history,
    validation_split,
)
from skdance.nn._layers import TAGLayer, ZINBHeads, mlp, propagate_hops
from skdance.nn._losses import balanced_adjacency_bce, nb_nll, zinb_nll
from skdance.nn._training import minibatches, progress, seeded

__all__ = [
    "TORCH_CONSTRAINTS",
    "VALIDATION_CONSTRAINTS",
    "StopTraining",
    "Trainer",
    "check_device",
    "history_values",
    "skorch_history",
    "validation_split",
    "TAGLayer",
    "balanced_adjacency_bce",
    "ZINBHeads",
    "kl_clustering_loss",
    "mean_one_edge_weights",
    "minibatches",
    "mlp",
    "nb_nll",
    "normalize_adjacency",
    "progress",
    "propagate_hops",
    "seeded",
    "student_t_assignment",
    "target_distribution",
    "to_edge_index",
    "to_torch_sparse",
    "zinb_nll",
]
