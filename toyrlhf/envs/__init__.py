"""Environments: literature toy MDPs, gridworlds, and the Gymnasium bridge."""

from toyrlhf.envs.toy_mdps import (
    baird_counterexample,
    lane,
    reset_cliff,
    standard_imitation,
    trap,
)

__all__ = ["baird_counterexample", "lane", "reset_cliff", "standard_imitation", "trap"]
