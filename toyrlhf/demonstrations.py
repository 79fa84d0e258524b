"""Expert demonstrations: who the expert is, a typed batch of its episodes, and the file format.

Experts. For a :class:`~toyrlhf.tabular.TabularMDP` the expert is its exact
optimal time-indexed policy, either hard (greedy on ``Q*``, ties to the first
action) or soft (``softmax(Q_soft / τ)``, the MaxEnt-optimal policy that MaxEnt
IRL assumes the demonstrator follows). :func:`tabular_expert` returns it as
``[T, S, A]`` probabilities.

Demonstrations. :class:`Demonstrations` holds ``N`` episodes of ``T`` steps:
observations (tabular state indices ``[N, T]`` or continuous observations
``[N, T, D]``), actions, rewards and a ``valid`` mask for episodes that ended
before ``T`` (tabular MDPs never end early: terminal states are absorbing, so
every step is valid and the absorbing steps are real data). Where the batch came
from is a :class:`Source`, kept beside the arrays (it is not a JAX pytree leaf).

Files. :func:`save` writes one ``.npz`` atomically (temporary file, then
``os.replace``) holding the arrays and the source as a JSON string;
:func:`load` reads it with ``allow_pickle=False`` and raises ``ValueError``
naming the problem when the file is not a demonstrations file.
"""

from __future__ import annotations

import dataclasses
import json
import zipfile
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from toyrlhf import tabular
from toyrlhf.files import atomic_write

FORMAT_VERSION = 1
"""Written into every file; :func:`load` refuses other versions."""

_ARRAY_FIELDS = ("observations", "actions", "rewards", "valid")


class Demonstrations(NamedTuple):
    """A batch of ``N`` expert episodes, each padded to ``T`` steps."""

    observations: jax.Array
    """``[N, T]`` int state indices (tabular) or ``[N, T, D]`` float observations."""
    actions: jax.Array
    """``[N, T]`` int: the expert's action ``a_t``."""
    rewards: jax.Array
    """``[N, T]``: the true reward ``r_t`` (learners must not use it; kept for checking)."""
    valid: jax.Array
    """``[N, T]`` bool: whether step ``t`` happened (False after an early end)."""

    @property
    def n_episodes(self) -> int:
        return self.actions.shape[0]

    @property
    def horizon(self) -> int:
        return self.actions.shape[1]

    @property
    def n_labels(self) -> int:
        """Number of (observation, expert action) pairs: what the expert was asked for."""
        return int(np.asarray(self.valid).sum())

    def returns(self) -> jax.Array:
        """``[N]``: undiscounted return of each episode over its valid steps."""
        return jnp.sum(jnp.where(self.valid, self.rewards, 0.0), axis=-1)

    def truncate(self, horizon: int) -> Demonstrations:
        """The first ``horizon`` steps of every episode."""
        if not 1 <= horizon <= self.horizon:
            raise ValueError(f"horizon must lie in [1, {self.horizon}], got {horizon}")
        return Demonstrations(*(x[:, :horizon] for x in self))


@dataclasses.dataclass(frozen=True)
class Source:
    """Where a demonstration batch came from (saved with it as JSON)."""

    expert: str
    """How the expert was made: ``"optimal"``, ``"soft-optimal"``, ``"ppo"``, ..."""
    env: str
    """The environment, in words or as an id (``"reset_cliff(n_good=10)"``, ``"CartPole-v1"``)."""
    temperature: float | None = None
    """Temperature of a soft-optimal expert; ``None`` for a hard one."""
    seed: int | None = None
    """The seed the episodes were sampled with, if known."""
    note: str = ""
    """Anything else worth keeping."""


def tabular_expert(mdp: tabular.TabularMDP, temperature=None) -> jax.Array:
    """The exact optimal policy ``[T, S, A]`` of ``mdp``: hard (``temperature=None``) or soft."""
    return tabular.solve(mdp, temperature).policy


def sample_demonstrations(key: jax.Array, mdp: tabular.TabularMDP, expert, n_episodes: int) -> Demonstrations:
    """``n_episodes`` episodes of ``mdp.horizon`` steps from ``expert`` (``[S, A]`` or ``[T, S, A]``).

    Jit-able with ``n_episodes`` static; vmap over ``key`` for independent data sets.
    """
    episodes = tabular.sample_episodes(key, mdp, expert, n_episodes)
    valid = jnp.ones(episodes.actions.shape, dtype=bool)
    return Demonstrations(episodes.states, episodes.actions, episodes.rewards, valid)


