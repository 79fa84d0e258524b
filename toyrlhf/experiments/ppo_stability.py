"""Is PPO more stable than off-policy value-based learning? (claim T5)

The paper argues that PPO wins in RLHF through stability: near on-policy data
and conservative (clipped) updates. We train five methods on two tasks over a
learning-rate grid and many seeds, with equal environment steps, and count
*collapses*.

Methods (the PPO ablations share :mod:`toyrlhf.algorithms.ppo`'s code: they are
config values, not copies):

- **PPO**: clip ε = 0.2, 4 epochs x 4 minibatches per batch;
- **PPO no clip**: the same with ε = ∞ (same compiled call as PPO: ε is traced);
- **PPO 16 epochs**: clipped, 16 passes over each batch (more off-policy);
- **Vanilla PG**: REINFORCE with a learned baseline: one full-batch gradient step
  per batch, ε = ∞, GAE λ = 1 (Monte Carlo advantages);
- **DQN**: :mod:`toyrlhf.algorithms.dqn`, replay ratio 8, hard target copy every update.

Every method acts in 8 environments for 64 steps per update (512 environment
steps), the same number of updates; no learning-rate annealing for anyone (an
annealed step size hides late collapses); Adam everywhere.

Tasks:

- **CartPole** (the JAX port of ``CartPole-v1``), MLP (64, 64), maximum return 500;
- **Token MDP with a learned reward**: V = 4 tokens (EOS included), T = 4,
  2 prompts, gold reward :class:`~toyrlhf.envs.token_mdp.TargetPattern` (one best
  response per prompt, gold return 1). A Bradley–Terry reward model, linear in
  (prompt, position, token) indicators (well specified for this gold reward), is
  fitted once from 1,000 preference labels on pairs of uniformly random responses
  (labeller temperature 0.1); every method trains on
  this learned reward through its ``reward_fn`` hook and is scored on the gold
  reward. The tree is small enough (121 responses per prompt) to be enumerated,
  so DQN's value estimates are compared with exact values.

Definitions fixed before the first run:

- the curve of a run is its per-update mean return of the episodes that ended in
  the update (the gold return on the token task);
- a run **reaches** when its running maximum is ≥ 90% of the task's optimal
  return (500; the exact optimal gold return, 1.0);
- a run **collapses** when, after having reached, its return falls below 50% of
  its running maximum at some update.

Pre-registered criteria:

1. CartPole: PPO's collapse rate (all 4 learning rates x seeds pooled) is lower than
   DQN's by a one-sided Fisher exact test, p < 0.05;
2. the same on the token MDP with a learned reward;
3. Baird's counterexample, expected updates, α = 0.01, γ = 0.99 (Sutton & Barto
   Fig. 11.2): the off-policy TD weight norm exceeds 1,000x its start within 1,000
   updates, while on-policy TD's norm never exceeds its start.

Measurements (no criterion): collapse and reach rates per method and learning
rate, seed standard deviation of the final return, per-update KL between
consecutive PPO policies (``approx_kl``: the drift each update makes), DQN's Q
estimate against the exact value of its greedy policy on the token tree
(overestimation), DQN's CartPole Q against the largest possible discounted return,
and for Baird the step size needed for 1,000x in 1,000 updates.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from toyrlhf import tabular
from toyrlhf.algorithms import dqn, ppo, td
from toyrlhf.algorithms import preferences as prefs
from toyrlhf.diagnostics import raise_if_nonfinite
from toyrlhf.envs import token_mdp
from toyrlhf.envs.cartpole import CartPole
from toyrlhf.experiments.common import Criterion, ExperimentResult, Progress, timed
from toyrlhf.nets import MLP

NAME = "ppo-stability"
CLAIM = (
    "T5: PPO is more stable than off-policy value-based RL: fewer collapses than DQN over seeds and "
    "learning rates; off-policy TD can diverge (Baird)."
)

METHODS = ("PPO", "PPO no clip", "PPO 16 epochs", "Vanilla PG", "DQN")
LEARNING_RATES = (3e-4, 1e-3, 3e-3, 1e-2)
"""The grid every method runs on, fixed before the first run."""
REACH_FRACTION = 0.9
COLLAPSE_FRACTION = 0.5
FISHER_ALPHA = 0.05
BAIRD_STEP_SIZE, BAIRD_DISCOUNT, BAIRD_UPDATES, BAIRD_FACTOR = 0.01, 0.99, 1000, 1000.0
N_ENVS, N_STEPS, GAMMA = 8, 64, 0.99
TASK_SEEDS = {"CartPole": 0, "Token MDP": 1}


@dataclasses.dataclass(frozen=True)
class Config:
    """Sizes of the sweep (the learning-rate grid and the definitions are module constants)."""

    seeds: int = 10
    """Seeds per (method, learning rate)."""
    cartpole_updates: int = 300
    """Updates per CartPole run (x 512 environment steps)."""
    token_updates: int = 60
    """Updates per token-MDP run (x 512 environment steps)."""
    hidden: tuple[int, ...] = (64, 64)
    """Hidden widths of every network (actor, critic, Q)."""
    n_labels: int = 1000
    """Preference labels for the token task's reward model."""

    @classmethod
    def quick(cls) -> Config:
        return cls(seeds=10, cartpole_updates=40, token_updates=20, hidden=(32, 32))


