"""Shared utilities: input validation, seeding and estimator discovery."""

from skdance.utils._validation import check_counts, validate_input
from skdance.utils.discovery import all_estimators

__all__ = ["all_estimators", "check_counts", "validate_input"]
