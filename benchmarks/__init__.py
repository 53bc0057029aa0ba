"""Benchmark runner: ``python -m benchmarks <task> [--quick]``."""
