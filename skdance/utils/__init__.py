"""Shared utilities: input validation, seeding and estimator discovery."""

from skdance.utils._validation import (
    Widths,
    check_counts,
    check_widths,
    validate_input,
)
from skdance.utils.discovery import all_estimators

__all__ = ["Widths", "all_estimators", "check_counts", "check_widths", "validate_input"]
