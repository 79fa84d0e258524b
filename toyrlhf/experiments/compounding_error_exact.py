"""Compounding error, computed exactly (claim T2, the picture before any learning).

Two error-injection learners with per-step error ε, evaluated exactly by
``toyrlhf.tabular`` on four MDPs:

- **BC-like**: at step ``t`` on a state the expert can be in at ``t``
  (``d^E_t(s) > 0``) it takes the expert's action with probability ``1-ε`` and
  a uniformly random other action with probability ``ε``; off the expert's
  support it takes the fixed default action 0. Its error under the expert's
  state distribution is ε at every step: behavior cloning with error ε.
- **DAgger-like**: errs with probability ε on every state and otherwise follows
  the expert, so its error under its own state distribution is ε too: what
  DAgger's training on its own states buys.

The gap ``J_T(expert) - J_T(learner)`` is drawn against the horizon ``T``. Both
learners act at step ``t`` independently of the horizon, so the gap for every
``T <= T_max`` is a partial sum of per-step expected rewards
(:func:`toyrlhf.tabular.reward_per_step`): the whole sweep, all MDPs, all ε, both
learners, every horizon, is one compiled call.

Pre-registered criteria (fixed before the first run). Slopes are least-squares
fits on log-log axes over the horizon grid restricted to ``εT <= 0.3`` (the
regime where the ``T²`` law holds, pitfall 2 of the design document), at the
primary ``ε = 1e-3`` (the grid then covers T = 2 .. 300). Everything here is
exact, so each verdict is decided on the exact value:

- findings: 1. BC-like slope in [1.8, 2.05] on Trap; 2. BC-like slope in
  [1.8, 2.05] on Lane; 3. DAgger-like slope in [0.95, 1.05] on Lane;
- controls (no compounding for anyone): 4. BC-like and 5. DAgger-like slope in
  [0.9, 1.1] on Standard imitation;
- checks (identities about the computation, not findings): the Trap closed form
  ``T - (1-ε)(1-(1-ε)^T)/ε`` matches the computed gap to a relative error of 1e-9
  at every ε and T; the Ross–Bagnell bound ``gap <= T² ε̄ (R_max - R_min)`` holds
  at every point with ``T >= 2`` (at ``T = 1`` gap and bound are equal by
  definition), with ε̄ the learner's exactly computed mean error on the
  expert's states.

Published numbers reproduced (pre-registered with the rest, before their first run):

- **Rajaraman et al. (2020)**, their lower-bound instance
  (:func:`toyrlhf.envs.toy_mdps.rajaraman_lower_bound`, a Reset Cliff whose
  ``|S| - 2`` rare states each have ``ρ = 1/(N+1)``): time-indexed BC from ``N``
  expert trajectories, playing ``default_action`` (which falls) on a state not seen
  at that step. Its *exact expected* gap over data sets is computed without sampling:
  the expert's states at different steps are independent draws from ρ, so BC's
  per-step policies are independent, the return is multilinear in them, and
  ``E_D[J(π_D)] = J(E_D[π_D])`` with ``E_D[π_{D,t}(·|s)]`` given by the exact per-state
  missing mass ``(1 - d^E_t(s))^N`` (:func:`bc_mean_policy`); ``tabular.evaluate`` does
  the rest. Findings 6-8: log-log exponents of the gap in ``N``, ``|S|`` and ``H`` over
  the grid points with ``|S| H / N <= rajaraman_fit_max_load`` (the regime of their
  ``|S| H² / N`` bound; above it the gap saturates at ``H``), against the theory
  ``-1, +1, +2``: each in [-1.1, -0.9], [0.9, 1.1] and [1.8, 2.05] (the ``T²`` region
  of findings 1-2). ``measured`` is the joint least-squares exponent; ``interval`` is
  the range of the local exponents (adjacent grid points) over the fit region: exact
  numbers, so the interval says how far the exponent moves over the grid, not a
  sampling error. Their paper's known-transition gain (an ``|S| H^{3/2} / N`` upper
  bound for Mimic-MD, a ``|S| H / N`` lower bound) is a pair of bounds proved on
  another instance; on this one, with two actions, known transitions reveal the
  expert's action (the only one that does not fall), so a learner that uses them has
  gap 0: not reproduced here.
- **Ross & Bagnell (2010)**: on Trap ``gap / (ε T²) → 1/2`` as ``εT → 0`` (check 3,
  read at the smallest of ``limit_epsilons`` and ``T = max_horizon``: within
  [0.49, 0.51]). **Ross, Gordon & Bagnell (2011)**: a learner whose error on its own
  states is ``ε̄`` has ``gap <= u T ε̄`` with ``u = tabular.recoverability`` (computed
  for every horizon from the expert's ``Q^E``); check 4: the DAgger-like learner on
  Lane stays under it at every ε and T (ratio at most 1; equal at ``T = 1``). Both
  are identities of the exact computation (kind ``check``), not findings.

Slopes at the other ε and on the slippery gridworld are reported as
measurements, not criteria. The gridworld shows two things the toy chains do
not: slip makes the expert itself visit almost every state, so the BC-like
learner is rarely off the expert's support and behaves like the DAgger-like one;
and an episode that ends at the goal has an effective horizon of its length, so
the gap stops growing once T passes the time to reach the goal.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from toyrlhf import tabular
from toyrlhf.envs import toy_mdps
from toyrlhf.experiments.common import Clock, Criterion
from toyrlhf.experiments.imitation_sweep import stationary_expert
from toyrlhf.stats import loglog_slope

NAME = "compounding-error-exact"
CLAIM = (
    "T2: behavior cloning's error compounds (gap ~ εT²) where mistakes cannot be undone; "
    "learning on one's own states (DAgger-like) keeps it ~ εT; no compounding without it."
)

LEARNERS = ("BC-like", "DAgger-like")
MDPS = ("Trap", "Lane", "Standard imitation", "Slippery gridworld")


@dataclasses.dataclass(frozen=True)
class Config:
    """Settings of the exact sweep (nothing is sampled: ``seed`` is kept for the contract only)."""

    max_horizon: int = 1024
    """Largest horizon T; every T in [1, max_horizon] is computed."""
    epsilons: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 3e-2, 1e-1)
    """Per-step error rates; must include ``primary_epsilon``."""
    primary_epsilon: float = 1e-3
    """The ε the criteria are judged at."""
    fit_max_epsilon_t: float = 0.3
    """Slopes are fitted over the horizons with ``εT`` at most this (the ``T²`` regime)."""
    n_plot_horizons: int = 33
    """Number of log-spaced horizons from 2 to max_horizon drawn and used in the fits."""
    lane_half_width: int = 5
    """Lane positions run from -K to K."""
    grid_map: str = "lava-bridge"
    """The gridworld panel: a bridge over lava or a detour (``toyrlhf.envs.gridworld.MAPS``)."""
    grid_slip: float = 0.1
    """Slip probability of the gridworld."""
    grid_step_cost: float = 0.01
    """Cost per step of the gridworld."""
    default_action: int = 0
    """What the BC-like learner does off the expert's support (pitfall 4); also time-indexed BC's
    action on a state unseen at that step on Rajaraman et al.'s instance (it must not be 1, the expert's)."""
    limit_epsilons: tuple[float, ...] = (1e-5, 1e-6)
    """Trap is also computed at these small ε, where ``gap / (ε T²)`` approaches Ross & Bagnell's 1/2."""
    rajaraman_n_states: tuple[int, ...] = (32, 64, 128, 256)
    """``|S|`` of Rajaraman et al.'s instances (bad state included)."""
    rajaraman_n_demos: tuple[int, ...] = (2**10, 2**12, 2**14, 2**16, 2**18, 2**20)
    """Numbers ``N`` of expert trajectories (each instance's ρ is tuned to its ``N``)."""
    rajaraman_horizons: tuple[int, ...] = (8, 16, 32, 64, 128)
    """Horizons ``H`` of the fit (one computation at the largest gives them all)."""
    rajaraman_fit_max_load: float = 0.1
    """Exponents are fitted over the grid points with ``|S| H / N`` at most this."""
    seed: int = 0
    """Unused: the sweep is exact."""

    def __post_init__(self):
        if self.max_horizon < 2:
            raise ValueError(f"max_horizon must be at least 2, got {self.max_horizon}")
        if not self.epsilons or not all(0 < e < 1 for e in self.epsilons):
            raise ValueError(f"epsilons must be in (0, 1), got {self.epsilons}")
        if self.primary_epsilon not in self.epsilons:
            raise ValueError(f"epsilons {self.epsilons} must include primary_epsilon = {self.primary_epsilon}")
        if self.n_plot_horizons < 3:
            raise ValueError(f"n_plot_horizons must be at least 3, got {self.n_plot_horizons}")
        if not self.limit_epsilons or not all(0 < e < 1 for e in self.limit_epsilons):
            raise ValueError(f"limit_epsilons must be in (0, 1), got {self.limit_epsilons}")
        for name in ("rajaraman_n_states", "rajaraman_n_demos", "rajaraman_horizons"):
            values = getattr(self, name)
            if len(values) < 2 or any(isinstance(v, bool) or not isinstance(v, int) for v in values):
                raise ValueError(f"{name} must hold at least 2 ints, got {values}")
            if list(values) != sorted(set(values)):
                raise ValueError(f"{name} must be strictly increasing, got {values}")
        if min(self.rajaraman_n_states) < 3:
            raise ValueError(f"rajaraman_n_states must be at least 3, got {self.rajaraman_n_states}")
        if max(self.rajaraman_n_states) - 2 > min(self.rajaraman_n_demos) + 1:
            raise ValueError(
                f"rajaraman_n_demos must be at least max(rajaraman_n_states) - 3 = {max(self.rajaraman_n_states) - 3} "
                f"(ρ = 1/(N+1) on |S| - 2 states), got {self.rajaraman_n_demos}"
            )
        if min(self.rajaraman_horizons) < 1:
            raise ValueError(f"rajaraman_horizons must be at least 1, got {self.rajaraman_horizons}")
        if not self.rajaraman_fit_max_load > 0:
            raise ValueError(f"rajaraman_fit_max_load must be positive, got {self.rajaraman_fit_max_load}")
        if self.default_action == 1:
            raise ValueError("default_action must not be 1, the expert's action on Rajaraman et al.'s instance")

    @classmethod
    def quick(cls) -> Config:
        return cls(
            max_horizon=512,
            epsilons=(1e-3, 1e-2, 1e-1),
            n_plot_horizons=25,
            rajaraman_n_states=(32, 64, 128),
            rajaraman_n_demos=(2**12, 2**14, 2**16, 2**18),
            rajaraman_horizons=(8, 16, 32, 64),
        )

    @property
    def plot_horizons(self) -> np.ndarray:
        return np.unique(np.round(np.geomspace(2, self.max_horizon, self.n_plot_horizons))).astype(int)


