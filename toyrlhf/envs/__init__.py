"""Environments: literature toy MDPs, gridworlds, and the Gymnasium bridge."""

from toyrlhf.envs.cartpole import CartPole
from toyrlhf.envs.functional import Step, TabularEnv, gridworld_env, reset_if_done, tabular_env
from toyrlhf.envs.gridworld import ACTIONS, MAPS, GridWorld, make_gridworld, open_map
from toyrlhf.envs.gym_env import TabularGymEnv
from toyrlhf.envs.in_gymnasium import evaluate_in_gymnasium
from toyrlhf.envs.token_mdp import ConcaveQuality, RegularLanguage, TargetPattern, TokenEnv, TokenTask, enumerate_tokens
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
    "CartPole",
    "Step",
    "TabularEnv",
    "gridworld_env",
    "reset_if_done",
    "tabular_env",
    "evaluate_in_gymnasium",
    "ConcaveQuality",
    "RegularLanguage",
    "TargetPattern",
    "TokenEnv",
    "TokenTask",
    "enumerate_tokens",
]
