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
regime where the ``T²`` law holds, DESIGN.md pitfall 2), at the primary
``ε = 1e-3`` (the grid then covers T = 2 .. 300):

1. BC-like slope in [1.8, 2.05] on Trap;
2. BC-like slope in [1.8, 2.05] on Lane;
3. DAgger-like slope in [0.95, 1.05] on Lane;
4. BC-like and 5. DAgger-like slope in [0.9, 1.1] on Standard imitation;
6. the Trap closed form ``T - (1-ε)(1-(1-ε)^T)/ε`` matches the computed gap to a
   relative error of 1e-9 at every ε and T;
7. the Ross–Bagnell bound ``gap <= T² ε̄ (R_max - R_min)`` holds at every point,
   with ε̄ the learner's exactly computed mean error on the expert's states.

Slopes at the other ε and on the slippery gridworld are reported as
measurements, not criteria. The gridworld shows two things the toy chains do
not: slip makes the expert itself visit almost every state, so the BC-like
learner is rarely off the expert's support and behaves like the DAgger-like one;
and an episode that ends at the goal has an effective horizon of its length, so
the gap stops growing once T passes the time to reach the goal.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from toyrlhf import tabular
from toyrlhf.envs import toy_mdps
from toyrlhf.experiments.common import Criterion, ExperimentResult, Progress, timed
from toyrlhf.stats import loglog_slope

NAME = "compounding-error-exact"
CLAIM = (
    "T2: behavior cloning's error compounds (gap ~ εT²) where mistakes cannot be undone; "
    "learning on one's own states (DAgger-like) keeps it ~ εT; no compounding without it."
)

PRIMARY_EPSILON = 1e-3
FIT_MAX_EPSILON_T = 0.3
LEARNERS = ("BC-like", "DAgger-like")

GRID_MAP = "lava-bridge"
"""The gridworld panel: a bridge over lava or a detour (``toyrlhf.envs.gridworld.MAPS``)."""


@dataclasses.dataclass(frozen=True)
class Config:
    """Settings of the exact sweep."""

    max_horizon: int = 1024
    """Largest horizon T; every T in [1, max_horizon] is computed."""
    epsilons: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 3e-2, 1e-1)
    """Per-step error rates; must include PRIMARY_EPSILON."""
    n_plot_horizons: int = 33
    """Number of log-spaced horizons from 2 to max_horizon drawn and used in the fits."""
    lane_half_width: int = 5
    """Lane positions run from -K to K."""
    grid_slip: float = 0.1
    """Slip probability of the gridworld."""
    grid_step_cost: float = 0.01
    """Cost per step of the gridworld."""

    @classmethod
    def quick(cls) -> Config:
        return cls(max_horizon=512, epsilons=(1e-3, 1e-2, 1e-1), n_plot_horizons=25)


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


def gaps_and_errors(mdp: tabular.TabularMDP, expert: jax.Array, epsilons: jax.Array):
    """Exact gaps for every horizon and the learners' errors on the expert's states.

    Returns ``gap [E, 2, T]`` with ``gap[..., T'-1] = J_{T'}(expert) - J_{T'}(learner)``
    and ``mean_error [E, 2, T]``, the learner's error on the expert's states
    averaged over the first ``T'`` steps (the ε̄ of Ross & Bagnell's bound).
    """
    expert_rewards = tabular.reward_per_step(mdp, expert)
    steps = jnp.arange(1, mdp.horizon + 1)

    def per_epsilon(eps):
        learners = error_injection_learners(mdp, expert, eps)
        gaps, errors = [], []
        for learner in learners:
            gaps.append(jnp.cumsum(expert_rewards - tabular.reward_per_step(mdp, learner)))
            errors.append(jnp.cumsum(tabular.disagreement(mdp, learner, expert, states_of=expert)) / steps)
        return jnp.stack(gaps), jnp.stack(errors)

    return jax.vmap(per_epsilon)(epsilons)


@jax.jit
def sweep(mdps: tuple, experts: tuple, epsilons: jax.Array):
    """All MDPs, ε and learners in one compiled call (a tuple of ``gaps_and_errors`` outputs)."""
    return tuple(gaps_and_errors(m, e, epsilons) for m, e in zip(mdps, experts))


