"""Run a policy trained in JAX inside the original Gymnasium environment (a host-side loop).

Training runs on the JAX port of an environment; what reports and benchmarks
quote for CartPole comes from here, from ``gymnasium.make("CartPole-v1")``
itself, so a mistake in the port cannot flatter the numbers::

    returns = evaluate_in_gymnasium(MLP().apply, actor_params, "CartPole-v1", n_episodes=10, seed=0)

All episodes run side by side: one Gymnasium env per episode, and one jitted,
batched policy call per time step for all of them (the batch keeps a fixed
shape, so the policy compiles once).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np

from toyrlhf.validation import positive_int


def evaluate_in_gymnasium(
    policy_fn: Callable[[Any, jax.Array], jax.Array],
    params: Any,
    env_id: str = "CartPole-v1",
    n_episodes: int = 10,
    seed: int = 0,
    *,
    deterministic: bool = True,
    observation_fn: Callable[[Any], np.ndarray] | None = None,
    env_kwargs: dict | None = None,
    n_policies: int | None = None,
    max_steps: int = 100_000,
) -> np.ndarray:
    """Undiscounted returns of ``n_episodes`` episodes per policy in ``gymnasium.make(env_id)``.

    Args:
        policy_fn: ``policy_fn(params, obs[B, D]) -> logits[B, A]`` (e.g. ``MLP().apply``).
        params: the policy's parameters; with ``n_policies`` every leaf has a leading ``[n_policies]``
            axis (e.g. the actor of vmapped seeds) and each policy plays its own episodes.
        env_id: a registered Gymnasium id (a time limit, if any, comes from the registration).
        n_episodes: episodes per policy; episode ``i`` is reset with ``seed + i`` (the same starts for
            every policy).
        seed: also seeds the action sampling when ``deterministic`` is False.
        deterministic: act with ``argmax`` of the logits (True) or sample from ``softmax`` (False).
        observation_fn: maps a Gymnasium observation to the policy's input (default: as float32;
            for a discrete observation pass e.g. ``lambda s: table[s]``).
        env_kwargs: keyword arguments for ``gymnasium.make``.
        max_steps: a guard for environments without a time limit: RuntimeError after this many steps.

    Returns:
        ``[n_episodes]`` returns, or ``[n_policies, n_episodes]`` with ``n_policies``.
    """
    positive_int("n_episodes", n_episodes)
    if n_policies is not None:
        positive_int("n_policies", n_policies)
    P = 1 if n_policies is None else n_policies
    if n_policies is None:
        params = jax.tree.map(lambda x: jnp.asarray(x)[None], params)
    to_input = observation_fn or (lambda o: np.asarray(o, dtype=np.float32))
    act = jax.jit(jax.vmap(policy_fn))  # [P, E, D] -> [P, E, A]
    rng = np.random.default_rng(seed)

    envs = [[gym.make(env_id, **(env_kwargs or {})) for _ in range(n_episodes)] for _ in range(P)]
    obs = [[to_input(env.reset(seed=seed + i)[0]) for i, env in enumerate(row)] for row in envs]
    returns = np.zeros((P, n_episodes))
    running = np.ones((P, n_episodes), dtype=bool)
    try:
        for _ in range(max_steps):
            if not running.any():
                break
            logits = np.asarray(act(params, jnp.asarray(np.stack([np.stack(row) for row in obs]))))
            if deterministic:
                actions = logits.argmax(-1)
            else:
                actions = (logits + rng.gumbel(size=logits.shape)).argmax(-1)  # Gumbel-max sampling
            for p, e in zip(*np.nonzero(running), strict=True):
                o, r, terminated, truncated, _ = envs[p][e].step(int(actions[p, e]))
                returns[p, e] += float(r)
                obs[p][e] = to_input(o)
                running[p, e] = not (terminated or truncated)
        if running.any():
            raise RuntimeError(f"episodes of {env_id} still running after max_steps={max_steps} steps")
    finally:
        for row in envs:
            for env in row:
                env.close()
    return returns[0] if n_policies is None else returns
