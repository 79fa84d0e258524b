"""Gridworlds drawn as ASCII maps, built as exact sparse :class:`TabularMDP` objects.

A map is a rectangle of characters, one row per line::

    make_gridworld('''
        S.#..
        ..#.G
        .L...
    ''', slip=0.1, step_cost=0.01)

==========  ===================================================================
character   cell
==========  ===================================================================
``.``       floor
``#``       wall: not a state; moving into it (or off the edge) leaves the agent in place
``S``       start (floor); the initial distribution is uniform over all ``S`` cells
``G``       goal: absorbing and terminal; ``goal_reward`` is paid on arrival
``L``       lava / trap: absorbing and terminal; ``lava_reward`` is paid on arrival
==========  ===================================================================

Dynamics. Actions are :data:`ACTIONS` = (left, down, right, up), Gymnasium
FrozenLake's order. With probability ``1 - slip`` the intended action is
executed; with probability ``slip`` it is replaced by one of the four actions
drawn uniformly at random (which may be the intended one), so the intended move
happens with probability ``1 - 3 slip / 4`` and each other move with ``slip / 4``.
(FrozenLake's own slip is different: it moves perpendicular to the intended
direction; use ``TabularMDP.from_gymnasium`` for the exact original.)

Rewards. ``R[s, a] = E[arrival reward of s'] - step_cost`` for every
non-terminal ``s``: the expected reward over the slip outcomes. Goal and lava
states have zero reward and stay put, so the finite-horizon return equals the
episodic return.

States are the non-wall cells in row-major order; :class:`GridWorld` keeps the
maps between cells and state indices. Transitions are stored sparsely, one
successor per executed action (four per (s, a), duplicates allowed when a move
is blocked), so a 50x50 map costs 2,500 x 4 x 4 numbers.
"""

from __future__ import annotations

import math
import textwrap
from collections import deque
from dataclasses import dataclass

import numpy as np

from toyrlhf.tabular import TabularMDP

ACTIONS = ("left", "down", "right", "up")
"""Action names, in Gymnasium FrozenLake's order: 0 = left, 1 = down, 2 = right, 3 = up."""

MOVES = np.array([(0, -1), (1, 0), (0, 1), (-1, 0)], dtype=np.int64)
"""``[4, 2]``: the (row, column) displacement of each action in :data:`ACTIONS`."""

FLOOR, WALL, START, GOAL, LAVA = ".", "#", "S", "G", "L"
CELL_CHARACTERS = FLOOR + WALL + START + GOAL + LAVA


@dataclass(frozen=True, eq=False)
class GridWorld:
    """A gridworld: its exact MDP plus the geometry needed to draw it and to step it in JAX.

    ``S`` is the number of non-wall cells, ``H x W`` the map's size.
    """

    mdp: TabularMDP
    """The exact MDP (4 actions, horizon and discount as built)."""
    map: tuple[str, ...]
    """The map, one string per row (``H`` strings of length ``W``)."""
    coords: np.ndarray
    """``[S, 2]`` int: the (row, column) of each state."""
    state_index: np.ndarray
    """``[H, W]`` int: the state at each cell, ``-1`` on walls."""
    moves: np.ndarray
    """``[S, 4]`` int: the next state when action ``b`` is *executed* (after any slip).
    Terminal states map to themselves. ``P[s, a] = (1 - slip) 1[moves[s, a]] + slip/4 Σ_b 1[moves[s, b]]``."""
    arrival_reward: np.ndarray
    """``[S]``: reward paid on arriving in each state (goal_reward, lava_reward or 0)."""
    start_states: np.ndarray
    """``[n_start]`` int: the ``S`` cells (the initial distribution is uniform over them)."""
    goal_states: np.ndarray
    """``[n_goal]`` int: the ``G`` cells."""
    lava_states: np.ndarray
    """``[n_lava]`` int: the ``L`` cells (possibly empty)."""
    slip: float
    """Probability that the intended action is replaced by a uniformly random one."""
    step_cost: float
    """Subtracted from the reward of every step taken from a non-terminal state."""

    @property
    def height(self) -> int:
        return len(self.map)

    @property
    def width(self) -> int:
        return len(self.map[0])

    @property
    def n_states(self) -> int:
        return self.coords.shape[0]

    @property
    def terminal(self) -> np.ndarray:
        """``[S]`` bool: goal and lava states."""
        return np.asarray(self.mdp.terminal)

    def state_at(self, row: int, col: int) -> int:
        """The state index of cell (row, col); ValueError on walls or outside the map."""
        if not (0 <= row < self.height and 0 <= col < self.width):
            raise ValueError(f"cell (row {row}, column {col}) is outside the {self.height}x{self.width} map")
        s = int(self.state_index[row, col])
        if s < 0:
            raise ValueError(f"cell (row {row}, column {col}) is a wall, not a state")
        return s

    def cell_of(self, state: int) -> tuple[int, int]:
        """The (row, column) of a state."""
        row, col = self.coords[state]
        return int(row), int(col)

    def to_grid(self, values) -> np.ndarray:
        """Place per-state ``values[S]`` on the ``[H, W]`` map, NaN on walls (for heatmaps)."""
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (self.n_states,):
            raise ValueError(f"values must have shape [S] = {(self.n_states,)}, got {values.shape}")
        grid = np.full((self.height, self.width), np.nan)
        grid[self.coords[:, 0], self.coords[:, 1]] = values
        return grid

    def to_text(self, agent_state: int | None = None, agent: str = "A") -> str:
        """The map as text, with ``agent`` drawn on ``agent_state`` if given."""
        rows = [list(row) for row in self.map]
        if agent_state is not None:
            row, col = self.cell_of(agent_state)
            rows[row][col] = agent
        return "\n".join("".join(row) for row in rows)


