"""Regularization: weight decay."""
