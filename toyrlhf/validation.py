"""Checks for settings, in one place: a bad value fails where it is given, with its name and what was expected.

Each check returns the value and raises ``TypeError`` for the wrong kind of value
(``n_steps=1.5``, ``learning_rate="0.1"``, a bool where a number belongs) or
``ValueError`` for the right kind out of range (``n_steps=0``, a negative rate,
NaN). Configs call them in ``__post_init__``; functions call them on entry::

    positive_int("n_steps", self.n_steps)
    probability("beta_decay", self.beta_decay)

They are for static Python settings. Traced numbers (``PPOHyperparams``,
``DQNHyperparams``) may be arrays or tracers and are swept through values such
as a zero learning rate on purpose, so they are not checked here.
"""

from __future__ import annotations

import math

import numpy as np


def _integer(name: str, value, expected: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be {expected}, got {type(value).__name__} {value!r}")
    return int(value)


def _finite_real(name: str, value, expected: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be {expected}, got {type(value).__name__} {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return float(value)


def positive_int(name: str, value) -> int:
    """``value`` is an int ``>= 1`` (a count: steps, updates, environments)."""
    if _integer(name, value, "a positive int") < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def non_negative_int(name: str, value) -> int:
    """``value`` is an int ``>= 0``."""
    if _integer(name, value, "a non-negative int") < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    return int(value)


def finite_float(name: str, value) -> float:
    """``value`` is a finite real number (int or float, not bool)."""
    return _finite_real(name, value, "a finite number")


def positive_float(name: str, value) -> float:
    """``value`` is a finite real number ``> 0`` (a learning rate, a temperature, a KL coefficient)."""
    if not _finite_real(name, value, "a finite number > 0") > 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def non_negative_float(name: str, value) -> float:
    """``value`` is a finite real number ``>= 0`` (a penalty weight)."""
    if not _finite_real(name, value, "a finite number >= 0") >= 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def probability(name: str, value) -> float:
    """``value`` is a real number in ``[0, 1]``."""
    if not 0.0 <= _finite_real(name, value, "a probability in [0, 1]") <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
    return float(value)


def boolean(name: str, value) -> bool:
    """``value`` is a bool (a string such as ``"False"`` would silently count as true)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} {value!r}")
    return bool(value)


def instance(name: str, value, cls: type):
    """``value`` is an instance of ``cls`` (a config of the right kind)."""
    if not isinstance(value, cls):
        raise TypeError(f"{name} must be a {cls.__name__}, got {type(value).__name__}")
    return value
