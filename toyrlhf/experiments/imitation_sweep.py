"""The five imitation learners of claim T2, trained from one data set per seed and scored exactly.

Shared by ``compounding-error`` (fixed ``N``, the horizon grows) and
``bc-vs-irl-data`` (fixed horizon, ``N`` grows); it is not an experiment itself.
A sweep visits *points* ``(n, h)``: a method trained on the first ``n`` of a
seed's ``N_max`` expert episodes, judged on the first ``h`` steps. Every method
of a seed learns from the same episodes (DAgger collects its own, with the
same label budget), and every gap ``J_h(expert) - J_h(learner)`` is exact
(``toyrlhf.tabular``), so the only randomness is the data and the learners' own.

Methods (:data:`METHODS`), all with the same action on unseen states for the
BC-based ones (``MethodSettings.default_action``, DESIGN.md pitfall 4):

- **BC (time-indexed)**: a policy per step from the ``n`` samples at that step;
- **BC (stationary)**: one policy from the ``n h`` pooled samples of the first
  ``h`` steps (more data per state as ``h`` grows: the control of pitfall 3);
- **DAgger** (``toyrlhf.algorithms.dagger``): ``dagger_rounds`` rounds of
  ``n / dagger_rounds`` episodes, ``β_i = 1[i = 0]``: the same ``n H`` expert
  labels, round 0 the expert's own episodes (sampled by DAgger, not BC's);
- **MaxEnt IRL** (``toyrlhf.algorithms.maxent_irl``): one-hot (s, a) reward, soft
  value iteration in the known dynamics, judged by the true return of its hard
  optimal policy for the horizon-``h`` problem;
- **GAIL** (``toyrlhf.algorithms.gail``, ``GAILConfig.tabular()``'s settings):
  PPO on a discriminator reward with tables for policy, critic and discriminator,
  on the state index (a stationary policy), trained by sampling the MDP (no
  dynamics model; its environment steps are counted).

How one compiled program covers every point. ``n`` enters through
:func:`first_n_tiled` (the first ``n`` episodes repeated to fill ``N_max`` rows:
BC's action frequencies, MaxEnt IRL's empirical occupancy and GAIL's
discriminator loss are normalised by their total weight, so they are unchanged,
and the shapes do not depend on ``n``); ``h`` enters as a mask on the
demonstrations' ``valid`` steps, as MaxEnt IRL's traced horizon
(``maxent_irl.shorter_horizon``) and as GAIL's environment horizon
(``TabularEnv`` reads it only in ``step``, so it may be traced). Time-indexed
BC and DAgger are *prefix-consistent* (their first ``h`` steps do not depend on
later ones), so one fit at ``mdp.horizon`` serves every ``h``. DAgger's rollouts
have an ``n``-dependent shape: it is trained once per distinct ``n``, inside the
same program.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from toyrlhf import demonstrations as demo_lib
from toyrlhf import tabular
from toyrlhf.algorithms import bc, dagger, gail, maxent_irl
from toyrlhf.envs import tabular_env
from toyrlhf.envs.gridworld import GridWorld, make_gridworld
from toyrlhf.stats import bootstrap_interval, iqm, loglog_slope
from toyrlhf.validation import non_negative_int, positive_float, positive_int

METHODS = ("BC (time-indexed)", "BC (stationary)", "DAgger", "MaxEnt IRL", "GAIL")
"""The five learners, in the order of every ``[..., M, ...]`` axis."""
IRL_METHODS = ("MaxEnt IRL", "GAIL")
"""The inverse-RL methods (a reward is learned, then a policy for it)."""
KNOWN_DYNAMICS = ("MaxEnt IRL",)
"""Methods that use the exact transition model (GAIL samples the MDP instead)."""

ROUND_OFF = 1e-9
"""Gaps smaller than this in magnitude are float64 round-off of an exact zero and are set to 0."""

LAVA_LAKE = (
    "LLLLLLLLL",
    "L.......L",
    "L.S.S.S.L",
    "L.......G",
    "L.S.S.S.L",
    "L.......L",
    "LLLLLLLLL",
)
"""The lava lake: 35 floor cells ringed by lava, six start cells; ``G`` is one more exit (maps need a goal)."""


@dataclasses.dataclass(frozen=True)
class MethodSettings:
    """The learners' settings (each experiment's ``Config`` holds them as its own fields)."""

    default_action: int | None = 0
    """BC's (and DAgger's) action on a state with no data at that step; ``None``: uniform."""
    dagger_rounds: int = 4
    """DAgger rounds; every ``n`` of a sweep must be a multiple."""
    irl_steps: int = 100
    """Adam steps of MaxEnt IRL."""
    irl_learning_rate: float = 0.1
    """Adam step size of MaxEnt IRL."""
    gail_updates: int = 60
    """GAIL rounds (``GAILConfig.tabular()``'s default; every other GAIL number is that config's)."""

    def __post_init__(self):
        positive_int("dagger_rounds", self.dagger_rounds)
        positive_int("irl_steps", self.irl_steps)
        positive_int("gail_updates", self.gail_updates)
        positive_float("irl_learning_rate", self.irl_learning_rate)
        if self.default_action is not None:
            non_negative_int("default_action", self.default_action)

    def gail_config(self) -> gail.GAILConfig:
        """Tabular GAIL: tables for policy, critic and discriminator."""
        return gail.GAILConfig.tabular(n_updates=self.gail_updates)


def method_settings(config) -> MethodSettings:
    """The :class:`MethodSettings` held as fields of an experiment's ``config`` (same names)."""
    return MethodSettings(**{f.name: getattr(config, f.name) for f in dataclasses.fields(MethodSettings)})


