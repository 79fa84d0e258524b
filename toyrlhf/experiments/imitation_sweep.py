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

Further learners (:data:`EXTRA_METHODS`, not in :data:`METHODS`; an experiment
asks for them by name):

- **DAgger (after the N demonstrations)**: round 0 *is* BC's ``n`` demonstrations,
  then ``dagger_rounds`` rounds of ``dagger_episodes`` queried episodes each
  (``n / dagger_rounds`` when ``None``): DAgger knows everything BC knows and adds
  its queried labels, counted by kind (:class:`LabelScores`);
- **BC (time-indexed, N + queried episodes)**: BC given as many expert episodes
  as that DAgger has episodes in all (``n`` plus ``dagger_rounds x dagger_episodes``
  more, sampled from their own key): the comparison at an equal number of expert
  episodes (Rajaraman et al. 2020 count interactions so);
- **MaxEnt IRL (time-indexed)**: a reward per step, the policy class of time-indexed BC;
- **MaxEnt IRL (absorbing ...)**: the three treatments of absorbing states
  (``maxent_irl`` module docstring), stationary.

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
DAGGER_AFTER_DEMOS = "DAgger (after the N demonstrations)"
BC_MORE_EPISODES = "BC (time-indexed, N + queried episodes)"
IRL_TIME_INDEXED = "MaxEnt IRL (time-indexed)"
IRL_ABSORBING = {
    ("learned", "horizon"): "MaxEnt IRL (absorbing reward learned, every step)",
    ("learned", "once"): "MaxEnt IRL (absorbing reward learned, one step)",
    ("zero", "horizon"): "MaxEnt IRL (absorbing reward zero)",
}
"""The stationary MaxEnt IRL of each ``(absorbing_reward, absorbing_steps)`` treatment, by name."""
EXTRA_METHODS = (DAGGER_AFTER_DEMOS, BC_MORE_EPISODES, IRL_TIME_INDEXED, *IRL_ABSORBING.values())
"""Learners an experiment may ask for besides :data:`METHODS` (module docstring)."""
ALL_METHODS = METHODS + EXTRA_METHODS
IRL_METHODS = ("MaxEnt IRL", "GAIL")
"""The inverse-RL methods (a reward is learned, then a policy for it)."""
KNOWN_DYNAMICS = ("MaxEnt IRL", IRL_TIME_INDEXED, *IRL_ABSORBING.values())
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
    dagger_episodes: int | None = None
    """Queried episodes per round of DAgger (after the N demonstrations); ``None``: ``n / dagger_rounds``."""
    irl_absorbing_reward: str = "learned"
    """``MaxEntIRLConfig.absorbing_reward`` of "MaxEnt IRL" and "MaxEnt IRL (time-indexed)"."""
    irl_absorbing_steps: str = "horizon"
    """``MaxEntIRLConfig.absorbing_steps`` of "MaxEnt IRL" and "MaxEnt IRL (time-indexed)"."""

    def __post_init__(self):
        positive_int("dagger_rounds", self.dagger_rounds)
        positive_int("irl_steps", self.irl_steps)
        positive_int("gail_updates", self.gail_updates)
        positive_float("irl_learning_rate", self.irl_learning_rate)
        if self.default_action is not None:
            non_negative_int("default_action", self.default_action)
        if self.dagger_episodes is not None:
            positive_int("dagger_episodes", self.dagger_episodes)
        self.irl_config()  # validates irl_absorbing_reward and irl_absorbing_steps

    def irl_config(self, time_indexed: bool = False, absorbing=None) -> maxent_irl.MaxEntIRLConfig:
        """MaxEnt IRL's settings; ``absorbing = (absorbing_reward, absorbing_steps)`` overrides the defaults."""
        reward, steps = absorbing or (self.irl_absorbing_reward, self.irl_absorbing_steps)
        try:
            return maxent_irl.MaxEntIRLConfig(
                n_steps=self.irl_steps, learning_rate=self.irl_learning_rate, time_indexed=time_indexed,
                absorbing_reward=reward, absorbing_steps=steps,
            )
        except ValueError as error:
            raise ValueError(f"irl_{error}") from None

    def queried_episodes(self, n: int) -> int:
        """Episodes per queried DAgger round for ``n`` demonstrations."""
        return self.dagger_episodes if self.dagger_episodes is not None else n // self.dagger_rounds

    def gail_config(self) -> gail.GAILConfig:
        """Tabular GAIL: tables for policy, critic and discriminator."""
        return gail.GAILConfig.tabular(n_updates=self.gail_updates)