class Output(NamedTuple):
    """The exact sweep; ``M`` = MDPs (:data:`MDPS`), ``E`` = ε, ``2`` = learners (:data:`LEARNERS`)."""

    gap: np.ndarray
    """``[M, E, 2, T]``: ``gap[..., T'-1] = J_{T'}(expert) - J_{T'}(learner)``."""
    mean_error: np.ndarray
    """``[M, E, 2, T]``: the learner's error on the expert's states, averaged over the first ``T'`` steps."""
    reward_range: np.ndarray
    """``[M]``: ``R_max - R_min`` of each MDP."""
    recoverability: np.ndarray
    """``[M]``: Ross et al.'s ``u`` of each MDP at horizon 64 (``tabular.recoverability``)."""
    own_error: np.ndarray = np.zeros(0)
    """``[M, E, 2, T]``: the learner's error on its *own* states, averaged over the first ``T'`` steps."""
    recoverability_by_horizon: np.ndarray = np.zeros(0)
    """``[M, T]``: ``u`` at horizon ``T'`` from the expert's ``Q^E`` (``tabular.recoverability(mdp_T', expert)``)."""
    trap_limit_gap: np.ndarray = np.zeros(0)
    """``[L, T]``: the BC-like gap on Trap at each of ``config.limit_epsilons``."""
    rajaraman_gap: np.ndarray = np.zeros(0)
    """``[|S| grid, N grid, H_max]``: time-indexed BC's exact expected gap at every ``H <= max(rajaraman_horizons)``."""
    rajaraman_fall: np.ndarray = np.zeros(0)
    """``[|S| grid, N grid]``: ``μ = Σ_s ρ(s) (1-ρ(s))^N``, the chance per step of meeting an unseen state.

    The last five fields default to empty arrays (an ``Output`` built by hand with the first four only):
    the criteria and checks that need them then measure NaN, UNDETERMINED."""


