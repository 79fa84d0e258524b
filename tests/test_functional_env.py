"""The functional environment API and rollouts, checked against the exact tabular numbers."""

import math

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import toyrlhf  # noqa: F401  (x64 on)
from toyrlhf import tabular
from toyrlhf.envs.functional import (
    TabularState,
    coordinate_observations,
    gridworld_env,
    reset_if_done,
    tabular_env,
)
from toyrlhf.envs.gridworld import make_gridworld
from toyrlhf.envs.toy_mdps import lane
from toyrlhf.nets import Table
from toyrlhf.rollout import rollout, start


@pytest.fixture(scope="module")
def grid():
    return make_gridworld("open-5x5", slip=0.2, step_cost=0.01, horizon=12)


def test_step_frequencies_rewards_and_flags_match_the_mdp(grid):
    env, params = gridworld_env(grid)
    s, a = grid.state_at(2, 2), 2  # centre, move right
    state = TabularState(jnp.int32(s), jnp.int32(0))
    n = 20_000
    steps = jax.jit(jax.vmap(env.step, in_axes=(0, None, None, None)))(
        jax.random.split(jax.random.key(1), n), state, jnp.int32(a), params
    )
    counts = np.bincount(np.asarray(steps.state.s), minlength=grid.n_states) / n
    P = np.asarray(grid.mdp.P[s, a])
    assert np.all(np.abs(counts - P) <= 5 * np.sqrt(P * (1 - P) / n) + 1e-12)
    np.testing.assert_allclose(np.asarray(steps.reward), float(grid.mdp.R[s, a]), rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(steps.obs), np.eye(grid.n_states)[np.asarray(steps.state.s)])
    assert not np.asarray(steps.terminated).any() and not np.asarray(steps.truncated).any()


def test_terminated_and_truncated_are_kept_apart(grid):
    env, params = gridworld_env(grid)
    goal = int(grid.goal_states[0])
    before_goal = grid.state_at(4, 3)
    # the last decision of the horizon on an ordinary cell: truncated, not terminated; obs is the final one
    last = TabularState(jnp.int32(0), jnp.int32(grid.mdp.horizon - 1))
    step = env.step(jax.random.key(0), last, jnp.int32(3), params)
    assert bool(step.truncated) and not bool(step.terminated)
    np.testing.assert_array_equal(np.asarray(step.obs), np.asarray(params.observations[step.state.s]))
    # at the horizon on the goal cell: terminated wins
    hit = jax.vmap(env.step, in_axes=(0, None, None, None))(
        jax.random.split(jax.random.key(2), 64), TabularState(jnp.int32(before_goal), jnp.int32(11)), 2, params
    )
    at_goal = np.asarray(hit.state.s) == goal
    assert at_goal.any()
    assert np.asarray(hit.terminated)[at_goal].all() and not np.asarray(hit.truncated)[at_goal].any()


def test_reset_if_done_is_explicit(grid):
    env, params = gridworld_env(grid)
    last = TabularState(jnp.int32(5), jnp.int32(grid.mdp.horizon - 1))
    step = env.step(jax.random.key(0), last, jnp.int32(0), params)
    obs, state = reset_if_done(env, jax.random.key(3), step, params)
    assert int(state.t) == 0 and int(state.s) in grid.start_states.tolist()
    assert int(step.state.t) == grid.mdp.horizon  # step itself still holds the final state
    mid = env.step(jax.random.key(0), TabularState(jnp.int32(5), jnp.int32(0)), jnp.int32(0), params)
    obs, state = reset_if_done(env, jax.random.key(3), mid, params)
    assert int(state.t) == 1 and int(state.s) == int(mid.state.s)
    np.testing.assert_array_equal(np.asarray(obs), np.asarray(mid.obs))


def first_episode_returns(batch):
    """Return of each environment's first episode (the rollout must be at least a horizon long)."""
    done = np.asarray(batch.done)
    first = done.argmax(0)
    assert done.any(0).all()
    return np.asarray(batch.episode_return)[first, np.arange(done.shape[1])]


