"""Smoke runs of the benchmarks (bench/): each one, at tiny sizes, still runs and produces its figures."""
