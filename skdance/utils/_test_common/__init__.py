"""Shared pieces of the common estimator tests."""
