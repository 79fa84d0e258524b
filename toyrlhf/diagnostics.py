"""Training diagnostics: explained variance, and NaN/inf detection that reports instead of training through.

Inside a jitted training loop nothing can raise, so learners record a per-update
flag (``metrics.nonfinite``, from :func:`all_finite`) and the host calls
:func:`raise_if_nonfinite` on the returned metrics, which names the first bad
update of every affected seed.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def explained_variance(predicted: jax.Array, target: jax.Array) -> jax.Array:
    """``1 − Var(target − predicted) / Var(target)``: 1 is perfect, 0 no better than a constant.

    Returns 0 where ``Var(target) = 0`` (nothing to explain). ``[...]`` → ``[]``.
    """
    var_target = jnp.var(target)
    ev = 1.0 - jnp.var(target - predicted) / jnp.where(var_target > 0, var_target, 1.0)
    return jnp.where(var_target > 0, ev, 0.0)


def all_finite(*trees: Any) -> jax.Array:
    """``[]`` bool: every floating-point leaf of every pytree is free of NaN and inf (jit-able)."""
    leaves = [x for tree in trees for x in jax.tree.leaves(tree) if jnp.issubdtype(jnp.result_type(x), jnp.inexact)]
    if not leaves:
        return jnp.array(True)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


def raise_if_nonfinite(nonfinite, name: str = "training") -> None:
    """Raise ``FloatingPointError`` if any entry of the flag array ``nonfinite`` is set (host side).

    ``nonfinite`` is ``[n_updates]`` for one run or ``[..., n_updates]`` for vmapped
    runs (seeds, sweeps); the message lists the first bad update of each bad run.
    """
    flags = np.asarray(nonfinite, dtype=bool)
    if flags.ndim == 0:
        flags = flags[None]
    if not flags.any():
        return
    runs = flags.reshape(-1, flags.shape[-1])
    bad = [(int(i), int(np.argmax(row))) for i, row in enumerate(runs) if row.any()]
    shown = ", ".join(f"run {i}: update {u}" for i, u in bad[:8]) + (" ..." if len(bad) > 8 else "")
    raise FloatingPointError(
        f"{name} produced NaN or inf in {len(bad)} of {len(runs)} runs (first bad update per run: {shown}). "
        "Everything after the first bad update is meaningless; lower the learning rate, check the reward "
        "function, or look for log(0)."
    )