# ------------------------------------------------------------------------------------------
# Statistics
# ------------------------------------------------------------------------------------------


def fisher_exact_less(a: int, n1: int, b: int, n2: int) -> float:
    """One-sided Fisher exact p-value for "group 1's event rate is lower than group 2's".

    With ``a`` events in ``n1`` trials and ``b`` in ``n2``, conditioning on the ``a + b`` events
    makes ``a`` hypergeometric; ``p = Pr(X <= a)``, ``X ~ Hypergeometric(n1 + n2, a + b, n1)``.
    """
    for name, v in (("a", a), ("n1", n1), ("b", b), ("n2", n2)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"{name} must be a non-negative int, got {v!r}")
    if a > n1 or b > n2:
        raise ValueError(f"events cannot exceed trials: a={a} of n1={n1}, b={b} of n2={n2}")
    k, n = a + b, n1 + n2
    total = math.comb(n, k)
    lower = max(0, k - n2)
    return sum(math.comb(n1, x) * math.comb(n2, k - x) for x in range(lower, a + 1)) / total


def collapses(returns, optimum: float) -> tuple[np.ndarray, np.ndarray]:
    """``(collapsed [...], reached [...])`` from return curves ``[..., U]`` (definitions above)."""
    returns = np.asarray(returns, dtype=np.float64)
    running_max = np.maximum.accumulate(returns, axis=-1)
    reached_at = running_max >= REACH_FRACTION * optimum
    collapsed = (reached_at & (returns < COLLAPSE_FRACTION * running_max)).any(-1)
    return collapsed, reached_at.any(-1)


# ------------------------------------------------------------------------------------------
# The token task and its learned reward
# ------------------------------------------------------------------------------------------

TOKEN_TASK = token_mdp.TokenTask(vocab_size=4, length=4, n_prompts=2)
TOKEN_TARGETS = np.array([[1, 2, 3, 1], [3, 3, 2, 0]])
"""The best response per prompt (the second ends early: "3 3 2", then EOS)."""


class LearnedReward(NamedTuple):
    """A reward model's value for each complete response, looked up from the final observation."""

    table: jax.Array
    """``[P, N]`` float32: the reward of response ``n`` to prompt ``p``."""
    index: jax.Array
    """``[V^T]`` int32: response index of each EOS-padded token string, by its base-V code."""


def response_codes(tokens: jax.Array, vocab_size: int) -> jax.Array:
    """``Σ_t tokens[t] V^t``: a unique integer per EOS-padded response ``[..., T]``."""
    return jnp.sum(tokens * vocab_size ** jnp.arange(tokens.shape[-1]), axis=-1)


def make_token_reward_fn(env: token_mdp.TokenEnv):
    """``reward_fn(obs, action, next_obs, LearnedReward)``: the learned reward on the step that ends a response."""

    def reward_fn(obs, action, next_obs, learned: LearnedReward):
        del obs
        state = env.decode(next_obs)
        ended = (state.t >= env.task.length) | (action == token_mdp.EOS)
        n = learned.index[response_codes(state.tokens, env.task.vocab_size)]
        return jnp.where(ended, learned.table[state.prompt, n], 0.0)

    return reward_fn


