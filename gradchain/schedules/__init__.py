"""Schedules: pure functions ``step -> value``, accepted wherever a hyperparameter is a number.

A schedule given to any primitive (a learning rate, a momentum, ``b1``, a weight decay, a noise
scale) is evaluated at that primitive's own step count, 0 at the first update, inside the
compiled step; the value in force is kept in the state's ``hyperparams`` for logging
(``gradchain.get_hyperparams``). Every PyTorch scheduler has a constructor of the same name in
snake_case whose first argument is the starting value and whose other arguments carry
PyTorch's names and defaults; Optax's names are kept where Optax has the same thing.

- constant and joined: ``constant_schedule``, ``constant_lr``, ``join_schedules``,
  ``linear_warmup``, ``warmup_constant_schedule``;
- step-like: ``step_lr``, ``multi_step_lr``, ``exponential_lr``;
- polynomial and linear: ``polynomial_lr``, ``linear_lr``, ``polynomial_schedule``,
  ``linear_schedule``;
- cosine: ``cosine_annealing_lr``, ``cosine_annealing_warm_restarts``,
  ``cosine_decay_schedule``, ``warmup_cosine_decay_schedule``;
- cycles: ``cyclic_lr`` and ``cyclic_momentum``, ``one_cycle_lr`` and ``one_cycle_momentum``;
- batch size: ``scale_learning_rate``, ``linear_scaling_rule``, ``sqrt_scaling_rule``,
  ``batch_size_warmup``.

Plateau reduction, which needs the loss, is a transformation: ``gradchain.reduce_on_plateau``.
"""

from gradchain.schedules.batch_size import (batch_size_warmup, linear_scaling_rule,
                                            scale_learning_rate, sqrt_scaling_rule)
from gradchain.schedules.constant import constant_lr, constant_schedule
from gradchain.schedules.cosine import (cosine_annealing_lr, cosine_annealing_warm_restarts,
                                        cosine_decay_schedule, warmup_cosine_decay_schedule)
from gradchain.schedules.cyclic import cyclic_lr, cyclic_momentum
from gradchain.schedules.join import join_schedules, linear_warmup, warmup_constant_schedule
from gradchain.schedules.one_cycle import one_cycle_lr, one_cycle_momentum
from gradchain.schedules.polynomial import (linear_lr, linear_schedule, polynomial_lr,
                                            polynomial_schedule)
from gradchain.schedules.step import exponential_lr, multi_step_lr, step_lr

__all__ = [
    "batch_size_warmup", "constant_lr", "constant_schedule", "cosine_annealing_lr",
    "cosine_annealing_warm_restarts", "cosine_decay_schedule", "cyclic_lr", "cyclic_momentum",
    "exponential_lr", "join_schedules", "linear_lr", "linear_scaling_rule", "linear_schedule",
    "linear_warmup", "multi_step_lr", "one_cycle_lr", "one_cycle_momentum", "polynomial_lr",
    "polynomial_schedule", "scale_learning_rate", "sqrt_scaling_rule", "step_lr",
    "warmup_constant_schedule", "warmup_cosine_decay_schedule",
]