def lava_lake(horizon: int, slip: float, layout: Sequence[str] = LAVA_LAKE) -> tuple[GridWorld, tabular.TabularMDP]:
    """A slippery gridworld with ``+1`` for every step on the floor; lava and the exit absorb with nothing to earn.

    Returns the :class:`GridWorld` (geometry, for drawing) and the MDP that is learned
    and evaluated: the gridworld's transitions, start and terminal cells, with reward
    ``R[s, a] = 1`` on every non-terminal ``s`` and ``0`` in lava and at ``G``. The
    per-step reward (not a one-off goal reward) is what lets an early mistake cost
    ``O(H)``, as on Reset Cliff; unlike Reset Cliff, a slip can be walked back.
    """
    grid = make_gridworld(list(layout), slip=slip, horizon=horizon, goal_reward=0.0, lava_reward=0.0)
    m = grid.mdp
    reward = jnp.broadcast_to(jnp.where(m.terminal, 0.0, 1.0)[:, None], (m.n_states, m.n_actions))
    mdp = tabular.TabularMDP.from_successors(m.next_states, m.next_probs, reward, m.init, horizon, terminal=m.terminal)
    return grid, mdp


def stationary_expert(mdp: tabular.TabularMDP) -> jax.Array:
    """``[S, A]``: the optimal first-step action everywhere, the expert of a long horizon used at every step."""
    return tabular.solve(mdp).policy[0]


def first_n_tiled(demos: demo_lib.Demonstrations, n) -> demo_lib.Demonstrations:
    """The first ``n`` episodes (``n`` may be traced) repeated to fill all ``N_max`` rows: row ``i`` is ``i mod n``.

    When ``n`` divides ``N_max`` every episode appears ``N_max / n`` times, so
    normalised counts (BC's action frequencies, an empirical occupancy) equal those
    of the first ``n`` episodes exactly, at a shape that does not depend on ``n``.
    """
    rows = jnp.arange(demos.n_episodes) % n
    return demo_lib.Demonstrations(*(x[rows] for x in demos))


def seed_keys(seed: int, n_seeds: int) -> jax.Array:
    """``[n_seeds]`` keys, one per data set: ``split(key(seed), n_seeds)``."""
    return jax.random.split(jax.random.key(seed), n_seeds)


def demonstrations_for(key: jax.Array, mdp: tabular.TabularMDP, expert: jax.Array, n_max: int):
    """The ``n_max`` expert episodes a sweep's seed ``key`` learns from (what every method of that seed sees)."""
    key_demos, _ = jax.random.split(key)
    return demo_lib.sample_demonstrations(key_demos, mdp, tabular.time_indexed(mdp, expert), n_max)


