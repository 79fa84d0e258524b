"""RLHF versus SFT on a toy language model, against the preference-label budget M (claim T1).

The paper's picture: RLHF is online inverse RL that starts from offline
demonstrations. The demonstrations give SFT (behavior cloning); a reward model
learned from M preference labels turns the known, free dynamics (append a
token) into something to optimise. From the *same* demonstrations and the *same*
M labels we compare, by their exact gold return:

- **SFT**: tabular behavior cloning on ``n_demos`` demonstrations of a soft,
  imperfect expert (:func:`toyrlhf.algorithms.rlhf.fit_sft`);
- **RLHF** (SFT + reward model + PPO): a tabular Bradley–Terry reward model on M
  labelled pairs of SFT responses, then the project's PPO on it with the KL
  leash ``β`` to SFT (:mod:`toyrlhf.algorithms.rlhf`'s pieces and settings);
- **DPO** (Direct Preference Optimization, :mod:`toyrlhf.algorithms.dpo`) on the
  same pairs, same ``β``, no reward model, no rollouts;
- **best-of-n**: n SFT samples, the reward model keeps the best (exact
  distribution, :func:`toyrlhf.algorithms.tilted.best_of_n_probs`);
- **oracle**: the exact KL-tilted optimum ``π_SFT exp(g/(τβ))/Z`` with the *gold*
  reward in the labeller's units (``g/τ`` is what a Bradley–Terry model learns
  from infinitely many labels): where RLHF goes as ``M → ∞``. It reads the gold
  reward of every response (counted as gold queries) and is a reference, not a method.

Setting: 2 prompts, EOS plus 3 content tokens, responses of up to 4 tokens
(121 per prompt, enumerated), gold = :class:`~toyrlhf.envs.token_mdp.ConcaveQuality`.
Every seed draws its own demonstrations, label pairs, labels and PPO noise. The
budgets are *nested*: a seed labels ``max(M)`` pairs once and the fit for budget M
uses its first M (zero weight on the rest), so every budget and every seed is one
compiled, vmapped call (``weights`` in :func:`~toyrlhf.algorithms.preferences.fit_reward_model`
and DPO's ``train``). Gold returns, KLs and accuracies are exact given the fitted
policies; the only sampling is the data.

Held-out pairwise accuracy: ``n_held_out`` fresh pairs of SFT responses per seed,
scored with the labeller's exact preference probability
(:func:`~toyrlhf.algorithms.preferences.pairwise_accuracy`) against the exact
Bayes accuracy on the same pairs.

Resources (DESIGN.md pitfall 6) are reported for every method: demonstrated
tokens, preference labels, gold-reward queries, environment steps.

Pre-registered criteria (the issue's text, fixed before the first run; SE over
seeds, differences paired by seed; "CI" = mean ± 1.96 SE):

1. held-out pairwise accuracy non-decreasing in M within 2 SE: for each pair of
   neighbouring budgets, mean(acc[M_{k+1}] − acc[M_k]) ≥ −2 SE of that difference;
2. at the largest M, held-out accuracy within 0.02 of the Bayes accuracy
   (seed-mean Bayes − seed-mean accuracy ≤ 0.02);
3. RLHF's gold return above SFT's for every M ≥ 300: the CI of the paired
   difference lies above 0 at each such M;
4. the gap to the gold-reward oracle shrinks as M grows: gap(M_min) − gap(M_max) has
   its CI above 0, and the least-squares slope of the seed-mean gap against log M is negative.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from toyrlhf.algorithms import dpo, ppo, rlhf, tilted
from toyrlhf.algorithms import preferences as pref
from toyrlhf.diagnostics import raise_if_nonfinite
from toyrlhf.envs import token_mdp as tm
from toyrlhf.envs.functional import tabular_env
from toyrlhf.experiments.common import Criterion, ExperimentResult, Progress, timed
from toyrlhf.stats import mean_and_interval

NAME = "rlhf-vs-sft"
CLAIM = (
    "T1: from the same demonstrations and M preference labels, SFT + reward model + PPO in the known "
    "dynamics beats SFT and approaches the gold-reward optimum as M grows (DPO and best-of-n beside it)."
)
METHODS = ("SFT", "RLHF", "DPO", "best-of-n", "oracle")


@dataclasses.dataclass(frozen=True)
class Config:
    """Settings of the label-budget sweep (all static: they fix the compiled program)."""

    vocab_size: int = 4
    """Tokens, EOS included."""
    length: int = 4
    """Maximum response length T."""
    quality: tuple[tuple[float, ...], ...] = ((0.0, 1.0, 0.3, -0.6), (0.0, -0.5, 0.8, 0.2))
    """Per-prompt token quality of the gold reward (row per prompt; EOS's entry unused)."""
    target_length: float = 3.0
    """Preferred length L* of the gold reward."""
    length_penalty: float = 0.3
    """Curvature c of the gold reward's length term."""
    expert_temperature: float = 0.5
    """The demonstrator is the exact tilted optimum of the uniform policy at this temperature (soft, imperfect)."""
    n_demos: int = 20
    """Demonstrated responses for SFT."""
    sft_pseudo_count: float = 0.5
    """Added to every (state, token) count of SFT (keeps π_SFT > 0 for the KL leash)."""
    label_budgets: tuple[int, ...] = (30, 100, 300, 1000, 3000)
    """M: preference-label budgets (nested within a seed)."""
    label_temperature: float = 1.0
    """Labeller's rationality temperature τ (no random answers)."""
    beta: float = 0.1
    """KL coefficient β of RLHF's PPO, of DPO and of the oracle (RLHFConfig's default)."""
    best_of_n: int = 16
    """n of best-of-n."""
    ppo_updates: int = 200
    """PPO updates (RLHFConfig's PPO otherwise: 16 envs x 16 steps, 4 epochs, 2 minibatches, lr 0.1)."""
    dpo_steps: int = 1000
    """Full-batch Adam steps of DPO."""
    dpo_learning_rate: float = 0.05
    """DPO's Adam step size."""
    n_held_out: int = 4000
    """Held-out pairs per seed for the pairwise accuracy."""
    n_seeds: int = 32
    """Seeds (demonstrations, labels, PPO noise), vmapped."""

    @classmethod
    def quick(cls) -> Config:
        return cls(n_seeds=8)


def build(config: Config):
    """``(task, tree, expert [S, A])``: the enumerated token MDP with its gold reward and the demonstrator."""
    P = len(config.quality)
    task = tm.TokenTask(config.vocab_size, config.length, n_prompts=P)
    gold = tm.ConcaveQuality(jnp.asarray(config.quality), config.target_length, config.length_penalty)
    tree = tm.enumerate_tokens(task, gold)
    S, A = tree.mdp.R.shape
    expert = tilted.tilted_policy(tree, jnp.full((S, A), 1.0 / A), tree.gold, config.expert_temperature)
    return task, tree, expert


def pipeline_config(config: Config) -> rlhf.RLHFConfig:
    """The pipeline's settings: RLHFConfig's defaults with this experiment's β, updates and data sizes."""
    base = rlhf.RLHFConfig()
    hyper = dataclasses.replace(base.ppo.hyper, kl_coef=config.beta)
    return dataclasses.replace(
        base,
        n_demos=config.n_demos,
        sft_pseudo_count=config.sft_pseudo_count,
        n_labels=max(config.label_budgets),
        label_temperature=config.label_temperature,
        ppo=dataclasses.replace(base.ppo, n_updates=config.ppo_updates, hyper=hyper),
    )


def index_reward_fn(obs, action, next_obs, reward_table):
    """PPO's reward hook for state-index observations: ``r̂(s, a) = R̂[s, a]``."""
    del next_obs
    return reward_table[obs, action]


def make_sweep(config: Config, task: tm.TokenTask, tree: tm.TokenTree):
    """``sweep(keys [seeds], expert [S, A]) -> dict`` of arrays ``[seeds, budgets]`` (``[seeds]`` for per-seed ones)."""
    pipe = pipeline_config(config)
    budgets = jnp.asarray(config.label_budgets)
    M_max = max(config.label_budgets)
    P, N = tree.gold.shape
    env, env_params = tabular_env(tree.mdp, "index")
    ppo_train = ppo.make_train(pipe.ppo, env, env_params, reward_fn=index_reward_fn)
    states = jnp.arange(tree.mdp.n_states)
    dpo_train = dpo.make_train(
        dpo.DPOConfig(config.beta, config.dpo_steps, config.dpo_learning_rate), dpo.tree_log_prob_fn(task)
    )
    labeller = pref.Labeller(config.label_temperature)
    onehot = pref.per_prompt_features(jnp.eye(N, dtype=jnp.float32), P)  # [P, N, P·N]: the tabular reward model
    gold = tree.gold

    def gold_return(probs):
        return jnp.mean(jnp.sum(probs * gold, -1))

    def one_seed(key, expert):
        key_sft, key_pairs, key_labels, key_held, key_fit, key_ppo = jax.random.split(key, 6)
        sft, expert_labels = rlhf.fit_sft(key_sft, tree, expert, pipe.n_demos, pipe.sft_pseudo_count)
        sft_probs = tm.response_probs(tree, sft)
        log_sft = jnp.log(sft_probs)
        pairs = pref.sample_response_pairs(key_pairs, sft_probs, M_max)
        labels, _ = pref.label(key_labels, labeller, *pairs.gather(gold), 0)
        held = pref.sample_response_pairs(key_held, sft_probs, config.n_held_out)
        held_prob = pref.preference_probability(gold[held.prompt, held.first], gold[held.prompt, held.second], labeller)
        oracle = tilted.tilted_response_probs(sft_probs, gold / config.label_temperature, config.beta)

        def one_budget(M):
            weights = (jnp.arange(M_max) < M).astype(jnp.float32)
            n_labels = jnp.sum(weights).astype(jnp.int32)
            params, rm_loss = pref.fit_reward_model(
                key_fit,
                pipe.reward_model,
                *pairs.gather(onehot),
                labels,
                weights,
            )
            reward = pref.predict_reward(pipe.reward_model, params, onehot).astype(jnp.float64)  # [P, N]
            accuracy = pref.pairwise_accuracy(
                reward[held.prompt, held.first], reward[held.prompt, held.second], held_prob
            )
            # RLHF: PPO on the learned reward, leashed to SFT, starting from SFT
            reward_table = tm.with_response_reward(tree, reward).R.astype(jnp.float32)
            state, metrics = ppo_train(key_ppo, reference=jnp.log(sft).astype(jnp.float32), reward_params=reward_table)
            rlhf_probs = tm.response_probs(tree, ppo.policy_probabilities(pipe.ppo, state.params.actor, states))
            target = tilted.tilted_response_probs(sft_probs, reward, config.beta)
            # DPO on the same pairs, from SFT
            tokens = tree.responses
            dpo_logits, dpo_loss = dpo_train(
                jnp.log(sft).astype(jnp.float32),
                pairs.prompt,
                tokens[pairs.first],
                tokens[pairs.second],
                labels,
                weights,
            )
            dpo_probs = tm.response_probs(tree, jax.nn.softmax(dpo_logits.astype(jnp.float64), -1))
            bon_probs = tilted.best_of_n_probs(sft_probs, reward, config.best_of_n)
            probs = jnp.stack([sft_probs, rlhf_probs, dpo_probs, bon_probs, oracle])  # METHODS order
            return {
                "gold": jax.vmap(gold_return)(probs),
                "kl_to_sft": jax.vmap(lambda p: tm.response_kl(p, log_sft))(probs),
                "accuracy": accuracy,
                "correlation": pref.centred_correlation(reward, gold, sft_probs),
                "ppo_kl_to_target": tm.response_kl(target, jnp.log(rlhf_probs)),
                "labels": n_labels,
                "rm_loss": rm_loss,
                "dpo_loss": dpo_loss,
                "ppo_nonfinite": metrics.nonfinite,
            }

        out = jax.vmap(one_budget)(budgets)
        out["bayes"] = pref.bayes_accuracy(held_prob)
        out["expert_labels"] = expert_labels
        out["mean_length"] = jnp.stack(
            [jnp.mean(jnp.sum(sft_probs * tree.lengths, -1)), jnp.mean(jnp.sum(oracle * tree.lengths, -1))]
        )
        return out

    return jax.jit(jax.vmap(one_seed, in_axes=(0, None)))


def paired(x: np.ndarray):
    """``(mean, lo, hi, se)`` over seeds (axis 0) of paired differences ``x [seeds, ...]``."""
    mean, lo, hi = mean_and_interval(x)
    se = np.asarray(x).std(axis=0, ddof=1) / np.sqrt(np.asarray(x).shape[0])
    return mean, lo, hi, se


def accuracy_steps(accuracy: np.ndarray):
    """Per neighbouring-budget step: mean difference and its SE (``accuracy [seeds, budgets]``)."""
    mean, _, _, se = paired(np.diff(accuracy, axis=1))
    return mean, se


def gap_slope(budgets, gap_mean) -> float:
    """Least-squares slope of the seed-mean gap against log M."""
    return float(np.polyfit(np.log(np.asarray(budgets, dtype=np.float64)), gap_mean, 1)[0])


def criteria_from(config: Config, gold: np.ndarray, accuracy: np.ndarray, bayes: np.ndarray) -> list[Criterion]:
    """The four pre-registered criteria.

    ``gold [seeds, budgets, methods]`` (methods in :data:`METHODS` order), ``accuracy [seeds, budgets]``,
    ``bayes [seeds]``.
    """
    budgets = np.asarray(config.label_budgets)
    n = gold.shape[0]
    criteria = []
    step_mean, step_se = accuracy_steps(accuracy)
    worst = int(np.argmin(step_mean + 2 * step_se))
    criteria.append(
        Criterion(
            "held-out pairwise accuracy non-decreasing in M within 2 SE (every neighbouring pair of budgets)",
            float(step_mean[worst]),
            (float(step_mean[worst] - 1.96 * step_se[worst]), float(step_mean[worst] + 1.96 * step_se[worst])),
            bool(np.all(step_mean >= -2 * step_se)),
            f"worst step M={budgets[worst]}→{budgets[worst + 1]}: change {step_mean[worst]:+.4f}, SE {step_se[worst]:.4f}; "
            f"steps {np.array2string(step_mean, precision=4)} over {n} seeds, {config.n_held_out} held-out pairs each",
        )
    )
    gap_mean, gap_lo, gap_hi, _ = paired(bayes - accuracy[:, -1])
    criteria.append(
        Criterion(
            f"held-out pairwise accuracy within 0.02 of Bayes at the largest M = {budgets[-1]}",
            float(gap_mean),
            (float(gap_lo), float(gap_hi)),
            bool(gap_mean <= 0.02),
            f"Bayes − accuracy, seed mean; accuracy {accuracy[:, -1].mean():.4f}, Bayes {bayes.mean():.4f}",
        )
    )
    diff = gold[:, :, 1] - gold[:, :, 0]
    d_mean, d_lo, d_hi, _ = paired(diff)
    big = np.flatnonzero(budgets >= 300)
    k = big[int(np.argmin(d_lo[big]))]
    criteria.append(
        Criterion(
            "RLHF's gold return above SFT's for every M >= 300 (95% CI of the paired difference above 0)",
            float(d_mean[k]),
            (float(d_lo[k]), float(d_hi[k])),
            bool(np.all(d_lo[big] > 0)),
            f"least-supported budget M={budgets[k]}; RLHF − SFT by M: "
            + ", ".join(f"{m}: {v:+.3f}" for m, v in zip(budgets, d_mean)),
        )
    )
    gap = gold[:, :, 4] - gold[:, :, 1]
    shrink_mean, shrink_lo, shrink_hi, _ = paired(gap[:, 0] - gap[:, -1])
    slope = gap_slope(budgets, gap.mean(0))
    criteria.append(
        Criterion(
            f"the gap to the gold-reward oracle shrinks as M grows: gap(M={budgets[0]}) − gap(M={budgets[-1]}) > 0 "
            "(95% CI) and a negative slope of the mean gap against log M",
            float(shrink_mean),
            (float(shrink_lo), float(shrink_hi)),
            bool(shrink_lo > 0 and slope < 0),
            "oracle − RLHF gold return by M: "
            + ", ".join(f"{m}: {v:.3f}" for m, v in zip(budgets, gap.mean(0)))
            + f"; slope against log M {slope:.4f}",
        )
    )
    return criteria


def resources(config: Config, out: dict) -> dict:
    """What each method consumed, per seed and budget (DESIGN.md pitfall 6)."""
    pipe = pipeline_config(config)
    ppo_steps = pipe.ppo.n_updates * pipe.ppo.n_envs * pipe.ppo.n_steps
    demos = float(np.asarray(out["expert_labels"]).mean())
    labels = [int(m) for m in np.asarray(out["labels"])[0]]
    tree_size = int(np.prod(build(config)[1].gold.shape))
    return {
        "SFT": {"expert_labels": demos, "preference_labels": 0, "gold_queries": 0, "env_steps": 0},
        "RLHF": {
            "expert_labels": demos,
            "preference_labels": labels,
            "gold_queries": 0,
            "env_steps": ppo_steps,
            "known_dynamics": True,
        },
        "DPO": {
            "expert_labels": demos,
            "preference_labels": labels,
            "gold_queries": 0,
            "env_steps": 0,
            "known_dynamics": False,
        },
        "best-of-n": {
            "expert_labels": demos,
            "preference_labels": labels,
            "gold_queries": 0,
            "env_steps": 0,
            "per_response_served": f"{config.best_of_n} SFT samples, {config.best_of_n} reward-model calls",
        },
        "oracle": {
            "expert_labels": demos,
            "preference_labels": 0,
            "gold_queries": tree_size,
            "env_steps": 0,
            "note": "exact tilted optimum of the gold reward: reads every response's gold value",
        },
    }


def run(quick: bool = True, seeds: int | None = None, progress: Progress | None = None) -> ExperimentResult:
    progress = progress or Progress(enabled=False)
    config = Config.quick() if quick else Config()
    if seeds is not None:
        config = dataclasses.replace(config, n_seeds=seeds)
    if config.n_seeds < 2:
        raise ValueError(f"need at least 2 seeds for standard errors, got {config.n_seeds}")
    task, tree, expert = build(config)
    keys = jax.random.split(jax.random.key(1), config.n_seeds)
    progress(f"{NAME}: compiling ({config.n_seeds} seeds x {len(config.label_budgets)} budgets, one program)")
    sweep = make_sweep(config, task, tree)
    compiled, compile_s = timed(lambda: sweep.lower(keys, expert).compile())
    out, run_s = timed(compiled, keys, expert)
    progress(f"{NAME}: compiled in {compile_s:.1f}s, ran in {run_s:.1f}s")
    out = jax.tree.map(np.asarray, out)
    pref.check_finite_losses(out["rm_loss"], "reward model")
    pref.check_finite_losses(out["dpo_loss"], "DPO")
    raise_if_nonfinite(out["ppo_nonfinite"], "PPO (RLHF)")

    gold, accuracy, bayes = out["gold"], out["accuracy"], out["bayes"]
    criteria = criteria_from(config, gold, accuracy, bayes)
    budgets = np.asarray(config.label_budgets)
    measurements = {
        "gold_return_mean": {m: gold[:, :, i].mean(0).tolist() for i, m in enumerate(METHODS)},
        "kl_to_sft_mean": {m: out["kl_to_sft"][:, :, i].mean(0).tolist() for i, m in enumerate(METHODS)},
        "heldout_accuracy_mean": accuracy.mean(0).tolist(),
        "bayes_accuracy_mean": float(bayes.mean()),
        "centred_correlation_mean": out["correlation"].mean(0).tolist(),
        "ppo_kl_to_exact_tilted_target_mean": out["ppo_kl_to_target"].mean(0).tolist(),
        "mean_length_sft_oracle": out["mean_length"].mean(0).tolist(),
        "resources": resources(config, out),
    }
    arrays = {
        "label_budgets": budgets,
        "gold": gold,
        "kl_to_sft": out["kl_to_sft"],
        "accuracy": accuracy,
        "bayes": bayes,
        "correlation": out["correlation"],
        "ppo_kl_to_target": out["ppo_kl_to_target"],
        "expert_labels": out["expert_labels"],
    }
    figure = plot(config, out)
    return ExperimentResult(
        name=NAME,
        claim=CLAIM,
        config={**dataclasses.asdict(config), "quick": quick, "methods": list(METHODS)},
        arrays=arrays,
        criteria=criteria,
        figure=figure,
        timings={"compile_s": compile_s, "run_s": run_s},
        measurements=measurements,
    )


def plot(config: Config, out: dict):
    """Gold return against M (seed bands), held-out accuracy with Bayes, and the gap to the oracle."""
    import matplotlib.pyplot as plt

    from toyrlhf.plotting import PALETTE, apply_style, seed_band

    apply_style()
    budgets = np.asarray(config.label_budgets, dtype=np.float64)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    ax = axes[0]
    for i, method in enumerate(METHODS):
        style = "--" if method in ("SFT", "oracle") else "-"
        seed_band(ax, budgets, out["gold"][:, :, i], label=method, color=PALETTE[i], linestyle=style)
    ax.set_xscale("log")
    ax.set_xlabel("preference labels M")
    ax.set_ylabel("exact gold return")
    ax.set_title("gold return (oracle: exact tilted optimum of the gold reward)", fontsize=9)
    ax.legend(fontsize=8)
    ax = axes[1]
    seed_band(ax, budgets, out["accuracy"], label="reward model", color=PALETTE[0])
    ax.axhline(float(out["bayes"].mean()), color="0.3", ls="--", lw=1, label="Bayes accuracy")
    ax.set_xscale("log")
    ax.set_xlabel("preference labels M")
    ax.set_ylabel("held-out pairwise accuracy")
    ax.legend(fontsize=8)
    ax = axes[2]
    seed_band(ax, budgets, out["gold"][:, :, 4] - out["gold"][:, :, 1], label="oracle − RLHF", color=PALETTE[1])
    seed_band(ax, budgets, out["gold"][:, :, 4] - out["gold"][:, :, 2], label="oracle − DPO", color=PALETTE[2])
    ax.axhline(0, color="0.7", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("preference labels M")
    ax.set_ylabel("gap to the oracle (gold return)")
    ax.legend(fontsize=8)
    fig.suptitle(
        f"RLHF vs SFT on a toy language model ({config.n_seeds} seeds, β = {config.beta}, "
        f"{config.n_demos} demonstrations, best-of-{config.best_of_n})",
        fontsize=11,
    )
    fig.tight_layout()
    return fig