# ------------------------------------------------------------------------------------------
# Named maps
# ------------------------------------------------------------------------------------------

MAPS: dict[str, tuple[str, ...]] = {
    # The smallest useful world: 8 steps from corner to corner.
    "open-5x5": (
        "S....",
        ".....",
        ".....",
        ".....",
        "....G",
    ),
    # Sutton, Precup & Singh (1999): four rooms joined by one-cell doorways; 20 steps.
    "four-rooms": (
        "S....#.....",
        ".....#.....",
        "...........",
        ".....#.....",
        ".....#.....",
        "#.####.....",
        ".....###.##",
        ".....#.....",
        ".....#.....",
        "...........",
        ".....#....G",
    ),
    # Sutton & Barto's cliff (as Gymnasium's CliffWalking, but stepping off ends the episode).
    "cliff": (
        "............",
        "............",
        "............",
        "SLLLLLLLLLLG",
    ),
    # A short bridge over lava (9 steps) or a safe detour round it (13 steps): slip and
    # step cost decide which is optimal.
    "lava-bridge": (
        "..........",
        ".LLLLLLLL.",
        "S........G",
        ".LLLLLLLL.",
        "..........",
    ),
    # Every step of the only route is beside a trap: one slip ends the episode. The
    # gridworld version of the Trap MDP, for compounding-error experiments.
    "trap-corridor": (
        "LLLLLLLLLLLL",
        "S..........G",
        "LLLLLLLLLLLL",
    ),
    # Gymnasium's FrozenLake 4x4 layout (F -> '.', H -> 'L', holes pay 0 by default
    # there; pass lava_reward=0.0 to match). Its slip differs: see the module docstring.
    "frozen-lake-4x4": (
        "S...",
        ".L.L",
        "...L",
        "L..G",
    ),
}
"""Named maps: pass the name as ``map`` to :func:`make_gridworld`."""


