"""Benchmarks: ``python -m benchmarks NAME [--quick] [--out benchmarks/results]``."""
