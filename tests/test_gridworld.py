"""Gridworlds from ASCII maps: scripted routes, slip frequencies, exact values, malformed maps."""

import jax
import numpy as np
import pytest

from toyrlhf import tabular
from toyrlhf.envs.gridworld import ACTIONS, MAPS, make_gridworld, open_map

LEFT, DOWN, RIGHT, UP = range(4)

ROUTE_MAP = """
    S.#..
    ..#.G
    .....
"""


def deterministic_step(grid, s, a):
    """The successor of (s, a) in a slip-free gridworld (one successor carries probability 1)."""
    probs = np.asarray(grid.mdp.next_probs[s, a])
    assert probs.max() == 1.0
    return int(grid.mdp.next_states[s, a, np.argmax(probs)])


def test_actions_follow_frozenlake_order():
    assert ACTIONS == ("left", "down", "right", "up")


def test_states_are_non_wall_cells_in_row_major_order():
    grid = make_gridworld("four-rooms")
    assert (grid.height, grid.width) == (11, 11)
    assert grid.n_states == 121 - 17  # 17 walls, counted by hand
    walls = np.array([list(row) for row in grid.map]) == "#"
    assert np.all((grid.state_index == -1) == walls)
    np.testing.assert_array_equal(grid.state_index[grid.coords[:, 0], grid.coords[:, 1]], np.arange(grid.n_states))
    assert np.all(np.diff(grid.coords[:, 0] * grid.width + grid.coords[:, 1]) > 0)
    assert grid.state_at(0, 0) == 0 and list(grid.start_states) == [0]
    assert grid.cell_of(int(grid.goal_states[0])) == (10, 10)
    with pytest.raises(ValueError, match=r"\(row 0, column 5\) is a wall"):
        grid.state_at(0, 5)


def test_scripted_route_bumps_walls_and_edges_then_reaches_the_goal_with_the_exact_return():
    step_cost = 0.05
    grid = make_gridworld(ROUTE_MAP, step_cost=step_cost, horizon=12)
    # up and left bump the top-left edge; right from (1, 1) bumps the wall at (1, 2).
    route = [UP, LEFT, DOWN, RIGHT, RIGHT, DOWN, RIGHT, RIGHT, RIGHT, UP]
    # cells[t] is where the agent is before step t; the last is the goal.
    cells = [(0, 0), (0, 0), (0, 0), (1, 0), (1, 1), (1, 1), (2, 1), (2, 2), (2, 3), (2, 4), (1, 4)]
    s, ret = grid.state_at(0, 0), 0.0
    for t, a in enumerate(route):
        assert not grid.terminal[s], f"terminal before step {t}"
        ret += float(grid.mdp.R[s, a])
        s = deterministic_step(grid, s, a)
        assert grid.cell_of(s) == cells[t + 1], f"step {t}: action {ACTIONS[a]}"
    assert s == grid.goal_states[0] and grid.terminal[s]
    assert ret == pytest.approx(1.0 - len(route) * step_cost, abs=1e-12)  # 1 - 10 * 0.05 = 0.5

    # The same route as an open-loop time-indexed policy, evaluated exactly: once at the
    # goal the episode is over (absorbing, zero reward) whatever the remaining actions.
    T, S = grid.mdp.horizon, grid.n_states
    actions = np.array(route + [LEFT] * (T - len(route)))
    policy = np.broadcast_to(np.eye(4)[actions][:, None, :], (T, S, 4))
    assert float(tabular.evaluate(grid.mdp, policy)) == pytest.approx(0.5, abs=1e-12)
    # The shortest route is 7 steps (down, down, right x4, up).
    assert float(grid.mdp.init @ tabular.solve(grid.mdp).V[0]) == pytest.approx(1.0 - 7 * step_cost, abs=1e-12)


def test_lava_ends_the_episode_with_lava_reward():
    grid = make_gridworld("trap-corridor", step_cost=0.05, lava_reward=-2.0)
    s = grid.state_at(1, 0)
    lava_above = grid.state_at(0, 0)
    assert float(grid.mdp.R[s, UP]) == pytest.approx(-2.0 - 0.05)
    assert deterministic_step(grid, s, UP) == lava_above and grid.terminal[lava_above]
    assert np.all(np.asarray(grid.mdp.R)[grid.terminal] == 0.0)


@pytest.mark.parametrize(
    "map_name, steps",
    [("open-5x5", 8), ("four-rooms", 20), ("cliff", 13), ("lava-bridge", 9), ("trap-corridor", 11)],
)
def test_named_maps_exact_optimal_value_is_goal_minus_shortest_path(map_name, steps):
    cost = 0.01
    grid = make_gridworld(map_name, step_cost=cost, horizon=steps)
    value = float(grid.mdp.init @ tabular.solve(grid.mdp).V[0])
    assert value == pytest.approx(1.0 - steps * cost, abs=1e-12)
    # One step short of the shortest path, the goal cannot be reached: the best is to
    # pay the step cost every step (no lava on the way).
    short = float(grid.mdp.init @ tabular.solve(grid.mdp.with_horizon(steps - 1)).V[0])
    assert short == pytest.approx(-(steps - 1) * cost, abs=1e-12)


