"""Experiments, one module per claim; see ``common.py`` for what a module provides.

To add one, write the module and add its import path to ``MODULES`` (one line).
"""

from __future__ import annotations

import importlib
from types import ModuleType

MODULES = (
    "toyrlhf.experiments.compounding_error_exact",
    "toyrlhf.experiments.compounding_error",
    "toyrlhf.experiments.bc_vs_irl_data",
    "toyrlhf.experiments.overoptimization",
    "toyrlhf.experiments.ppo_stability",
    "toyrlhf.experiments.sparsity_action_dim",
    "toyrlhf.experiments.rlhf_vs_sft",
    "toyrlhf.experiments.reward_proxy",
)


def registry() -> dict[str, ModuleType]:
    """``{NAME: module}`` for every registered experiment, in registration order."""
    modules = [importlib.import_module(m) for m in MODULES]
    return {m.NAME: m for m in modules}


def get(name: str) -> ModuleType:
    """The experiment module called ``name``; a ValueError lists the known names otherwise."""
    experiments = registry()
    if name not in experiments:
        raise ValueError(f"unknown experiment {name!r}; known: {', '.join(experiments)}")
    return experiments[name]
