"""Analyses: thin layers over the engine's metrics (idealized runtime, cost-of-pass,
test-time scaling, speculative decoding). Each states its formula and source."""
