"""The composition kit: write a new primitive from public parts.

- ``rules``: ``elementwise``, ``per_leaf`` and ``cross_leaf`` build a transformation from a rule
  of one leaf, with everything the built-in primitives get (hyperparameters in the state,
  schedules, saturating counts, dtypes, tree checks, errors naming the public function);
- ``reductions``: ``tree_sum`` and ``tree_max``, the reductions a ``cross_leaf`` rule reads
  (combined over ``axis_name`` when the leaves are split across devices);
- ``shared``: ``share`` and ``shared``, one statistic used in several places;
- ``contract``: ``Contract``, the same checks and bookkeeping for a transformation with a state
  layout of its own (a wrapper around another optimizer).

The built-in primitives are written with these same functions; ``examples/custom_optimizer.py``
builds new optimizers with them.
"""
