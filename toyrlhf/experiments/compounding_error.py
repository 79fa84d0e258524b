"""Compounding error with real learners from finite data (claim T2).

``compounding-error-exact`` injects a fixed error ε by hand. Here the learners
are trained: every method gets the same ``N`` expert demonstrations (or, for
DAgger, the same number of expert labels), and the return gap
``J_H(expert) - J_H(learner)`` is computed *exactly* for every horizon ``H`` of
the sweep, over many seeds (independent demonstration sets), vmapped.

Methods (``toyrlhf.algorithms``), with the default action 0 on unseen states for
every BC-based learner (DESIGN.md pitfall 4; on Reset Cliff action 0 is always
wrong, Rajaraman et al.'s worst case; in the gridworld it is "left"):

- **BC (time-indexed)**: a policy per step from the ``N`` samples at that step;
- **BC (stationary)**: one policy from the ``N H`` pooled samples (more data per
  state as ``H`` grows: the control of pitfall 3);
- **DAgger**: time-indexed learner, ``n_rounds`` rounds of ``N / n_rounds``
  episodes (round 0 is the expert's), ``β_i = 1[i = 0]``: the same ``N H`` labels;
- **MaxEnt IRL**: one-hot (s, a) reward, soft value iteration in the known
  dynamics, evaluated by the true return of its hard optimal policy;
- **GAIL** (``toyrlhf.algorithms.gail``): PPO on a discriminator reward with
  tables for policy, critic and discriminator, on the state index (a stationary
  policy), trained by sampling episodes of the MDP (no dynamics model; its
  environment steps are counted). Settings: ``GAILConfig.tabular()``'s, the ones
  ``tests/test_gail.py`` checks against the exact expert on Reset Cliff, fixed
  before any gap was looked at (``gail_updates`` rounds of 16 envs x (32 PPO +
  16 discriminator) steps).

Each MDP is one compiled call, ``jit(vmap(sweep))(keys)``: every method, every
seed and every horizon at once (compile and run time are reported per MDP).
All time-indexed methods are *prefix-consistent* (their first ``h`` steps do not
depend on later data), so one run at the largest horizon gives every horizon;
stationary BC gets its horizon-``h`` counts from a cumulative sum; MaxEnt IRL
runs every horizon in one vmapped call (``maxent_irl.shorter_horizon``). GAIL is
not prefix-consistent (one stationary policy, PPO bootstraps across steps), so it
is trained separately for each horizon ``h`` of ``gail_horizons``, vmapped over
``h`` too: its demonstrations are the first ``h`` steps (``valid`` masked) and its
environment truncates at ``h`` (``TabularEnv`` reads its horizon only in ``step``,
so a traced ``h`` gives every horizon from one compiled program).

MDPs. The two main ones are those where a mistake is fatal:

- **Reset Cliff** (10 good states, ``ρ(s) ∝ 1/(s+1)``);
- **Lava lake**, a slippery gridworld with traps (:data:`LAVA_LAKE`, slip 0.1):
  a floor of 5 x 7 cells ringed by lava, ``+1`` for every step spent on the
  floor, lava (and the map's one exit ``G``) absorbing with nothing more to
  earn. The gridworld analogue of Reset Cliff: the expert patrols the middle
  and slips now and then onto cells it rarely visits, where a learner that has
  no data at that step takes its default action (left) and may walk into the
  lava, losing every remaining step. Unlike Reset Cliff, a slip can be
  undone, so DAgger has something to learn from its own states. The per-step
  reward (not a one-off goal reward) is what lets an early mistake cost
  ``O(H)``: with a goal reward the gap of any learner stays below the goal's
  value and cannot grow like ``H²`` (what ``compounding-error-exact`` shows
  on ``lava-bridge``). No criterion is registered on it; its slopes are reported.

and the control **Standard imitation** (32 states; no compounding for anyone).
The figure's bottom row draws the lava lake's exact expected visits
``Σ_t d_t(s)`` (``tabular.visitation``) under the expert and, as a difference
from the expert's, under each learned policy (mean over data sets, largest H):
where BC's visitation leaves the expert's (into the lava) and where the IRL
method's does not.

Exact expected gap of time-indexed BC on Reset Cliff. Under the expert the
state at every step is a fresh draw from ρ, so the ``N`` demonstrations give
``N`` independent draws at each step ``t``. The learner plays the expert's
action on a state seen at step ``t`` and falls (default action) otherwise, so it
earns the step-``t`` reward iff every step ``k <= t`` landed on a seen state. A
step is unseen with probability ``ε_N = Σ_s ρ(s) (1 - ρ(s))^N``, independently
across steps, hence ``E[r_t] = (1 - ε_N)^{t+1}`` and

    E[gap_H] = Σ_{t<H} (1 - (1 - ε_N)^{t+1}) = H - (1 - ε_N)(1 - (1 - ε_N)^H) / ε_N,

the Trap MDP's formula with ``ε = ε_N`` (≈ ε_N H(H+1)/2 while ε_N H ≪ 1).
``tests/test_compounding_error.py`` checks it against exact enumeration of all
data sets with ``tabular.evaluate``.

Pre-registered criteria (from issue 4, fixed before any run):

1. BC (time-indexed) mean gap on Reset Cliff at the largest H within 3 standard
   errors of the exact expected gap above;
2. BC (time-indexed) log-log slope on Reset Cliff in [1.7, 2.1];
3. BC (time-indexed) log-log slope on Standard imitation in [0.9, 1.1];
4. each IRL method's (MaxEnt IRL, GAIL) mean gap at the largest H at most 0.1 of
   BC (time-indexed)'s on Reset Cliff;
5. DAgger's mean gap at the largest H at least 0.8 of BC (time-indexed)'s on Reset Cliff.

Slopes are least-squares fits of log(seed-mean gap) on log(H) over all the
sweep's horizons; intervals are percentile bootstraps over seeds. The design
(``N = 100``, ``H`` from 4 to 64) puts Reset Cliff in the regime ``ε_N H ≪ 1``
(ε_N H <= 0.2) where the T² law applies (pitfall 2), chosen from the closed form
before any learner was run. Each method's own per-step error ε is reported
beside its gap (pitfall 1): on the expert's states and on its own.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from toyrlhf import demonstrations as demo_lib
from toyrlhf import tabular
from toyrlhf.algorithms import bc, dagger, gail, maxent_irl
from toyrlhf.envs import tabular_env, toy_mdps
from toyrlhf.envs.gridworld import GridWorld, make_gridworld
from toyrlhf.experiments.common import Criterion, ExperimentResult, Progress, timed
from toyrlhf.stats import bootstrap_interval, loglog_slope, mean_and_interval

NAME = "compounding-error"
CLAIM = (
    "T2: behavior cloning from N demonstrations compounds (gap ~ H²) where mistakes are fatal; "
    "inverse RL, planning in the known dynamics, does not; DAgger cannot help without recovery."
)

METHODS = ("BC (time-indexed)", "BC (stationary)", "DAgger", "MaxEnt IRL", "GAIL")
IRL_METHODS = ("MaxEnt IRL", "GAIL")
"""The inverse-RL methods criterion 4 is checked for."""
DEFAULT_ACTION = 0
ROUND_OFF = 1e-9
"""Gaps smaller than this in magnitude are float64 round-off of an exact zero and are set to 0."""

CLIFF, LAKE, STANDARD = "Reset Cliff", "Lava lake (slippery gridworld)", "Standard imitation"

LAVA_LAKE = (
    "LLLLLLLLL",
    "L.......L",
    "L.S.S.S.L",
    "L.......G",
    "L.S.S.S.L",
    "L.......L",
    "LLLLLLLLL",
)
"""The gridworld: 35 floor cells ringed by lava, six start cells; ``G`` is one more exit (maps need a goal)."""


@dataclasses.dataclass(frozen=True)
class Config:
    """Settings of the learned-policy sweep."""

    n_demos: int = 100
    """N: expert demonstrations per data set (DAgger: the same number of labelled episodes)."""
    horizons: tuple[int, ...] = (4, 6, 8, 11, 16, 23, 32, 45, 64)
    """Horizons H of the sweep (the largest sets every array's length)."""
    n_seeds: int = 100
    """Independent data sets (and learner seeds) per MDP."""
    dagger_rounds: int = 4
    """DAgger rounds; n_demos must be a multiple."""
    irl_steps: int = 100
    """Adam steps of MaxEnt IRL."""
    irl_learning_rate: float = 0.1
    """Adam step size of MaxEnt IRL."""
    cliff_states: int = 10
    """Good states of Reset Cliff."""
    standard_states: int = 32
    """States of Standard imitation."""
    grid_slip: float = 0.1
    """Slip probability of the lava lake."""
    gail_updates: int = 60
    """GAIL rounds (``GAILConfig.tabular()``'s default; every other GAIL number is that config's too)."""

    @classmethod
    def quick(cls) -> Config:
        return cls(n_seeds=24, horizons=(4, 8, 16, 32, 64))

    def gail_config(self) -> gail.GAILConfig:
        """GAIL's settings: tables for policy, critic and discriminator (``GAILConfig.tabular``)."""
        return gail.GAILConfig.tabular(n_updates=self.gail_updates)


def lava_lake(horizon: int, slip: float) -> tuple[GridWorld, tabular.TabularMDP]:
    """The lava lake: ``make_gridworld(LAVA_LAKE)``'s slippery dynamics with ``+1`` per step on the floor.

    Returns the :class:`GridWorld` (geometry, for drawing) and the MDP that is learned
    and evaluated: the gridworld's transitions, start and terminal cells, with reward
    ``R[s, a] = 1`` on every non-terminal ``s`` and ``0`` in lava and at ``G``.
    """
    grid = make_gridworld(LAVA_LAKE, slip=slip, horizon=horizon, goal_reward=0.0, lava_reward=0.0)
    m = grid.mdp
    reward = jnp.broadcast_to(jnp.where(m.terminal, 0.0, 1.0)[:, None], (m.n_states, m.n_actions))
    mdp = tabular.TabularMDP.from_successors(m.next_states, m.next_probs, reward, m.init, horizon, terminal=m.terminal)
    return grid, mdp


def build_mdps(config: Config) -> dict[str, tabular.TabularMDP]:
    """The three MDPs of the sweep at the largest horizon: Reset Cliff, the lava lake, Standard imitation."""
    H = max(config.horizons)
    return {
        CLIFF: toy_mdps.reset_cliff(H, n_good=config.cliff_states),
        LAKE: lava_lake(H, config.grid_slip)[1],
        STANDARD: toy_mdps.standard_imitation(H, n_states=config.standard_states),
    }


def reset_cliff_bc_expected_gap(rho, n_demos: int, horizons):
    """Exact expected gap of time-indexed BC (default action always wrong) on Reset Cliff.

    ``ε_N = Σ_s ρ(s)(1 - ρ(s))^N``; ``E[gap_H] = H - (1 - ε_N)(1 - (1 - ε_N)^H) / ε_N``
    (derivation in the module docstring). Returns ``(expected_gaps [len(horizons)], ε_N)``.
    """
    rho = np.asarray(rho, dtype=np.float64)
    eps = float(np.sum(rho * (1.0 - rho) ** n_demos))
    H = np.asarray(horizons, dtype=np.float64)
    if eps == 0.0:
        return np.zeros_like(H), eps
    return H - (1.0 - eps) * (1.0 - (1.0 - eps) ** H) / eps, eps


def stationary_expert(mdp: tabular.TabularMDP) -> jax.Array:
    """The optimal first-step action everywhere (the same expert as ``compounding-error-exact``)."""
    return tabular.solve(mdp).policy[0]


class MethodOutput(NamedTuple):
    """What one method's sweep returns for one seed (a leading ``[n_seeds]`` axis after vmap)."""

    gaps: jax.Array
    """``[n_H]``: exact ``J_h(expert) - J_h(learner)`` at every horizon ``h`` of the sweep."""
    errors: jax.Array
    """``[2]``: mean per-step TV error on the expert's states and on the learner's own (largest H)."""
    visits: jax.Array
    """``[S]``: exact expected visits ``Σ_t d_t(s)`` of the learner trained at the largest H."""


def _output(mdp, expert, expert_rewards, policies, horizons) -> MethodOutput:
    """Gaps, errors and visits from ``policies [n_H, T, S, A]`` (one per horizon; the last is the largest H).

    Horizon ``h`` counts the first ``h`` per-step rewards of the policy trained for ``h``.
    """
    H = mdp.horizon

    def gap(policy, h):
        lost = expert_rewards - tabular.reward_per_step(mdp, policy)
        return jnp.sum(jnp.where(jnp.arange(H) < h, lost, 0.0))

    gaps = jax.vmap(gap)(policies, horizons)
    gaps = jnp.where(jnp.abs(gaps) < ROUND_OFF, 0.0, gaps)  # exact zeros, not float64 noise
    learner = policies[-1]
    errors = jnp.stack(
        [
            tabular.disagreement(mdp, learner, expert, states_of=expert).mean(),
            tabular.disagreement(mdp, learner, expert, states_of=learner).mean(),
        ]
    )
    return MethodOutput(gaps, errors, tabular.visitation(mdp, learner).sum(0))


def make_sweeps(config: Config, mdp: tabular.TabularMDP, expert: jax.Array) -> dict:
    """``{method: sweep(key) -> MethodOutput}`` for one seed each; vmap over keys.

    Every method draws its demonstrations from the same ``key``, so all methods of a
    seed learn from the same data set (DAgger uses the first ``N / n_rounds`` of it
    as round 0).
    """
    horizons = jnp.asarray(config.horizons)
    S, A = mdp.n_states, mdp.n_actions
    n_H = len(config.horizons)
    expert = tabular.time_indexed(mdp, expert)
    expert_rewards = tabular.reward_per_step(mdp, expert)
    output = lambda policies: _output(mdp, expert, expert_rewards, policies, horizons)  # noqa: E731
    every_horizon = lambda policy: jnp.broadcast_to(policy, (n_H, *policy.shape))  # noqa: E731 prefix-consistent

    def demos_of(key):
        return demo_lib.sample_demonstrations(jax.random.split(key)[0], mdp, expert, config.n_demos)

    def bc_time_indexed(key):
        demos = demos_of(key)
        return output(every_horizon(bc.fit_tabular(demos, S, A, time_indexed=True, default_action=DEFAULT_ACTION)))

    def bc_stationary(key):  # counts from the first h steps, for every h at once
        demos = demos_of(key)
        counts = jnp.cumsum(bc.action_counts(demos.observations, demos.actions, S, A, True), axis=0)
        policies = bc.policy_from_counts(counts[horizons - 1], DEFAULT_ACTION)  # [n_H, S, A]
        return output(jax.vmap(lambda p: tabular.time_indexed(mdp, p))(policies))

    dagger_train = dagger.make_train(
        dagger.DAggerConfig(
            n_rounds=config.dagger_rounds,
            episodes_per_round=config.n_demos // config.dagger_rounds,
            default_action=DEFAULT_ACTION,
        ),
        mdp,
        expert,
    )

    def dagger_sweep(key):
        return output(every_horizon(dagger_train(jax.random.split(key)[1]).policy))

    irl_train = maxent_irl.make_train(
        maxent_irl.MaxEntIRLConfig(n_steps=config.irl_steps, learning_rate=config.irl_learning_rate), mdp
    )

    def maxent_irl_sweep(key):  # every horizon in one vmapped call
        demos = demos_of(key)
        return output(jax.vmap(lambda h: irl_train(demos, h).policy)(horizons))

    gail_config = config.gail_config()
    env, env_params = tabular_env(mdp, "index")

    def gail_sweep(key):  # every horizon in one vmapped call: a traced horizon h
        demos = demos_of(key)
        key_gail = jax.random.fold_in(key, 2)

        def at(h):
            # TabularEnv reads its horizon only in step (truncation), so it may be traced here.
            train = gail.make_train(gail_config, dataclasses.replace(env, horizon=h), env_params)
            first_h = demos._replace(valid=demos.valid & (jnp.arange(mdp.horizon) < h))
            result, metrics = train(key_gail, first_h)
            policy = tabular.time_indexed(mdp, gail.tabular_policy(gail_config, result, env_params))
            return jnp.where(jnp.any(metrics.nonfinite), jnp.nan, policy)  # NaN in training -> NaN gap

        return output(jax.vmap(at)(horizons))

    return {
        "BC (time-indexed)": bc_time_indexed,
        "BC (stationary)": bc_stationary,
        "DAgger": dagger_sweep,
        "MaxEnt IRL": maxent_irl_sweep,
        "GAIL": gail_sweep,
    }


def seed_mean_slope(horizons, gaps) -> float:
    """Slope of log(seed-mean gap) on log(H) over the horizons where the mean gap is positive.

    Every horizon counts when all means are positive (the point estimate); a bootstrap
    resample in which no seed erred at the smallest H drops that H. NaN with < 3 points.
    """
    mean = np.mean(gaps, axis=0)
    keep = mean > 0
    if keep.sum() < 3:
        return float("nan")
    return loglog_slope(np.asarray(horizons)[keep], mean[keep])[0]


def _ratio_interval(a, b):
    """Bootstrap over seeds of mean(a) / mean(b) (paired resampling)."""
    pairs = np.stack([a, b], axis=1)
    return bootstrap_interval(pairs, lambda p: float(p[:, 0].mean() / p[:, 1].mean()))


def resources(config: Config) -> dict[str, str]:
    """What each method consumed per data set at the largest H (DESIGN.md pitfall 6)."""
    N, H, rounds = config.n_demos, max(config.horizons), config.dagger_rounds
    return {
        "BC (time-indexed)": f"{N * H} expert labels, 0 env steps, no dynamics model",
        "BC (stationary)": f"{N * H} expert labels, 0 env steps, no dynamics model",
        "DAgger": f"{N * H} expert labels, {(rounds - 1) * (N // rounds) * H} env steps, no dynamics model",
        "MaxEnt IRL": f"{N * H} expert labels, 0 env steps, known dynamics",
        "GAIL": f"{N * H} expert labels, {gail_env_steps(config.gail_config())} env steps, no dynamics model",
    }


def gail_env_steps(config: gail.GAILConfig) -> int:
    """Environment steps of one GAIL run: PPO's and the discriminator's rollouts (whatever the horizon)."""
    return config.ppo.n_updates * config.ppo.n_envs * (config.ppo.n_steps + config.disc_n_steps)


def run_sweeps(config: Config, progress: Progress):
    """Run every method on every MDP: ``(outputs {mdp: {method: MethodOutput [n_seeds]}}, timings)``."""
    if config.n_demos % config.dagger_rounds:
        raise ValueError(f"n_demos ({config.n_demos}) must be a multiple of dagger_rounds ({config.dagger_rounds})")
    mdps = build_mdps(config)
    keys = jax.random.split(jax.random.key(0), config.n_seeds)
    outputs, timings = {}, {}
    for i, (name, mdp) in enumerate(mdps.items()):
        sweeps = make_sweeps(config, mdp, stationary_expert(mdp))

        def every_method(key, sweeps=sweeps):
            return {method: sweep(key) for method, sweep in sweeps.items()}

        progress(f"{NAME}: [{i + 1}/{len(mdps)}] {name}: compiling ({config.n_seeds} seeds, {len(sweeps)} methods)")
        compiled, c_s = timed(jax.jit(jax.vmap(every_method)).lower(keys).compile)
        out, r_s = timed(compiled, keys)
        progress(f"{NAME}: {name}: compiled in {c_s:.1f}s, ran in {r_s:.1f}s")
        for method, o in out.items():
            if not np.all(np.isfinite(np.asarray(o.gaps))):
                raise FloatingPointError(f"{method} on {name}: non-finite gap (NaN in training?)")
        outputs[name] = {method: MethodOutput(*(np.asarray(x) for x in o)) for method, o in out.items()}
        timings[f"compile_s/{name}"], timings[f"run_s/{name}"] = c_s, r_s
    timings["compile_s"] = sum(v for k, v in timings.items() if k.startswith("compile_s/"))
    timings["run_s"] = sum(v for k, v in timings.items() if k.startswith("run_s/"))
    return mdps, outputs, timings


def run(quick: bool = True, seeds: int | None = None, progress: Progress | None = None) -> ExperimentResult:
    progress = progress or Progress(enabled=False)
    config = Config.quick() if quick else Config()
    if seeds is not None:
        config = dataclasses.replace(config, n_seeds=seeds)
    mdps, outputs, timings = run_sweeps(config, progress)
    names = list(mdps)
    gaps = {name: np.stack([outputs[name][m].gaps for m in METHODS], axis=1) for name in names}  # [n, M, n_H]
    horizons = np.asarray(config.horizons)
    rho = np.asarray(mdps[CLIFF].init)[: config.cliff_states]
    expected, eps_n = reset_cliff_bc_expected_gap(rho, config.n_demos, horizons)

    # 1. mean gap at the largest H vs the exact expected gap.
    bc_cliff = outputs[CLIFF]["BC (time-indexed)"].gaps  # [n, n_H]
    last = bc_cliff[:, -1]
    mean, lo, hi = mean_and_interval(last)
    se = float(last.std(ddof=1) / np.sqrt(len(last)))
    z = float((mean - expected[-1]) / se)
    all_z = (bc_cliff.mean(0) - expected) / (bc_cliff.std(0, ddof=1) / np.sqrt(len(last)))

    def slope_with_interval(name):
        return bootstrap_interval(outputs[name]["BC (time-indexed)"].gaps, lambda g: seed_mean_slope(horizons, g))

    slope_cliff = slope_with_interval(CLIFF)
    slope_standard = slope_with_interval(STANDARD)
    H = int(horizons[-1])
    fit = (
        f"log-log least squares of the seed-mean gap over H in {list(config.horizons)}; "
        "percentile bootstrap over seeds (a resample with zero mean gap at some H fits the other H)"
    )
    criteria = [
        Criterion(
            f"BC (time-indexed) mean gap on Reset Cliff at H={H} within 3 standard errors of the exact "
            f"expected gap {expected[-1]:.4g}",
            float(mean),
            (float(lo), float(hi)),
            abs(z) <= 3.0,
            f"{config.n_seeds} data sets of N={config.n_demos}; z = {z:.2f}; ε_N = {eps_n:.4g}",
        ),
        Criterion(
            "BC (time-indexed) slope on Reset Cliff in [1.7, 2.1]",
            slope_cliff[0],
            slope_cliff[1:],
            bool(1.7 <= slope_cliff[0] <= 2.1),
            fit,
        ),
        Criterion(
            "BC (time-indexed) slope on Standard imitation in [0.9, 1.1]",
            slope_standard[0],
            slope_standard[1:],
            bool(0.9 <= slope_standard[0] <= 1.1),
            fit,
        ),
    ]
    for method in IRL_METHODS:
        ratio = _ratio_interval(outputs[CLIFF][method].gaps[:, -1], last)
        criteria.append(
            Criterion(
                f"{method} gap at H={H} at most 0.1 of BC (time-indexed)'s on Reset Cliff",
                ratio[0],
                ratio[1:],
                bool(ratio[0] <= 0.1),
                "ratio of seed-mean gaps; paired bootstrap over seeds",
            )
        )
    dagger_ratio = _ratio_interval(outputs[CLIFF]["DAgger"].gaps[:, -1], last)
    criteria.append(
        Criterion(
            f"DAgger gap at H={H} at least 0.8 of BC (time-indexed)'s on Reset Cliff",
            dagger_ratio[0],
            dagger_ratio[1:],
            bool(dagger_ratio[0] >= 0.8),
            f"equal label budget ({config.dagger_rounds} rounds x {config.n_demos // config.dagger_rounds} "
            "episodes); ratio of seed-mean gaps; paired bootstrap over seeds",
        )
    )
    slopes = {name: {m: seed_mean_slope(horizons, outputs[name][m].gaps) for m in METHODS} for name in names}
    grid, _ = lava_lake(H, config.grid_slip)
    expert_visits = np.asarray(tabular.visitation(mdps[LAKE], stationary_expert(mdps[LAKE])).sum(0))
    lava = np.asarray(mdps[LAKE].terminal)
    measurements = {
        "slopes": slopes,
        "mean_gap_at_largest_H": {
            name: {m: float(outputs[name][m].gaps[:, -1].mean()) for m in METHODS} for name in names
        },
        "median_gap_at_largest_H": {  # a few collapsed runs (GAIL) move the mean, not the median
            name: {m: float(np.median(outputs[name][m].gaps[:, -1])) for m in METHODS} for name in names
        },
        "per_step_error_on_expert_states_and_own_states": {
            name: {m: outputs[name][m].errors.mean(0).tolist() for m in METHODS} for name in names
        },
        "lava_lake_expected_steps_absorbed_at_largest_H": {
            "expert": float(expert_visits[lava].sum()),
            **{m: float(outputs[LAKE][m].visits[:, lava].sum(1).mean()) for m in METHODS},
        },
        "reset_cliff_eps_N": eps_n,
        "reset_cliff_bc_z_scores_every_H": all_z.tolist(),
        "resources_per_data_set_at_largest_H": resources(config),
    }
    arrays = {
        "horizons": horizons,
        "reset_cliff_expected_bc_gap": expected,
        "lava_lake_expert_visits": expert_visits,
        **{f"gaps/{name}": gaps[name] for name in names},
        **{f"errors/{name}": np.stack([outputs[name][m].errors for m in METHODS], axis=1) for name in names},
        "lava_lake_visits": np.stack([outputs[LAKE][m].visits for m in METHODS], axis=1),  # [n, M, S]
    }
    figure = plot(names, horizons, gaps, expected, slopes, grid, expert_visits, arrays["lava_lake_visits"])
    return ExperimentResult(
        name=NAME,
        claim=CLAIM,
        config={**dataclasses.asdict(config), "quick": quick, "mdps": names, "methods": list(METHODS),
                "default_action": DEFAULT_ACTION, "lava_lake_map": list(LAVA_LAKE)},
        arrays=arrays,
        criteria=criteria,
        figure=figure,
        timings=timings,
        measurements=measurements,
    )


def plot(names, horizons, gaps, expected, slopes, grid, expert_visits, visits):
    """One slide. Top: a log-log panel per MDP, a seed band per method; Reset Cliff shows the exact BC
    curve. Bottom: the lava lake's expected visits under the expert, then each learner's minus the expert's."""
    import matplotlib.pyplot as plt

    from toyrlhf.plotting import apply_style, draw_values, draw_visitation, loglog_axes, seed_band, slope_guide

    apply_style()
    n_bottom = len(METHODS) + 1
    fig = plt.figure(figsize=(max(4.6 * len(names), 3.2 * n_bottom), 8.6), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.3, 1.0])
    colors = plt.cm.tab10(np.arange(len(METHODS)))
    for i, (ax, name) in enumerate(zip(top.subplots(1, len(names)), names, strict=True)):
        for m, method in enumerate(METHODS):
            ys = gaps[name][:, m]
            if np.sum(ys.mean(0) > 0) >= 3:
                seed_band(ax, horizons, ys, label=f"{method} ({slopes[name][method]:.2f})", color=colors[m])
            else:
                ax.plot([], [], color=colors[m], label=f"{method} (gap 0 at some H)")
        if name == CLIFF:
            ax.plot(horizons, expected, "ko", ms=4, mfc="none", label="BC exact expectation")
        y0 = max(float(gaps[name][:, 0, 0].mean()), 1e-6)
        slope_guide(ax, horizons, y0, 1, "∝ H")
        slope_guide(ax, horizons, y0, 2, "∝ H²")
        loglog_axes(ax)
        ax.set_xticks(horizons, [str(h) for h in horizons], minor=False)
        ax.set_xticks([], minor=True)
        ax.set_title(name + (" (control)" if name == STANDARD else ""), fontsize=11)
        ax.set_xlabel("horizon H")
        ax.legend(fontsize=7, title="method (log-log slope)", title_fontsize=7, loc="upper left")
        if i == 0:
            ax.set_ylabel("gap J(expert) − J(learner)\nmean ± 95% CI")
    top.suptitle("Learners from N fixed demonstrations: exact return gap against horizon", fontsize=11)
    panels = bottom.subplots(1, n_bottom)
    H = int(horizons[-1])
    ax = panels[0]
    draw_visitation(ax, grid, expert_visits, mask_terminal=False, colorbar=False, norm=_log_norm(expert_visits))
    ax.set_title(f"expert: expected visits, H={H}", fontsize=9)
    diff = visits.mean(0) - expert_visits  # [M, S]
    scale = max(float(np.abs(diff).max()), 1e-9)
    for m, method in enumerate(METHODS):
        ax = panels[m + 1]
        lava = diff[m][np.asarray(grid.terminal)].sum()
        draw_values(ax, grid, diff[m], cmap="RdBu_r", colorbar=m == len(METHODS) - 1, annotate=False,
                    vmin=-scale, vmax=scale)
        ax.set_title(f"{method} − expert\n(+{lava:.2g} steps in lava/exit)", fontsize=9)
    bottom.suptitle(
        f"Lava lake: where each learner's expected visits leave the expert's (mean over data sets, H={H}; "
        "red = more than the expert)",
        fontsize=10,
    )
    return fig


def _log_norm(values):
    from matplotlib.colors import LogNorm

    positive = np.asarray(values)[np.asarray(values) > 0]
    return LogNorm(vmin=max(float(positive.min()), 1e-3), vmax=float(positive.max()))