def error_injection_learners(mdp: tabular.TabularMDP, expert: jax.Array, epsilon, default_action: int = 0):
    """The BC-like and DAgger-like learners, each ``[T, S, A]`` (see the module docstring).

    ``expert`` is a deterministic stationary policy ``[S, A]``; mistakes spread ε
    uniformly over the other ``A - 1`` actions.
    """
    A = mdp.n_actions
    noisy = (1.0 - epsilon) * expert + epsilon * (1.0 - expert) / (A - 1)
    noisy = tabular.time_indexed(mdp, noisy)
    on_support = tabular.visitation(mdp, expert) > 0  # [T, S]
    default = jax.nn.one_hot(default_action, A, dtype=noisy.dtype)
    bc_like = jnp.where(on_support[..., None], noisy, default)
    return bc_like, noisy


def gaps_and_errors(mdp: tabular.TabularMDP, expert: jax.Array, epsilons: jax.Array, default_action: int = 0):
    """Exact gaps for every horizon and the learners' errors on the expert's states.

    Returns ``gap [E, 2, T]`` with ``gap[..., T'-1] = J_{T'}(expert) - J_{T'}(learner)``
    and ``mean_error [E, 2, T]``, the learner's error on the expert's states
    averaged over the first ``T'`` steps (the ε̄ of Ross & Bagnell's bound).
    """
    gap, mean_error, _ = gaps_and_both_errors(mdp, expert, epsilons, default_action)
    return gap, mean_error


def gaps_and_both_errors(mdp: tabular.TabularMDP, expert: jax.Array, epsilons: jax.Array, default_action: int = 0):
    """:func:`gaps_and_errors` and, third, ``own_error [E, 2, T]``: each learner's error on its *own*
    states averaged over the first ``T'`` steps, the ``ε̄`` of Ross, Gordon & Bagnell's ``gap <= u T ε̄``
    (what DAgger's training controls)."""
    expert_rewards = tabular.reward_per_step(mdp, expert)
    steps = jnp.arange(1, mdp.horizon + 1)

    def per_epsilon(eps):
        learners = error_injection_learners(mdp, expert, eps, default_action)
        gaps, errors, own = [], [], []
        for learner in learners:
            gaps.append(jnp.cumsum(expert_rewards - tabular.reward_per_step(mdp, learner)))
            errors.append(jnp.cumsum(tabular.disagreement(mdp, learner, expert, states_of=expert)) / steps)
            own.append(jnp.cumsum(tabular.disagreement(mdp, learner, expert, states_of=learner)) / steps)
        return jnp.stack(gaps), jnp.stack(errors), jnp.stack(own)

    return jax.vmap(per_epsilon)(epsilons)


def recoverability_by_horizon(mdp: tabular.TabularMDP, expert: jax.Array) -> jax.Array:
    """``[T]``: entry ``T'-1`` is ``u`` at horizon ``T'``, ``max_{t, s, a} (V^E_t(s) - Q^E_t(s, a))``.

    The MDP is time-homogeneous, so its last ``T'`` steps at horizon ``T`` are the whole
    MDP at horizon ``T'``: ``u_{T'}`` is a running maximum over the steps counted from the
    end. Equals ``tabular.recoverability(mdp.with_horizon(T'), expert)`` for a stationary expert.
    """
    Q, V = tabular.policy_values(mdp, expert)
    per_step = jnp.max(V[..., None] - Q, axis=(1, 2))
    return jax.lax.cummax(per_step[::-1])


