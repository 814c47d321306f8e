"""Specs: the data the engine reads — catalogue files, hardware, models, parameter counts, numeric formats,
units, engine parameters (efficiencies and overheads) and accuracy figures. Imports nothing above it."""