def position_features(tree: token_mdp.TokenTree) -> jax.Array:
    """``[P, N, P·T·V]``: indicators of (prompt, position, token) for every response (EOS padding included).

    :class:`~toyrlhf.envs.token_mdp.TargetPattern` is linear in them, so the reward model is well specified.
    """
    V = TOKEN_TASK.vocab_size
    onehot = jax.nn.one_hot(tree.responses, V, dtype=jnp.float32).reshape(tree.n_responses, -1)
    return prefs.per_prompt_features(onehot, tree.n_prompts)


def fit_token_reward(key, tree: token_mdp.TokenTree, n_labels: int) -> tuple[LearnedReward, dict]:
    """Bradley–Terry, linear in :func:`position_features`, from labels on uniformly random pairs."""
    P, N = tree.gold.shape
    key_pairs, key_labels, key_fit = jax.random.split(key, 3)
    pairs = prefs.sample_response_pairs(key_pairs, jnp.full((P, N), 1.0 / N), n_labels)
    gold = tree.gold
    labeller = prefs.Labeller(temperature=0.1)
    gold_first, gold_second = pairs.gather(gold)
    prefer_first, _ = prefs.label(key_labels, labeller, gold_first, gold_second, 0)
    features = position_features(tree)
    config = prefs.RewardModelConfig(kind="linear", n_steps=500, learning_rate=0.05, l2=1e-3)
    params, losses = prefs.fit_reward_model(key_fit, config, *pairs.gather(features), prefer_first)
    prefs.check_finite_losses(losses)
    table = prefs.predict_reward(config, params, features)
    V = TOKEN_TASK.vocab_size
    codes = response_codes(tree.responses, V)
    index = jnp.zeros(V**TOKEN_TASK.length, jnp.int32).at[codes].set(jnp.arange(N, dtype=jnp.int32))
    learned = LearnedReward(table.astype(jnp.float32), index)
    # Does optimising the learned reward give the gold optimum? (exactly, on the tree)
    best = jnp.argmax(table, axis=-1)
    quality = {
        "centred_correlation": float(prefs.centred_correlation(table, gold)),
        "gold_of_learned_argmax": float(gold[jnp.arange(P), best].mean()),
        "labelled_fraction_of_responses": float(
            np.unique(np.concatenate([pairs.prompt * N + pairs.first, pairs.prompt * N + pairs.second])).size / (P * N)
        ),
    }
    return learned, quality


# ------------------------------------------------------------------------------------------
# Methods
# ------------------------------------------------------------------------------------------


def ppo_configs(config: Config, n_updates: int) -> dict[str, ppo.PPOConfig]:
    """The three compiled PPO-family programs (PPO and PPO no clip share one)."""
    net = MLP(config.hidden)
    base = ppo.PPOConfig(n_envs=N_ENVS, n_steps=N_STEPS, n_updates=n_updates, actor=net, critic=net, anneal_lr=False)
    return {
        "PPO": base,
        "PPO 16 epochs": dataclasses.replace(base, n_epochs=16),
        "Vanilla PG": dataclasses.replace(base, n_epochs=1, n_minibatches=1),
    }


def dqn_config(config: Config, n_updates: int) -> dqn.DQNConfig:
    return dqn.DQNConfig(
        n_envs=N_ENVS,
        n_steps=N_STEPS,
        n_updates=n_updates,
        buffer_size=10_000,
        batch_size=128,
        grad_steps_per_update=32,
        learning_starts=1_000,
        target_update_every=1,
        network=MLP(config.hidden, "relu"),
    )


def _stack(hyper_cls, n_runs: int, **traced):
    """A hyperparameter dataclass with every field ``[n_runs]`` float32 (``traced`` overrides defaults)."""
    fields = {f.name: getattr(hyper_cls(), f.name) for f in dataclasses.fields(hyper_cls)}
    fields.update(traced)
    return hyper_cls(**{k: jnp.broadcast_to(jnp.asarray(v, jnp.float32), (n_runs,)) for k, v in fields.items()})


class TaskRuns(NamedTuple):
    returns: dict
    """method -> ``[L, seeds, U]`` return curves."""
    approx_kl: dict
    """PPO-family method -> ``[L, seeds, U]``."""
    dqn_state: object
    """DQN's final states, leaves ``[L * seeds, ...]``."""
    dqn_q_taken: np.ndarray
    """``[L, seeds, U]``."""
    compile_s: float
    run_s: float


