"""How a transformation is executed: ``one_pass`` runs a chain's per-element work as one
compiled loop over all leaves (``programs.py`` reads it from the trace, ``cpu_kernels.py``
compiles it)."""
