"""Full-batch gradient descent as one ``lax.scan``: the inner loop of every supervised fit.

Behaviour cloning, Bradley–Terry reward models, Direct Preference Optimization and
GAIL's discriminator all minimise a differentiable loss of their parameters on a
fixed batch. This is that loop, once, so it is jit-able, vmap-able over seeds or
ensemble members, and returns the loss curve for NaN checks and plots.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from toyrlhf.diagnostics import all_finite


def minimize(
    loss_fn: Callable[[Any], jax.Array],
    params: Any,
    optimizer: optax.GradientTransformation,
    n_steps: int,
) -> tuple[Any, jax.Array]:
    """``n_steps`` optimiser steps on ``loss_fn`` from ``params``: returns ``(params, losses [n_steps])``.

    ``losses[i]`` is the loss *before* step ``i`` (what ``value_and_grad`` returns),
    so ``losses[0]`` is the loss at the starting point. It is NaN instead if step
    ``i`` made the parameters NaN/inf, so ``~isfinite(losses)`` is a per-step flag
    for ``diagnostics.raise_if_nonfinite`` that also covers the last step.
    """

    def step(carry, _):
        params, opt_state = carry
        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        return (params, opt_state), jnp.where(all_finite(params), loss, jnp.nan)

    (params, _), losses = jax.lax.scan(step, (params, optimizer.init(params)), None, length=n_steps)
    return params, losses
