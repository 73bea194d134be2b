"""Regularization: weight decay and annealed gradient noise."""