def trap_closed_form(epsilon, horizon):
    """Ross & Bagnell's Trap gap ``T - (1-ε)(1-(1-ε)^T)/ε``."""
    return horizon - (1 - epsilon) * (1 - (1 - epsilon) ** horizon) / epsilon


def build_mdps(config: Config) -> dict[str, tabular.TabularMDP]:
    from toyrlhf.envs.gridworld import make_gridworld

    T = config.max_horizon
    return {
        "Trap": toy_mdps.trap(T),
        "Lane": toy_mdps.lane(T, half_width=config.lane_half_width),
        "Standard imitation": toy_mdps.standard_imitation(T),
        "Slippery gridworld": make_gridworld(
            GRID_MAP, slip=config.grid_slip, step_cost=config.grid_step_cost, horizon=T
        ).mdp,
    }


def stationary_expert(mdp: tabular.TabularMDP) -> jax.Array:
    """The optimal first-step action everywhere: the expert of a long horizon, used at every step."""
    return tabular.solve(mdp).policy[0]


def fit_slope(horizons, gaps, epsilon) -> float:
    """Log-log slope over the horizons with ``εT <= 0.3`` (NaN if fewer than 3 such points)."""
    keep = epsilon * horizons <= FIT_MAX_EPSILON_T
    if keep.sum() < 3:
        return float("nan")
    return loglog_slope(horizons[keep], gaps[keep])[0]


def run(quick: bool = True, seeds: int | None = None, progress: Progress | None = None) -> ExperimentResult:
    progress = progress or Progress(enabled=False)
    config = Config.quick() if quick else Config()
    if PRIMARY_EPSILON not in config.epsilons:
        raise ValueError(f"config.epsilons must include the primary ε = {PRIMARY_EPSILON}")
    mdps = build_mdps(config)
    names = list(mdps)
    experts = tuple(stationary_expert(m) for m in mdps.values())
    epsilons = jnp.asarray(config.epsilons)

    progress(f"{NAME}: compiling the sweep ({len(names)} MDPs x {len(config.epsilons)} ε x 2 learners)")
    lowered = sweep.lower(tuple(mdps.values()), experts, epsilons)
    compiled, compile_s = timed(lowered.compile)
    progress(f"{NAME}: compiled in {compile_s:.1f}s, running")
    outputs, run_s = timed(compiled, tuple(mdps.values()), experts, epsilons)
    progress(f"{NAME}: ran in {run_s:.3f}s")

    gap = np.stack([np.asarray(g) for g, _ in outputs])  # [M, E, 2, T]
    mean_error = np.stack([np.asarray(e) for _, e in outputs])
    all_T = np.arange(1, config.max_horizon + 1)
    horizons = np.unique(np.round(np.geomspace(2, config.max_horizon, config.n_plot_horizons))).astype(int)
    gap_at = gap[..., horizons - 1]

    slopes = np.array(
        [
            [[fit_slope(horizons, gap_at[m, e, k], eps) for k in range(2)] for e, eps in enumerate(config.epsilons)]
            for m in range(len(names))
        ]
    )  # [M, E, 2]

    # Closed form on Trap, every ε and every T.
    trap = names.index("Trap")
    closed = trap_closed_form(np.asarray(config.epsilons)[:, None], all_T[None, :])
    trap_rel_error = float(np.max(np.abs(gap[trap, :, 0] - closed) / closed))

    # Ross & Bagnell: gap <= T^2 ε̄ (R_max - R_min) at every point.
    reward_range = np.array([float(m.R.max() - m.R.min()) for m in mdps.values()])
    bound = all_T**2 * mean_error * reward_range[:, None, None, None]
    bound_ratio = float(np.max(gap / bound))

    e0 = config.epsilons.index(PRIMARY_EPSILON)
    lane, standard = names.index("Lane"), names.index("Standard imitation")
    detail = f"log-log least squares over horizons with εT <= {FIT_MAX_EPSILON_T}, ε = {PRIMARY_EPSILON}"

    def slope_criterion(m, k, lo, hi):
        value = float(slopes[m, e0, k])
        return Criterion(
            f"{LEARNERS[k]} slope on {names[m]} in [{lo}, {hi}]", value, None, bool(lo <= value <= hi), detail
        )

    criteria = [
        slope_criterion(trap, 0, 1.8, 2.05),
        slope_criterion(lane, 0, 1.8, 2.05),
        slope_criterion(lane, 1, 0.95, 1.05),
        slope_criterion(standard, 0, 0.9, 1.1),
        slope_criterion(standard, 1, 0.9, 1.1),
        Criterion(
            "Trap closed form T - (1-ε)(1-(1-ε)^T)/ε matches the exact gap to relative error 1e-9",
            trap_rel_error,
            None,
            trap_rel_error <= 1e-9,
            f"maximum relative error over every ε in {list(config.epsilons)} and T = 1..{config.max_horizon}",
        ),
        Criterion(
            "Ross–Bagnell bound gap <= T² ε̄ (R_max - R_min) holds at every point",
            bound_ratio,
            None,
            bound_ratio <= 1.0 + 1e-9,
            "maximum of gap / bound over MDPs, learners, ε and T (<= 1 means the bound holds)",
        ),
    ]
    measurements = {
        "slopes": {
            name: {
                f"eps={eps:g}": {LEARNERS[k]: slopes[m, e, k] for k in range(2)}
                for e, eps in enumerate(config.epsilons)
            }
            for m, name in enumerate(names)
        },
        "recoverability_u": {name: float(tabular.recoverability(mdp.with_horizon(64))) for name, mdp in mdps.items()},
    }
    arrays = {
        "gap": gap,
        "mean_error": mean_error,
        "horizons": all_T,
        "plot_horizons": horizons,
        "epsilons": np.asarray(config.epsilons),
        "slopes": slopes,
        "trap_closed_form": closed,
    }
    figure = plot(names, config, horizons, gap_at, closed[:, horizons - 1], slopes)
    return ExperimentResult(
        name=NAME,
        claim=CLAIM,
        config={**dataclasses.asdict(config), "quick": quick, "mdps": names, "learners": list(LEARNERS)},
        arrays=arrays,
        criteria=criteria,
        figure=figure,
        timings={"compile_s": compile_s, "run_s": run_s},
        measurements=measurements,
    )


