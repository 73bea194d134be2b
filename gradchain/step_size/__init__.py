"""Step sizes: constant factors and the learning rate."""