def run_task(name, config: Config, env, env_params, n_updates, reward_fn, reward_params, progress) -> TaskRuns:
    """Every method on one task: one compiled vmapped call per program (all learning rates x seeds)."""
    L, S = len(LEARNING_RATES), config.seeds
    lrs = jnp.repeat(jnp.asarray(LEARNING_RATES, jnp.float32), S)  # [L*S], learning rate major
    keys = jax.random.split(jax.random.key(TASK_SEEDS[name]), L * S)
    returns, kls, compile_s, run_s = {}, {}, 0.0, 0.0

    def call(fn, *args):
        nonlocal compile_s, run_s
        compiled, c = timed(lambda: jax.jit(fn).lower(*args).compile())
        out, r = timed(compiled, *args)
        compile_s, run_s = compile_s + c, run_s + r
        return out

    for method, cfg in ppo_configs(config, n_updates).items():
        train = ppo.make_train(cfg, env, env_params, reward_fn)
        batched = jax.vmap(lambda k, h, train=train: train(k, hyper=h, reward_params=reward_params))
        if method == "PPO":  # PPO and PPO no clip: clip ε is traced, one call for both
            hyper = _stack(ppo.PPOHyperparams, 2 * L * S, learning_rate=jnp.tile(lrs, 2))
            hyper = dataclasses.replace(hyper, clip_eps=jnp.repeat(jnp.array([0.2, jnp.inf], jnp.float32), L * S))
            run_keys = jnp.concatenate([keys, keys])
        else:
            extra = {"clip_eps": jnp.inf, "gae_lambda": 1.0} if method == "Vanilla PG" else {}
            hyper = _stack(ppo.PPOHyperparams, L * S, learning_rate=lrs, **extra)
            run_keys = keys
        progress(f"{NAME}: {name}: {method} ({hyper.learning_rate.shape[0]} runs, {n_updates} updates)")
        _, metrics = call(batched, run_keys, hyper)
        raise_if_nonfinite(metrics.nonfinite, f"{name} {method}")
        curves = np.asarray(metrics.episode_return).reshape(-1, L, S, n_updates)
        kl = np.asarray(metrics.approx_kl).reshape(-1, L, S, n_updates)
        names = ("PPO", "PPO no clip") if method == "PPO" else (method,)
        for i, m in enumerate(names):
            returns[m], kls[m] = curves[i], kl[i]

    dcfg = dqn_config(config, n_updates)
    train = dqn.make_train(dcfg, env, env_params, reward_fn)
    batched = jax.vmap(lambda k, h: train(k, hyper=h, reward_params=reward_params))
    hyper = _stack(dqn.DQNHyperparams, L * S, learning_rate=lrs, gamma=GAMMA)
    progress(f"{NAME}: {name}: DQN ({L * S} runs, {n_updates} updates)")
    state, metrics = call(batched, keys, hyper)
    raise_if_nonfinite(metrics.nonfinite, f"{name} DQN")
    returns["DQN"] = np.asarray(metrics.episode_return).reshape(L, S, n_updates)
    q_taken = np.asarray(metrics.q_taken).reshape(L, S, n_updates)
    returns = {m: returns[m] for m in METHODS}
    return TaskRuns(returns, kls, state, q_taken, compile_s, run_s)


def token_overestimation(config: Config, state, env, tree, learned: LearnedReward) -> dict[str, np.ndarray]:
    """DQN's ``max_a Q(x, ·)`` at the prompts vs the exact discounted values under the learned reward.

    Returns ``[L, seeds]`` arrays: the estimate, the exact value of its own greedy policy, and ``V*``.
    """
    dcfg = dqn_config(config, 1)
    obs = token_mdp.tree_observations(env, tree)
    mdp = token_mdp.with_response_reward(tree, learned.table.astype(jnp.float64))
    mdp = tabular.TabularMDP.from_successors(
        mdp.next_states, mdp.next_probs, mdp.R, mdp.init, mdp.horizon, GAMMA, mdp.terminal
    )
    v_star = float(mdp.init @ tabular.solve(mdp).V[0])

    def one(params):
        q = dqn.q_values(dcfg, params, obs)  # [S, A]
        estimate = mdp.init @ jnp.max(q, axis=-1)
        return estimate, tabular.evaluate(mdp, tabular.greedy(q))

    estimate, exact = jax.jit(jax.vmap(one))(state.params)
    L, S = len(LEARNING_RATES), config.seeds
    return {
        "estimate": np.asarray(estimate).reshape(L, S),
        "greedy_value": np.asarray(exact).reshape(L, S),
        "v_star": np.full((L, S), v_star),
    }


