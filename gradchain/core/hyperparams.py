"""Where a hyperparameter's value lives: in the optimizer state.

Every numeric hyperparameter of a transformation (a learning rate, a decay, an epsilon) is stored
as a scalar array in the ``hyperparams`` dict of that transformation's state, never as a constant
baked into the compiled step. Hence:

- a new value is a new array of the same shape and dtype, so changing it between steps does not
  recompile;
- it checkpoints and restores with the rest of the state;
- it can be traced (``jax.grad`` with respect to a learning rate, ``vmap`` over a batch of
  learning rates).

A hyperparameter given as a schedule (a function ``step -> value``) is evaluated at the
transformation's own step count (0 at the first update); the value used at the latest step is
kept in the dict, so it can be read for logging.

Values are stored in JAX's default float dtype (float64 under ``jax_enable_x64``, else float32),
never in the params' dtype: ``b2 = 0.999`` in bfloat16 would be 1.0. Arithmetic on a leaf runs in
``compute_dtype(leaf)``, at least float32: float64 leaves get float64 hyperparameters, float32
leaves float32 ones (Optax's numbers exactly), bfloat16 and float16 leaves are updated in float32
and rounded once.

Constructor versus state ("the latest change wins"). A constant (non-scheduled) hyperparameter
has two sources: the value the transformation was built with and the value in the state (which
``set_hyperparams`` may have changed, and which a checkpoint restores). The state also records,
in ``hyperparams["_given"]``, the constructor's value it was last reconciled with. At each
update, for each constant ``k`` with constructor value ``c``::

    value = c           if c != _given[k]   (the code changed: a checkpoint restored into an
                                             optimizer built with a new constant, or Optax's
                                             ``inject_hyperparams`` passing a new value)
            stored[k]   otherwise           (set_hyperparams' value, or the checkpoint's)

and ``stored[k] = value``, ``_given[k] = c`` are written back: a few scalar operations per
hyperparameter and update, inside the compiled step, no recompilation. Under ``jax.grad`` the
derivative of ``value`` is ``dc`` in the first case and ``d stored + dc - d _given`` in the
second, so it reaches a traced constructor value whether or not the state was built from it,
and a traced value put in the state. A state without ``_given`` (hand-made) keeps its stored
values. Schedules are evaluated at every update and need no record.

Which hyperparameters follow a schedule is told by the state itself: every dict this module
makes holds ``_given``, empty when all its hyperparameters are scheduled, and a key with no
record there is scheduled (``scheduled_keys``). ``set_hyperparams`` refuses those, since the next
update overwrites them, however the transformation holding them was built or described.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable, Optional, Union

import jax
import jax.numpy as jnp

from gradchain.core.dtypes import real_dtype
from gradchain.core.public import called_name

ScalarOrSchedule = Union[float, jax.Array, Callable[[jax.Array], jax.Array]]
"""A hyperparameter: a number, a scalar array (traced too) or a schedule ``step -> value``."""

COUNT_DTYPE = jnp.int32

GIVEN = "_given"
"""Key, inside a state's ``hyperparams`` dict, of the dict of constructor values last seen."""


def scheduled_keys(stored) -> frozenset:
    """The keys of a state's ``hyperparams`` dict that its update fills from a schedule: those
    with no constructor record in ``stored["_given"]``. A dict without ``_given`` (made by
    hand, or by Optax's ``inject_hyperparams``) keeps every value it is given: none."""
    given = stored.get(GIVEN) if isinstance(stored, dict) else None
    if not isinstance(given, dict):
        return frozenset()
    return frozenset(k for k in stored if k != GIVEN and k not in given)


def scale_name(name: str) -> str:
    """The key of the run-time multiplier of a scheduled hyperparameter ``name``
    (``learning_rate_scale``: ``step_size/scale.py``)."""
    return f"{name}_scale"


def as_hyperparam_array(value) -> jax.Array:
    """A hyperparameter as a strongly typed floating array, never in the params' dtype.

    Strong typing matters: a weakly typed value is a different abstract value to ``jit``, so a
    checkpoint round trip or a value set from NumPy would otherwise recompile the step.
    """
    array = jnp.asarray(value)
    dtype = array.dtype if jnp.issubdtype(array.dtype, jnp.floating) else jnp.result_type(float)
    return jnp.asarray(array, dtype=dtype)


def cast(x, dtype) -> jax.Array:
    """``x`` in ``dtype``, emitting no conversion when it already is."""
    x = jnp.asarray(x)
    return x if x.dtype == dtype else x.astype(dtype)


def compute_dtype(*dtypes):
    """The dtype a leaf's update is computed in: the operands' promoted dtype, at least float32.

    Complex operands compute in complex64 or complex128; their hyperparameters stay real, in
    the matching float32 or float64 (``ScalarsByDtype``).
    """
    return jnp.promote_types(jnp.result_type(*dtypes), jnp.float32)


class ScalarsByDtype:
    """Per-update scalars, cast once per compute dtype (not once per leaf); for a complex
    compute dtype, to its real dtype (hyperparameters are real)."""

    def __init__(self, scalars: dict):
        self.scalars = scalars
        self.cache = {}

    def __call__(self, dtype) -> dict:
        if dtype not in self.cache:
            real = real_dtype(dtype)
            self.cache[dtype] = {k: cast(v, real) if jnp.issubdtype(jnp.result_type(v),
                                                                    jnp.floating) else v
                                 for k, v in self.scalars.items()}
        return self.cache[dtype]


def zero_count() -> jax.Array:
    return jnp.zeros([], COUNT_DTYPE)


def next_count(count: jax.Array) -> jax.Array:
    """``count + 1``, saturating at the dtype's maximum instead of wrapping around."""
    limit = jnp.iinfo(count.dtype).max
    return jnp.where(count < limit, count + 1, count)


