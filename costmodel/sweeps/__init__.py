"""Sweeps of many configurations, Pareto frontiers, latency-throughput curves, Dask distribution.
Imports `spec`, `engine`, `calibration` and `estimate`."""
