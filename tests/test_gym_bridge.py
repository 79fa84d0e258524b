"""Gymnasium both ways: exact conversion of toy-text envs, and toyrlhf MDPs as registered Gym envs."""

import warnings
from collections import deque

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import toyrlhf
from toyrlhf import tabular
from toyrlhf.envs.gridworld import make_gridworld
from toyrlhf.envs.gym_env import CELL_PIXELS, COLOURS, TabularGymEnv
from toyrlhf.envs.registration import ENV_IDS, register_all
from toyrlhf.tabular import TabularMDP

# ------------------------------------------------------------------------------------------
# Gymnasium -> TabularMDP
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def frozen_lake():
    env = gym.make("FrozenLake-v1")  # slippery 4x4, TimeLimit of 100 steps
    assert env.spec.max_episode_steps == 100
    mdp = TabularMDP.from_gymnasium(env, horizon=100)
    return env, mdp, tabular.solve(mdp)


def test_frozen_lake_exact_optimal_value_matches_monte_carlo_in_the_original_env(frozen_lake):
    """The greedy time-indexed policy, run in Gymnasium's own FrozenLake, earns the exact J*.

    Returns are 0/1, so the Monte Carlo mean over N = 10,000 episodes has standard
    error sqrt(J (1 - J) / N) ≈ 0.0044; we require agreement within 4 SE (≈ 0.017).
    The stationary infinite-horizon optimum (≈ 0.82) or a horizon off by a lot
    would be far outside.
    """
    env, mdp, sol = frozen_lake
    exact = float(mdp.init @ sol.V[0])
    assert 0.70 < exact < 0.78  # J* of slippery 4x4 within 100 steps ≈ 0.744
    actions = np.asarray(sol.policy).argmax(-1)  # [T, S+1]
    n = 10_000
    returns = np.zeros(n)
    obs, _ = env.reset(seed=0)
    for episode in range(n):
        if episode:
            obs, _ = env.reset()
        for t in range(mdp.horizon + 1):
            assert t < mdp.horizon, "the original env's time limit should end the episode at T"
            obs, reward, terminated, truncated, _ = env.step(int(actions[t, obs]))
            returns[episode] += reward
            if terminated or truncated:
                break
    se = np.sqrt(exact * (1 - exact) / n)
    assert abs(returns.mean() - exact) <= 4 * se, f"MC {returns.mean():.4f} vs exact {exact:.4f} (4 SE = {4 * se:.4f})"


def test_frozen_lake_conversion_keeps_the_slip_and_makes_holes_absorbing(frozen_lake):
    _, mdp, _ = frozen_lake
    P = np.asarray(mdp.P)
    absorbing = mdp.n_states - 1
    # From the start (0), 'down' (1) goes down, left or right with 1/3 each (left is blocked: stays).
    np.testing.assert_allclose(P[0, 1, [0, 4, 1]], [1 / 3, 1 / 3, 1 / 3], atol=1e-12)
    # Hole 5 is terminal in Gymnasium: stepping into it leads to the absorbing state.
    assert P[1, 1, absorbing] == pytest.approx(1 / 3)
    assert bool(mdp.terminal[absorbing]) and np.all(np.asarray(mdp.R)[absorbing] == 0)


def test_cliff_walking_optimal_return_is_minus_13():
    mdp = TabularMDP.from_gymnasium(gym.make("CliffWalking-v1"), horizon=50)
    sol = tabular.solve(mdp)
    assert float(mdp.init @ sol.V[0]) == pytest.approx(-13.0, abs=1e-12)
    # With 12 steps the goal (13 steps away) cannot be reached: -1 per step at best.
    assert float(mdp.init @ tabular.solve(mdp.with_horizon(12)).V[0]) == pytest.approx(-12.0, abs=1e-12)


def taxi_shortest_episode_lengths(table, n_states):
    """Breadth-first search over Taxi's deterministic table: steps to the terminating drop-off."""
    reverse = [[] for _ in range(n_states)]
    done = deque()
    steps = np.full(n_states, np.inf)
    for s in range(n_states):
        for outcomes in table[s].values():
            (_, s_next, _, terminated) = outcomes[0]
            if terminated:
                if steps[s] == np.inf:
                    steps[s] = 1
                    done.append(s)
            else:
                reverse[s_next].append(s)
    while done:
        s = done.popleft()
        for prev in reverse[s]:
            if steps[prev] == np.inf:
                steps[prev] = steps[s] + 1
                done.append(prev)
    return steps


def test_taxi_optimal_value_equals_shortest_paths():
    """Taxi pays -1 a step and +20 for the drop-off, so J* = E[21 - shortest episode length]."""
    env = gym.make("Taxi-v4")
    mdp = TabularMDP.from_gymnasium(env, horizon=200)
    exact = float(mdp.init @ tabular.solve(mdp).V[0])
    table = env.unwrapped.P
    steps = taxi_shortest_episode_lengths(table, env.observation_space.n)
    init = env.unwrapped.initial_state_distrib
    assert np.all(np.isfinite(steps[init > 0]))
    assert exact == pytest.approx(float(init @ np.where(init > 0, 21 - steps, 0.0)), abs=1e-9)
    assert exact == pytest.approx(7.93, abs=1e-9)  # the known optimum of Taxi's 300 start states


