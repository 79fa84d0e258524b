"""Typed data shared by the learners: one line per field with its shape.

Leading batch dimensions are written ``[...]``: a rollout of ``T`` steps in ``N``
environments gives ``[T, N]`` (time-major, the layout GAE scans over); a
flattened minibatch gives ``[B]``; a demonstration set gives ``[T, N]`` or ``[B]``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax


class Transition(NamedTuple):
    """A batch of environment transitions ``(o_t, a_t, r_t, o_{t+1})``."""

    obs: jax.Array
    """``[..., *obs_shape]`` float32 (int32 ``[...]`` for index observations): the observation ``o_t`` acted on."""
    action: jax.Array
    """``[...]`` int32: the action ``a_t``."""
    log_prob: jax.Array
    """``[...]`` float32: ``log π_behaviour(a_t | o_t)`` of the policy that acted."""
    reward: jax.Array
    """``[...]`` float32: the environment's reward ``r_t`` (never a learned or shaped one)."""
    next_obs: jax.Array
    """``[..., *obs_shape]``: ``o_{t+1}``, the true next observation (the final one at an episode end)."""
    terminated: jax.Array
    """``[...]`` bool: ``o_{t+1}`` is terminal: no bootstrapping from it."""
    truncated: jax.Array
    """``[...]`` bool: a time limit ended the episode at ``o_{t+1}``: bootstrap from it."""
    episode_return: jax.Array
    """``[...]`` float32: undiscounted env return of the episode up to and including ``r_t``."""
    episode_length: jax.Array
    """``[...]`` int32: steps of the episode up to and including this one."""

    @property
    def done(self) -> jax.Array:
        """``[...]`` bool: the episode ended with this transition (terminated or truncated)."""
        return self.terminated | self.truncated


class EnvCarry(NamedTuple):
    """Where each of ``N`` parallel environments stands between two rollouts."""

    obs: jax.Array
    """``[N, *obs_shape]``: the observation to act from next."""
    state: Any
    """Environment state pytree, each leaf with leading ``[N]``."""
    episode_return: jax.Array
    """``[N]`` float32: env return accumulated in the running episode."""
    episode_length: jax.Array
    """``[N]`` int32: steps taken in the running episode."""
