"""Benchmarks of the hotline: `python -m bench` (see bench/README.md)."""
