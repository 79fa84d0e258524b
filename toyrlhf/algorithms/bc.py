"""Behavior cloning: supervised learning of the expert's action from the expert's own states.

BC minimises the cross-entropy of the expert's actions on the demonstrated states,

    π̂ = argmin_π  - Σ_{n, t} log π_t(a^n_t | s^n_t)       (time-indexed, a policy per step)
    π̂ = argmin_π  - Σ_{n, t} log π(a^n_t | s^n_t)         (stationary, one policy for all steps)

Tabular. The minimiser is the empirical action frequency in every state that
appears in the data: ``π̂_t(a|s) = n_t(s, a) / n_t(s)`` (time-indexed) or
``n(s, a) / n(s)`` with counts pooled over time (stationary). On a state the
data never shows, the loss says nothing: **what BC does there is a choice**
(DESIGN.md pitfall 4), passed explicitly as ``default_action`` — an action
index, or ``None`` for the uniform distribution. Experiments in toyrlhf use a
fixed default action and say which; on Reset Cliff action 0 is always wrong, the
worst case of Rajaraman et al. (2020).

Time-indexed vs stationary (pitfall 3). A time-indexed learner gets ``N``
samples per step whatever the horizon; a stationary learner pools ``N T``
samples, so on a fixed state space it sees more data per state as ``T`` grows
and its gap can look linear in ``T`` (Foster et al. 2024). Both are here.

Continuous observations. :func:`make_train_mlp` fits an MLP policy
(``toyrlhf.nets``) by minibatch Adam on the same cross-entropy, in float32.

Resources: BC consumes one expert label per demonstrated step, no environment
steps of its own and no dynamics model.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from toyrlhf.algorithms.resources import Resources
from toyrlhf.demonstrations import Demonstrations


def action_counts(states, actions, n_states: int, n_actions: int, time_indexed: bool, weights=None) -> jax.Array:
    """Counts of (state, action) pairs in episodes ``states, actions`` of shape ``[N, T]``.

    Returns ``[T, S, A]`` counts per step (``time_indexed=True``) or ``[S, A]``
    pooled over steps. ``weights [N, T]`` (e.g. a valid mask) scales each pair.
    """
    states, actions = jnp.asarray(states), jnp.asarray(actions)
    if states.ndim != 2 or states.shape != actions.shape:
        raise ValueError(f"states and actions must both have shape [N, T], got {states.shape} and {actions.shape}")
    weights = jnp.ones(states.shape) if weights is None else jnp.asarray(weights, dtype=jnp.float64)
    if weights.shape != states.shape:
        raise ValueError(f"weights must have shape [N, T] = {states.shape}, got {weights.shape}")
    T = states.shape[1]
    if time_indexed:
        steps = jnp.broadcast_to(jnp.arange(T), states.shape)
        return jnp.zeros((T, n_states, n_actions)).at[steps, states, actions].add(weights)
    return jnp.zeros((n_states, n_actions)).at[states, actions].add(weights)


def policy_from_counts(counts: jax.Array, default_action: int | None) -> jax.Array:
    """Empirical action frequencies ``counts / counts.sum(-1)``; ``default_action`` where a state has no data.

    ``counts`` is ``[..., S, A]``. ``default_action`` is an action index (a one-hot
    policy on unseen states) or ``None`` (uniform on unseen states).
    """
    n_actions = counts.shape[-1]
    if default_action is None:
        default = jnp.full(n_actions, 1.0 / n_actions)
    else:
        if not 0 <= default_action < n_actions:
            raise ValueError(f"default_action must be None or an action in [0, {n_actions}), got {default_action}")
        default = jax.nn.one_hot(default_action, n_actions, dtype=jnp.float64)
    total = counts.sum(-1, keepdims=True)
    return jnp.where(total > 0, counts / jnp.where(total > 0, total, 1.0), default)


def fit_tabular(
    demos: Demonstrations, n_states: int, n_actions: int, *, time_indexed: bool, default_action: int | None
) -> jax.Array:
    """Tabular BC: ``[T, S, A]`` (time-indexed) or ``[S, A]`` (stationary) policy from ``demos``.

    Keyword arguments are required on purpose: the policy class and the behaviour on
    unseen states change the result and must be stated by the caller.
    """
    counts = action_counts(demos.observations, demos.actions, n_states, n_actions, time_indexed, demos.valid)
    return policy_from_counts(counts, default_action)


def tabular_resources(demos: Demonstrations) -> Resources:
    """What tabular BC consumed: every valid demonstrated step is an expert label."""
    return Resources(expert_labels=jnp.sum(demos.valid), env_steps=0, known_dynamics=False)