def test_rollout_returns_estimate_the_exact_return(grid):
    """Monte Carlo mean of 4,096 episodes within 4 standard errors of tabular.evaluate."""
    env, params = gridworld_env(grid)
    logits = jnp.log(jnp.array([0.1, 0.4, 0.4, 0.1], jnp.float32))  # biased towards the goal
    table = jnp.tile(logits, (grid.n_states, 1))
    n_envs, T = 4096, grid.mdp.horizon

    @jax.jit
    def run(key):
        carry = start(key, env, params, n_envs)
        return rollout(jax.random.fold_in(key, 1), env, params, carry, Table().apply, table, T)

    carry, batch = run(jax.random.key(0))
    assert batch.obs.shape == (T, n_envs, grid.n_states) and batch.action.shape == (T, n_envs)
    returns = first_episode_returns(batch)
    exact = float(tabular.evaluate(grid.mdp, jax.nn.softmax(table.astype(jnp.float64))))
    assert abs(returns.mean() - exact) < 4 * returns.std() / math.sqrt(n_envs)
    # next_obs at an episode end is the final observation, not the reset one
    done = np.asarray(batch.done)
    final = np.asarray(batch.next_obs)[done].argmax(-1)
    terminal_or_late = np.asarray(grid.mdp.terminal)[final] | np.asarray(batch.truncated)[done]
    assert terminal_or_late.all()
    # after a done the next step acts from a fresh start
    t, n = np.nonzero(done[:-1])
    assert np.isin(np.asarray(batch.obs)[t + 1, n].argmax(-1), grid.start_states).all()
    # log_prob is that of the acting policy
    np.testing.assert_allclose(np.asarray(batch.log_prob), np.asarray(logits)[np.asarray(batch.action)], rtol=1e-6)


def test_index_observations_give_the_same_table_policy_as_one_hot(grid):
    env_i, params_i = gridworld_env(grid, "index")
    env_o, params_o = gridworld_env(grid, "one_hot")
    assert env_i.observation_shape == () and params_i.observations.dtype == jnp.int32
    table = jax.random.normal(jax.random.key(0), (grid.n_states, 4), jnp.float32)
    by_index, by_one_hot = Table().apply(table, params_i.observations), Table().apply(table, params_o.observations)
    np.testing.assert_array_equal(by_index, by_one_hot)
    obs, state = env_i.reset(jax.random.key(0), params_i)
    assert obs.shape == () and int(obs) == int(state.s)


def test_observation_functions_and_bad_input(grid):
    env, params = gridworld_env(grid, "coords")
    assert env.observation_shape == (2,)
    obs, state = env.reset(jax.random.key(0), params)
    np.testing.assert_allclose(np.asarray(obs), [0.0, 0.0])  # start top-left, scaled to [0, 1]
    np.testing.assert_allclose(coordinate_observations(grid.coords).max(0), [1.0, 1.0])
    features = np.random.default_rng(0).normal(size=(grid.n_states, 3))
    env3, params3 = tabular_env(grid.mdp, features)
    assert env3.observation_shape == (3,) and params3.observations.dtype == jnp.float32
    with pytest.raises(ValueError, match="observations"):
        tabular_env(grid.mdp, np.zeros((grid.n_states + 1, 2)))
    with pytest.raises(ValueError, match="one_hot"):
        tabular_env(grid.mdp, "pixels")
    with pytest.raises(TypeError, match="TabularMDP"):
        tabular_env(grid)
    with pytest.raises(ValueError, match="observation"):
        gridworld_env(grid, "xy")