# ------------------------------------------------------------------------------------------
# Baird
# ------------------------------------------------------------------------------------------


def baird_panel() -> dict[str, np.ndarray]:
    """Norm ratios at the textbook setting, and the step size that 1,000x in 1,000 updates needs."""
    runs = td.baird_td(BAIRD_STEP_SIZE, n_updates=3000, discount=BAIRD_DISCOUNT)
    off = np.linalg.norm(np.asarray(runs.off_policy), axis=-1)
    on = np.linalg.norm(np.asarray(runs.on_policy), axis=-1)
    grid = np.geomspace(1e-3, 1e-1, 401)
    sweep = td.baird_td(jnp.asarray(grid), n_updates=BAIRD_UPDATES, discount=BAIRD_DISCOUNT)
    final = np.linalg.norm(np.asarray(sweep.off_policy[:, -1]), axis=-1) / off[0]
    enough = final >= BAIRD_FACTOR
    return {
        "baird_off_ratio": off / off[0],
        "baird_on_ratio": on / on[0],
        "baird_step_grid": grid,
        "baird_ratio_by_step": final,
        "baird_step_needed": np.array(grid[np.argmax(enough)] if enough.any() else np.nan),
        "baird_updates_needed": np.array(
            int(np.argmax(off / off[0] >= BAIRD_FACTOR)) if (off / off[0] >= BAIRD_FACTOR).any() else -1
        ),
    }


# ------------------------------------------------------------------------------------------
# The experiment
# ------------------------------------------------------------------------------------------


def _fisher_criterion(task: str, returns: dict, optimum: float) -> tuple[Criterion, dict]:
    c_ppo, r_ppo = collapses(returns["PPO"], optimum)
    c_dqn, r_dqn = collapses(returns["DQN"], optimum)
    a, n1, b, n2 = int(c_ppo.sum()), c_ppo.size, int(c_dqn.sum()), c_dqn.size
    p = fisher_exact_less(a, n1, b, n2)
    criterion = Criterion(
        f"{task}: PPO's collapse rate < DQN's, one-sided Fisher exact p < {FISHER_ALPHA}",
        p,
        None,
        bool(p < FISHER_ALPHA),
        f"PPO {a}/{n1} collapsed ({int(r_ppo.sum())} reached 90%), DQN {b}/{n2} ({int(r_dqn.sum())} reached), "
        f"learning rates {list(LEARNING_RATES)} pooled; the measured value is the p-value",
    )
    return criterion, {"ppo": [a, n1], "dqn": [b, n2], "p": p}


