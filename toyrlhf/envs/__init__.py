"""Environments: literature toy MDPs, gridworlds, and the Gymnasium bridge."""

from toyrlhf.envs.gridworld import ACTIONS, MAPS, GridWorld, make_gridworld, open_map
from toyrlhf.envs.gym_env import TabularGymEnv
from toyrlhf.envs.toy_mdps import (
    baird_counterexample,
    lane,
    reset_cliff,
    standard_imitation,
    trap,
)

__all__ = [
    "ACTIONS",
    "MAPS",
    "GridWorld",
    "TabularGymEnv",
    "make_gridworld",
    "open_map",
    "baird_counterexample",
    "lane",
    "reset_cliff",
    "standard_imitation",
    "trap",
]
