"""Benchmarks: `python -m benchmarks.serving` (inference server), results in benchmarks/results/*.json."""
