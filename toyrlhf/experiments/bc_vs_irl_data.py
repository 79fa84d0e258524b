"""Behavior cloning against inverse RL as the number of demonstrations grows (claim T2, finite data).

``compounding-error`` fixes the data (``N`` demonstrations) and grows the
horizon. Here the horizon is fixed and ``N`` grows: how much data does each
method need, and what else does it consume to get there? The paper's argument
is that inverse RL (the reward model + RL of RLHF) needs fewer demonstrations
than behavior cloning (SFT) because it plans through the known dynamics
instead of copying actions state by state.

Gridworld part (exact). The lava lake of ``compounding-error`` (slippery, +1 per
step on the floor, lava absorbing) at horizon ``H``. For every ``N`` in the grid,
every seed draws one set of ``N_max`` expert episodes and each method learns
from its first ``N`` (nested data sets: a method's curve over ``N`` is one data
stream growing). Gaps ``J(expert) - J(learner)`` are exact (``tabular.evaluate``).

- **BC (time-indexed)**, **BC (stationary)**: default action 0 ("left") on unseen
  states (DESIGN.md pitfall 4);
- **DAgger**: ``n_rounds`` rounds of ``N / n_rounds`` episodes, round 0 the expert's,
  so the same ``N H`` expert labels as BC plus its own environment steps;
- **MaxEnt IRL**: one-hot (s, a) reward, soft value iteration in the known dynamics;
- **GAIL** (``toyrlhf.algorithms.gail``, ``GAILConfig.tabular()``'s settings, as in
  ``compounding-error``): PPO on a discriminator reward in the sampled MDP, no
  dynamics model, its environment steps counted.

One compiled call per MDP covers every ``N`` and every seed for BC and MaxEnt IRL:
the first ``N`` episodes are *tiled* to ``N_max`` rows (row ``i`` is episode
``i mod N``; every ``N`` divides ``N_max``), which leaves every count-normalised
statistic unchanged (BC's action frequencies, MaxEnt IRL's empirical occupancy),
so the shapes do not depend on ``N``. GAIL's discriminator loss also normalises
the expert term by its total weight, so tiling leaves it unchanged too, and GAIL
gets its own compiled call over every ``N`` and seed. DAgger's rollouts have an ``N``-dependent
shape, so it is compiled once per ``N`` (vmapped over seeds).

Budgets (pitfall 6) are reported for every method and ``N``: expert labels,
environment steps the learner took, and whether it used the known dynamics.

CartPole part. Return in Gymnasium's own ``CartPole-v1`` (``evaluate_in_gymnasium``,
greedy actions) for MLP BC (``MLPBCConfig()``) and GAIL (``GAILConfig.cartpole()``,
the settings of ``tests/test_gail.py``) trained from 1, 4 and 16 episodes of a
PPO expert (``experts.train_cartpole_expert``, checked in Gymnasium; its greedy
episodes in the JAX port are the demonstrations). Every seed has its own 16
episodes and uses the first ``n`` of them (tiled as above: both losses are
normalised by the total weight); one compiled call per method covers every ``n``
and seed. Budgets: expert labels (valid demonstrated steps) for both; GAIL also
takes its own environment steps in the JAX CartPole.

Pre-registered criteria (fixed before the first run; intervals are percentile
bootstraps over seeds, paired where two methods share data sets):

1. MaxEnt IRL's mean gap at the smallest ``N`` is below BC (time-indexed)'s: the
   95% interval of ``gap_BC - gap_IRL`` lies above 0;
2. BC (time-indexed)'s gap decreases with ``N``: the log-log slope of its seed-mean
   gap against ``N`` is negative, with the 95% interval's upper end below 0;
3. (when GAIL is available) GAIL's mean gap at the smallest ``N`` is below BC
   (time-indexed)'s, decided as in 1;
4. (when the CartPole part runs) GAIL's mean Gymnasium return from 1 expert
   episode is above MLP BC's: the 95% interval of the difference lies above 0.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from toyrlhf import demonstrations as demo_lib
from toyrlhf import tabular
from toyrlhf.algorithms import bc, dagger, experts, gail, maxent_irl
from toyrlhf.envs import CartPole, evaluate_in_gymnasium, tabular_env
from toyrlhf.experiments.common import Criterion, ExperimentResult, Progress, timed
from toyrlhf.experiments.compounding_error import (
    DEFAULT_ACTION,
    LAVA_LAKE,
    gail_env_steps,
    lava_lake,
    stationary_expert,
)
from toyrlhf.stats import bootstrap_interval, loglog_slope

NAME = "bc-vs-irl-data"
CLAIM = (
    "T2: with few demonstrations inverse RL (planning in the known dynamics) beats behavior cloning; "
    "BC closes the gap only with more data; each method's budget (labels, env steps, dynamics) differs."
)

METHODS = ("BC (time-indexed)", "BC (stationary)", "DAgger", "MaxEnt IRL", "GAIL")
IRL_METHODS = ("MaxEnt IRL", "GAIL")
"""Inverse-RL methods compared with BC at the smallest N (criteria 1 and 3)."""
KNOWN_DYNAMICS = ("MaxEnt IRL",)
"""Methods that use the exact transition model (GAIL samples the MDP instead)."""
CARTPOLE_METHODS = ("MLP BC", "GAIL")


@dataclasses.dataclass(frozen=True)
class Config:
    """Settings of the data sweep."""

    n_demos: tuple[int, ...] = (4, 8, 16, 32, 64, 128)
    """Numbers of demonstrations N; each must divide the largest and be a multiple of dagger_rounds."""
    horizon: int = 32
    """Fixed horizon H of the lava lake."""
    n_seeds: int = 100
    """Independent demonstration streams (and learner seeds)."""
    dagger_rounds: int = 4
    """DAgger rounds (round 0 is the expert's)."""
    irl_steps: int = 100
    """Adam steps of MaxEnt IRL."""
    irl_learning_rate: float = 0.1
    """Adam step size of MaxEnt IRL."""
    grid_slip: float = 0.1
    """Slip probability of the lava lake."""
    gail_updates: int = 60
    """Tabular GAIL rounds (``GAILConfig.tabular()``'s default; its other numbers are that config's)."""
    cartpole_episodes: tuple[int, ...] = (1, 4, 16)
    """Expert episodes for the CartPole part (each must divide the largest)."""
    cartpole_seeds: int = 10
    """Seeds of the CartPole part: each its own expert episodes and learner initialisation."""
    cartpole_gail_updates: int = 100
    """CartPole GAIL rounds (``GAILConfig.cartpole()``'s default, as in ``tests/test_gail.py``)."""
    cartpole_eval_episodes: int = 10
    """Gymnasium episodes per learned policy."""
    cartpole_expert_seed: int = 1
    """PPO seed of the CartPole expert (the next seeds are tried if it fails its Gymnasium check)."""

    @classmethod
    def quick(cls) -> Config:
        return cls(n_demos=(4, 16, 64), n_seeds=24, cartpole_seeds=3)

    def gail_config(self) -> gail.GAILConfig:
        """Tabular GAIL: tables for policy, critic and discriminator."""
        return gail.GAILConfig.tabular(n_updates=self.gail_updates)

    def cartpole_gail_config(self) -> gail.GAILConfig:
        """CartPole GAIL: MLP 64x64 policy, critic and discriminator."""
        return gail.GAILConfig.cartpole(n_updates=self.cartpole_gail_updates)

    def __post_init__(self):
        largest = max(self.n_demos)
        bad = [n for n in self.n_demos if largest % n or n % self.dagger_rounds]
        if bad:
            raise ValueError(
                f"n_demos {bad} must divide the largest ({largest}) and be multiples of dagger_rounds "
                f"({self.dagger_rounds})"
            )
        largest = max(self.cartpole_episodes)
        if any(largest % n for n in self.cartpole_episodes):
            raise ValueError(f"cartpole_episodes {self.cartpole_episodes} must divide the largest ({largest})")


def first_n_tiled(demos: demo_lib.Demonstrations, n) -> demo_lib.Demonstrations:
    """The first ``n`` episodes (``n`` may be traced) repeated to fill all ``N_max`` rows: row ``i`` is ``i mod n``.

    When ``n`` divides ``N_max`` every episode appears ``N_max / n`` times, so
    normalised counts (BC's action frequencies, an empirical occupancy) equal those
    of the first ``n`` episodes exactly, at a shape that does not depend on ``n``.
    """
    rows = jnp.arange(demos.n_episodes) % n
    return demo_lib.Demonstrations(*(x[rows] for x in demos))


def _gap_and_errors(mdp, expert, j_expert, policy):
    """``[3]``: exact gap, and the per-step TV error on the expert's states and on the learner's own."""
    return jnp.stack(
        [
            j_expert - tabular.evaluate(mdp, policy),
            tabular.disagreement(mdp, policy, expert, states_of=expert).mean(),
            tabular.disagreement(mdp, policy, expert, states_of=policy).mean(),
        ]
    )


def make_offline_sweep(config: Config, mdp: tabular.TabularMDP, expert: jax.Array):
    """``sweep(key) -> [n_N, 3 methods, 3]`` (gap, error on expert's states, on own) for BC x2 and MaxEnt IRL."""
    S, A = mdp.n_states, mdp.n_actions
    expert = tabular.time_indexed(mdp, expert)
    j_expert = tabular.evaluate(mdp, expert)
    irl_train = maxent_irl.make_train(
        maxent_irl.MaxEntIRLConfig(n_steps=config.irl_steps, learning_rate=config.irl_learning_rate), mdp
    )
    score = lambda policy: _gap_and_errors(mdp, expert, j_expert, policy)  # noqa: E731

    def sweep(key):
        demos = demo_lib.sample_demonstrations(key, mdp, expert, max(config.n_demos))

        def at(n):
            d = first_n_tiled(demos, n)
            bc_time = bc.fit_tabular(d, S, A, time_indexed=True, default_action=DEFAULT_ACTION)
            bc_stationary = bc.fit_tabular(d, S, A, time_indexed=False, default_action=DEFAULT_ACTION)
            irl = irl_train(d).policy
            return jnp.stack([score(bc_time), score(bc_stationary), score(irl)])

        return jax.vmap(at)(jnp.asarray(config.n_demos))

    return sweep


def make_gail_sweep(config: Config, mdp: tabular.TabularMDP, expert: jax.Array):
    """``sweep(key) -> [n_N, 3]`` (gap, error on expert's states, on own) for tabular GAIL, every N at once.

    The demonstrations are those of :func:`make_offline_sweep` for the same ``key``.
    """
    expert = tabular.time_indexed(mdp, expert)
    j_expert = tabular.evaluate(mdp, expert)
    gail_config = config.gail_config()
    env, env_params = tabular_env(mdp, "index")
    train = gail.make_train(gail_config, env, env_params)

    def sweep(key):
        demos = demo_lib.sample_demonstrations(key, mdp, expert, max(config.n_demos))

        def at(n):
            result, metrics = train(jax.random.fold_in(key, 2), first_n_tiled(demos, n))
            policy = gail.tabular_policy(gail_config, result, env_params)
            score = _gap_and_errors(mdp, expert, j_expert, policy)
            return jnp.where(jnp.any(metrics.nonfinite), jnp.nan, score)  # NaN in training -> NaN gap

        return jax.vmap(at)(jnp.asarray(config.n_demos))

    return sweep


def make_dagger_sweep(config: Config, mdp: tabular.TabularMDP, expert: jax.Array, n_demos: int):
    """``sweep(key) -> ([3] gap and errors, Resources)`` for DAgger with ``n_demos`` labelled episodes."""
    expert = tabular.time_indexed(mdp, expert)
    j_expert = tabular.evaluate(mdp, expert)
    train = dagger.make_train(
        dagger.DAggerConfig(
            n_rounds=config.dagger_rounds,
            episodes_per_round=n_demos // config.dagger_rounds,
            default_action=DEFAULT_ACTION,
        ),
        mdp,
        expert,
    )

    def sweep(key):
        result = train(key)
        return _gap_and_errors(mdp, expert, j_expert, result.policy), result.resources

    return sweep


def budgets(config: Config, dagger_env_steps) -> dict[str, np.ndarray]:
    """``{"expert_labels", "env_steps", "known_dynamics"}``, each ``[M, n_N]`` (pitfall 6)."""
    n = np.asarray(config.n_demos)
    labels = np.stack([n * config.horizon] * len(METHODS))
    env_steps = np.zeros((len(METHODS), len(n)), dtype=np.int64)
    env_steps[METHODS.index("DAgger")] = dagger_env_steps
    env_steps[METHODS.index("GAIL")] = gail_env_steps(config.gail_config())
    known = np.array([[m in KNOWN_DYNAMICS] * len(n) for m in METHODS])
    return {"expert_labels": labels, "env_steps": env_steps, "known_dynamics": known}


def run_cartpole(config: Config, progress: Progress) -> dict:
    """The CartPole part: MLP BC and GAIL from the first ``n`` expert episodes, scored in Gymnasium.

    Returns ``{"returns": [n_seeds, 2, n_ep, eval_episodes] (CARTPOLE_METHODS order), "expert_labels":
    [n_seeds, n_ep], "gail_env_steps", "expert": {...}, "timings": {...}}``.
    """
    timings = {}
    expert, timings["run_s/cartpole_expert"] = timed(experts.train_cartpole_expert, config.cartpole_expert_seed)
    n_max, n_seeds = max(config.cartpole_episodes), config.cartpole_seeds
    demos, source = experts.cartpole_demonstrations(expert, n_seeds * n_max, seed=config.cartpole_expert_seed)
    demos = jax.tree.map(lambda x: x.reshape(n_seeds, n_max, *x.shape[1:]), demos)  # each seed its own episodes
    episodes = jnp.asarray(config.cartpole_episodes)
    env = CartPole()
    bc_config = bc.MLPBCConfig()
    bc_train = bc.make_train_mlp(bc_config, env.observation_shape[0], env.n_actions)
    gail_config = config.cartpole_gail_config()
    gail_train = gail.make_train(gail_config, env, env.default_params())

    def bc_run(key, d):  # -> (actor params, non-finite?)
        result = bc_train(key, d)
        return result.params, ~jnp.all(jnp.isfinite(result.losses))

    def gail_run(key, d):
        result, metrics = gail_train(key, d)
        return result.ppo.params.actor, jnp.any(metrics.nonfinite)

    keys = jax.random.split(jax.random.key(1), n_seeds)
    n_policies = n_seeds * len(config.cartpole_episodes)
    returns = []
    for method, train, apply in (("MLP BC", bc_run, bc_config.network.apply),
                                 ("GAIL", gail_run, gail_config.ppo.actor.apply)):
        every_n = jax.vmap(lambda key, d, train=train: jax.vmap(lambda n: train(key, first_n_tiled(d, n)))(episodes))
        progress(f"{NAME}: CartPole {method}, {list(config.cartpole_episodes)} episodes: compiling ({n_seeds} seeds)")
        compiled, timings[f"compile_s/cartpole_{method}"] = timed(jax.jit(every_n).lower(keys, demos).compile)
        (params, nonfinite), timings[f"run_s/cartpole_{method}"] = timed(compiled, keys, demos)
        if np.any(np.asarray(nonfinite)):
            raise FloatingPointError(f"CartPole {method}: non-finite loss or metrics (NaN in training)")
        flat = jax.tree.map(lambda x: x.reshape(n_policies, *x.shape[2:]), params)
        scored, timings[f"run_s/cartpole_{method}_gymnasium"] = timed(
            functools.partial(evaluate_in_gymnasium, n_policies=n_policies),
            apply, flat, "CartPole-v1", config.cartpole_eval_episodes, 20_000,
        )
        returns.append(scored.reshape(n_seeds, len(config.cartpole_episodes), -1))
        progress(f"{NAME}: CartPole {method} ran in {timings[f'run_s/cartpole_{method}']:.1f}s")
    labels = np.stack([np.asarray(demos.valid)[:, :n].sum((1, 2)) for n in config.cartpole_episodes], axis=1)
    return {
        "returns": np.stack(returns, axis=1),
        "expert_labels": labels,
        "gail_env_steps": gail_env_steps(gail_config),
        "expert": {"ppo_seed": expert.seed, "gymnasium_return": expert.gymnasium_return, "source": source.note},
        "timings": timings,
    }


def _difference_interval(a, b):
    """``mean(a) - mean(b)`` with a paired percentile bootstrap over seeds."""
    return bootstrap_interval(np.stack([a, b], axis=1), lambda p: float(p[:, 0].mean() - p[:, 1].mean()))


def _slope_in_n(n_demos, gaps) -> float:
    mean = np.mean(gaps, axis=0)
    keep = mean > 0
    if keep.sum() < 2:
        return float("nan")
    return loglog_slope(np.asarray(n_demos)[keep], mean[keep])[0]


def run(quick: bool = True, seeds: int | None = None, progress: Progress | None = None) -> ExperimentResult:
    progress = progress or Progress(enabled=False)
    config = Config.quick() if quick else Config()
    if seeds is not None:
        config = dataclasses.replace(config, n_seeds=seeds)
    grid, mdp = lava_lake(config.horizon, config.grid_slip)
    expert = stationary_expert(mdp)
    keys = jax.random.split(jax.random.key(0), config.n_seeds)
    timings = {}

    progress(f"{NAME}: BC and MaxEnt IRL, N in {list(config.n_demos)}: compiling ({config.n_seeds} seeds)")
    offline_sweep = jax.jit(jax.vmap(make_offline_sweep(config, mdp, expert)))
    compiled, timings["compile_s/offline"] = timed(offline_sweep.lower(keys).compile)
    offline, timings["run_s/offline"] = timed(compiled, keys)
    offline = np.asarray(offline)  # [n, n_N, 3, 3]
    progress(f"{NAME}: offline methods ran in {timings['run_s/offline']:.1f}s")

    progress(f"{NAME}: GAIL, N in {list(config.n_demos)}: compiling ({config.n_seeds} seeds)")
    gail_sweep = jax.jit(jax.vmap(make_gail_sweep(config, mdp, expert)))
    compiled, timings["compile_s/GAIL"] = timed(gail_sweep.lower(keys).compile)
    gail_scores, timings["run_s/GAIL"] = timed(compiled, keys)
    gail_scores = np.asarray(gail_scores)  # [n, n_N, 3]
    progress(f"{NAME}: GAIL compiled in {timings['compile_s/GAIL']:.1f}s, ran in {timings['run_s/GAIL']:.1f}s")

    dagger_scores, dagger_env_steps = [], []
    timings["compile_s/DAgger"] = timings["run_s/DAgger"] = 0.0
    for n in config.n_demos:
        compiled, c_s = timed(jax.jit(jax.vmap(make_dagger_sweep(config, mdp, expert, n))).lower(keys).compile)
        (scores, used), r_s = timed(compiled, keys)
        dagger_scores.append(np.asarray(scores))
        dagger_env_steps.append(int(np.asarray(used.env_steps)[0]))
        timings["compile_s/DAgger"] += c_s
        timings["run_s/DAgger"] += r_s
    progress(f"{NAME}: DAgger compiled in {timings['compile_s/DAgger']:.1f}s, ran in {timings['run_s/DAgger']:.1f}s")
    cartpole = run_cartpole(config, progress)
    timings.update(cartpole["timings"])
    timings["compile_s"] = sum(v for k, v in timings.items() if k.startswith("compile_s/"))
    timings["run_s"] = sum(v for k, v in timings.items() if k.startswith("run_s/"))

    # [n, M, n_N, 3] in METHODS order.
    scores = np.stack(
        [offline[:, :, 0], offline[:, :, 1], np.stack(dagger_scores, 1), offline[:, :, 2], gail_scores], axis=1
    )
    if not np.all(np.isfinite(scores)):
        raise FloatingPointError("non-finite gap or error in the gridworld sweep (NaN in training?)")
    gaps = scores[..., 0]
    n_demos = np.asarray(config.n_demos)
    bc_time = METHODS.index("BC (time-indexed)")

    def below_bc_at_smallest_n(method):  # criteria 1 (MaxEnt IRL) and 3 (GAIL)
        diff = _difference_interval(gaps[:, bc_time, 0], gaps[:, METHODS.index(method), 0])
        return Criterion(
            f"{method} mean gap below BC (time-indexed)'s at the smallest N={n_demos[0]} on the lava lake "
            f"(H={config.horizon}): interval of gap_BC - gap_IRL above 0",
            diff[0],
            diff[1:],
            bool(diff[1] > 0),
            "difference of seed-mean gaps; paired percentile bootstrap over seeds",
        )

    criteria = [below_bc_at_smallest_n("MaxEnt IRL")]
    slope = bootstrap_interval(gaps[:, bc_time], lambda g: _slope_in_n(n_demos, g))
    criteria.append(
        Criterion(
            "BC (time-indexed) gap decreasing in N on the lava lake: log-log slope against N below 0 "
            "(interval's upper end below 0)",
            slope[0],
            slope[1:],
            bool(slope[0] < 0 and slope[2] < 0),
            f"least squares of log seed-mean gap on log N over N in {list(config.n_demos)}; "
            "percentile bootstrap over seeds",
        )
    )
    criteria.append(below_bc_at_smallest_n("GAIL"))
    cart_returns = cartpole["returns"].mean(-1)  # [n_seeds, 2, n_ep]: mean Gymnasium return per seed
    one = config.cartpole_episodes.index(min(config.cartpole_episodes))
    diff = _difference_interval(cart_returns[:, 1, one], cart_returns[:, 0, one])
    criteria.append(
        Criterion(
            f"GAIL's mean Gymnasium CartPole-v1 return from {min(config.cartpole_episodes)} expert episode above "
            "MLP BC's: interval of the difference above 0",
            diff[0],
            diff[1:],
            bool(diff[1] > 0),
            f"{config.cartpole_seeds} seeds (each its own expert episodes), {config.cartpole_eval_episodes} greedy "
            "Gymnasium episodes per policy; difference of seed-mean returns; paired percentile bootstrap over seeds",
        )
    )
    budget = budgets(config, np.asarray(dagger_env_steps))
    measurements = {
        "mean_gap": {m: gaps[:, i].mean(0).tolist() for i, m in enumerate(METHODS)},
        "expert_return": float(tabular.evaluate(mdp, expert)),
        "per_step_error_on_expert_states": {m: scores[:, i, :, 1].mean(0).tolist() for i, m in enumerate(METHODS)},
        "per_step_error_on_own_states": {m: scores[:, i, :, 2].mean(0).tolist() for i, m in enumerate(METHODS)},
        "budget_per_data_set": {
            m: [
                f"N={n}: {int(budget['expert_labels'][i, j])} expert labels, {int(budget['env_steps'][i, j])} env "
                f"steps, {'known dynamics' if budget['known_dynamics'][i, j] else 'no dynamics model'}"
                for j, n in enumerate(config.n_demos)
            ]
            for i, m in enumerate(METHODS)
        },
        "cartpole_mean_gymnasium_return": {
            m: cart_returns[:, i].mean(0).tolist() for i, m in enumerate(CARTPOLE_METHODS)
        },
        "cartpole_budget_per_seed": {
            "MLP BC": [f"{n} episodes: {int(cartpole['expert_labels'][:, j].mean())} expert labels (mean over seeds), "
                       "0 env steps, no dynamics model" for j, n in enumerate(config.cartpole_episodes)],
            "GAIL": [f"{n} episodes: {int(cartpole['expert_labels'][:, j].mean())} expert labels (mean over seeds), "
                     f"{cartpole['gail_env_steps']} env steps, no dynamics model"
                     for j, n in enumerate(config.cartpole_episodes)],
        },
        "cartpole_expert": cartpole["expert"],
    }
    arrays = {
        "n_demos": n_demos,
        "gaps": gaps,  # [n_seeds, M, n_N]
        "errors_on_expert_states": scores[..., 1],
        "errors_on_own_states": scores[..., 2],
        **{f"budget/{k}": v for k, v in budget.items()},
        "cartpole_episodes": np.asarray(config.cartpole_episodes),
        "cartpole_returns": cartpole["returns"],  # [n_seeds, 2 (MLP BC, GAIL), n_ep, eval episodes]
        "cartpole_expert_labels": cartpole["expert_labels"],  # [n_seeds, n_ep]
        "cartpole_gail_env_steps": np.asarray(cartpole["gail_env_steps"]),
    }
    figure = plot(config, n_demos, gaps, budget, float(tabular.evaluate(mdp, expert)), cart_returns,
                  cartpole["expert"]["gymnasium_return"])
    return ExperimentResult(
        name=NAME,
        claim=CLAIM,
        config={**dataclasses.asdict(config), "quick": quick, "methods": list(METHODS),
                "default_action": DEFAULT_ACTION, "lava_lake_map": list(LAVA_LAKE),
                "cartpole_methods": list(CARTPOLE_METHODS)},
        arrays=arrays,
        criteria=criteria,
        figure=figure,
        timings=timings,
        measurements=measurements,
    )


def plot(config: Config, n_demos, gaps, budget, expert_return, cart_returns, cart_expert_return):
    """Left: gap against N (seed bands). Middle: what each method consumed. Right: CartPole returns in Gymnasium
    (``cart_returns [n_seeds, 2, n_ep]``, seed-mean return per policy)."""
    import matplotlib.pyplot as plt

    from toyrlhf.plotting import apply_style, seed_band

    apply_style()
    fig, (ax, ax_budget, ax_cart) = plt.subplots(1, 3, figsize=(15, 4.6), layout="constrained",
                                                 width_ratios=[1.3, 1.0, 0.9])
    colors = plt.cm.tab10(np.arange(len(METHODS)))
    for m, method in enumerate(METHODS):
        seed_band(ax, n_demos, gaps[:, m], label=method, color=colors[m], marker="o", ms=4)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", nonpositive="clip")
    ax.set_ylim(bottom=1e-3)
    ax.set_xticks(n_demos, [str(n) for n in n_demos])
    ax.set_xlabel("expert demonstrations N")
    ax.set_ylabel("gap J(expert) − J(learner)\nmean ± 95% CI (log; floor 1e-3)")
    ax.set_title(f"Lava lake, H={config.horizon} (expert earns {expert_return:.1f})", fontsize=11)
    ax.legend(fontsize=8)

    labels = budget["expert_labels"][:, -1]
    env_steps = budget["env_steps"][:, -1]
    y = np.arange(len(METHODS))
    ax_budget.barh(y - 0.2, labels, height=0.4, color="0.5", label="expert labels")
    ax_budget.barh(y + 0.2, env_steps, height=0.4, color=colors[2], label="learner env steps")
    for i in range(len(METHODS)):
        if budget["known_dynamics"][i, -1]:
            ax_budget.annotate("+ known dynamics", (labels[i], y[i] - 0.2), xytext=(4, -3),
                               textcoords="offset points", fontsize=8)
    ax_budget.set_yticks(y, METHODS)
    ax_budget.invert_yaxis()
    ax_budget.set_xscale("log")
    ax_budget.set_xlim(left=100)
    ax_budget.set_xlabel(f"consumed per data set at N={n_demos[-1]} (log)")
    ax_budget.set_title("Budget (DESIGN.md pitfall 6)", fontsize=11)
    ax_budget.legend(fontsize=8, loc="center right")

    episodes = np.asarray(config.cartpole_episodes)
    for i, (method, color) in enumerate(zip(CARTPOLE_METHODS, (colors[0], colors[METHODS.index("GAIL")]),
                                            strict=True)):
        seed_band(ax_cart, episodes, cart_returns[:, i], label=method, color=color, marker="o", ms=4)
    ax_cart.axhline(cart_expert_return, color="k", ls=":", lw=1, label=f"PPO expert ({cart_expert_return:.0f})")
    ax_cart.set_xscale("log", base=2)
    ax_cart.set_xticks(episodes, [str(n) for n in episodes])
    ax_cart.set_ylim(0, 520)
    ax_cart.set_xlabel("expert episodes (500 steps each)")
    ax_cart.set_ylabel(f"Gymnasium CartPole-v1 return\nmean ± 95% CI over {len(cart_returns)} seeds")
    ax_cart.set_title("CartPole: MLP BC vs GAIL", fontsize=11)
    ax_cart.legend(fontsize=8, loc="lower right")
    fig.suptitle("BC vs inverse RL as the number of demonstrations grows (exact gaps, seed bands)", fontsize=11)
    return fig
