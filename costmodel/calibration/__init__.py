"""Calibration: measurements, prediction of measured rows, the fit of engine parameters, intervals,
validation and the profiler. Imports `spec` and `engine`."""