def method_settings(config) -> MethodSettings:
    """The :class:`MethodSettings` held as fields of an experiment's ``config`` (same names; a field the
    config does not have takes its default)."""
    return MethodSettings(
        **{f.name: getattr(config, f.name) for f in dataclasses.fields(MethodSettings) if hasattr(config, f.name)}
    )


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
    informative_labels: jax.Array
    """``[M, P]``: of ``expert_labels``, those on states where a label can change something
    (``dagger.informative_states``)."""


class LabelScores(NamedTuple):
    """Expert labels by kind, per seed: ``[n_seeds, M, P]`` (what a label could teach)."""

    informative: np.ndarray
    """Labels on states where some two actions differ (``dagger.informative_states``)."""
    uninformative: np.ndarray
    """Labels on states where every action is equivalent (absorbing states): information about nothing."""


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


def gaps_of(scores: SweepScores, method: str, methods: Sequence[str] = METHODS) -> np.ndarray:
    """``[n_seeds, P]``: the exact gaps of ``method`` in a sweep of ``methods`` (default :data:`METHODS`)."""
    return np.asarray(scores.gap)[:, tuple(methods).index(method)]


class Learned(NamedTuple):
    """What one method learned at every point of a sweep, for one seed."""

    policies: jax.Array
    """``[P, T, S, A]``: the policy trained for each point (valid for its first ``h`` steps)."""
    expert_labels: jax.Array
    """``[P]``: expert labels used."""
    env_steps: jax.Array
    """``[P]``: the learner's own environment steps."""
    informative_labels: jax.Array
    """``[P]``: expert labels on informative states."""