def bc_mean_policy(mdp: tabular.TabularMDP, expert: jax.Array, n_demos, default_action: int = 0) -> jax.Array:
    """``[T, S, A]``: time-indexed BC's policy averaged over data sets of ``n_demos`` expert trajectories.

    A state ``s`` is in the data at step ``t`` with probability ``1 - (1 - d^E_t(s))^N``
    (exact missing mass); there BC plays the (deterministic) expert's action, elsewhere
    ``default_action``. When the expert's states at different steps are independent (Reset
    Cliff: every step is a fresh draw from ρ) BC's per-step policies are independent, the
    return is multilinear in them, and ``J(bc_mean_policy) = E_D[J(BC(D))]`` exactly.
    """
    seen = 1.0 - (1.0 - tabular.visitation(mdp, expert)) ** n_demos  # [T, S]
    default = jax.nn.one_hot(default_action, mdp.n_actions, dtype=jnp.float64)
    return seen[..., None] * tabular.time_indexed(mdp, expert) + (1.0 - seen)[..., None] * default


def bc_expected_gap(mdp: tabular.TabularMDP, expert: jax.Array, n_demos, default_action: int = 0) -> jax.Array:
    """``[T]``: entry ``H-1`` is ``J_H(expert) - E_D[J_H(BC(D))]`` (see :func:`bc_mean_policy`), for every ``H``."""
    learner = bc_mean_policy(mdp, expert, n_demos, default_action)
    return jnp.cumsum(tabular.reward_per_step(mdp, expert) - tabular.reward_per_step(mdp, learner))


def rajaraman_instances(config: Config) -> dict[str, np.ndarray]:
    """The ``|S| x N`` grid of lower-bound instances as stacked dense arrays of one padded shape."""
    H, S_max = max(config.rajaraman_horizons), max(config.rajaraman_n_states)
    arrays = {"P": [], "R": [], "init": [], "terminal": [], "n_demos": []}
    for S in config.rajaraman_n_states:
        for N in config.rajaraman_n_demos:
            m = toy_mdps.rajaraman_lower_bound(H, S, N, pad_states=S_max - S)
            n_states, n_actions, _ = m.next_states.shape
            P = np.zeros((n_states, n_actions, n_states))  # dense, on the host (mdp.P would compile a scatter)
            s_idx, a_idx = np.meshgrid(np.arange(n_states), np.arange(n_actions), indexing="ij")
            np.add.at(P, (s_idx[..., None], a_idx[..., None], np.asarray(m.next_states)), np.asarray(m.next_probs))
            for name, value in (("P", P), ("R", m.R), ("init", m.init), ("terminal", m.terminal)):
                arrays[name].append(np.asarray(value))
            arrays["n_demos"].append(float(N))
    return {k: np.stack(v) for k, v in arrays.items()}


def rajaraman_fall(config: Config) -> np.ndarray:
    """``[|S|, N]``: ``μ = Σ_s ρ(s)(1-ρ(s))^N``, each step's chance of an unseen state (BC then falls)."""
    out = np.empty((len(config.rajaraman_n_states), len(config.rajaraman_n_demos)))
    for i, S in enumerate(config.rajaraman_n_states):
        for j, N in enumerate(config.rajaraman_n_demos):
            rho = np.asarray(toy_mdps.rajaraman_lower_bound(1, S, N).init)
            out[i, j] = np.sum(rho * (1.0 - rho) ** N)
    return out


def trap_closed_form(epsilon, horizon):
    """Ross & Bagnell's Trap gap ``T - (1-ε)(1-(1-ε)^T)/ε``, broadcast over ``epsilon`` and ``horizon``.

    Evaluated as the equal sum ``Σ_{t=1}^{T} (1 - (1-ε)^t)`` with ``expm1``/``log1p``:
    written as above, ``T`` minus a number close to ``T`` loses about ``1/(εT)``
    of float64's digits (relative error 1e-9 at ε = 1e-4, T = 1), which would make
    the 1e-9 check measure the formula's round-off instead of the computation.
    """
    eps, T = np.broadcast_arrays(np.asarray(epsilon, np.float64), np.asarray(horizon))
    out = np.empty(eps.shape, np.float64)
    for e in np.unique(eps):
        at = eps == e
        steps = np.arange(1, int(T[at].max()) + 1)
        partial = np.cumsum(-np.expm1(steps * np.log1p(-e)))
        out[at] = partial[T[at].astype(int) - 1]
    return out


def build_mdps(config: Config) -> dict[str, tabular.TabularMDP]:
    from toyrlhf.envs.gridworld import make_gridworld

    T = config.max_horizon
    mdps = {
        "Trap": toy_mdps.trap(T),
        "Lane": toy_mdps.lane(T, half_width=config.lane_half_width),
        "Standard imitation": toy_mdps.standard_imitation(T),
        "Slippery gridworld": make_gridworld(
            config.grid_map, slip=config.grid_slip, step_cost=config.grid_step_cost, horizon=T
        ).mdp,
    }
    assert tuple(mdps) == MDPS
    return mdps


def fit_slope(horizons, gaps, epsilon, fit_max_epsilon_t: float = 0.3) -> float:
    """Log-log slope over the horizons with ``εT <= fit_max_epsilon_t`` (NaN if fewer than 3 such points)."""
    keep = epsilon * horizons <= fit_max_epsilon_t
    if keep.sum() < 3:
        return float("nan")
    return loglog_slope(horizons[keep], gaps[keep])[0]


