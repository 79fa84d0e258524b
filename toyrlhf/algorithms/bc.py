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
(``toyrlhf.nets``) on the same cross-entropy over all valid demonstrated steps
(:func:`cross_entropy_loss`), by full-batch Adam (``toyrlhf.optimize.minimize``),
in float32; ``jax.vmap`` over keys (and data sets) gives seeds::

    train = bc.make_train_mlp(bc.MLPBCConfig(), obs_dim=4, n_actions=2)
    result = jax.jit(train)(key, demos)          # demos.observations [N, T, D]
    logits = bc.MLPBCConfig().network.apply(result.params, obs)

Resources: BC consumes one expert label per demonstrated step, no environment
steps of its own and no dynamics model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from toyrlhf.algorithms.resources import Resources
from toyrlhf.demonstrations import Demonstrations
from toyrlhf.losses import categorical_log_prob
from toyrlhf.nets import MLP, Network
from toyrlhf.optimize import minimize
from toyrlhf.validation import instance, non_negative_int, positive_float, positive_int


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
        if non_negative_int("default_action", default_action) >= n_actions:
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


# ------------------------------------------------------------------------------------------
# MLP behavior cloning (continuous observations)
# ------------------------------------------------------------------------------------------


def cross_entropy_loss(logits: jax.Array, actions: jax.Array, weights: jax.Array) -> jax.Array:
    """BC's loss ``-Σ_i w_i log π(a_i | o_i) / Σ_i w_i`` with ``π = softmax(logits)``.

    ``logits [B, A]``, ``actions [B]`` int, ``weights [B]`` (a valid mask, 0 or 1). Returns ``[]`` (nats).
    """
    if logits.shape[:-1] != actions.shape or actions.shape != weights.shape:
        raise ValueError(
            f"logits [B, A], actions [B] and weights [B] must agree, got {logits.shape}, {actions.shape}, "
            f"{weights.shape}"
        )
    log_prob = categorical_log_prob(logits, actions)
    return -jnp.sum(weights * log_prob) / jnp.maximum(jnp.sum(weights), 1.0)


@dataclass(frozen=True)
class MLPBCConfig:
    """Settings of MLP behavior cloning (static)."""

    network: Network = field(default_factory=lambda: MLP((64, 64)))
    """Policy network: observation ``[D]`` -> logits ``[A]``."""
    n_steps: int = 500
    """Full-batch Adam steps."""
    learning_rate: float = 3e-3
    """Adam step size."""

    def __post_init__(self):
        positive_int("n_steps", self.n_steps)
        positive_float("learning_rate", self.learning_rate)


class MLPBCResult(NamedTuple):
    """Output of one MLP BC fit (vmap adds a leading ``[seeds]``)."""

    params: Any
    """Parameters of ``config.network`` (float32)."""
    losses: jax.Array
    """``[n_steps]``: the cross-entropy before each step."""
    resources: Resources
    """One expert label per valid step, no env steps, no dynamics."""
    nonfinite: jax.Array
    """``[n_steps]`` bool: the step's loss or new parameters were NaN/inf (``diagnostics.raise_if_nonfinite``)."""


def make_train_mlp(config: MLPBCConfig, obs_dim: int, n_actions: int):
    """``train(key, demos) -> MLPBCResult``: fit ``config.network`` to ``demos`` (observations ``[N, T, D]``)."""
    instance("config", config, MLPBCConfig)
    positive_int("obs_dim", obs_dim)
    positive_int("n_actions", n_actions)

    def train(key: jax.Array, demos: Demonstrations) -> MLPBCResult:
        if not isinstance(demos, Demonstrations):
            raise TypeError(f"demos must be a Demonstrations, got {type(demos).__name__}")
        if demos.observations.ndim != 3 or demos.observations.shape[-1] != obs_dim:
            raise ValueError(f"demos.observations must have shape [N, T, {obs_dim}], got {demos.observations.shape}")
        obs = demos.observations.reshape(-1, obs_dim).astype(jnp.float32)
        actions = demos.actions.reshape(-1).astype(jnp.int32)
        weights = demos.valid.reshape(-1).astype(jnp.float32)

        def loss(params):
            return cross_entropy_loss(config.network.apply(params, obs), actions, weights)

        params0 = config.network.init(key, obs_dim, n_actions, 0.01)
        params, losses = minimize(loss, params0, optax.adam(config.learning_rate), config.n_steps)
        resources = Resources(expert_labels=jnp.sum(demos.valid), env_steps=0, known_dynamics=False)
        return MLPBCResult(params, losses, resources, nonfinite=~jnp.isfinite(losses))

    return train
