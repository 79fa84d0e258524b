"""Compounding error with real learners from finite data (claim T2).

``compounding-error-exact`` injects a fixed error ε by hand. Here the learners
are trained: every method gets the same ``N`` expert demonstrations (or, for
DAgger, the same number of expert labels), and the return gap
``J_H(expert) - J_H(learner)`` is computed *exactly* for every horizon ``H`` of
the sweep, over many seeds (independent demonstration sets), vmapped.

Methods (``toyrlhf.algorithms``), with the default action 0 on unseen states for
every BC-based learner (DESIGN.md pitfall 4; on Reset Cliff action 0 is always
wrong, Rajaraman et al.'s worst case):

- **BC (time-indexed)**: a policy per step from the ``N`` samples at that step;
- **BC (stationary)**: one policy from the ``N H`` pooled samples (more data per
  state as ``H`` grows: the control of pitfall 3);
- **DAgger**: time-indexed learner, ``n_rounds`` rounds of ``N / n_rounds``
  episodes (round 0 is the expert's), ``β_i = 1[i = 0]``: the same ``N H`` labels;
- **MaxEnt IRL**: one-hot (s, a) reward, soft value iteration in the known
  dynamics, evaluated by the true return of its hard optimal policy;
- **GAIL**: not in this sweep yet (``toyrlhf/algorithms/gail.py`` is to come).

All time-indexed methods are *prefix-consistent* (their first ``h`` steps do not
depend on later data), so one run at the largest horizon gives every horizon;
stationary BC gets its horizon-``h`` counts from a cumulative sum; MaxEnt IRL
runs every horizon in one vmapped, compiled call (``maxent_irl.shorter_horizon``).

MDPs: Reset Cliff (10 good states, ``ρ(s) ∝ 1/(s+1)``), Standard imitation (32
states; no compounding for anyone), and a slippery gridworld with lava (the map
of ``compounding-error-exact``; no criterion).

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
4. MaxEnt IRL's mean gap at the largest H at most 0.1 of BC (time-indexed)'s on Reset Cliff;
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

import jax
import jax.numpy as jnp
import numpy as np

from toyrlhf import demonstrations as demo_lib
from toyrlhf import tabular
from toyrlhf.algorithms import bc, dagger, maxent_irl
from toyrlhf.envs import toy_mdps
from toyrlhf.experiments.common import Criterion, ExperimentResult, Progress, timed
from toyrlhf.experiments.compounding_error_exact import GRID_MAP
from toyrlhf.stats import bootstrap_interval, loglog_slope, mean_and_interval

NAME = "compounding-error"
CLAIM = (
    "T2: behavior cloning from N demonstrations compounds (gap ~ H²) where mistakes are fatal; "
    "MaxEnt IRL, planning in the known dynamics, does not; DAgger cannot help without recovery."
)

METHODS = ("BC (time-indexed)", "BC (stationary)", "DAgger", "MaxEnt IRL")
DEFAULT_ACTION = 0
ROUND_OFF = 1e-9
"""Gaps smaller than this in magnitude are float64 round-off of an exact zero and are set to 0."""


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
    """Slip probability of the gridworld."""
    grid_step_cost: float = 0.01
    """Cost per step of the gridworld."""

    @classmethod
    def quick(cls) -> Config:
        return cls(n_seeds=24, horizons=(4, 8, 16, 32, 64))


def build_mdps(config: Config) -> dict[str, tabular.TabularMDP]:
    from toyrlhf.envs.gridworld import make_gridworld

    H = max(config.horizons)
    return {
        "Reset Cliff": toy_mdps.reset_cliff(H, n_good=config.cliff_states),
        "Standard imitation": toy_mdps.standard_imitation(H, n_states=config.standard_states),
        "Slippery gridworld": make_gridworld(
            GRID_MAP, slip=config.grid_slip, step_cost=config.grid_step_cost, horizon=H
        ).mdp,
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


def _gaps_at(mdp, expert_rewards, policy, horizons):
    """``[len(horizons)]``: ``J_h(expert) - J_h(policy)`` for a prefix-consistent policy."""
    gap = jnp.cumsum(expert_rewards - tabular.reward_per_step(mdp, policy))
    return gap[horizons - 1]


def _errors(mdp, learner, expert):
    """Mean per-step TV error of ``learner`` on the expert's states and on its own (full horizon)."""
    on_expert = tabular.disagreement(mdp, learner, expert, states_of=expert).mean()
    on_own = tabular.disagreement(mdp, learner, expert, states_of=learner).mean()
    return jnp.stack([on_expert, on_own])


