"""What an imitation or inverse-RL method consumed (DESIGN.md pitfall 6: count resources separately).

Every method in ``toyrlhf.algorithms`` that learns from an expert returns a
:class:`Resources` beside its policy, so a plot can put methods side by side at
equal cost and say what each one was allowed to use.
"""

from __future__ import annotations

from typing import NamedTuple


class Resources(NamedTuple):
    """Resources one training run consumed (scalars; ``[n_seeds]`` arrays after ``vmap``)."""

    expert_labels: int
    """Expert (observation, action) labels used: every demonstration step plus every DAgger query."""
    env_steps: int
    """Environment steps the learner itself took (its own rollouts; the expert's are not counted)."""
    known_dynamics: bool
    """Whether the method used the exact transition model (e.g. MaxEnt IRL's soft value iteration)."""

    def describe(self) -> str:
        dynamics = "known dynamics" if bool(self.known_dynamics) else "no dynamics model"
        return f"{int(self.expert_labels)} expert labels, {int(self.env_steps)} env steps, {dynamics}"