def check_demonstrations(demos: Demonstrations, n_states: int | None = None, n_actions: int | None = None) -> None:
    """Raise ValueError/TypeError if shapes, dtypes or index ranges are wrong (concrete arrays only)."""
    if not isinstance(demos, Demonstrations):
        raise TypeError(f"demos must be a Demonstrations, got {type(demos).__name__}")
    actions = np.asarray(demos.actions)
    if actions.ndim != 2:
        raise ValueError(f"demos.actions must have shape [N, T], got {actions.shape}")
    N, T = actions.shape
    obs = np.asarray(demos.observations)
    if obs.shape[:2] != (N, T) or obs.ndim not in (2, 3):
        raise ValueError(f"demos.observations must have shape [N, T] or [N, T, D] with N, T = {N, T}, got {obs.shape}")
    for name in ("rewards", "valid"):
        shape = np.shape(getattr(demos, name))
        if shape != (N, T):
            raise ValueError(f"demos.{name} must have shape [N, T] = {(N, T)}, got {shape}")
    if not np.issubdtype(actions.dtype, np.integer):
        raise TypeError(f"demos.actions must be integers, got dtype {actions.dtype}")
    if np.asarray(demos.valid).dtype != bool:
        raise TypeError(f"demos.valid must be bool, got dtype {np.asarray(demos.valid).dtype}")
    if n_actions is not None and actions.size and (actions.min() < 0 or actions.max() >= n_actions):
        raise ValueError(f"demos.actions must lie in [0, {n_actions}), found [{actions.min()}, {actions.max()}]")
    if n_states is not None:
        if obs.ndim != 2 or not np.issubdtype(obs.dtype, np.integer):
            raise ValueError(f"tabular demos need integer observations [N, T], got {obs.dtype} {obs.shape}")
        if obs.size and (obs.min() < 0 or obs.max() >= n_states):
            raise ValueError(f"demos.observations must lie in [0, {n_states}), found [{obs.min()}, {obs.max()}]")


def save(path, demos: Demonstrations, source: Source) -> Path:
    """Write ``demos`` and ``source`` to ``path`` (``.npz``) atomically; returns the path."""
    check_demonstrations(demos)
    if not isinstance(source, Source):
        raise TypeError(f"source must be a Source, got {type(source).__name__}")
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"path must end in .npz, got {str(path)!r}")
    arrays = {name: np.asarray(getattr(demos, name)) for name in _ARRAY_FIELDS}
    arrays["source_json"] = np.asarray(json.dumps(dataclasses.asdict(source)))
    arrays["format_version"] = np.asarray(FORMAT_VERSION)
    return atomic_write(path, lambda tmp: np.savez_compressed(tmp, **arrays))


def load(path) -> tuple[Demonstrations, Source]:
    """Read a file written by :func:`save` (never unpickling); ValueError if it is malformed."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no demonstrations file at {str(path)!r}")
    try:
        with np.load(path, allow_pickle=False) as data:
            contents = {k: data[k] for k in data.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as err:
        raise ValueError(f"{str(path)!r} is not a readable .npz demonstrations file: {err}") from err
    missing = [k for k in (*_ARRAY_FIELDS, "source_json", "format_version") if k not in contents]
    if missing:
        raise ValueError(f"{str(path)!r} is not a demonstrations file: missing {', '.join(missing)}")
    version = contents["format_version"]
    if version.shape != () or int(version) != FORMAT_VERSION:
        raise ValueError(f"{str(path)!r} has format_version {version}, this toyrlhf reads {FORMAT_VERSION}")
    try:
        fields = json.loads(str(contents["source_json"]))
        source = Source(**fields)
    except (json.JSONDecodeError, TypeError) as err:
        raise ValueError(f"{str(path)!r} has a malformed source record: {err}") from err
    demos = Demonstrations(*(jnp.asarray(contents[name]) for name in _ARRAY_FIELDS))
    try:
        check_demonstrations(demos)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{str(path)!r} holds malformed demonstrations: {err}") from err
    return demos, source
