"""Rollouts: ``N`` environments stepped ``T`` times in one ``lax.scan``, into a typed :class:`Transition`.

    carry = start(key, env, env_params, n_envs)
    carry, batch = rollout(key, env, env_params, carry, policy_apply, policy_params, n_steps)
    # batch: Transition with fields [T, N, ...]; carry: where the next rollout resumes

``policy_apply(policy_params, obs[N, *obs_shape]) -> logits[N, A]`` is any
function of a parameter pytree (a :mod:`toyrlhf.nets` network's ``apply``).
Episodes end by :func:`~toyrlhf.envs.functional.reset_if_done`, explicitly: each
transition keeps its true ``next_obs``, and the next step acts from the reset
observation. Episode statistics (return, length) are the environment's own
reward, whatever reward a learner trains on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from toyrlhf.envs.functional import Environment, reset_if_done
from toyrlhf.losses import categorical_log_prob
from toyrlhf.types import EnvCarry, Transition

PolicyApply = Callable[[Any, jax.Array], jax.Array]


def start(key: jax.Array, env: Environment, env_params: Any, n_envs: int) -> EnvCarry:
    """Reset ``n_envs`` environments that share ``env_params``."""
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key, n_envs), env_params)
    return EnvCarry(obs, state, jnp.zeros(n_envs, jnp.float32), jnp.zeros(n_envs, jnp.int32))


def rollout(
    key: jax.Array,
    env: Environment,
    env_params: Any,
    carry: EnvCarry,
    policy_apply: PolicyApply,
    policy_params: Any,
    n_steps: int,
) -> tuple[EnvCarry, Transition]:
    """Act ``n_steps`` times in every environment with actions sampled from ``softmax(logits)``.

    Returns the carry to resume from and a :class:`Transition` with fields ``[n_steps, N, ...]``.
    """
    n_envs = carry.episode_return.shape[0]
    step_envs = jax.vmap(env.step, in_axes=(0, 0, 0, None))
    reset_envs = jax.vmap(reset_if_done, in_axes=(None, 0, 0, None))
    # The randomness the loop needs is drawn before it, in two batched draws: Gumbel noise for the
    # actions (argmax(logits + g) is a sample of softmax(logits)) and one key per env and step. The same
    # distribution as a PRNG call per step, and much faster to compile (each PRNG call site compiles anew).
    key_act, key_env = jax.random.split(key)
    gumbel = jax.random.gumbel(key_act, (n_steps, n_envs, env.n_actions), jnp.float32)
    env_keys = jax.random.split(key_env, (n_steps, 2, n_envs))  # [T, (step, reset), N]

    def one_step(carry: EnvCarry, inputs) -> tuple[EnvCarry, Transition]:
        gumbel_t, (key_step, key_reset) = inputs
        logits = policy_apply(policy_params, carry.obs)
        action = jnp.argmax(logits + gumbel_t, axis=-1).astype(jnp.int32)
        step = step_envs(key_step, carry.state, action, env_params)
        episode_return = carry.episode_return + step.reward
        episode_length = carry.episode_length + 1
        transition = Transition(
            obs=carry.obs,
            action=action,
            log_prob=categorical_log_prob(logits, action),
            reward=step.reward,
            next_obs=step.obs,
            terminated=step.terminated,
            truncated=step.truncated,
            episode_return=episode_return,
            episode_length=episode_length,
        )
        obs, state = reset_envs(env, key_reset, step, env_params)
        running = ~(step.terminated | step.truncated)
        next_carry = EnvCarry(obs, state, episode_return * running, episode_length * running)
        return next_carry, transition

    return jax.lax.scan(one_step, carry, (gumbel, env_keys))