# ------------------------------------------------------------------------------------------
# TabularMDP -> Gymnasium
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("env_id", sorted(ENV_IDS))
def test_registered_env_passes_gymnasium_env_checker(env_id):
    env = gym.make(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any checker warning fails the test
        check_env(env.unwrapped)
    env.close()


def test_registration_is_idempotent_and_adds_no_time_limit():
    before = {env_id: gym.spec(env_id) for env_id in ENV_IDS}
    register_all()
    toyrlhf.envs.registration.register_all()
    for env_id in ENV_IDS:
        assert gym.spec(env_id) is before[env_id]
        assert gym.spec(env_id).max_episode_steps is None  # the env truncates itself at its horizon


def test_kwargs_are_forwarded_and_the_env_truncates_at_the_horizon():
    env = gym.make("toyrlhf/GridWorld-v0", map="four-rooms", slip=0.1, horizon=7)
    assert env.unwrapped.mdp.n_states == 104 and env.unwrapped.grid.slip == 0.1
    env.reset(seed=0)
    flags = [env.step(3)[2:4] for _ in range(7)]  # 'up' from the top-left corner: never terminates
    assert flags == [(False, False)] * 6 + [(False, True)]

    trap = gym.make("toyrlhf/Trap-v0", horizon=10, n_actions=3)
    assert trap.action_space.n == 3
    trap.reset(seed=0)
    total, steps = 0.0, 0
    while True:
        _, reward, terminated, truncated, _ = trap.step(0)
        total, steps = total + reward, steps + 1
        if terminated or truncated:
            break
    assert (total, steps, terminated, truncated) == (10.0, 10, False, True)


def test_entering_a_terminal_state_terminates():
    env = gym.make("toyrlhf/ResetCliff-v0", horizon=20, n_good=3, n_actions=2, expert_actions=[1, 1, 1])
    env.reset(seed=0)
    obs, reward, terminated, truncated, _ = env.step(0)  # not the expert's action: off the cliff
    assert (obs, reward, terminated, truncated) == (3, 0.0, True, False)


@pytest.fixture(scope="module")
def slippery_grid():
    grid = make_gridworld("lava-bridge", slip=0.2, step_cost=0.01, horizon=30)
    policy = np.asarray(tabular.solve(grid.mdp, temperature=0.03).policy)  # stochastic, time-indexed
    return grid, policy


def test_gym_env_monte_carlo_returns_match_exact_evaluation(slippery_grid):
    """N = 3,000 episodes of a stochastic time-indexed policy through gymnasium.make:
    the mean return must lie within 4 sample standard errors of ``tabular.evaluate``."""
    grid, policy = slippery_grid
    exact = float(tabular.evaluate(grid.mdp, policy))
    env = gym.make("toyrlhf/GridWorld-v0", map="lava-bridge", slip=0.2, step_cost=0.01, horizon=30)
    rng = np.random.default_rng(1)
    n = 3_000
    returns = np.zeros(n)
    obs, _ = env.reset(seed=1)
    for episode in range(n):
        if episode:
            obs, _ = env.reset()
        for t in range(grid.mdp.horizon):
            action = rng.choice(4, p=policy[t, obs])
            obs, reward, terminated, truncated, _ = env.step(action)
            returns[episode] += reward
            if terminated or truncated:
                break
    se = returns.std(ddof=1) / np.sqrt(n)
    assert abs(returns.mean() - exact) <= 4 * se, f"MC {returns.mean():.4f} vs exact {exact:.4f} (SE {se:.4f})"


def test_ansi_and_rgb_rendering_of_a_gridworld():
    env = gym.make("toyrlhf/GridWorld-v0", map="open-5x5", render_mode="ansi")
    env.reset(seed=0)
    env.step(2)  # right from (0, 0), no slip
    text = env.render()
    assert isinstance(text, str)
    rows = text.strip("\n").split("\n")[1:]
    assert rows == ["SA...", ".....", ".....", ".....", "....G"]

    env = gym.make("toyrlhf/GridWorld-v0", map="four-rooms", render_mode="rgb_array")
    env.reset(seed=0)
    image = env.render()
    assert isinstance(image, np.ndarray) and image.dtype == np.uint8
    assert image.shape == (11 * CELL_PIXELS, 11 * CELL_PIXELS, 3)
    centre = CELL_PIXELS // 2
    assert tuple(image[centre, centre]) == COLOURS["agent"]  # the agent at the start (0, 0)
    assert tuple(image[centre, 5 * CELL_PIXELS + centre]) == COLOURS["#"]  # wall at (0, 5)
    assert tuple(image[10 * CELL_PIXELS + centre, 10 * CELL_PIXELS + centre]) == COLOURS["G"]


def test_rendering_of_a_non_grid_mdp():
    env = gym.make("toyrlhf/Lane-v0", render_mode="ansi", half_width=3)
    env.reset(seed=0)
    line = env.render()
    assert isinstance(line, str) and line.count("\n") == 1 and "state=3/7" in line
    env = gym.make("toyrlhf/Baird-v0", render_mode="rgb_array")
    env.reset(seed=0)
    image = env.render()
    assert image.dtype == np.uint8 and image.shape == (CELL_PIXELS, 7 * CELL_PIXELS, 3)


def test_tabular_gym_env_rejects_bad_arguments():
    mdp = make_gridworld("open-5x5").mdp
    with pytest.raises(TypeError, match="mdp"):
        TabularGymEnv("not an mdp")
    with pytest.raises(ValueError, match="render_mode"):
        TabularGymEnv(mdp, render_mode="human")
    env = TabularGymEnv(mdp)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(4)