def make_sweep(config: Config, mdp: tabular.TabularMDP, expert: jax.Array):
    """``sweep(key) -> (gaps [M, n_H], errors [M, 2])`` for one seed; vmap over keys."""
    horizons = jnp.asarray(config.horizons)
    S, A, H = mdp.n_states, mdp.n_actions, mdp.horizon
    expert_rewards = tabular.reward_per_step(mdp, expert)
    dagger_train = dagger.make_train(
        dagger.DAggerConfig(
            n_rounds=config.dagger_rounds,
            episodes_per_round=config.n_demos // config.dagger_rounds,
            default_action=DEFAULT_ACTION,
        ),
        mdp,
        expert,
    )
    irl_train = maxent_irl.make_train(
        maxent_irl.MaxEntIRLConfig(n_steps=config.irl_steps, learning_rate=config.irl_learning_rate), mdp
    )

    def sweep(key):
        key_demos, key_dagger = jax.random.split(key)
        demos = demo_lib.sample_demonstrations(key_demos, mdp, expert, config.n_demos)

        # BC (time-indexed): one fit serves every horizon.
        bc_time = bc.fit_tabular(demos, S, A, time_indexed=True, default_action=DEFAULT_ACTION)
        gaps_time = _gaps_at(mdp, expert_rewards, bc_time, horizons)

        # BC (stationary): counts from the first h steps, for every h at once.
        counts = jnp.cumsum(bc.action_counts(demos.observations, demos.actions, S, A, True), axis=0)
        bc_stationary = bc.policy_from_counts(counts[horizons - 1], DEFAULT_ACTION)  # [n_H, S, A]

        def stationary_gap(policy, h):
            return jnp.sum(jnp.where(jnp.arange(H) < h, expert_rewards - tabular.reward_per_step(mdp, policy), 0.0))

        gaps_stationary = jax.vmap(stationary_gap)(bc_stationary, horizons)

        # DAgger: time-indexed learner, prefix-consistent.
        dagger_policy = dagger_train(key_dagger).policy
        gaps_dagger = _gaps_at(mdp, expert_rewards, dagger_policy, horizons)

        # MaxEnt IRL: every horizon in one vmapped call.
        irl_policies = jax.vmap(lambda h: irl_train(demos, h).policy)(horizons)  # [n_H, H, S, A]

        def irl_gap(policy, h):
            return jnp.sum(jnp.where(jnp.arange(H) < h, expert_rewards - tabular.reward_per_step(mdp, policy), 0.0))

        gaps_irl = jax.vmap(irl_gap)(irl_policies, horizons)

        gaps = jnp.stack([gaps_time, gaps_stationary, gaps_dagger, gaps_irl])
        gaps = jnp.where(jnp.abs(gaps) < ROUND_OFF, 0.0, gaps)  # exact zeros, not float64 noise
        errors = jnp.stack(
            [
                _errors(mdp, bc_time, expert),
                _errors(mdp, bc_stationary[-1], expert),
                _errors(mdp, dagger_policy, expert),
                _errors(mdp, irl_policies[-1], expert),
            ]
        )
        return gaps, errors

    return sweep


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
    """Bootstrap over seeds of mean(a[:, -1]) / mean(b[:, -1]) (paired resampling)."""
    pairs = np.stack([a, b], axis=1)
    return bootstrap_interval(pairs, lambda p: float(p[:, 0].mean() / p[:, 1].mean()))


