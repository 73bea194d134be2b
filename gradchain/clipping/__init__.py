"""Gradient clipping: by value, by global norm, per block (leaf), and adaptive (unit-wise)."""
