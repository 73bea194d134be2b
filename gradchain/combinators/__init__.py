"""Combinators: sequential (chain) and parallel (branch) composition."""