class MethodScores(NamedTuple):
    """Methods on one seed, at every point of a sweep: ``M`` methods, ``P`` points (vmap adds ``[n_seeds]``)."""

    gap: jax.Array
    """``[M, P]``: exact ``J_h(expert) - J_h(learner)``."""
    error_on_expert_states: jax.Array
    """``[M, P]``: mean over ``t < h`` of the per-step TV error on the expert's states (BC's ε)."""
    error_on_own_states: jax.Array
    """``[M, P]``: the same on the learner's own states (DAgger's ε)."""
    visits: jax.Array
    """``[M, S]``: exact expected visits ``Σ_{t<h} d_t(s)`` of the learner at the last point."""
    expert_labels: jax.Array
    """``[M, P]``: expert labels the method used."""
    env_steps: jax.Array
    """``[M, P]``: environment steps the learner took itself (from its ``Resources``)."""


class SweepScores(NamedTuple):
    """Every method on every seed of one MDP: ``M`` = :data:`METHODS` (or the ``methods`` swept), ``P`` = points."""

    gap: np.ndarray
    """``[n_seeds, M, P]``: exact ``J_h(expert) - J_h(learner)``."""
    error_on_expert_states: np.ndarray
    """``[n_seeds, M, P]``: per-step TV error on the expert's states, mean over ``t < h``."""
    error_on_own_states: np.ndarray
    """``[n_seeds, M, P]``: per-step TV error on the learner's own states, mean over ``t < h``."""
    visits: np.ndarray
    """``[n_seeds, M, S]``: expected visits ``Σ_{t<h} d_t(s)`` at the last point."""
    expert_labels: np.ndarray
    """``[M, P]``: expert labels per data set (the same for every seed)."""
    env_steps: np.ndarray
    """``[M, P]``: the learner's own environment steps per data set (the same for every seed)."""


def gaps_of(scores: SweepScores, method: str) -> np.ndarray:
    """``[n_seeds, P]``: the exact gaps of ``method``."""
    return np.asarray(scores.gap)[:, METHODS.index(method)]


class Learned(NamedTuple):
    """What one method learned at every point of a sweep, for one seed."""

    policies: jax.Array
    """``[P, T, S, A]``: the policy trained for each point (valid for its first ``h`` steps)."""
    expert_labels: jax.Array
    """``[P]``: expert labels used."""
    env_steps: jax.Array
    """``[P]``: the learner's own environment steps."""