def run(quick: bool = True, seeds: int | None = None, progress: Progress | None = None) -> ExperimentResult:
    progress = progress or Progress(enabled=False)
    config = Config.quick() if quick else Config()
    if seeds is not None:
        config = dataclasses.replace(config, n_seeds=seeds)
    if config.n_demos % config.dagger_rounds:
        raise ValueError(f"n_demos ({config.n_demos}) must be a multiple of dagger_rounds ({config.dagger_rounds})")
    mdps = build_mdps(config)
    names = list(mdps)
    experts = {name: stationary_expert(m) for name, m in mdps.items()}
    keys = jax.random.split(jax.random.key(0), config.n_seeds)
    horizons = np.asarray(config.horizons)

    gaps, errors, compile_s, run_s = {}, {}, 0.0, 0.0
    for i, (name, mdp) in enumerate(mdps.items()):
        fn = jax.jit(jax.vmap(make_sweep(config, mdp, experts[name])))
        progress(f"{NAME}: [{i + 1}/{len(mdps)}] {name}: compiling ({config.n_seeds} seeds, {len(METHODS)} methods)")
        compiled, c_s = timed(fn.lower(keys).compile)
        (g, e), r_s = timed(compiled, keys)
        progress(f"{NAME}: {name}: compiled in {c_s:.1f}s, ran in {r_s:.1f}s")
        gaps[name], errors[name] = np.asarray(g), np.asarray(e)  # [n, M, n_H], [n, M, 2]
        compile_s, run_s = compile_s + c_s, run_s + r_s

    bc_time, stationary, dag, irl = range(len(METHODS))
    cliff, standard = "Reset Cliff", "Standard imitation"
    rho = np.asarray(mdps[cliff].init)[: config.cliff_states]
    expected, eps_n = reset_cliff_bc_expected_gap(rho, config.n_demos, horizons)

    # 1. mean gap at the largest H vs the exact expected gap.
    last = gaps[cliff][:, bc_time, -1]
    mean, lo, hi = mean_and_interval(last)
    se = float(last.std(ddof=1) / np.sqrt(len(last)))
    z = float((mean - expected[-1]) / se)
    all_z = (gaps[cliff][:, bc_time].mean(0) - expected) / (gaps[cliff][:, bc_time].std(0, ddof=1) / np.sqrt(len(last)))

    def slope_with_interval(name, m):
        return bootstrap_interval(gaps[name][:, m], lambda g: seed_mean_slope(horizons, g))

    slope_cliff = slope_with_interval(cliff, bc_time)
    slope_standard = slope_with_interval(standard, bc_time)
    irl_ratio = _ratio_interval(gaps[cliff][:, irl, -1], gaps[cliff][:, bc_time, -1])
    dagger_ratio = _ratio_interval(gaps[cliff][:, dag, -1], gaps[cliff][:, bc_time, -1])
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
        Criterion(
            f"MaxEnt IRL gap at H={H} at most 0.1 of BC (time-indexed)'s on Reset Cliff",
            irl_ratio[0],
            irl_ratio[1:],
            bool(irl_ratio[0] <= 0.1),
            "ratio of seed-mean gaps; paired bootstrap over seeds",
        ),
        Criterion(
            f"DAgger gap at H={H} at least 0.8 of BC (time-indexed)'s on Reset Cliff",
            dagger_ratio[0],
            dagger_ratio[1:],
            bool(dagger_ratio[0] >= 0.8),
            f"equal label budget ({config.dagger_rounds} rounds x {config.n_demos // config.dagger_rounds} "
            "episodes); ratio of seed-mean gaps; paired bootstrap over seeds",
        ),
    ]
    slopes = {
        name: {method: seed_mean_slope(horizons, gaps[name][:, m]) for m, method in enumerate(METHODS)}
        for name in names
    }
    measurements = {
        "slopes": slopes,
        "mean_gap_at_largest_H": {
            name: {method: float(gaps[name][:, m, -1].mean()) for m, method in enumerate(METHODS)} for name in names
        },
        "per_step_error_on_expert_states_and_own_states": {
            name: {method: errors[name][:, m].mean(0).tolist() for m, method in enumerate(METHODS)}
            for name in names
        },
        "reset_cliff_eps_N": eps_n,
        "reset_cliff_bc_z_scores_every_H": all_z.tolist(),
        "resources_per_data_set_at_largest_H": {
            "BC (time-indexed)": f"{config.n_demos * H} expert labels, 0 env steps, no dynamics model",
            "BC (stationary)": f"{config.n_demos * H} expert labels, 0 env steps, no dynamics model",
            "DAgger": f"{config.n_demos * H} expert labels, "
            f"{(config.dagger_rounds - 1) * (config.n_demos // config.dagger_rounds) * H} env steps, no dynamics model",
            "MaxEnt IRL": f"{config.n_demos * H} expert labels, 0 env steps, known dynamics",
        },
        "not_run": "GAIL (toyrlhf/algorithms/gail.py not written yet)",
    }
    arrays = {
        "horizons": horizons,
        "reset_cliff_expected_bc_gap": expected,
        **{f"gaps/{name}": gaps[name] for name in names},
        **{f"errors/{name}": errors[name] for name in names},
    }
    figure = plot(names, horizons, gaps, expected, slopes)
    return ExperimentResult(
        name=NAME,
        claim=CLAIM,
        config={**dataclasses.asdict(config), "quick": quick, "mdps": names, "methods": list(METHODS),
                "default_action": DEFAULT_ACTION},
        arrays=arrays,
        criteria=criteria,
        figure=figure,
        timings={"compile_s": compile_s, "run_s": run_s},
        measurements=measurements,
    )


