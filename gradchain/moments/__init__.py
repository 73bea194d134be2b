"""Moment estimates and other per-leaf statistics: momentum, EMAs, sums, maxima."""
