"""Any :class:`TabularMDP` as a ``gymnasium.Env``, and the factories behind the ``toyrlhf/...`` ids.

The other direction, a Gymnasium environment as an exact MDP, is
:meth:`TabularMDP.from_gymnasium`.

Semantics of :class:`TabularGymEnv` (the same as :func:`toyrlhf.tabular.sample_episodes`,
so Monte Carlo returns of the Gym env estimate :func:`toyrlhf.tabular.evaluate` exactly):

- ``reset`` draws ``s_0 ~ init`` with the env's ``np_random``;
- ``step(a)`` draws ``s' ~ P[s, a]`` and returns the reward ``R[s, a]`` (the MDP's
  *expected* reward for the pair: a gridworld's slip outcomes share one reward);
- ``terminated`` is true when ``s'`` is a terminal state of the MDP, ``truncated``
  when the horizon ``T`` is reached (the env truncates itself, so the ids are
  registered without a TimeLimit wrapper); after either, call ``reset``.

Rendering: ``"ansi"`` gives the map with the agent as ``A`` for a gridworld, a
one-line summary otherwise; ``"rgb_array"`` draws the map (or a strip of states)
directly into a ``uint8`` image, without matplotlib.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from toyrlhf.envs.gridworld import GOAL, LAVA, START, WALL, GridWorld, make_gridworld
from toyrlhf.envs.toy_mdps import baird_counterexample, lane, reset_cliff, standard_imitation, trap
from toyrlhf.tabular import TabularMDP

CELL_PIXELS = 16
"""Side of one cell in ``rgb_array`` images."""

COLOURS = {  # Okabe–Ito, as in toyrlhf.plotting
    "floor": (245, 245, 245),
    WALL: (60, 60, 60),
    START: (86, 180, 233),
    GOAL: (0, 158, 115),
    LAVA: (213, 94, 0),
    "terminal": (213, 94, 0),
    "agent": (0, 114, 178),
}


class TabularGymEnv(gym.Env):
    """A Gymnasium environment that samples an exact :class:`TabularMDP`.

    Args:
        mdp: the MDP (its horizon sets truncation).
        grid: the :class:`GridWorld` the MDP came from, for drawing the map (optional).
        render_mode: ``None``, ``"ansi"`` or ``"rgb_array"``.
        name: shown in the ``ansi`` line of non-grid MDPs.
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}

    def __init__(self, mdp: TabularMDP, grid: GridWorld | None = None, render_mode=None, name: str = "MDP"):
        if not isinstance(mdp, TabularMDP):
            raise TypeError(f"mdp must be a TabularMDP, got {type(mdp).__name__}")
        if grid is not None and not isinstance(grid, GridWorld):
            raise TypeError(f"grid must be a GridWorld or None, got {type(grid).__name__}")
        if grid is not None and grid.n_states != mdp.n_states:
            raise ValueError(f"grid has {grid.n_states} states but mdp has {mdp.n_states}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            modes = self.metadata["render_modes"]
            raise ValueError(f"render_mode must be one of {modes} or None, got {render_mode!r}")
        self.mdp, self.grid, self.render_mode, self.name = mdp, grid, render_mode, name
        self._next_states = np.asarray(mdp.next_states)
        self._next_probs = np.asarray(mdp.next_probs)
        self._R = np.asarray(mdp.R)
        self._init = np.asarray(mdp.init)
        self._terminal = np.asarray(mdp.terminal)
        self.observation_space = spaces.Discrete(mdp.n_states)
        self.action_space = spaces.Discrete(mdp.n_actions)
        self._state: int | None = None
        self._t = 0
        self._last_action: int | None = None

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._state = int(self.np_random.choice(self.mdp.n_states, p=self._init))
        self._t = 0
        self._last_action = None
        return self._state, {"t": 0}

    def step(self, action):
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        if not self.action_space.contains(action):
            raise ValueError(f"action must be an int in [0, {self.mdp.n_actions}), got {action!r}")
        s, a = self._state, int(action)
        k = self.np_random.choice(self._next_probs.shape[-1], p=self._next_probs[s, a])
        reward = float(self._R[s, a])
        self._state = int(self._next_states[s, a, k])
        self._t += 1
        self._last_action = a
        terminated = bool(self._terminal[self._state])
        truncated = self._t >= self.mdp.horizon and not terminated
        return self._state, reward, terminated, truncated, {"t": self._t}

    # -- rendering -------------------------------------------------------------------------
    def render(self):
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='ansi' or 'rgb_array'")
            return None
        if self.render_mode == "ansi":
            return self._render_text()
        return self._render_image()

    def _render_text(self) -> str:
        head = f"t={self._t}/{self.mdp.horizon}"
        if self._last_action is not None:
            head += f" last action={self._last_action}"
        if self.grid is not None:
            return f"{head}\n{self.grid.to_text(self._state)}\n"
        state = "-" if self._state is None else str(self._state)
        flag = " (terminal)" if self._state is not None and self._terminal[self._state] else ""
        return f"{self.name}: {head} state={state}/{self.mdp.n_states}{flag}\n"

    def _render_image(self) -> np.ndarray:
        if self.grid is not None:
            cells = np.array([list(row) for row in self.grid.map])
            agent = None if self._state is None else self.grid.cell_of(self._state)
        else:  # a strip of states, wrapped every 32, terminal states coloured
            S, width = self.mdp.n_states, min(self.mdp.n_states, 32)
            height = -(-S // width)
            cells = np.full((height, width), WALL, dtype="<U8")
            flat = cells.reshape(-1)
            flat[:S] = np.where(self._terminal, "terminal", "floor")
            agent = None if self._state is None else divmod(self._state, width)
        H, W = cells.shape
        image = np.zeros((H, W, 3), dtype=np.uint8)
        image[...] = COLOURS["floor"]
        for key, colour in COLOURS.items():
            if key not in ("floor", "agent"):
                image[cells == key] = colour
        image = np.repeat(np.repeat(image, CELL_PIXELS, axis=0), CELL_PIXELS, axis=1)
        # thin grid lines between cells
        image[::CELL_PIXELS, :] = (200, 200, 200)
        image[:, ::CELL_PIXELS] = (200, 200, 200)
        if agent is not None:
            y, x = np.mgrid[:CELL_PIXELS, :CELL_PIXELS] - (CELL_PIXELS - 1) / 2
            disc = x**2 + y**2 <= (0.35 * CELL_PIXELS) ** 2
            r, c = agent
            patch = image[r * CELL_PIXELS : (r + 1) * CELL_PIXELS, c * CELL_PIXELS : (c + 1) * CELL_PIXELS]
            patch[disc] = COLOURS["agent"]
        return image


# ------------------------------------------------------------------------------------------
# Factories for gymnasium.make (keyword arguments are forwarded to the constructors)
# ------------------------------------------------------------------------------------------


def gridworld_env(map="open-5x5", render_mode=None, **kwargs) -> TabularGymEnv:
    """``toyrlhf/GridWorld-v0``: :func:`toyrlhf.envs.gridworld.make_gridworld` (horizon 50 by default)."""
    grid = make_gridworld(map, **kwargs)
    return TabularGymEnv(grid.mdp, grid=grid, render_mode=render_mode, name="GridWorld")


def trap_env(horizon: int = 50, render_mode=None, **kwargs) -> TabularGymEnv:
    """``toyrlhf/Trap-v0``: :func:`toyrlhf.envs.toy_mdps.trap`."""
    return TabularGymEnv(trap(horizon, **kwargs), render_mode=render_mode, name="Trap")


def lane_env(horizon: int = 50, render_mode=None, **kwargs) -> TabularGymEnv:
    """``toyrlhf/Lane-v0``: :func:`toyrlhf.envs.toy_mdps.lane`."""
    return TabularGymEnv(lane(horizon, **kwargs), render_mode=render_mode, name="Lane")


def reset_cliff_env(horizon: int = 50, render_mode=None, **kwargs) -> TabularGymEnv:
    """``toyrlhf/ResetCliff-v0``: :func:`toyrlhf.envs.toy_mdps.reset_cliff`."""
    return TabularGymEnv(reset_cliff(horizon, **kwargs), render_mode=render_mode, name="ResetCliff")


def standard_imitation_env(horizon: int = 50, render_mode=None, **kwargs) -> TabularGymEnv:
    """``toyrlhf/StandardImitation-v0``: :func:`toyrlhf.envs.toy_mdps.standard_imitation`."""
    mdp = standard_imitation(horizon, **kwargs)
    return TabularGymEnv(mdp, render_mode=render_mode, name="StandardImitation")


def baird_env(render_mode=None, **kwargs) -> TabularGymEnv:
    """``toyrlhf/Baird-v0``: the MDP of :func:`toyrlhf.envs.toy_mdps.baird_counterexample`."""
    return TabularGymEnv(baird_counterexample(**kwargs).mdp, render_mode=render_mode, name="Baird")
