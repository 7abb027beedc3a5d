"""Benchmarks: standalone scripts, not collected by pytest."""
