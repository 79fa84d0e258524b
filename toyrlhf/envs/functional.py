"""The functional environment API every JAX learner in toyrlhf runs on.

An environment is a frozen dataclass that holds only what fixes array shapes
(hashable, so it can be a static argument of ``jax.jit``). Everything else,
the dynamics' numbers included, is a pytree of ``params`` that may be traced,
stacked and vmapped. Randomness comes in through explicit keys and is never
stored in the state (as in gymnax):

    obs, state = env.reset(key, params)
    step = env.step(key, state, action, params)   # a Step: obs, state, reward, terminated, truncated

**terminated vs truncated.** ``terminated`` means the episode reached a terminal
state: the future return is zero, so a value target must not bootstrap.
``truncated`` means a time limit cut the episode: the future was not zero, so a
value target bootstraps from ``V(step.obs)``. Both end the episode.

**Whose horizon?** A :class:`TabularEnv`'s horizon belongs to its task
(``tabular.evaluate`` sums exactly ``T`` rewards), yet its last step reports
``truncated``, as a time limit would. Whether a learner bootstraps past it is
the learner's choice (Pardo et al. 2018, "Time Limits in Reinforcement
Learning"): bootstrap from ``V(s_T)`` when the limit is not part of the task
(partial-episode bootstrapping), do not when it is; and when it is, a
stationary policy cannot tell how many steps remain unless the time is in its
observation. ``TabularEnv.horizon_is_task`` (default True) says which, and PPO
follows it (``PPOConfig.horizon``); ``time_in_observation=True`` appends the
time. With ``γ = 1`` and a bootstrapped horizon every policy that eventually
reaches the goal has the same value, so PPO optimises another task than the
one ``evaluate`` scores (notebooks/ppo_from_scratch.ipynb, section 2b).

**No silent auto-reset.** ``step`` never resets: ``step.obs`` is always the true
observation after the action, even at the end of an episode (the "final
observation" that bootstrapping and learned rewards need). Starting the next
episode is a separate, explicit call, :func:`reset_if_done`, which returns the
observation to act from next. Rollouts (:mod:`toyrlhf.rollout`) store
``step.obs`` as ``next_obs`` and act from what :func:`reset_if_done` returns.

Batching is ``jax.vmap``: ``jax.vmap(env.step, in_axes=(0, 0, 0, None))`` steps
``N`` copies that share params; ``in_axes=(0, 0, 0, 0)`` steps ``N`` different MDPs.

Every :class:`~toyrlhf.tabular.TabularMDP` runs through :class:`TabularEnv`:
the literature MDPs, gridworlds and converted Gymnasium toy-text environments.
Its observation is a row of a table ``observations[S, D]`` chosen per
environment: one-hot states (:func:`one_hot_observations`), coordinates
(:func:`coordinate_observations`) or any features array; or the state index
itself (``observations="index"``: an int32 scalar, ``observation_shape == ()``),
which a :class:`toyrlhf.nets.Table` reads as a row lookup. The index is the
fast choice for tabular learning: it carries the same information as a one-hot
vector in 4 bytes instead of ``4 S``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from toyrlhf.tabular import TabularMDP


class Step(NamedTuple):
    """What one environment step returns (shapes for a single environment; vmap adds a leading ``[N]``)."""

    obs: jax.Array
    """``[*obs_shape]`` float32 (int32 for index observations): the observation after the action (the final
    one if the episode ended)."""
    state: Any
    """The environment state after the action (a pytree; the terminal state if the episode ended)."""
    reward: jax.Array
    """``[]`` float32: the reward for this transition."""
    terminated: jax.Array
    """``[]`` bool: a terminal state was reached; no future reward, do not bootstrap."""
    truncated: jax.Array
    """``[]`` bool: the time limit cut the episode; bootstrap from ``obs``. If ``terminated`` is also
    set (Gymnasium's ``TimeLimit`` reports both when the last step terminates), ``terminated`` wins."""


class Environment(Protocol):
    """What a learner needs from an environment (a hashable, frozen dataclass in practice).

    ``observation_shape == ()`` means the observation is an int32 state index; such an
    environment also has ``n_states`` (the number of distinct indices).
    """

    n_actions: int
    observation_shape: tuple[int, ...]

    def reset(self, key: jax.Array, params: Any) -> tuple[jax.Array, Any]:
        """``(obs, state)`` of a fresh episode."""

    def step(self, key: jax.Array, state: Any, action: jax.Array, params: Any) -> Step:
        """One transition from ``state`` under ``action``; never resets."""


def reset_if_done(env: Environment, key: jax.Array, step: Step, params: Any) -> tuple[jax.Array, Any]:
    """Explicit auto-reset: the ``(obs, state)`` to act from after ``step``.

    If the episode ended (``terminated | truncated``) this is a fresh
    ``env.reset(key, params)``; otherwise it is ``(step.obs, step.state)``. The
    reset is computed either way and selected with ``jnp.where`` (branch-free, so
    it vmaps); ``step`` itself keeps the final observation.
    """
    done = step.terminated | step.truncated
    fresh = env.reset(key, params)
    return jax.tree.map(lambda new, old: jnp.where(done, new, old), fresh, (step.obs, step.state))


# ------------------------------------------------------------------------------------------
# Tabular MDPs
# ------------------------------------------------------------------------------------------


def sample_index(key: jax.Array, probs: jax.Array) -> jax.Array:
    """``[]`` int32 index ``i`` drawn with probability ``probs[i]`` (``[K]``), by inverting the CDF.

    One uniform number per draw (``jax.random.categorical`` draws ``K`` Gumbels), which
    matters when a reset over all ``S`` states is computed for every environment at every step.
    """
    cdf = jnp.cumsum(probs)
    u = jax.random.uniform(key, (), cdf.dtype) * cdf[-1]
    return jnp.minimum(jnp.searchsorted(cdf, u, side="right"), probs.shape[0] - 1).astype(jnp.int32)


class TabularState(NamedTuple):
    """State of a :class:`TabularEnv` episode."""

    s: jax.Array
    """``[]`` int32: the MDP state index."""
    t: jax.Array
    """``[]`` int32: decisions taken so far in this episode."""


class TabularParams(NamedTuple):
    """Traceable parameters of a :class:`TabularEnv`: the MDP and its observation table."""

    mdp: TabularMDP
    """The exact MDP (its ``horizon`` is static and must equal the env's)."""
    observations: jax.Array
    """``[S, D]`` float32: row ``s`` is what the agent sees in state ``s``; or ``[S]`` int32 ``arange(S)``
    for index observations."""


@dataclass(frozen=True)
class TabularEnv:
    """A :class:`~toyrlhf.tabular.TabularMDP` as a functional environment.

    ``reset`` draws ``s_0 ~ init``; ``step`` draws ``s' ~ P[s, a]``, pays the
    expected reward ``R[s, a]`` and reports ``terminated = terminal[s']`` and
    ``truncated`` when ``horizon`` decisions have been taken without terminating.
    The undiscounted episode return therefore has expectation exactly
    ``toyrlhf.tabular.evaluate(mdp, π)`` (with ``mdp.discount = 1``).
    Build one with :func:`tabular_env`.
    """

    n_states: int
    n_actions: int
    observation_shape: tuple[int, ...]
    horizon: int
    horizon_is_task: bool = True
    """The horizon is part of the task (``tabular.evaluate`` scores ``T`` steps): a learner must not bootstrap
    past the last step. The flags ``step`` reports do not change (the last step is ``truncated``); learners
    read this (``PPOConfig.horizon="auto"``). False: a time limit outside the task, bootstrap from ``V(s_T)``."""
    time_in_observation: bool = False
    """Append the time to the observation, so that a policy and a value can depend on the steps left: index
    observations become ``t S + s`` (``n_observations = S T`` rows), array ones gain a last feature
    ``(T - t) / T``. :func:`all_observations` lists them ``[T, S, ...]`` for exact evaluation."""

    def __post_init__(self):
        for name in ("horizon_is_task", "time_in_observation"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool, got {type(getattr(self, name)).__name__}")

    @property
    def n_observations(self) -> int:
        """Distinct index observations (rows a ``Table`` needs): ``S``, or ``S T`` with the time in them."""
        return self.n_states * self.horizon if self.time_in_observation else self.n_states

    def observe(self, s: jax.Array, t: jax.Array, params: TabularParams) -> jax.Array:
        """The observation of state ``s`` after ``t`` decisions."""
        obs = params.observations[s]
        if not self.time_in_observation:
            return obs
        if self.observation_shape == ():
            return (jnp.minimum(t, self.horizon - 1) * self.n_states + obs).astype(jnp.int32)
        left = (self.horizon - t) / self.horizon
        return jnp.concatenate([obs, jnp.asarray(left, obs.dtype)[None]], axis=-1)

    def reset(self, key: jax.Array, params: TabularParams) -> tuple[jax.Array, TabularState]:
        s = sample_index(key, params.mdp.init)
        t = jnp.zeros((), jnp.int32)
        return self.observe(s, t, params), TabularState(s, t)

    def step(self, key: jax.Array, state: TabularState, action: jax.Array, params: TabularParams) -> Step:
        mdp = params.mdp
        s_next = mdp.next_states[state.s, action, sample_index(key, mdp.next_probs[state.s, action])]
        t_next = state.t + 1
        terminated = mdp.terminal[s_next]
        truncated = (t_next >= self.horizon) & ~terminated
        reward = mdp.R[state.s, action].astype(jnp.float32)
        return Step(self.observe(s_next, t_next, params), TabularState(s_next, t_next), reward, terminated, truncated)


def one_hot_observations(n_states: int) -> np.ndarray:
    """``[S, S]`` float32 identity: the agent sees which state it is in (tabular learning)."""
    return np.eye(n_states, dtype=np.float32)


def coordinate_observations(coords, scale: bool = True) -> np.ndarray:
    """``[S, 2]`` float32 from integer ``coords[S, 2]`` (row, col), scaled to ``[0, 1]`` per axis if ``scale``.

    States share information through their coordinates, so a small MLP generalises across the grid.
    """
    coords = np.asarray(coords, dtype=np.float32)
    if coords.ndim != 2:
        raise ValueError(f"coords must have shape [S, D], got {coords.shape}")
    if scale:
        low, high = coords.min(0), coords.max(0)
        coords = (coords - low) / np.where(high > low, high - low, 1.0)
    return coords


def tabular_env(
    mdp: TabularMDP, observations="one_hot", *, horizon_is_task: bool = True, time_in_observation: bool = False
) -> tuple[TabularEnv, TabularParams]:
    """Wrap ``mdp`` as ``(env, params)``; ``observations`` is ``"one_hot"``, ``"index"`` or a ``[S, D]`` array.

    For coordinates pass ``coordinate_observations(grid.coords)``. ``horizon_is_task`` and
    ``time_in_observation`` are :class:`TabularEnv`'s fields (what the horizon means).
    """
    if not isinstance(mdp, TabularMDP):
        raise TypeError(f"mdp must be a TabularMDP, got {type(mdp).__name__}")
    S = mdp.n_states
    meaning = {"horizon_is_task": horizon_is_task, "time_in_observation": time_in_observation}
    if isinstance(observations, str):
        if observations == "index":
            env = TabularEnv(S, mdp.n_actions, (), mdp.horizon, **meaning)
            return env, TabularParams(mdp, jnp.arange(S, dtype=jnp.int32))
        if observations != "one_hot":
            raise ValueError(f"observations must be 'one_hot', 'index' or a [S, D] array, got {observations!r}")
        observations = one_hot_observations(S)
    observations = jnp.asarray(observations, dtype=jnp.float32)
    if observations.ndim < 2 or observations.shape[0] != S:
        raise ValueError(f"observations must have shape [S={S}, ...], got {observations.shape}")
    shape = tuple(observations.shape[1:])
    if time_in_observation:
        if len(shape) != 1:
            raise ValueError(f"time_in_observation needs index or flat [S, D] observations, got {observations.shape}")
        shape = (shape[0] + 1,)
    env = TabularEnv(S, mdp.n_actions, shape, mdp.horizon, **meaning)
    return env, TabularParams(mdp, observations)


def all_observations(env: TabularEnv, params: TabularParams) -> jax.Array:
    """What the agent sees in every state: ``[S, ...]``, or ``[T, S, ...]`` with ``time_in_observation``
    (row ``t`` after ``t`` decisions), the input for an exact ``[S, A]`` or ``[T, S, A]`` policy."""
    states = jnp.arange(env.n_states)
    if not env.time_in_observation:
        return params.observations[states]
    steps = jnp.arange(env.horizon)
    return jax.vmap(lambda t: jax.vmap(lambda s: env.observe(s, t, params))(states))(steps)


def gridworld_env(grid, observation: str = "one_hot", **meaning) -> tuple[TabularEnv, TabularParams]:
    """A gridworld (from :mod:`toyrlhf.envs.gridworld`) with ``"one_hot"``, ``"index"`` or ``"coords"`` observations.

    Keyword arguments (``horizon_is_task``, ``time_in_observation``) go to :func:`tabular_env`.
    """
    if observation == "coords":
        return tabular_env(grid.mdp, coordinate_observations(grid.coords), **meaning)
    if observation in ("one_hot", "index"):
        return tabular_env(grid.mdp, observation, **meaning)
    raise ValueError(f"observation must be 'one_hot', 'index' or 'coords', got {observation!r}")
