"""The array engine: a model lowered to operators, rooflines per operator, memory footprint, the
per-configuration columns and their evaluation. Imports only `costmodel.spec`."""
