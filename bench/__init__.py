"""Orra's benchmark harness: ``python -m bench`` writes BENCHMARKS.md."""
