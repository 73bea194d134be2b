"""Named optimizers (aliases), each a short chain of public primitives."""
