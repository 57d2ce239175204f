"""Benchmarks of the CHeKT integration against the local CHeKT simulator (see bench/README.md)."""