def make_sweep(
    settings: MethodSettings,
    mdp: tabular.TabularMDP,
    expert: jax.Array,
    n_demos: Sequence[int],
    horizons: Sequence[int],
    methods: Sequence[str] = METHODS,
) -> Callable[[jax.Array], MethodScores]:
    """``sweep(key) -> MethodScores`` of ``methods`` over the points ``zip(n_demos, horizons)``; vmap over keys.

    ``expert`` is a deterministic policy ``[S, A]`` or ``[T, S, A]`` of ``mdp`` (whose
    horizon is the largest ``h``). Every ``n`` must divide ``max(n_demos)`` (tiling is
    exact) and be a multiple of ``settings.dagger_rounds``; every ``h`` lies in
    ``[1, mdp.horizon]``. All methods of one ``key`` learn from
    :func:`demonstrations_for` ``(key, ...)`` (DAgger collects its own).
    """
    n_demos, horizons = tuple(int(n) for n in n_demos), tuple(int(h) for h in horizons)
    if len(n_demos) != len(horizons) or not n_demos:
        raise ValueError(f"n_demos and horizons must be non-empty and of one length, got {n_demos} and {horizons}")
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"methods must be a non-empty selection of {METHODS}, got {tuple(methods)}")
    n_max, H = max(n_demos), mdp.horizon
    bad = [n for n in n_demos if n < 1 or n_max % n or n % settings.dagger_rounds]
    if bad:
        raise ValueError(f"n_demos {bad} must divide the largest ({n_max}) and be multiples of dagger_rounds "
                         f"({settings.dagger_rounds})")
    if not all(1 <= h <= H for h in horizons):
        raise ValueError(f"horizons {horizons} must lie in [1, {H}] (the MDP's horizon)")
    S, A = mdp.n_states, mdp.n_actions
    expert = tabular.time_indexed(mdp, expert)
    expert_rewards = tabular.reward_per_step(mdp, expert)
    ns, hs = jnp.asarray(n_demos), jnp.asarray(horizons)
    labels = jnp.asarray([n * h for n, h in zip(n_demos, horizons)])
    no_steps = jnp.zeros(len(n_demos), dtype=labels.dtype)
    steps = jnp.arange(H)
    as_time_indexed = jax.vmap(lambda p: tabular.time_indexed(mdp, p))

    def data(demos, n, h):  # the first n episodes, tiled, with only their first h steps valid
        d = first_n_tiled(demos, n)
        return d._replace(valid=d.valid & (steps < h))

    def fit_bc(time_indexed):
        def learn(key, demos):
            fit = lambda n, h: bc.fit_tabular(  # noqa: E731
                data(demos, n, h), S, A, time_indexed=time_indexed, default_action=settings.default_action
            )
            return Learned(as_time_indexed(jax.vmap(fit)(ns, hs)), labels, no_steps)

        return learn

    dagger_trains = {
        n: dagger.make_train(
            dagger.DAggerConfig(
                n_rounds=settings.dagger_rounds,
                episodes_per_round=n // settings.dagger_rounds,
                default_action=settings.default_action,
            ),
            mdp,
            expert,
        )
        for n in sorted(set(n_demos))
    }

    def learn_dagger(key, demos):  # one run per distinct n at the full horizon (prefix-consistent)
        key_dagger = jax.random.split(key)[1]
        runs = {n: train(key_dagger) for n, train in dagger_trains.items()}

        def first_h(count):  # DAgger counts all H steps of its episodes; the first h of each serve horizon h
            per_point = jnp.stack([jnp.asarray(count(runs[n].resources), dtype=labels.dtype) for n in n_demos])
            return per_point * hs // H

        policies = jnp.stack([runs[n].policy for n in n_demos])
        return Learned(policies, first_h(lambda r: r.expert_labels), first_h(lambda r: r.env_steps))

    irl_train = maxent_irl.make_train(
        maxent_irl.MaxEntIRLConfig(n_steps=settings.irl_steps, learning_rate=settings.irl_learning_rate), mdp
    )

    def learn_maxent_irl(key, demos):
        def at(n, h):
            result = irl_train(data(demos, n, h), h)
            return jnp.where(jnp.any(result.nonfinite), jnp.nan, result.policy)  # NaN in training -> NaN gap

        return Learned(jax.vmap(at)(ns, hs), labels, no_steps)

    gail_config = settings.gail_config()
    env, env_params = tabular_env(mdp, "index")

    def learn_gail(key, demos):
        key_gail = jax.random.fold_in(key, 2)

        def at(n, h):
            # TabularEnv reads its horizon only in step (truncation), so it may be traced here.
            train = gail.make_train(gail_config, dataclasses.replace(env, horizon=h), env_params)
            result, metrics = train(key_gail, data(demos, n, h))
            policy = gail.tabular_policy(gail_config, result, env_params)
            policy = jnp.where(jnp.any(metrics.nonfinite), jnp.nan, policy)  # NaN in training -> NaN gap
            return tabular.time_indexed(mdp, policy), jnp.asarray(result.resources.env_steps, dtype=labels.dtype)

        policies, env_steps = jax.vmap(at)(ns, hs)
        return Learned(policies, labels, env_steps)

    learners = {
        "BC (time-indexed)": fit_bc(True),
        "BC (stationary)": fit_bc(False),
        "DAgger": learn_dagger,
        "MaxEnt IRL": learn_maxent_irl,
        "GAIL": learn_gail,
    }

    expert_visitation = tabular.visitation(mdp, expert)  # [T, S]

    def score(policy, h):  # policy [T, S, A] -> (gap, error on expert's states, error on own states, visits)
        # One visitation pass gives what tabular.reward_per_step, tabular.disagreement and the visits need.
        visitation = tabular.visitation(mdp, policy)  # [T, S]
        first_h = steps < h
        rewards = jnp.einsum("ts,tsa,sa->t", visitation, policy, mdp.R)
        gap = jnp.sum(jnp.where(first_h, expert_rewards - rewards, 0.0))
        gap = jnp.where(jnp.abs(gap) < ROUND_OFF, 0.0, gap)  # exact zeros, not float64 noise
        tv = 0.5 * jnp.sum(jnp.abs(policy - expert), axis=-1)  # [T, S]: Pr(action differs from the expert's)

        def mean_error(d):
            return jnp.sum(jnp.where(first_h, jnp.sum(d * tv, axis=-1), 0.0)) / h

        visits = jnp.sum(jnp.where(first_h[:, None], visitation, 0.0), axis=0)
        return gap, mean_error(expert_visitation), mean_error(visitation), visits

    def sweep(key) -> MethodScores:
        demos = demonstrations_for(key, mdp, expert, n_max)
        learned = [learners[m](key, demos) for m in methods]
        policies = jnp.stack([x.policies for x in learned])  # [M, P, T, S, A]
        gap, on_expert, on_own, visits = jax.vmap(jax.vmap(score), in_axes=(0, None))(policies, hs)
        return MethodScores(
            gap=gap,
            error_on_expert_states=on_expert,
            error_on_own_states=on_own,
            visits=visits[:, -1],
            expert_labels=jnp.stack([x.expert_labels for x in learned]),
            env_steps=jnp.stack([x.env_steps for x in learned]),
        )

    return sweep


