"""Shared utilities: input validation, seeding and estimator discovery."""

from skdance.utils._docs import SHARED_PARAMS, fill_doc
from skdance.utils._side_info import MissingSideInfoError, resolve_side_info
from skdance.utils._tags import SkdanceTags, get_skdance_tags
from skdance.utils._validation import (
    Widths,
    canonical_row_order,
    check_counts,
    check_finite_output,
    check_n_clusters,
    check_no_empty_rows,
    check_per_modality,
    check_random_state_int,
    check_widths,
    dense_float,
    is_anndata,
    is_mudata,
    reject_mudata,
    unwrap_anndata,
    validate_input,
)
from skdance.utils.discovery import all_estimators

__all__ = [
    "SHARED_PARAMS",
    "MissingSideInfoError",
    "SkdanceTags",
    "Widths",
    "all_estimators",
    "canonical_row_order",
    "check_counts",
    "check_finite_output",
    "check_n_clusters",
    "check_no_empty_rows",
    "check_per_modality",
    "check_random_state_int",
    "check_widths",
    "dense_float",
    "fill_doc",
    "get_skdance_tags",
    "is_anndata",
    "is_mudata",
    "reject_mudata",
    "resolve_side_info",
    "unwrap_anndata",
    "validate_input",
]