def compute(config: Config, clock: Clock | None = None) -> Output:
    """Every MDP, ε, learner and horizon, Trap's limit, and Rajaraman et al.'s grid, in one compiled call."""
    clock = clock or Clock()
    mdps = build_mdps(config)
    experts = tuple(stationary_expert(m) for m in mdps.values())
    epsilons = jnp.asarray(config.epsilons)
    H_rajaraman = max(config.rajaraman_horizons)
    instances = rajaraman_instances(config)

    @jax.jit
    def sweep(mdps, experts, epsilons, limit_epsilons, instances):
        main = tuple(
            (*gaps_and_both_errors(m, e, epsilons, config.default_action), recoverability_by_horizon(m, e))
            for m, e in zip(mdps, experts)
        )
        trap_limit, _ = gaps_and_errors(mdps[0], experts[0], limit_epsilons, config.default_action)

        def rajaraman(P, R, init, terminal, n_demos):
            mdp = tabular.TabularMDP(P, R, init, H_rajaraman, 1.0, terminal)
            return bc_expected_gap(mdp, stationary_expert(mdp), n_demos, config.default_action)

        names = ("P", "R", "init", "terminal", "n_demos")
        return main, trap_limit[:, 0], jax.vmap(rajaraman)(*(instances[k] for k in names))

    label = (
        f"{len(mdps)} MDPs x {len(config.epsilons)} ε x 2 learners"
        f" + Rajaraman {len(config.rajaraman_n_states)} |S| x {len(config.rajaraman_n_demos)} N"
    )
    main, trap_limit, raj = clock.call(
        label, sweep, tuple(mdps.values()), experts, epsilons, jnp.asarray(config.limit_epsilons), instances
    )
    return Output(
        gap=np.stack([np.asarray(o[0]) for o in main]),
        mean_error=np.stack([np.asarray(o[1]) for o in main]),
        reward_range=np.array([float(m.R.max() - m.R.min()) for m in mdps.values()]),
        recoverability=np.array([float(tabular.recoverability(m.with_horizon(64))) for m in mdps.values()]),
        own_error=np.stack([np.asarray(o[2]) for o in main]),
        recoverability_by_horizon=np.stack([np.asarray(o[3]) for o in main]),
        trap_limit_gap=np.asarray(trap_limit),
        rajaraman_gap=np.asarray(raj).reshape(len(config.rajaraman_n_states), len(config.rajaraman_n_demos), -1),
        rajaraman_fall=rajaraman_fall(config),
    )


def slopes(config: Config, output: Output) -> np.ndarray:
    """``[M, E, 2]`` log-log slopes over the plotted horizons with ``εT <= fit_max_epsilon_t``."""
    horizons = config.plot_horizons
    gap_at = output.gap[..., horizons - 1]
    return np.array(
        [
            [
                [fit_slope(horizons, gap_at[m, e, k], eps, config.fit_max_epsilon_t) for k in range(2)]
                for e, eps in enumerate(config.epsilons)
            ]
            for m in range(len(MDPS))
        ]
    )


def criteria(config: Config, output: Output) -> list[Criterion]:
    s = slopes(config, output)
    e0 = config.epsilons.index(config.primary_epsilon)
    detail = (
        f"exact; log-log least squares over horizons with εT <= {config.fit_max_epsilon_t}, "
        f"ε = {config.primary_epsilon}"
    )

    def slope(mdp, learner, lo, hi, kind="finding"):
        m, k = MDPS.index(mdp), LEARNERS.index(learner)
        return Criterion(f"{learner} slope on {mdp} in [{lo}, {hi}]", float(s[m, e0, k]), None, (lo, hi), kind, detail)

    fit = rajaraman_exponents(config, output)
    rajaraman_detail = (
        "exact expected gap (no sampling); measured: joint least-squares exponent of log gap on log N, log |S|, "
        f"log H over the {fit['n_points']} grid points with |S| H / N <= {config.rajaraman_fit_max_load}; "
        "interval: the range of the local exponents between adjacent grid points there (how far the exponent "
        "moves over the grid, not a sampling interval)"
    )

    def exponent(variable, theory, lo, hi):
        local = fit["local"][variable]
        interval = (float(np.min(local)), float(np.max(local))) if local.size else (math.nan, math.nan)
        return Criterion(
            f"Rajaraman et al.: time-indexed BC's expected gap on their lower-bound instance scales as "
            f"{variable}^{theory:+g} (exponent in [{lo}, {hi}])",
            fit["exponent"][variable], interval, (lo, hi), "finding", rajaraman_detail,
            to_decide="a grid with more points inside the fit region",
            interval_name="range of local exponents",
        )

    return [
        slope("Trap", "BC-like", 1.8, 2.05),
        slope("Lane", "BC-like", 1.8, 2.05),
        slope("Lane", "DAgger-like", 0.95, 1.05),
        slope("Standard imitation", "BC-like", 0.9, 1.1, "control"),
        slope("Standard imitation", "DAgger-like", 0.9, 1.1, "control"),
        exponent("N", -1, -1.1, -0.9),
        exponent("|S|", 1, 0.9, 1.1),
        exponent("H", 2, 1.8, 2.05),
    ]


RAJARAMAN_VARIABLES = ("N", "|S|", "H")


def rajaraman_grid(config: Config, output: Output) -> tuple[np.ndarray, np.ndarray]:
    """``(gap [|S|, N, H], load [|S|, N, H])`` on the grid of ``config``, ``load = |S| H / N``."""
    S = np.asarray(config.rajaraman_n_states, float)[:, None, None]
    N = np.asarray(config.rajaraman_n_demos, float)[None, :, None]
    H = np.asarray(config.rajaraman_horizons)
    return output.rajaraman_gap[..., H - 1], S * H[None, None, :] / N