def run_sweep(clock, label: str, sweep: Callable[[jax.Array], MethodScores], keys: jax.Array) -> SweepScores:
    """Compile and run ``jit(vmap(sweep))(keys)`` as one program; per-seed constants lose their seed axis."""
    out = clock.call(label, jax.jit(jax.vmap(sweep)), keys)
    return SweepScores(
        gap=np.asarray(out.gap),
        error_on_expert_states=np.asarray(out.error_on_expert_states),
        error_on_own_states=np.asarray(out.error_on_own_states),
        visits=np.asarray(out.visits),
        expert_labels=np.asarray(out.expert_labels)[0],
        env_steps=np.asarray(out.env_steps)[0],
    )


def gail_env_steps(config: gail.GAILConfig) -> int:
    """Environment steps of one GAIL run: PPO's and the discriminator's rollouts (whatever the horizon)."""
    return config.ppo.n_updates * config.ppo.n_envs * (config.ppo.n_steps + config.disc_n_steps)


# ------------------------------------------------------------------------------------------
# Statistics of the sweeps, shared by the two experiments' criteria
# ------------------------------------------------------------------------------------------


def seed_mean_slope(x, gaps) -> float:
    """Slope of log(seed-mean gap) on log(x) over the points where the mean gap is positive.

    ``gaps`` is ``[n_seeds, P]``. Every point counts when all means are positive (the
    point estimate); a bootstrap resample in which no seed erred at some point drops
    that point. NaN with fewer than 3 such points (2 if ``P = 2``); a slope within round-off of 0 is 0.
    """
    mean = np.mean(gaps, axis=0)
    keep = mean > 0
    if keep.sum() < min(3, len(mean)) or keep.sum() < 2:
        return float("nan")
    slope = loglog_slope(np.asarray(x)[keep], mean[keep])[0]
    return 0.0 if abs(slope) < ROUND_OFF else slope  # a flat curve is flat, not 1e-17 downhill


def ratio(a, b, statistic=np.mean) -> float:
    """``statistic(a) / statistic(b)``; NaN when the denominator is 0 (nothing to compare with)."""
    num, den = float(statistic(a)), float(statistic(b))
    return num / den if den != 0 else float("nan")


def paired_ratio_interval(a, b, statistic=np.mean, seed: int = 0):
    """``statistic(a) / statistic(b)`` over seeds with a paired BCa bootstrap: ``(estimate, lo, hi)``."""
    pairs = np.stack([np.asarray(a), np.asarray(b)], axis=1)
    return bootstrap_interval(pairs, lambda p: ratio(p[:, 0], p[:, 1], statistic), seed=seed)


def paired_difference_interval(a, b, statistic=iqm, seed: int = 0):
    """``statistic(a) - statistic(b)`` over seeds with a paired BCa bootstrap: ``(estimate, lo, hi)``."""
    pairs = np.stack([np.asarray(a), np.asarray(b)], axis=1)
    return bootstrap_interval(pairs, lambda p: float(statistic(p[:, 0]) - statistic(p[:, 1])), seed=seed)


def visits_identity_error(scores: SweepScores, last_horizon: int) -> float:
    """Largest ``|Σ_s visits(s) - h|`` over seeds and methods: exact visits of ``h`` steps sum to ``h``."""
    return float(np.max(np.abs(np.asarray(scores.visits).sum(-1) - last_horizon)))
