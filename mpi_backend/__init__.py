"""The MPI transport for pybsp (not yet implemented)."""
