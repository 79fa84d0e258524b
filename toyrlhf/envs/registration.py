"""Gymnasium registration of toyrlhf environments.

After ``import toyrlhf``::

    env = gymnasium.make("toyrlhf/GridWorld-v0", map="four-rooms", slip=0.1, render_mode="ansi")

Keyword arguments go to the factories in :mod:`toyrlhf.envs.gym_env`. The
environments truncate themselves at their MDP's horizon, so no TimeLimit
wrapper is added (``max_episode_steps`` is None; pass ``horizon=...`` instead).
"""

import gymnasium

ENV_IDS = {
    "toyrlhf/GridWorld-v0": "toyrlhf.envs.gym_env:gridworld_env",
    "toyrlhf/Trap-v0": "toyrlhf.envs.gym_env:trap_env",
    "toyrlhf/Lane-v0": "toyrlhf.envs.gym_env:lane_env",
    "toyrlhf/ResetCliff-v0": "toyrlhf.envs.gym_env:reset_cliff_env",
    "toyrlhf/StandardImitation-v0": "toyrlhf.envs.gym_env:standard_imitation_env",
    "toyrlhf/Baird-v0": "toyrlhf.envs.gym_env:baird_env",
}
"""Every registered id and its factory."""


def register_all() -> None:
    """Register every ``toyrlhf/...`` id with Gymnasium (idempotent)."""
    for env_id, entry_point in ENV_IDS.items():
        if env_id not in gymnasium.registry:
            gymnasium.register(id=env_id, entry_point=entry_point)