def _summaries(returns: dict, kls: dict, optimum: float) -> dict:
    out = {}
    for m, curves in returns.items():
        collapsed, reached = collapses(curves, optimum)  # [L, S]
        final = curves[..., -max(1, curves.shape[-1] // 10) :].mean(-1)  # mean of the last 10% of updates
        out[m] = {
            f"lr={lr:g}": {
                "collapse_rate": float(collapsed[i].mean()),
                "reach_rate": float(reached[i].mean()),
                "final_return_mean": float(final[i].mean()),
                "final_return_seed_std": float(final[i].std(ddof=1)),
                **({"mean_update_kl": float(np.median(kls[m][i].mean(-1)))} if m in kls and m != "Vanilla PG" else {}),
            }
            for i, lr in enumerate(LEARNING_RATES)
        }
    return out


def run(quick: bool = True, seeds: int | None = None, progress: Progress | None = None) -> ExperimentResult:
    progress = progress or Progress(enabled=False)
    config = Config.quick() if quick else Config()
    if seeds is not None:
        config = dataclasses.replace(config, seeds=seeds)

    # CartPole
    cartpole = CartPole()
    cp = run_task(
        "CartPole", config, cartpole, cartpole.default_params(), config.cartpole_updates, None, None, progress
    )
    cartpole_optimum = 500.0
    # Largest possible discounted return on CartPole: 500 steps of reward 1.
    q_ceiling = (1 - GAMMA**500) / (1 - GAMMA)

    # Token MDP with a learned reward
    env = token_mdp.TokenEnv(TOKEN_TASK)
    gold = token_mdp.TargetPattern(jnp.asarray(TOKEN_TARGETS))
    tree = token_mdp.enumerate_tokens(TOKEN_TASK, gold)
    token_optimum = float(tree.mdp.init @ tabular.solve(tree.mdp).V[0])
    learned, rm_quality = fit_token_reward(jax.random.key(2023), tree, config.n_labels)
    tk = run_task("Token MDP", config, env, gold, config.token_updates, make_token_reward_fn(env), learned, progress)
    over = token_overestimation(config, tk.dqn_state, env, tree, learned)

    baird = baird_panel()
    off_1000 = float(baird["baird_off_ratio"][BAIRD_UPDATES])
    on_max = float(baird["baird_on_ratio"].max())

    c1, fisher_cp = _fisher_criterion("CartPole", cp.returns, cartpole_optimum)
    c2, fisher_tk = _fisher_criterion("Token MDP, learned reward", tk.returns, token_optimum)
    c3 = Criterion(
        f"Baird: off-policy TD weight norm > {BAIRD_FACTOR:g}x its start within {BAIRD_UPDATES} expected updates "
        f"(α={BAIRD_STEP_SIZE}, γ={BAIRD_DISCOUNT}) while on-policy TD's norm never exceeds its start",
        off_1000,
        None,
        bool(off_1000 > BAIRD_FACTOR and on_max <= 1.0 + 1e-12),
        f"measured: off-policy norm ratio after {BAIRD_UPDATES} updates; on-policy maximum ratio {on_max:.4g}; "
        f"1,000x is reached after {int(baird['baird_updates_needed'])} updates at α={BAIRD_STEP_SIZE}, and within "
        f"{BAIRD_UPDATES} updates only for α >= {float(baird['baird_step_needed']):.4g}",
    )
    measurements = {
        "fisher": {"CartPole": fisher_cp, "Token MDP": fisher_tk},
        "CartPole": _summaries(cp.returns, cp.approx_kl, cartpole_optimum),
        "Token MDP": _summaries(tk.returns, tk.approx_kl, token_optimum),
        "token_optimal_gold_return": token_optimum,
        "reward_model": rm_quality,
        "dqn_token_overestimation": {
            f"lr={lr:g}": {
                "estimate_mean": float(over["estimate"][i].mean()),
                "greedy_exact_mean": float(over["greedy_value"][i].mean()),
                "v_star": float(over["v_star"][i, 0]),
                "overestimation_mean": float((over["estimate"][i] - over["greedy_value"][i]).mean()),
            }
            for i, lr in enumerate(LEARNING_RATES)
        },
        "dqn_cartpole_q": {
            "ceiling_discounted_return": q_ceiling,
            **{
                f"lr={lr:g}": {
                    "final_q_taken_median": float(np.median(cp.dqn_q_taken[i, :, -1])),
                    "fraction_of_runs_above_ceiling": float((cp.dqn_q_taken[i, :, -1] > q_ceiling).mean()),
                }
                for i, lr in enumerate(LEARNING_RATES)
            },
        },
        "baird": {
            "off_ratio_at_1000": off_1000,
            "on_ratio_max": on_max,
            "updates_needed_at_textbook_step": int(baird["baird_updates_needed"]),
            "step_size_needed_for_1000x_in_1000": float(baird["baird_step_needed"]),
        },
    }
    arrays = {
        "learning_rates": np.asarray(LEARNING_RATES),
        **{f"cartpole_returns/{m}": v for m, v in cp.returns.items()},
        **{f"token_returns/{m}": v for m, v in tk.returns.items()},
        **{f"cartpole_kl/{m}": v for m, v in cp.approx_kl.items()},
        **{f"token_kl/{m}": v for m, v in tk.approx_kl.items()},
        "cartpole_dqn_q_taken": cp.dqn_q_taken,
        "token_dqn_q_taken": tk.dqn_q_taken,
        **{f"token_dqn_{k}": v for k, v in over.items()},
        "token_learned_reward": np.asarray(learned.table),
        "token_gold_reward": np.asarray(tree.gold),
        **baird,
    }
    figure = plot(config, cp.returns, tk.returns, cartpole_optimum, token_optimum, baird, cp.approx_kl)
    return ExperimentResult(
        name=NAME,
        claim=CLAIM,
        config={
            **dataclasses.asdict(config),
            "quick": quick,
            "methods": list(METHODS),
            "learning_rates": list(LEARNING_RATES),
            "env_steps_per_update": N_ENVS * N_STEPS,
            "reach_fraction": REACH_FRACTION,
            "collapse_fraction": COLLAPSE_FRACTION,
        },
        arrays=arrays,
        criteria=[c1, c2, c3],
        figure=figure,
        timings={
            "compile_s": cp.compile_s + tk.compile_s,
            "run_s": cp.run_s + tk.run_s,
        },
        measurements=measurements,
    )


def plot(config: Config, cp_returns, tk_returns, cp_opt, tk_opt, baird, cp_kl):
    """One slide: return curves and collapse rates on both tasks; Baird; PPO-family KL drift."""
    import matplotlib.pyplot as plt

    from toyrlhf.plotting import apply_style, seed_band

    apply_style()
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    colors = dict(zip(METHODS, plt.cm.tab10(np.arange(len(METHODS)))))
    steps_per_update = N_ENVS * N_STEPS
    for row, (task, returns, opt) in enumerate((("CartPole", cp_returns, cp_opt), ("Token MDP", tk_returns, tk_opt))):
        ax = axes[row, 0]
        lr_index = LEARNING_RATES.index(1e-3)
        for m in METHODS:
            curves = returns[m][lr_index]
            x = np.arange(1, curves.shape[-1] + 1) * steps_per_update
            seed_band(ax, x, curves, label=m, color=colors[m])
        ax.axhline(REACH_FRACTION * opt, color="0.5", ls=":", lw=1)
        ax.set_title(f"{task}: return, lr = 1e-3 ({config.seeds} seeds, 95% CI)", fontsize=10)
        ax.set_xlabel("environment steps")
        ax.set_ylabel("gold return" if row else "return")
        ax = axes[row, 1]
        width = 0.8 / len(METHODS)
        for j, m in enumerate(METHODS):
            collapsed, reached = collapses(returns[m], opt)
            xs = np.arange(len(LEARNING_RATES)) + (j - len(METHODS) / 2 + 0.5) * width
            ax.bar(xs, reached.mean(-1), width, color=colors[m], alpha=0.3)
            ax.bar(xs, collapsed.mean(-1), width, color=colors[m], label=m)
        ax.set_xticks(np.arange(len(LEARNING_RATES)), [f"{lr:g}" for lr in LEARNING_RATES])
        ax.set_xlabel("learning rate")
        ax.set_ylabel("fraction of seeds")
        ax.set_title(f"{task}: collapsed (solid), reached 90% (faint)", fontsize=10)
        ax.set_ylim(0, 1.05)
    axes[0, 0].legend(fontsize=8)
    ax = axes[0, 2]
    k = np.arange(baird["baird_off_ratio"].shape[0])
    ax.semilogy(k, baird["baird_off_ratio"], label="off-policy (μ = d_b, ρ = π/b)")
    ax.semilogy(k, baird["baird_on_ratio"], label="on-policy (μ = d_π)")
    ax.axhline(BAIRD_FACTOR, color="0.5", ls=":", lw=1)
    ax.axvline(BAIRD_UPDATES, color="0.5", ls=":", lw=1)
    ax.set_title(f"Baird: ‖w_k‖ / ‖w_0‖, expected TD(0), α={BAIRD_STEP_SIZE}", fontsize=10)
    ax.set_xlabel("expected update k")
    ax.legend(fontsize=8)
    ax = axes[1, 2]
    for m, kl in cp_kl.items():
        if m == "Vanilla PG":  # one step per batch: approx_kl is measured at θ = θ_old, always 0
            continue
        values = kl.mean(-1)  # [L, S]: mean per-update KL of each run
        ax.loglog(LEARNING_RATES, np.maximum(np.median(values, -1), 1e-8), "o-", color=colors[m], label=m)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("median per-update KL(π_old ‖ π_new)")
    ax.set_title("CartPole: policy drift per update (PPO family)", fontsize=10)
    ax.legend(fontsize=8)
    fig.suptitle("PPO vs DQN: collapses over seeds and learning rates (equal environment steps); Baird", fontsize=12)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    return fig
