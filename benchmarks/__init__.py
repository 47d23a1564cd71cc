"""Benchmarks that print numbers (run with `make bench`)."""