def test_vmap_over_different_mdps_and_literature_mdp():
    """Two slips stacked as params, stepped in one vmap; and a toy MDP (lane) through the same API."""
    envs = [gridworld_env(make_gridworld("open-5x5", slip=slip, horizon=10)) for slip in (0.0, 1.0)]
    env = envs[0][0]
    stacked = jax.tree.map(lambda *x: jnp.stack(x), *(p for _, p in envs))
    state = TabularState(jnp.int32(12), jnp.int32(0))
    keys = jax.random.split(jax.random.key(0), (2, 2000))
    steps = jax.vmap(jax.vmap(env.step, in_axes=(0, None, None, None)), in_axes=(0, None, None, 0))(
        keys, state, jnp.int32(2), stacked
    )
    moved_right = (np.asarray(steps.state.s) == 13).mean(1)
    assert moved_right[0] == 1.0 and abs(moved_right[1] - 0.25) < 0.05
    lane_env, lane_params = tabular_env(lane(horizon=5, half_width=2))
    obs, s = lane_env.reset(jax.random.key(0), lane_params)
    assert int(s.s) == 2 and lane_env.n_actions == 3


def test_converted_gymnasium_frozen_lake_runs_through_the_api():
    mdp = tabular.TabularMDP.from_gymnasium(gym.make("FrozenLake-v1", is_slippery=True), horizon=30)
    env, params = tabular_env(mdp)
    table = jnp.zeros((mdp.n_states, 4), jnp.float32)

    @jax.jit
    def run(key):
        return rollout(key, env, params, start(key, env, params, 4096), Table().apply, table, 30)

    _, batch = run(jax.random.key(0))
    returns = first_episode_returns(batch)
    exact = float(tabular.evaluate(mdp, jnp.full((mdp.n_states, 4), 0.25)))
    assert abs(returns.mean() - exact) < 4 * returns.std() / math.sqrt(4096) + 1e-9
    assert np.asarray(batch.terminated).any()  # holes and the goal lead to the absorbing state


def test_the_horizons_meaning_is_explicit_and_time_can_be_observed(grid):
    from toyrlhf.envs.functional import all_observations

    env, params = gridworld_env(grid, "index")
    assert env.horizon_is_task and not env.time_in_observation and env.n_observations == grid.n_states
    # The flags do not depend on the meaning: the last decision is truncated (learners read horizon_is_task).
    limit_env, _ = gridworld_env(grid, "index", horizon_is_task=False)
    cell = TabularState(jnp.int32(grid.state_at(1, 1)), jnp.int32(grid.mdp.horizon - 1))
    for e in (env, limit_env):
        step = e.step(jax.random.key(0), cell, jnp.int32(0), params)
        assert bool(step.truncated) and not bool(step.terminated)
    # Index observations with the time: t S + s, one Table row per (t, s).
    timed, timed_params = gridworld_env(grid, "index", time_in_observation=True)
    S, T = grid.n_states, grid.mdp.horizon
    assert timed.n_observations == S * T and timed.observation_shape == ()
    obs, state = timed.reset(jax.random.key(1), timed_params)
    assert int(obs) == int(state.s)
    step = timed.step(jax.random.key(2), state, jnp.int32(1), timed_params)
    assert int(step.obs) == S + int(step.state.s)
    table = np.asarray(all_observations(timed, timed_params))
    np.testing.assert_array_equal(table, np.arange(S * T).reshape(T, S))
    # Array observations gain the fraction of steps left.
    hot, hot_params = gridworld_env(grid, "one_hot", time_in_observation=True)
    assert hot.observation_shape == (S + 1,)
    rows = np.asarray(all_observations(hot, hot_params))
    assert rows.shape == (T, S, S + 1)
    np.testing.assert_allclose(rows[:, 0, -1], (T - np.arange(T)) / T)
    np.testing.assert_array_equal(rows[3, :, :S], np.eye(S))
    assert np.asarray(all_observations(*gridworld_env(grid))).shape == (S, S)
    with pytest.raises(TypeError, match="horizon_is_task"):
        gridworld_env(grid, "index", horizon_is_task="yes")
    with pytest.raises(TypeError, match="time_in_observation"):
        gridworld_env(grid, "index", time_in_observation=1)
    with pytest.raises(ValueError, match="time_in_observation"):
        tabular_env(grid.mdp, np.zeros((S, 2, 2)), time_in_observation=True)