def rajaraman_exponents(config: Config, output: Output) -> dict:
    """The exponents of the gap in ``N``, ``|S|``, ``H`` over the fit region (``|S| H / N <= fit_max_load``).

    ``exponent``: joint least-squares fit of ``log gap = c + a log N + b log|S| + h log H``, with its
    ordinary 95% t-interval in ``ols_interval`` (the misfit of one power law to exact values);
    ``local``: every local exponent between two grid points adjacent along one variable, both in the region.
    """
    from scipy import stats as scipy_stats

    if np.ndim(output.rajaraman_gap) != 3:  # not computed (an Output built without it)
        nan = {v: math.nan for v in RAJARAMAN_VARIABLES}
        return {"exponent": nan, "ols_interval": {v: (math.nan, math.nan) for v in RAJARAMAN_VARIABLES},
                "local": {v: np.zeros(0) for v in RAJARAMAN_VARIABLES}, "n_points": 0, "normalised": np.zeros(0)}
    gap, load = rajaraman_grid(config, output)
    axes = {
        "|S|": np.log(np.asarray(config.rajaraman_n_states, float)),
        "N": np.log(np.asarray(config.rajaraman_n_demos, float)),
        "H": np.log(np.asarray(config.rajaraman_horizons, float)),
    }
    inside = (load <= config.rajaraman_fit_max_load) & (gap > 0)
    log_gap = np.log(np.where(gap > 0, gap, 1.0))
    local = {}
    for axis, name in enumerate(("|S|", "N", "H")):
        num = np.diff(log_gap, axis=axis)
        den = np.diff(axes[name]).reshape([-1 if i == axis else 1 for i in range(3)])
        n = inside.shape[axis]
        both = np.take(inside, range(1, n), axis) & np.take(inside, range(n - 1), axis)
        local[name] = (num / den)[both]
    grid = np.meshgrid(axes["|S|"], axes["N"], axes["H"], indexing="ij")
    X = np.stack([np.ones(inside.sum()), grid[1][inside], grid[0][inside], grid[2][inside]], axis=1)
    y = log_gap[inside]
    exponent = {v: math.nan for v in RAJARAMAN_VARIABLES}
    ols = {v: (math.nan, math.nan) for v in RAJARAMAN_VARIABLES}
    if len(y) > X.shape[1] and np.linalg.matrix_rank(X) == X.shape[1]:
        beta, *_ = np.linalg.lstsq(X, y, rcond=None)
        dof = len(y) - X.shape[1]
        sigma2 = float(np.sum((y - X @ beta) ** 2)) / dof
        se = np.sqrt(np.diag(sigma2 * np.linalg.inv(X.T @ X)))
        half = scipy_stats.t.ppf(0.975, dof) * se
        for k, v in enumerate(RAJARAMAN_VARIABLES, start=1):
            exponent[v], ols[v] = float(beta[k]), (float(beta[k] - half[k]), float(beta[k] + half[k]))
    S, N = np.meshgrid(np.asarray(config.rajaraman_n_states, float), np.asarray(config.rajaraman_n_demos, float),
                       indexing="ij")
    normalised = gap * N[..., None] / (S[..., None] * np.asarray(config.rajaraman_horizons, float) ** 2)
    return {"exponent": exponent, "ols_interval": ols, "local": local, "n_points": int(inside.sum()),
            "normalised": normalised[inside]}


def trap_relative_error(config: Config, output: Output) -> float:
    T = np.arange(1, config.max_horizon + 1)
    closed = trap_closed_form(np.asarray(config.epsilons)[:, None], T[None, :])
    return float(np.max(np.abs(output.gap[MDPS.index("Trap"), :, 0] - closed) / closed))


def bound_ratio(config: Config, output: Output) -> float:
    """Largest ``gap / (T² ε̄ (R_max - R_min))`` over every MDP, learner, ε and ``T >= 2``."""
    T = np.arange(1, config.max_horizon + 1)
    bound = T**2 * output.mean_error * output.reward_range[:, None, None, None]
    ratio = np.divide(output.gap, bound, out=np.zeros_like(output.gap), where=bound > 0)
    return float(np.max(ratio[..., 1:]))


def checks(config: Config, output: Output) -> list[Criterion]:
    rel = trap_relative_error(config, output)
    ratio = bound_ratio(config, output)
    return [
        Criterion(
            "Trap closed form T - (1-ε)(1-(1-ε)^T)/ε matches the exact gap to relative error 1e-9",
            rel, None, (0.0, 1e-9), "check",
            f"maximum relative error over every ε in {list(config.epsilons)} and T = 1..{config.max_horizon}",
            disclosure=(
                "The first full run evaluated the closed form as written, T − (1−ε)(1−(1−ε)^T)/ε, and measured "
                "1.29e-9 (NOT SUPPORTED): the formula's own cancellation at ε = 1e-4. It is now evaluated as the "
                "equal sum Σ_t (1−(1−ε)^t) with expm1/log1p; the computed gap did not change."
            ),
        ),
        Criterion(
            "Ross–Bagnell bound gap <= T² ε̄ (R_max - R_min) holds at every T >= 2",
            ratio, None, (0.0, 1.0 + 1e-9), "check",
            "maximum of gap / bound over MDPs, learners, ε and T >= 2 (at T = 1 the two are equal by definition)",
        ),
        Criterion(
            "Ross & Bagnell's limit: gap / (ε T²) on Trap tends to 1/2 as εT -> 0 (within [0.49, 0.51])",
            trap_limit_ratio(config, output), None, (0.49, 0.51), "check",
            f"the BC-like learner's exact gap on Trap at ε = {min(config.limit_epsilons):g} and T = "
            f"{config.max_horizon} (εT = {min(config.limit_epsilons) * config.max_horizon:.2g}); exactly "
            "(T+1)/(2T) (1 - O(εT)), the closed form's expansion",
        ),
        Criterion(
            "Ross, Gordon & Bagnell: DAgger-like gap <= u T ε̄ on Lane at every ε and T >= 2 (u = recoverability)",
            dagger_bound_ratio(config, output), None, (0.0, 1.0 + 1e-9), "check",
            "maximum over ε and T >= 2 of gap / (u_T T ε̄_own): ε̄_own is the learner's exact error on its own states, "
            "u_T = tabular.recoverability at horizon T from the expert's Q (at T = 1 the two are equal)",
        ),
    ]


