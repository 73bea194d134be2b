"""Step sizes: constant factors, the learning rate, and per-parameter step sizes (AdaBound's
clipped rate, a direction times a step-size statistic)."""