def plot(names, horizons, gaps, expected, slopes):
    """One slide: a log-log panel per MDP, a seed band per method; Reset Cliff shows the exact BC curve."""
    import matplotlib.pyplot as plt

    from toyrlhf.plotting import apply_style, loglog_axes, seed_band, slope_guide

    apply_style()
    fig, axes = plt.subplots(1, len(names), figsize=(4.6 * len(names), 4.2))
    colors = plt.cm.tab10(np.arange(len(METHODS)))
    for ax, name in zip(axes, names, strict=True):
        for m, method in enumerate(METHODS):
            ys = gaps[name][:, m]
            if np.sum(ys.mean(0) > 0) >= 3:
                seed_band(ax, horizons, ys, label=f"{method} ({slopes[name][method]:.2f})", color=colors[m])
            else:
                ax.plot([], [], color=colors[m], label=f"{method} (gap 0 at some H)")
        if name == "Reset Cliff":
            ax.plot(horizons, expected, "ko", ms=4, mfc="none", label="BC exact expectation")
        y0 = max(float(gaps[name][:, 0, 0].mean()), 1e-6)
        slope_guide(ax, horizons, y0, 1, "∝ H")
        slope_guide(ax, horizons, y0, 2, "∝ H²")
        loglog_axes(ax)
        ax.set_xticks(horizons, [str(h) for h in horizons], minor=False)
        ax.set_xticks([], minor=True)
        ax.set_title(name)
        ax.set_xlabel("horizon H")
        ax.legend(fontsize=7, title="method (log-log slope)", title_fontsize=7, loc="upper left")
    axes[0].set_ylabel("gap J(expert) − J(learner), mean ± 95% CI")
    fig.suptitle("Learners from N fixed demonstrations: exact return gap against horizon", fontsize=11)
    fig.tight_layout()
    return fig