def trap_limit_ratio(config: Config, output: Output) -> float:
    """``gap / (ε T²)`` on Trap at the smallest of ``limit_epsilons`` and ``T = max_horizon``."""
    k = int(np.argmin(config.limit_epsilons))
    if np.ndim(output.trap_limit_gap) != 2:
        return math.nan
    return float(output.trap_limit_gap[k, -1] / (config.limit_epsilons[k] * config.max_horizon**2))


def dagger_ratios(config: Config, output: Output, mdp: str = "Lane") -> np.ndarray:
    """``[E, T]``: the DAgger-like gap over Ross et al.'s bound ``u_T T ε̄_own`` on ``mdp``."""
    m = MDPS.index(mdp)
    T = np.arange(1, config.max_horizon + 1)
    if np.ndim(output.own_error) != 4 or np.ndim(output.recoverability_by_horizon) != 2:
        return np.full((len(config.epsilons), len(T)), math.nan)
    bound = output.recoverability_by_horizon[m][None, :] * T[None, :] * output.own_error[m, :, 1]
    gap = output.gap[m, :, 1]
    return np.divide(gap, bound, out=np.full_like(gap, np.inf), where=bound > 0)


def dagger_bound_ratio(config: Config, output: Output) -> float:
    """Largest DAgger-like ``gap / (u T ε̄_own)`` on Lane over every ε and ``T >= 2`` (at ``T = 1`` it is 1)."""
    return float(np.max(dagger_ratios(config, output)[:, 1:]))


def measurements(config: Config, output: Output) -> dict:
    s = slopes(config, output)
    fit = rajaraman_exponents(config, output)
    return {
        "slopes": {
            name: {f"eps={eps:g}": {LEARNERS[k]: s[m, e, k] for k in range(2)} for e, eps in enumerate(config.epsilons)}
            for m, name in enumerate(MDPS)
        },
        "recoverability_u": dict(zip(MDPS, output.recoverability.tolist())),
        "rajaraman": {
            "theory": {"N": -1, "|S|": 1, "H": 2},
            "exponent": fit["exponent"],
            "ols_95_interval": fit["ols_interval"],
            "local_exponent_range": {
                v: [float(np.min(x)), float(np.max(x))] if x.size else None for v, x in fit["local"].items()
            },
            "n_fit_points": fit["n_points"],
            "gap_times_N_over_S_H2": float(np.median(fit["normalised"])) if fit["normalised"].size else None,
            "known_transitions": "gap 0: with two actions the dynamics reveal the expert's (the only one that does "
            "not fall); their known-transition rates are bounds on another instance, not reproduced",
        },
        "ross_bagnell_limit": trap_limit_ratio(config, output),
        "dagger_bound_ratio_T_ge_2": {
            name: float(np.max(dagger_ratios(config, output, name)[:, 1:])) for name in ("Lane", "Trap")
        },
    }


