"""Wrappers: transformations that hold another one and choose which leaves, which calls or which
steps it acts on (parameter groups, masks, freezing, gradient accumulation, non-finite steps), or
the form it sees them in (``flatten``: the leaves as one vector per dtype)."""