def plot(names, config: Config, horizons, gap_at, trap_closed, slopes):
    """One slide: a log-log panel per MDP, BC-like solid, DAgger-like dashed, a colour per ε."""
    import matplotlib.pyplot as plt

    from toyrlhf.plotting import apply_style

    apply_style()
    fig, axes = plt.subplots(2, (len(names) + 1) // 2, figsize=(10, 8), sharex=True)
    axes = axes.ravel()
    colors = plt.cm.viridis(np.linspace(0.05, 0.85, len(config.epsilons)))
    for m, (ax, name) in enumerate(zip(axes, names)):
        for e, eps in enumerate(config.epsilons):
            for k, style in enumerate(("-", "--")):
                y = gap_at[m, e, k]
                ok = y > 0
                label = f"{LEARNERS[k]}, ε={eps:g}" if m == 0 else None
                ax.loglog(horizons[ok], y[ok], style, color=colors[e], label=label)
            if name == "Trap":
                ax.loglog(horizons, trap_closed[e], "o", ms=3, color=colors[e], mfc="none")
        # Guide lines through the primary-ε BC-like curve's first point: slopes 1 and 2.
        e0 = config.epsilons.index(PRIMARY_EPSILON)
        y0 = gap_at[m, e0, 0, 0]
        if y0 > 0:
            for power, tag in ((1, "∝ T"), (2, "∝ T²")):
                ax.loglog(horizons, y0 * (horizons / horizons[0]) ** power, ":", color="0.6", lw=1)
                ax.annotate(tag, (horizons[-1], y0 * (horizons[-1] / horizons[0]) ** power), color="0.4", fontsize=8)
        s = slopes[m, e0]
        ax.set_title(f"{name}\nslope at ε={PRIMARY_EPSILON:g}: BC {s[0]:.2f}, DAgger {s[1]:.2f}", fontsize=10)
        ax.set_xlabel("horizon T")
        ax.set_ylabel("exact gap J(expert) − J(learner)")
    fig.legend(loc="lower center", ncol=len(config.epsilons), fontsize=8, frameon=False)
    fig.suptitle(
        "Compounding error, exactly: BC-like (solid) vs DAgger-like (dashed)\n"
        f"circles: Trap closed form; slopes fitted where εT ≤ {FIT_MAX_EPSILON_T}",
        fontsize=11,
    )
    fig.tight_layout(rect=(0, 0.08, 1, 0.95))
    return fig