def plot(config: Config, output: Output):
    """One slide: a log-log panel per MDP (BC-like solid, DAgger-like dashed, a colour per ε), then the
    published numbers: Rajaraman et al.'s exponents in N and H, Ross & Bagnell's 1/2, Ross et al.'s u T ε."""
    import matplotlib.pyplot as plt

    from toyrlhf.plotting import apply_style

    apply_style()
    horizons = config.plot_horizons
    gap_at = output.gap[..., horizons - 1]
    trap_closed = trap_closed_form(np.asarray(config.epsilons)[:, None], horizons[None, :])
    s = slopes(config, output)
    fig, axes = plt.subplots(2, 4, figsize=(18, 8))
    colors = plt.cm.viridis(np.linspace(0.05, 0.85, len(config.epsilons)))
    e0 = config.epsilons.index(config.primary_epsilon)
    for m, (ax, name) in enumerate(zip(axes[:, :2].ravel(), MDPS)):
        for e, eps in enumerate(config.epsilons):
            for k, style in enumerate(("-", "--")):
                y = gap_at[m, e, k]
                ok = y > 0
                label = f"{LEARNERS[k]}, ε={eps:g}" if m == 0 else None
                ax.loglog(horizons[ok], y[ok], style, color=colors[e], label=label)
            if name == "Trap":
                ax.loglog(horizons, trap_closed[e], "o", ms=3, color=colors[e], mfc="none")
        # Guide lines through the primary-ε BC-like curve's first point: slopes 1 and 2.
        y0 = gap_at[m, e0, 0, 0]
        if y0 > 0:
            for power, tag in ((1, "∝ T"), (2, "∝ T²")):
                ax.loglog(horizons, y0 * (horizons / horizons[0]) ** power, ":", color="0.6", lw=1)
                ax.annotate(tag, (horizons[-1], y0 * (horizons[-1] / horizons[0]) ** power), color="0.4", fontsize=8)
        ax.set_title(
            f"{name}\nslope at ε={config.primary_epsilon:g}: BC {s[m, e0, 0]:.2f}, DAgger {s[m, e0, 1]:.2f}",
            fontsize=10,
        )
        ax.set_xlabel("horizon T")
        ax.set_ylabel("exact gap J(expert) − J(learner)")
    fig.legend(loc="lower left", ncol=len(config.epsilons), fontsize=8, frameon=False, bbox_to_anchor=(0.02, 0.0))

    # Rajaraman et al.: the exact expected gap against N (one line per |S|, at one H) and against H.
    fit = rajaraman_exponents(config, output)
    gap, load = rajaraman_grid(config, output)
    N, H = np.asarray(config.rajaraman_n_demos), np.asarray(config.rajaraman_horizons)
    s_colors = plt.cm.plasma(np.linspace(0.1, 0.8, len(config.rajaraman_n_states)))
    h_pick = len(H) // 2
    ax = axes[0, 2]
    for i, S in enumerate(config.rajaraman_n_states):
        inside = load[i, :, h_pick] <= config.rajaraman_fit_max_load
        ax.loglog(N, gap[i, :, h_pick], "-", color=s_colors[i], alpha=0.35)
        ax.loglog(N[inside], gap[i, inside, h_pick], "o-", color=s_colors[i], ms=4, label=f"|S| = {S}")
    ax.loglog(N, H[h_pick] ** 2 * config.rajaraman_n_states[-1] / (2 * np.e * N), ":", color="0.4",
              label="|S| H² / (2eN), largest |S|")
    exp = fit["exponent"]
    rng = {v: (np.min(x), np.max(x)) if x.size else (np.nan, np.nan) for v, x in fit["local"].items()}
    ax.set_title(
        f"Rajaraman et al.'s instance, time-indexed BC, H = {H[h_pick]}\n"
        f"exponent of N {exp['N']:.3f} [{rng['N'][0]:.3f}, {rng['N'][1]:.3f}] (theory −1); "
        f"of |S| {exp['|S|']:.3f} [{rng['|S|'][0]:.3f}, {rng['|S|'][1]:.3f}] (+1)",
        fontsize=9,
    )
    ax.set_xlabel("demonstrations N")
    ax.set_ylabel("exact expected gap (dots: fit region)")
    ax.legend(fontsize=7)
    ax = axes[1, 2]
    for i, S in enumerate(config.rajaraman_n_states):
        inside = load[i, -1, :] <= config.rajaraman_fit_max_load
        ax.loglog(H, gap[i, -1, :], "-", color=s_colors[i], alpha=0.35)
        ax.loglog(H[inside], gap[i, -1, inside], "o-", color=s_colors[i], ms=4, label=f"|S| = {S}")
    ax.set_title(
        f"the same against H, N = {N[-1]}\nexponent of H {exp['H']:.3f} [{rng['H'][0]:.3f}, {rng['H'][1]:.3f}] "
        "(theory +2)",
        fontsize=9,
    )
    ax.set_xlabel("horizon H")
    ax.xaxis.set_minor_formatter(plt.NullFormatter())
    ax.set_ylabel("exact expected gap")
    ax.legend(fontsize=7)

    # Ross & Bagnell: gap / (ε T²) on Trap tends to 1/2 as εT -> 0.
    ax = axes[0, 3]
    T = np.arange(1, config.max_horizon + 1)
    all_eps = list(config.limit_epsilons) + list(config.epsilons)
    all_gaps = list(output.trap_limit_gap) + list(output.gap[MDPS.index("Trap"), :, 0])
    order = np.argsort(all_eps)
    l_colors = plt.cm.cividis(np.linspace(0.0, 0.9, len(all_eps)))
    for c, k in enumerate(order):
        ax.semilogx(all_eps[k] * T, all_gaps[k] / (all_eps[k] * T**2), color=l_colors[c], label=f"ε={all_eps[k]:g}")
    ax.axhline(0.5, color="k", ls=":", lw=1)
    ax.set_ylim(0, 1.05)
    ax.set_title(f"Ross & Bagnell on Trap: gap/(εT²) → 1/2 as εT → 0\nmeasured {trap_limit_ratio(config, output):.4f} "
                 f"at ε={min(config.limit_epsilons):g}, T={config.max_horizon}", fontsize=9)
    ax.set_xlabel("εT")
    ax.set_ylabel("gap / (ε T²)")
    ax.legend(fontsize=7)

    # Ross, Gordon & Bagnell: the DAgger-like gap on Lane under u T ε̄_own.
    ax = axes[1, 3]
    ratios = dagger_ratios(config, output)
    for e, eps in enumerate(config.epsilons):
        ax.semilogx(T, ratios[e], color=colors[e], label=f"ε={eps:g}")
    ax.axhline(1.0, color="k", ls=":", lw=1)
    ax.set_ylim(0, 1.1)
    u = output.recoverability_by_horizon[MDPS.index("Lane"), -1]
    ax.set_title(f"Ross, Gordon & Bagnell on Lane: DAgger-like gap / (u T ε̄)\nu = {u:g}; largest ratio at T ≥ 2: "
                 f"{dagger_bound_ratio(config, output):.3f} (bound: 1)", fontsize=9)
    ax.set_xlabel("horizon T")
    ax.set_ylabel("gap / (u T ε̄_own)")
    ax.legend(fontsize=7)

    fig.suptitle(
        "Compounding error, exactly: BC-like (solid) vs DAgger-like (dashed); circles: Trap closed form; "
        f"slopes fitted where εT ≤ {config.fit_max_epsilon_t}. Right: the published numbers reproduced",
        fontsize=11,
    )
    fig.tight_layout(rect=(0, 0.05, 1, 0.95))
    return fig
