"""Experiments, one module per claim; see ``common.py`` for what a module provides.

To add one, write the module and add its import path to ``MODULES`` (one line).
An experiment's ``NAME`` is its module's name with ``-`` for ``_``, so the names
are known without importing anything, and one experiment that fails to import
does not stop the others.
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
    "toyrlhf.experiments.prompt_bandit",
)


def names() -> list[str]:
    """Every registered experiment's NAME, in registration order, without importing any."""
    return [m.rsplit(".", 1)[-1].replace("_", "-") for m in MODULES]


def get(name: str) -> ModuleType:
    """The experiment module called ``name`` (imported now); a ValueError lists the known names otherwise."""
    paths = dict(zip(names(), MODULES))
    if name not in paths:
        raise ValueError(f"unknown experiment {name!r}; known: {', '.join(paths)}")
    module = importlib.import_module(paths[name])
    if module.NAME != name:
        raise ValueError(f"{paths[name]} has NAME {module.NAME!r}; it must be {name!r} (its module name)")
    return module


def registry() -> dict[str, ModuleType]:
    """``{NAME: module}`` for every registered experiment, in registration order (imports them all)."""
    return {name: get(name) for name in names()}