def test_transition_rows_sum_to_one_and_slip_spreads_mass_as_documented():
    slip = 0.3
    grid = make_gridworld("four-rooms", slip=slip, step_cost=0.02)
    P = np.asarray(grid.mdp.P)
    np.testing.assert_allclose(P.sum(-1), 1.0, atol=1e-12)
    assert grid.mdp.next_states.shape[-1] <= 5
    # Corner (0, 0): left and up are blocked, so they stay put.
    s, right, down = grid.state_at(0, 0), grid.state_at(0, 1), grid.state_at(1, 0)
    assert P[s, RIGHT, right] == pytest.approx(1 - slip + slip / 4, abs=1e-15)
    assert P[s, RIGHT, down] == pytest.approx(slip / 4, abs=1e-15)
    assert P[s, RIGHT, s] == pytest.approx(2 * slip / 4, abs=1e-15)
    # Terminal states are absorbing.
    goal = int(grid.goal_states[0])
    np.testing.assert_array_equal(P[goal, :, goal], 1.0)


def test_slip_frequencies_over_many_keys_match_the_slip_probability():
    """Sampled first moves from the centre of a 3x3 map, always choosing 'right'.

    The intended move has probability 1 - 3 slip / 4 and each other move slip / 4.
    Each of the four frequencies over N episodes must lie within 4 binomial
    standard errors sqrt(p (1 - p) / N) of its probability. With N = 20,000 and
    slip = 0.2, 4 SE <= 0.011: a slip that only ever picks a *different* action
    (intended 0.80) or one that moves perpendicular (0.1 each side, 0 back)
    would fail by > 0.04.
    """
    slip, n = 0.2, 20_000
    grid = make_gridworld(["...", ".S.", "..G"], slip=slip, horizon=2)
    policy = np.zeros((grid.n_states, 4))
    policy[:, RIGHT] = 1.0
    episodes = jax.jit(tabular.sample_episodes, static_argnums=3)(jax.random.key(0), grid.mdp, policy, n)
    centre = grid.state_at(1, 1)
    assert np.all(np.asarray(episodes.states[:, 0]) == centre)
    first_move = np.asarray(episodes.states[:, 1])
    for action, (row, col) in zip(range(4), [(1, 0), (2, 1), (1, 2), (0, 1)], strict=True):
        p = 1 - 3 * slip / 4 if action == RIGHT else slip / 4
        freq = np.mean(first_move == grid.state_at(row, col))
        bound = 4 * np.sqrt(p * (1 - p) / n)
        assert abs(freq - p) <= bound, f"{ACTIONS[action]}: frequency {freq:.4f}, expected {p} ± {bound:.4f}"


def test_open_50x50_map_builds_and_solves():
    grid = make_gridworld(open_map(50, 50), slip=0.1, step_cost=0.01, horizon=200)
    assert grid.n_states == 2500
    assert grid.mdp.next_states.shape == (2500, 4, 4)
    assert grid.map[0][0] == "S" and grid.map[49][49] == "G"
    exact = make_gridworld(open_map(50, 50), step_cost=0.01, horizon=200)
    assert float(exact.mdp.init @ tabular.solve(exact.mdp).V[0]) == pytest.approx(1.0 - 98 * 0.01, abs=1e-12)


@pytest.mark.parametrize(
    "bad_map, error, message",
    [
        ("S.x\n..G", ValueError, r"unknown character 'x' at \(row 0, column 2\)"),
        ("S..\n.?.\n..G", ValueError, r"unknown character '\?' at \(row 1, column 1\)"),
        ("S..\n..\n..G", ValueError, r"row 0 has 3 cells, row 1 has 2"),
        ("...\n..G", ValueError, r"no start"),
        ("S..\n...", ValueError, r"no goal"),
        ("", ValueError, r"empty"),
        ("\n\n", ValueError, r"empty"),
        ([], ValueError, r"empty"),
        ("S#G", ValueError, r"no goal 'G' is reachable .*\(row 0, column 0\)"),
        ("..#.\nS.#G\n..#.", ValueError, r"no goal 'G' is reachable .*\(row 1, column 0\)"),
        ("SLG", ValueError, r"no goal 'G' is reachable"),
        ("no-such-map", ValueError, r"known map name"),
        (["S.G", 3], TypeError, r"row 1"),
        (42, TypeError, r"map must be"),
    ],
)
def test_malformed_maps_say_what_and_where(bad_map, error, message):
    with pytest.raises(error, match=message):
        make_gridworld(bad_map)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"slip": -0.1}, ValueError, "slip"),
        ({"slip": 1.5}, ValueError, "slip"),
        ({"slip": float("nan")}, ValueError, "slip"),
        ({"slip": "0.1"}, TypeError, "slip"),
        ({"step_cost": -1.0}, ValueError, "step_cost"),
        ({"step_cost": float("inf")}, ValueError, "step_cost"),
        ({"step_cost": None}, TypeError, "step_cost"),
        ({"goal_reward": float("nan")}, ValueError, "goal_reward"),
        ({"horizon": 0}, ValueError, "horizon"),
        ({"horizon": 5.0}, TypeError, "horizon"),
        ({"discount": 1.5}, ValueError, "discount"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, error, message):
    with pytest.raises(error, match=message):
        make_gridworld("open-5x5", **kwargs)


def test_multiple_starts_give_a_uniform_initial_distribution():
    grid = make_gridworld(["S..S", "....", "S..G"])
    init = np.asarray(grid.mdp.init)
    np.testing.assert_allclose(init[grid.start_states], 1 / 3)
    assert init.sum() == pytest.approx(1.0) and len(grid.start_states) == 3


def test_every_named_map_builds():
    for name in MAPS:
        grid = make_gridworld(name, slip=0.1)
        assert grid.map == MAPS[name]
        assert len(grid.goal_states) >= 1 and len(grid.start_states) >= 1