def open_map(height: int, width: int) -> tuple[str, ...]:
    """An open ``height x width`` map: start top-left, goal bottom-right, floor everywhere else."""
    for name, value in (("height", height), ("width", width)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    if height * width < 2:
        raise ValueError(f"an open map needs at least 2 cells for a start and a goal, got {height}x{width}")
    rows = [FLOOR * width for _ in range(height)]
    rows[0] = START + rows[0][1:]
    rows[-1] = rows[-1][:-1] + GOAL
    return tuple(rows)


# ------------------------------------------------------------------------------------------
# Parsing and checking
# ------------------------------------------------------------------------------------------


def parse_map(map) -> tuple[str, ...]:
    """Turn a map (name in :data:`MAPS`, multi-line string, or row strings) into checked rows.

    Leading and trailing blank lines and common indentation are removed from a
    multi-line string. Raises ValueError saying what is wrong and where.
    """
    if isinstance(map, str):
        if map in MAPS:
            return MAPS[map]
        if "\n" not in map and set(map) - set(CELL_CHARACTERS):
            raise ValueError(
                f"map {map!r} is neither a known map name (known: {', '.join(MAPS)}) nor a valid row"
            )
        text = textwrap.dedent(map.strip("\n"))
        rows = [line.rstrip() for line in text.split("\n")]
        while rows and not rows[-1]:
            rows.pop()
    elif isinstance(map, (list, tuple)):
        rows = list(map)
        for i, row in enumerate(rows):
            if not isinstance(row, str):
                raise TypeError(f"map rows must be strings, row {i} is a {type(row).__name__}")
    else:
        raise TypeError(
            f"map must be a map name, a multi-line string or a list of row strings, got {type(map).__name__}"
        )
    if not rows or not any(rows):
        raise ValueError("map is empty: it needs at least one row with a start 'S' and a goal 'G'")
    width = len(rows[0])
    for i, row in enumerate(rows):
        if len(row) != width:
            raise ValueError(
                f"map rows must all have the same length: row 0 has {width} cells, row {i} has {len(row)}"
            )
        for j, ch in enumerate(row):
            if ch not in CELL_CHARACTERS:
                raise ValueError(
                    f"unknown character {ch!r} at (row {i}, column {j}); "
                    f"use '.' floor, '#' wall, 'S' start, 'G' goal, 'L' lava"
                )
    cells = np.array([list(row) for row in rows])
    if not np.any(cells == START):
        raise ValueError("map has no start: put at least one 'S' on a floor cell")
    if not np.any(cells == GOAL):
        raise ValueError("map has no goal: put at least one 'G'")
    _check_goal_reachable(cells)
    return tuple(rows)


def _check_goal_reachable(cells: np.ndarray) -> None:
    """Breadth-first search from every start through floor and start cells (goal and lava stop you)."""
    H, W = cells.shape
    starts = [tuple(int(x) for x in rc) for rc in np.argwhere(cells == START)]
    seen = np.zeros((H, W), dtype=bool)
    queue = deque(starts)
    for rc in starts:
        seen[rc] = True
    while queue:
        r, c = queue.popleft()
        for dr, dc in MOVES:
            nr, nc = r + dr, c + dc
            if not (0 <= nr < H and 0 <= nc < W) or seen[nr, nc] or cells[nr, nc] == WALL:
                continue
            if cells[nr, nc] == GOAL:
                return
            seen[nr, nc] = True
            if cells[nr, nc] != LAVA:
                queue.append((nr, nc))
    where = ", ".join(f"(row {r}, column {c})" for r, c in starts)
    raise ValueError(
        f"no goal 'G' is reachable from any start: walls and lava cut off the start(s) at {where}"
    )


def _check_number(name: str, value, low: float, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not (math.isfinite(value) and low <= value <= high):
        span = f"[{low}, {high}]" if math.isfinite(high) else f">= {low}"
        raise ValueError(f"{name} must be a finite number {span}, got {value}")
    return value


# ------------------------------------------------------------------------------------------
# Construction
# ------------------------------------------------------------------------------------------


def make_gridworld(
    map="open-5x5",
    slip: float = 0.0,
    step_cost: float = 0.0,
    horizon: int = 50,
    goal_reward: float = 1.0,
    lava_reward: float = -1.0,
    discount: float = 1.0,
) -> GridWorld:
    """Build a :class:`GridWorld` (and its exact sparse MDP) from an ASCII map.

    Args:
        map: a name in :data:`MAPS`, a multi-line string, or a list of row strings.
        slip: probability in [0, 1] that the intended action is replaced by a uniformly
            random one of the four.
        step_cost: ``>= 0``, subtracted on every step taken from a non-terminal state.
        horizon: number of decisions ``T``.
        goal_reward: paid on arriving at a goal.
        lava_reward: paid on arriving in lava.
        discount: ``γ`` in (0, 1].
    """
    rows = parse_map(map)
    slip = _check_number("slip", slip, 0.0, 1.0)
    step_cost = _check_number("step_cost", step_cost, 0.0)
    goal_reward = _check_number("goal_reward", goal_reward, -math.inf)
    lava_reward = _check_number("lava_reward", lava_reward, -math.inf)
    if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)):
        raise TypeError(f"horizon must be an int, got {type(horizon).__name__}")
    if horizon < 1:
        raise ValueError(f"horizon must be at least 1, got {horizon}")

    cells = np.array([list(row) for row in rows])
    H, W = cells.shape
    is_state = cells != WALL
    coords = np.argwhere(is_state)  # row-major order
    S = coords.shape[0]
    state_index = np.full((H, W), -1, dtype=np.int64)
    state_index[coords[:, 0], coords[:, 1]] = np.arange(S)
    kind = cells[coords[:, 0], coords[:, 1]]
    terminal = (kind == GOAL) | (kind == LAVA)

    # moves[s, b]: the state reached by executing action b (blocked moves stay put).
    target = coords[:, None, :] + MOVES[None, :, :]  # [S, 4, 2]
    inside = (target[..., 0] >= 0) & (target[..., 0] < H) & (target[..., 1] >= 0) & (target[..., 1] < W)
    target_state = state_index[np.clip(target[..., 0], 0, H - 1), np.clip(target[..., 1], 0, W - 1)]
    moves = np.where(inside & (target_state >= 0), target_state, np.arange(S)[:, None])
    moves[terminal] = np.flatnonzero(terminal)[:, None]

    A = len(ACTIONS)
    next_states = np.broadcast_to(moves[:, None, :], (S, A, A)).copy()  # [S, a, b]
    next_probs = np.broadcast_to(slip / A + (1.0 - slip) * np.eye(A), (S, A, A)).copy()
    next_probs[terminal] = np.eye(A)[0]  # stay put with probability exactly one
    arrival_reward = np.where(kind == GOAL, goal_reward, np.where(kind == LAVA, lava_reward, 0.0))
    R = np.sum(next_probs * arrival_reward[next_states], axis=-1) - step_cost
    R[terminal] = 0.0
    init = (kind == START).astype(np.float64)
    init /= init.sum()

    mdp = TabularMDP.from_successors(next_states, next_probs, R, init, int(horizon), discount, terminal)
    return GridWorld(
        mdp=mdp,
        map=rows,
        coords=coords,
        state_index=state_index,
        moves=moves,
        arrival_reward=arrival_reward,
        start_states=np.flatnonzero(kind == START),
        goal_states=np.flatnonzero(kind == GOAL),
        lava_states=np.flatnonzero(kind == LAVA),
        slip=slip,
        step_cost=step_cost,
    )
