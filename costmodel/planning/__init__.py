"""Capacity planning: the serving model under load (continuous batching, queueing), plan and what-if.
Imports `spec`, `engine`, `calibration` and `estimate`."""