def make_sweep(
    settings: MethodSettings,
    mdp: tabular.TabularMDP,
    expert: jax.Array,
    n_demos: Sequence[int],
    horizons: Sequence[int],
    methods: Sequence[str] = METHODS,
    visits_at: int = -1,
) -> Callable[[jax.Array], MethodScores]:
    """``sweep(key) -> MethodScores`` of ``methods`` over the points ``zip(n_demos, horizons)``; vmap over keys.

    ``expert`` is a deterministic policy ``[S, A]`` or ``[T, S, A]`` of ``mdp`` (whose
    horizon is the largest ``h``). Every ``n`` must divide ``max(n_demos)`` (tiling is
    exact); with "DAgger" (round 0 sampled, the old equal-budget protocol) every ``n``
    must be a multiple of ``settings.dagger_rounds``; every ``h`` lies in
    ``[1, mdp.horizon]``. ``methods`` is a selection of :data:`ALL_METHODS`. All methods
    of one ``key`` learn from :func:`demonstrations_for` ``(key, ...)`` (DAgger collects
    its own). ``visits`` are kept at point ``visits_at``.
    """
    n_demos, horizons = tuple(int(n) for n in n_demos), tuple(int(h) for h in horizons)
    if len(n_demos) != len(horizons) or not n_demos:
        raise ValueError(f"n_demos and horizons must be non-empty and of one length, got {n_demos} and {horizons}")
    unknown = [m for m in methods if m not in ALL_METHODS]
    if unknown or not methods or len(set(methods)) != len(methods):
        raise ValueError(f"methods must be a non-empty selection of {ALL_METHODS}, got {tuple(methods)}")
    n_max, H = max(n_demos), mdp.horizon
    bad = [n for n in n_demos if n < 1 or n_max % n or ("DAgger" in methods and n % settings.dagger_rounds)]
    if bad:
        raise ValueError(f"n_demos {bad} must divide the largest ({n_max}) and be multiples of dagger_rounds "
                         f"({settings.dagger_rounds})")
    if not all(1 <= h <= H for h in horizons):
        raise ValueError(f"horizons {horizons} must lie in [1, {H}] (the MDP's horizon)")
    S, A = mdp.n_states, mdp.n_actions
    expert = tabular.time_indexed(mdp, expert)
    # Everything derived from the MDP is computed inside the traced sweep (part of its one program):
    # eager JAX here would compile a small program per call outside the clock.
    def informative():  # traced where it is used (XLA shares the repeats)
        return dagger.informative_states(mdp)
    ns, hs = jnp.asarray(n_demos), jnp.asarray(horizons)
    labels = jnp.asarray([n * h for n, h in zip(n_demos, horizons)])
    no_steps = jnp.zeros(len(n_demos), dtype=labels.dtype)
    steps = jnp.arange(H)
    as_time_indexed = jax.vmap(lambda p: tabular.time_indexed(mdp, p))
    distinct_n = sorted(set(n_demos))
    queried = {n: settings.dagger_rounds * settings.queried_episodes(n) for n in distinct_n}

    def data(demos, n, h):  # the first n episodes, tiled, with only their first h steps valid
        d = first_n_tiled(demos, n)
        return d._replace(valid=d.valid & (steps < h))

    def informative_in(demos, n, h):  # [P]-wise: expert labels of the first n episodes on informative states
        rows = jnp.arange(demos.n_episodes)[:, None] < n
        return jnp.sum(demos.valid & rows & (steps < h) & informative()[demos.observations]).astype(labels.dtype)

    def demo_labels(demos):
        return jax.vmap(lambda n, h: informative_in(demos, n, h))(ns, hs)

    def fit_bc(time_indexed):
        def learn(key, demos):
            fit = lambda n, h: bc.fit_tabular(  # noqa: E731
                data(demos, n, h), S, A, time_indexed=time_indexed, default_action=settings.default_action
            )
            return Learned(as_time_indexed(jax.vmap(fit)(ns, hs)), labels, no_steps, demo_labels(demos))

        return learn

    def dagger_config(n_rounds, episodes):
        return dagger.DAggerConfig(n_rounds=n_rounds, episodes_per_round=episodes,
                                   default_action=settings.default_action)

    def prefix(count_fn, runs):  # per point: the first h steps of the run for its n
        return jnp.stack([jnp.sum(jnp.where(steps < h, count_fn(runs[n]), 0)) for n, h in zip(n_demos, horizons)])

    def learn_dagger_sampled():  # the old protocol: round 0 samples n / rounds expert episodes
        trains = {n: dagger.make_train(dagger_config(settings.dagger_rounds, n // settings.dagger_rounds), mdp,
                                       expert) for n in distinct_n}

        def learn(key, demos):
            key_dagger = jax.random.split(key)[1]
            runs = {n: train(key_dagger) for n, train in trains.items()}
            per_step = {n: r.labels_per_step for n, r in runs.items()}
            policies = jnp.stack([runs[n].policy for n in n_demos])
            every = prefix(lambda c: c.demonstrated + c.queried_informative + c.queried_uninformative, per_step)
            env = prefix(lambda c: c.queried_informative + c.queried_uninformative, per_step)
            useful = prefix(lambda c: c.queried_informative, per_step)
            return Learned(policies, every.astype(labels.dtype), env.astype(labels.dtype),
                           (useful + _sampled_round_informative(runs, n_demos, horizons, informative(), steps)
                            ).astype(labels.dtype))

        return learn

    def learn_dagger_after():  # round 0 = the first n demonstrations, then queried rounds
        trains = {n: dagger.make_train(dagger_config(settings.dagger_rounds + 1, settings.queried_episodes(n)),
                                       mdp, expert) for n in distinct_n}

        def learn(key, demos):
            key_dagger = jax.random.split(key)[1]
            runs = {n: train(key_dagger, demo_lib.Demonstrations(*(x[:n] for x in demos)))
                    for n, train in trains.items()}
            per_step = {n: r.labels_per_step for n, r in runs.items()}
            policies = jnp.stack([runs[n].policy for n in n_demos])
            asked = prefix(lambda c: c.queried_informative + c.queried_uninformative, per_step)
            useful = prefix(lambda c: c.queried_informative, per_step)
            return Learned(policies, (labels + asked).astype(labels.dtype), asked.astype(labels.dtype),
                           (demo_labels(demos) + useful).astype(labels.dtype))

        return learn

    def learn_bc_more(key, demos):  # time-indexed BC on the first n demonstrations and as many more as DAgger queried
        extra = {n: demo_lib.sample_demonstrations(jax.random.fold_in(key, 3), mdp, expert, queried[n])
                 for n in distinct_n if queried[n]}
        policies, more_labels, more_useful = [], [], []
        for n, h in zip(n_demos, horizons):
            first_n = (jnp.arange(demos.n_episodes)[:, None] < n) & demos.valid & (steps < h)
            counts = bc.action_counts(demos.observations, demos.actions, S, A, True, first_n)
            useful = jnp.sum(first_n & informative()[demos.observations])
            if n in extra:
                more = extra[n].valid & (steps < h)
                counts = counts + bc.action_counts(extra[n].observations, extra[n].actions, S, A, True, more)
                useful = useful + jnp.sum(more & informative()[extra[n].observations])
            policies.append(bc.policy_from_counts(counts, settings.default_action))
            more_labels.append((n + queried[n]) * h)
            more_useful.append(useful)
        return Learned(jnp.stack(policies), jnp.asarray(more_labels, dtype=labels.dtype), no_steps,
                       jnp.stack(more_useful).astype(labels.dtype))

    def learn_irl(irl_config):
        irl_train = maxent_irl.make_train(irl_config, mdp)

        def learn(key, demos):
            def at(n, h):
                result = irl_train(data(demos, n, h), h)
                return jnp.where(jnp.any(result.nonfinite), jnp.nan, result.policy)  # NaN in training -> NaN gap

            return Learned(jax.vmap(at)(ns, hs), labels, no_steps, demo_labels(demos))

        return learn

    def learn_gail(key, demos):
        gail_config = settings.gail_config()
        env, env_params = tabular_env(mdp, "index")
        key_gail = jax.random.fold_in(key, 2)

        def at(n, h):
            # TabularEnv reads its horizon only in step (truncation), so it may be traced here.
            train = gail.make_train(gail_config, dataclasses.replace(env, horizon=h), env_params)
            result, metrics = train(key_gail, data(demos, n, h))
            policy = gail.tabular_policy(gail_config, result, env_params)
            policy = jnp.where(jnp.any(metrics.nonfinite), jnp.nan, policy)  # NaN in training -> NaN gap
            return tabular.time_indexed(mdp, policy), jnp.asarray(result.resources.env_steps, dtype=labels.dtype)

        policies, env_steps = jax.vmap(at)(ns, hs)
        return Learned(policies, labels, env_steps, demo_labels(demos))

    def builder(name):
        if name == "BC (time-indexed)":
            return fit_bc(True)
        if name == "BC (stationary)":
            return fit_bc(False)
        if name == "DAgger":
            return learn_dagger_sampled()
        if name == DAGGER_AFTER_DEMOS:
            return learn_dagger_after()
        if name == BC_MORE_EPISODES:
            return learn_bc_more
        if name == "MaxEnt IRL":
            return learn_irl(settings.irl_config())
        if name == IRL_TIME_INDEXED:
            return learn_irl(settings.irl_config(time_indexed=True))
        if name in IRL_ABSORBING.values():
            treatment = next(k for k, v in IRL_ABSORBING.items() if v == name)
            return learn_irl(settings.irl_config(absorbing=treatment))
        return learn_gail

    learners = {m: builder(m) for m in methods}

    def score(policy, h, expert_rewards, expert_visitation):
        # policy [T, S, A] -> (gap, error on expert's states, error on own states, visits)
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
        reference = tabular.reward_per_step(mdp, expert), tabular.visitation(mdp, expert)  # [T], [T, S]
        gap, on_expert, on_own, visits = jax.vmap(jax.vmap(score, in_axes=(0, 0, None, None)),
                                                  in_axes=(0, None, None, None))(policies, hs, *reference)
        return MethodScores(
            gap=gap,
            error_on_expert_states=on_expert,
            error_on_own_states=on_own,
            visits=visits[:, visits_at],
            expert_labels=jnp.stack([x.expert_labels for x in learned]),
            env_steps=jnp.stack([x.env_steps for x in learned]),
            informative_labels=jnp.stack([x.informative_labels for x in learned]),
        )

    return sweep


def _sampled_round_informative(runs, n_demos, horizons, informative, steps):
    """Informative labels in the sampled expert round 0 of the old DAgger protocol, per point."""
    return jnp.stack([
        jnp.sum(jnp.where(steps < h, informative[runs[n].data.states[0]], False)) for n, h in zip(n_demos, horizons)
    ])


def run_sweep(clock, label: str, sweep: Callable[[jax.Array], MethodScores], keys: jax.Array) -> SweepScores:
    """Compile and run ``jit(vmap(sweep))(keys)`` as one program; per-seed constants lose their seed axis."""
    return run_counted_sweep(clock, label, sweep, keys)[0]


def run_counted_sweep(clock, label: str, sweep: Callable[[jax.Array], MethodScores], keys: jax.Array):
    """:func:`run_sweep` and the labels by kind: ``(SweepScores, LabelScores)``."""
    out = clock.call(label, jax.jit(jax.vmap(sweep)), keys)
    scores = SweepScores(
        gap=np.asarray(out.gap),
        error_on_expert_states=np.asarray(out.error_on_expert_states),
        error_on_own_states=np.asarray(out.error_on_own_states),
        visits=np.asarray(out.visits),
        expert_labels=np.asarray(out.expert_labels)[0],
        env_steps=np.asarray(out.env_steps)[0],
    )
    informative = np.asarray(out.informative_labels)
    return scores, LabelScores(informative, np.asarray(out.expert_labels) - informative)


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