def state_names(owner: str, hyperparam_name, arguments: tuple[str, ...]) -> dict[str, str]:
    """``{argument: state key}`` for a primitive's numeric hyperparameter ``arguments``, from
    the ``hyperparam_name`` option every primitive takes (the one naming scheme):

    - None: each hyperparameter is stored under its argument's name;
    - a string: the key of the primitive's hyperparameter, where it has exactly one;
    - a mapping ``{argument: key}``: new keys for some or all of them.

    Two primitives that store one key hold one tied hyperparameter: ``set_hyperparams`` reads
    and sets them together. Refused (``ValueError`` naming the public call): a string for a
    primitive with several hyperparameters, a mapping entry for an argument that is not one of
    them, a key that is not a non-empty string or that two arguments would share.
    """
    owner = called_name(owner)
    listed = ", ".join(arguments)
    if hyperparam_name is None:
        return {a: a for a in arguments}
    if isinstance(hyperparam_name, str):
        if len(arguments) != 1:
            raise ValueError(
                f"{owner}: hyperparam_name={hyperparam_name!r} is ambiguous: this primitive has "
                f"the hyperparameters {listed}; give a mapping {{argument: name}}")
        hyperparam_name = {arguments[0]: hyperparam_name}
    if not isinstance(hyperparam_name, Mapping):
        raise TypeError(f"{owner}: hyperparam_name must be a string or a mapping {{argument: "
                        f"name}}, got {type(hyperparam_name).__name__} {hyperparam_name!r}")
    for argument, key in hyperparam_name.items():
        if argument not in arguments:
            raise ValueError(f"{owner}: hyperparam_name names {argument!r}, which is not a "
                             f"hyperparameter here; expected one of: {listed}")
        if not isinstance(key, str) or not key or "/" in key or key == GIVEN:
            raise ValueError(f"{owner}: hyperparam_name[{argument!r}]={key!r} is not a name "
                             f"(a non-empty string without '/', other than {GIVEN!r})")
    names = {a: hyperparam_name.get(a, a) for a in arguments}
    if len(set(names.values())) != len(names):
        raise ValueError(f"{owner}: hyperparam_name={dict(hyperparam_name)!r} gives two "
                         "hyperparameters of one primitive the same name")
    return names


class Hyperparams:
    """The numeric hyperparameters of one transformation, as given at construction.

    ``specs`` maps each state key to a number, array, tracer or schedule. ``names`` (from
    ``state_names``) maps argument names to state keys where they differ: ``read`` then gives
    the values by argument name, so a primitive's arithmetic does not depend on its naming.
    """

    def __init__(self, names: Optional[Mapping[str, str]] = None, /, **specs: Any):
        names = names or {}
        self.arguments = {names.get(a, a): a for a in specs}
        self.specs = {key: specs[argument] for key, argument in self.arguments.items()}

    def scheduled(self) -> bool:
        return any(callable(v) for v in self.specs.values())

    def init(self) -> dict:
        """``{name: value}`` at step 0, plus ``_given``: the constants' constructor values (an
        empty dict when every hyperparameter is scheduled; none when there are none)."""
        count = zero_count()
        values = {k: as_hyperparam_array(v(count) if callable(v) else v)
                  for k, v in self.specs.items()}
        # A separate buffer for the record: a state donated to jit must not hold one twice.
        given = {k: jnp.array(values[k], copy=True) for k, v in self.specs.items()
                 if not callable(v)}
        return {**values, GIVEN: given} if values else values

    def read(self, stored: dict, count) -> tuple[dict, dict]:
        """The values in force at step ``count`` (by argument name), and the dict to store back
        (by state key).

        Schedules are evaluated at ``count`` (their value is stored for logging); constants
        follow the module's rule: the constructor's value if it differs from the one recorded
        in ``stored["_given"]``, else the stored one (which ``set_hyperparams`` may have
        changed without recompiling).
        """
        given = stored.get(GIVEN, {})
        values, records = {}, {}
        for k, spec in self.specs.items():
            if callable(spec):
                values[k] = as_hyperparam_array(spec(count)).astype(stored[k].dtype)
            elif k in given:
                constructor = jnp.broadcast_to(cast(as_hyperparam_array(spec),
                                                    given[k].dtype), given[k].shape)
                values[k] = latest_change(constructor, given[k], stored[k])
                records[k] = constructor
            else:
                values[k] = stored[k]
        new = {**stored, **values}
        if records:
            new[GIVEN] = {**given, **records}
        return {self.arguments[k]: v for k, v in values.items()}, new


def _differs(a, b) -> jax.Array:
    """``a != b``, with NaN equal to NaN (a NaN constructor value is one value, not a change)."""
    return (a != b) & ~(jnp.isnan(a) & jnp.isnan(b))


@jax.custom_jvp
def latest_change(constructor, given, stored):
    """``constructor`` where it differs from ``given`` (the value last seen), else ``stored``."""
    return jnp.where(_differs(constructor, given), constructor, stored)


@latest_change.defjvp
def _latest_change_jvp(primals, tangents):
    constructor, given, stored = primals
    d_constructor, d_given, d_stored = tangents
    changed = _differs(constructor, given)
    value = jnp.where(changed, constructor, stored)
    tangent = jnp.where(changed, d_constructor, d_stored + d_constructor - d_given)
    return value, jnp.broadcast_to(tangent, value.shape).astype(value.dtype)


def statically_zero(value) -> bool:
    """True only for a plain Python number equal to zero: the stage it drives can be left out.

    An array, even ``jnp.asarray(0.0)``, keeps its stage, so its value can be changed in the
    state at run time.
    """
    return type(value) in (int, float) and value == 0
