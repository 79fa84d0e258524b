"""The reward model as a cheap proxy for human feedback, and for choosing prompts (claim T3).

The paper's argument: a human judgement is expensive, a rollout in the known
dynamics is free. Asking the human about every rollout makes every policy
update cost labels; a reward model learned once from M labels can then be
queried for free, however many rollouts RL takes. The same idea carries over to
prompts: a model learned from an offline table of outcomes can pick a prompt
for each query without a single new query. Two parts, both measured exactly
against hidden ground truth; every label, gold-reward query and env step counted.

**Part A: true return per human label** (the toy language model of
``rlhf-vs-sft``: 2 prompts, EOS plus 3 content tokens, responses of up to 4
tokens, 121 per prompt, gold = :class:`~toyrlhf.envs.token_mdp.ConcaveQuality`;
SFT from 20 demonstrations, built by :func:`toyrlhf.experiments.rlhf_vs_sft.build`).
Both routes start from SFT and run the project's PPO with the same KL leash β to
SFT, so both aim at the same target, the exact KL-tilted optimum
``π_SFT exp(g/β)/Z`` (the "oracle"; its gold return is 100% of the SFT → oracle gain):

- **direct** ("ask the human for every rollout"): PPO whose reward is the human's
  score of each finished response. Every finished response is one human
  judgement (one gold-reward query), counted exactly (``PPOMetrics.episodes``);
  unfinished responses at the end of a rollout cost nothing. The exact gold
  return is computed after every update, so the curve "gold return against
  labels spent so far" is exact given the policies.
- **reward model once**: M pairwise labels of SFT response pairs → Bradley–Terry
  reward model → PPO on it (``rlhf-vs-sft``'s RLHF, settings from
  :func:`~toyrlhf.experiments.rlhf_vs_sft.pipeline_config`). It costs M labels
  and no gold query, however many rollouts PPO takes (51,200 env steps). Two
  reward models on the *same* labels: **tabular** (one reward per (prompt,
  response): the project's pipeline, no generalisation between responses) and
  **features** (per-prompt token counts, ``L`` and ``L²``: it can represent the
  gold reward exactly, so one label informs every response; it is the optimistic,
  well-specified case). Budgets are nested within a seed (the first M of one
  labelled list), as in ``rlhf-vs-sft``.

*One human, two kinds of question.* The simulated human is a random-utility
model: it perceives ``u(y) = g(y) + τ·(Gumbel − γ_Euler)`` (mean ``g``,
SD ``πτ/√6``). Asked to compare, it prefers the larger ``u``, which is exactly
the Boltzmann labeller ``Pr(y¹ ≻ y²) = σ((g¹ − g²)/τ)`` of
:mod:`toyrlhf.algorithms.preferences` (a difference of Gumbels is logistic).
Asked for a score, it reports ``u``. The direct route is also run with a
noise-free judge (score = ``g`` exactly), a bound in its favour.
**A scalar judgement and a pairwise label are not the same unit of human
effort**: a score reveals a noisy real number about one response, a comparison
one bit about two. Both are counted here as "one label"; the figure says so too.
How expensive each is for a real person is not modelled.

*Fair settings for the direct route.* A direct update costs labels per sample,
so its PPO batch size matters. A pilot of four settings (16x16 steps at
learning rate 0.1, 8x8, 4x8, and 4x8 at 0.03), run before the criteria were
written, found 4 envs x 8 steps, one minibatch, learning rate 0.1 the most
label-efficient; the direct route uses it (a strong baseline makes the
comparison conservative). The reward-model route keeps the RLHF pipeline's PPO.
The pilot also ran both reward-model routes, so their rough standing was known
when the criteria were written; the criteria are the issue's suggested ones,
registered for *both* reward models and the same human, not chosen per result.

**Part B: choosing a prompt per query from an offline table.** ``K`` candidate
prompts, queries with features ``u_q ∈ R^d``, hidden success probabilities

    logit p[q, k] = b_0 + b_k + u_q · v_k + ε[q, k],

with prompt effects ``b_k``, prompt directions ``v_k`` and an idiosyncratic
``ε`` that no model can learn (all drawn per seed). An offline table logs
``n`` outcomes ``(q, k, success)`` of uniformly random (training query, prompt)
pairs. A success model, logistic regression on ``one_hot(k) ⊗ [1, u_q]`` (the
Bradley–Terry fit of :func:`~toyrlhf.algorithms.preferences.fit_reward_model`
against a zero-reward comparator *is* logistic regression), picks
``argmax_k p̂[q, k]`` for each of ``n_test_queries`` *fresh* queries, at zero
extra queries. Compared by exact expected success (mean over test queries of
the hidden ``p`` of the chosen prompt) with the **best single prompt in
hindsight** (``max_k mean_q p[q, k]`` on the test queries: it uses the hidden
``p``, an upper bound for any one-prompt policy), the **table's best single
prompt** (largest posterior mean success, Beta(1, 1) prior: what one would
deploy without a model) and the **per-query oracle** (``mean_q max_k p``).
Table sizes are nested within a seed.

Pre-registered criteria (fixed before the experiment's first run, after the
pilot above; paired over seeds, 95% percentile-bootstrap intervals over seeds):

1. at equal label budget L = max M, the gold return of the reward-model route
   (tabular) exceeds the direct route's (noisy judge): bootstrap CI of the
   paired difference above 0 (the direct route's policy is the last one whose
   cumulative labels are ≤ L);
2. the same for the reward-model route with features;
3. labels to reach 90% of the SFT → oracle gain (first crossing; the smallest
   budget M that reaches it for the reward-model route; never = censored, +∞):
   the ratio of seed medians, direct / reward model (tabular), has its bootstrap
   CI above 1;
4. the same for the reward model with features;
5. (Part B) at the largest table, per-query selection by the learned success
   model beats the best single prompt in hindsight: bootstrap CI of the paired
   difference of exact success above 0.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from toyrlhf.algorithms import ppo, rlhf, tilted
from toyrlhf.algorithms import preferences as pref
from toyrlhf.diagnostics import raise_if_nonfinite
from toyrlhf.envs import token_mdp as tm
from toyrlhf.envs.functional import Step, TabularParams, tabular_env
from toyrlhf.experiments import rlhf_vs_sft as rvs
from toyrlhf.experiments.common import Criterion, ExperimentResult, Progress, timed
from toyrlhf.stats import bootstrap_interval

NAME = "reward-proxy"
CLAIM = (
    "T3: a reward model learned once from M labels reaches more true return per human label than asking "
    "the human about every rollout; a success model learned from an offline table picks better prompts per "
    "query than the best single prompt, at zero extra queries."
)
REWARD_MODELS = ("tabular", "features")
JUDGES = ("noise-free judge", "noisy judge")
BANDIT_POLICIES = ("per-query (learned)", "best single (table)", "best single (hindsight)", "per-query oracle")


def _check_budgets(name: str, values) -> None:
    values = tuple(values)
    if not values or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values):
        raise ValueError(f"{name} must be a non-empty tuple of positive ints, got {values!r}")
    if any(b <= a for a, b in zip(values[:-1], values[1:])):
        raise ValueError(f"{name} must be strictly increasing, got {values!r}")


@dataclasses.dataclass(frozen=True)
class Config:
    """Settings of both parts (all static: they fix the compiled program)."""

    # --- Part A: the token MDP (as rlhf-vs-sft) ---
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
    """The demonstrator is the exact tilted optimum of the uniform policy at this temperature."""
    n_demos: int = 20
    """Demonstrated responses for SFT."""
    sft_pseudo_count: float = 0.5
    """Added to every (state, token) count of SFT (keeps π_SFT > 0 for the KL leash)."""
    label_budgets: tuple[int, ...] = (30, 100, 300, 1000, 3000)
    """M: pairwise-label budgets of the reward-model route (nested within a seed)."""
    label_temperature: float = 1.0
    """τ: the human's noise (labeller temperature; the noisy judge's Gumbel scale)."""
    beta: float = 0.1
    """KL coefficient β to SFT, both routes."""
    rm_ppo_updates: int = 200
    """PPO updates of the reward-model route (16 envs x 16 steps each, the RLHF pipeline's PPO)."""
    direct_envs: int = 4
    """Parallel environments of the direct route's PPO."""
    direct_steps: int = 8
    """Steps per environment per update of the direct route's PPO."""
    direct_minibatches: int = 1
    """Minibatches per epoch of the direct route's PPO."""
    direct_learning_rate: float = 0.1
    """Adam step size of the direct route's PPO."""
    direct_updates: int = 400
    """Updates of the direct route: enough to spend more labels than max M."""
    gain_fraction: float = 0.9
    """The 'labels to reach' threshold, as a fraction of the SFT → oracle gold gain."""
    # --- Part B: the prompt-selection bandit ---
    n_candidates: int = 8
    """K: candidate prompts."""
    n_query_features: int = 4
    """d: features of a query."""
    n_train_queries: int = 100
    """Queries that appear in the offline table."""
    n_test_queries: int = 1000
    """Fresh queries the selection is evaluated on (exactly, with the hidden p)."""
    table_sizes: tuple[int, ...] = (10, 40, 160, 640, 2560)
    """Logged outcomes in the offline table (nested within a seed)."""
    base_logit: float = -0.5
    """b_0: the overall success logit."""
    prompt_scale: float = 0.5
    """SD of the prompt effects b_k."""
    interaction_scale: float = 1.5
    """SD of the query-prompt interaction u_q · v_k."""
    idiosyncratic_scale: float = 0.5
    """SD of the unlearnable ε[q, k]."""
    success_model: pref.RewardModelConfig = dataclasses.field(
        default_factory=lambda: pref.RewardModelConfig(kind="linear", n_steps=500, learning_rate=0.1, l2=1e-3)
    )
    """Logistic regression (linear Bradley–Terry against a zero comparator) on one_hot(k) ⊗ [1, u_q]."""
    n_seeds: int = 16
    """Seeds (SFT data, labels, PPO noise, bandit worlds and tables), vmapped."""

    def __post_init__(self):
        _check_budgets("label_budgets", self.label_budgets)
        _check_budgets("table_sizes", self.table_sizes)
        for name in (
            "rm_ppo_updates",
            "direct_envs",
            "direct_steps",
            "direct_minibatches",
            "direct_updates",
            "n_candidates",
            "n_query_features",
            "n_train_queries",
            "n_test_queries",
            "n_demos",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.n_candidates < 2:
            raise ValueError(f"n_candidates must be at least 2, got {self.n_candidates}")
        for name in ("label_temperature", "beta"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0.0 < self.gain_fraction < 1.0:
            raise ValueError(f"gain_fraction must lie in (0, 1), got {self.gain_fraction}")
        if not self.direct_learning_rate >= 0:
            raise ValueError(f"direct_learning_rate must be non-negative, got {self.direct_learning_rate}")

    @classmethod
    def quick(cls) -> Config:
        return cls(n_seeds=6)

    def token_config(self) -> rvs.Config:
        """The same token MDP, SFT, labeller and β as an ``rlhf-vs-sft`` config (to reuse its pieces)."""
        return dataclasses.replace(
            rvs.Config(),
            vocab_size=self.vocab_size,
            length=self.length,
            quality=self.quality,
            target_length=self.target_length,
            length_penalty=self.length_penalty,
            expert_temperature=self.expert_temperature,
            n_demos=self.n_demos,
            sft_pseudo_count=self.sft_pseudo_count,
            label_budgets=self.label_budgets,
            label_temperature=self.label_temperature,
            beta=self.beta,
            ppo_updates=self.rm_ppo_updates,
            n_seeds=self.n_seeds,
        )

    def direct_ppo(self) -> ppo.PPOConfig:
        """The direct route's PPO: the RLHF pipeline's, with its own (label-frugal) batch and step size."""
        base = rvs.pipeline_config(self.token_config()).ppo
        return dataclasses.replace(
            base,
            n_envs=self.direct_envs,
            n_steps=self.direct_steps,
            n_minibatches=self.direct_minibatches,
            n_updates=self.direct_updates,
            hyper=dataclasses.replace(base.hyper, learning_rate=self.direct_learning_rate),
        )


# ------------------------------------------------------------------------------------------
# Part A: the human scores every finished response
# ------------------------------------------------------------------------------------------


class JudgeParams(NamedTuple):
    """Parameters of a :class:`JudgedEnv` (traceable: vmap over ``noise``)."""

    base: TabularParams
    """The token tree's tabular environment (its reward is the gold reward)."""
    noise: jax.Array
    """``[]``: the judge's Gumbel scale τ (0: the judge reports the gold reward exactly)."""


@dataclasses.dataclass(frozen=True)
class JudgedEnv:
    """The token tree's environment, scored by a human with random utility on every finished response.

    On the step that ends a response the reward is ``g + noise·(G − γ_Euler)``,
    ``G ~ Gumbel(0, 1)`` (mean ``g``); other steps pay 0. Pairwise comparisons by
    the same human are the Boltzmann labeller with temperature ``noise``.
    """

    base: object
    """A ``TabularEnv`` with index observations (from :func:`~toyrlhf.envs.functional.tabular_env`)."""

    @property
    def n_actions(self) -> int:
        return self.base.n_actions

    @property
    def observation_shape(self) -> tuple[int, ...]:
        return self.base.observation_shape

    @property
    def n_states(self) -> int:
        return self.base.n_states

    def reset(self, key: jax.Array, params: JudgeParams):
        return self.base.reset(key, params.base)

    def step(self, key: jax.Array, state, action: jax.Array, params: JudgeParams) -> Step:
        key_step, key_judge = jax.random.split(key)
        step = self.base.step(key_step, state, action, params.base)
        noise = params.noise * (jax.random.gumbel(key_judge, (), jnp.float32) - np.euler_gamma)
        reward = step.reward + jnp.where(step.terminated, noise, 0.0)
        return step._replace(reward=reward.astype(jnp.float32))


def gold_return(tree: tm.TokenTree, probs: jax.Array) -> jax.Array:
    """Exact gold return ``E_x E_{y~π(·|x)} g(x, y)`` of response probabilities ``[P, N]``."""
    return jnp.mean(jnp.sum(probs * tree.gold, -1))


def make_direct_route(config: Config, tree: tm.TokenTree):
    """``direct(key, reference [S, A], noise, learning_rate) -> (gold [U], labels [U], nonfinite [U])``.

    PPO from ``reference`` (SFT) with the KL leash β to it, on the judge's scores.
    ``gold[u]`` is the exact gold return after update ``u``; ``labels[u]`` the human
    judgements (finished responses) spent in update ``u``. ``learning_rate`` is
    traced (0 keeps the policy at the reference: tests use it).
    """
    pc = config.direct_ppo()
    env, base_params = tabular_env(tree.mdp, "index")
    judged = JudgedEnv(env)
    agent = ppo.make_ppo(pc, judged, JudgeParams(base_params, jnp.float32(0.0)))
    states = jnp.arange(tree.mdp.n_states)

    def direct(key, reference, noise, learning_rate):
        hyper = dataclasses.replace(pc.hyper, learning_rate=learning_rate)
        params = JudgeParams(base_params, jnp.asarray(noise, jnp.float32))
        state = agent.init(key, hyper, reference=jnp.log(reference).astype(jnp.float32), env_params=params)

        def one_update(state, _):
            state, metrics = agent.update(state)
            probs = tm.response_probs(tree, ppo.policy_probabilities(pc, state.params.actor, states))
            return state, (gold_return(tree, probs), metrics.episodes, metrics.nonfinite)

        _, out = jax.lax.scan(one_update, state, None, length=pc.n_updates)
        return out

    return direct


def reward_model_features(task: tm.TokenTask, tree: tm.TokenTree) -> jax.Array:
    """``[kinds, P, N, P·N]``: one-hot (tabular) and token-count features, the latter zero-padded to one width.

    Zero columns get no gradient and start at 0, so padding changes nothing; one width lets both
    reward models share one vmapped (compiled once) PPO.
    """
    P, N = tree.gold.shape
    onehot = pref.per_prompt_features(jnp.eye(N, dtype=jnp.float32), P)
    counts = pref.per_prompt_features(
        pref.token_count_features(tree.responses, task.vocab_size, task.eos, length_squared=True), P
    )
    padded = jnp.pad(counts, ((0, 0), (0, 0), (0, onehot.shape[-1] - counts.shape[-1])))
    return jnp.stack([onehot, padded])


def make_reward_model_route(config: Config, task: tm.TokenTask, tree: tm.TokenTree):
    """``route(key, sft [S, A]) -> dict`` with ``gold [kinds, budgets]``, ``labels [budgets]`` and diagnostics.

    Label M pairs of SFT responses once (the labeller of :mod:`~toyrlhf.algorithms.preferences`),
    fit each reward model on the first M of them, run the RLHF pipeline's PPO on it.
    """
    pipe = rvs.pipeline_config(config.token_config())
    budgets = jnp.asarray(config.label_budgets)
    M_max = max(config.label_budgets)
    env, env_params = tabular_env(tree.mdp, "index")
    ppo_train = ppo.make_train(pipe.ppo, env, env_params, reward_fn=rvs.index_reward_fn)
    states = jnp.arange(tree.mdp.n_states)
    features = reward_model_features(task, tree)
    labeller = pref.Labeller(config.label_temperature)
    gold = tree.gold

    def route(key, sft):
        key_pairs, key_labels, key_fit, key_ppo = jax.random.split(key, 4)
        sft_probs = tm.response_probs(tree, sft)
        pairs = pref.sample_response_pairs(key_pairs, sft_probs, M_max)
        labels, _ = pref.label(key_labels, labeller, *pairs.gather(gold), 0)

        def one(phi, M):
            weights = (jnp.arange(M_max) < M).astype(jnp.float32)
            params, rm_loss = pref.fit_reward_model(
                key_fit,
                pipe.reward_model,
                *pairs.gather(phi),
                labels,
                weights,
            )
            reward = pref.predict_reward(pipe.reward_model, params, phi).astype(jnp.float64)
            table = tm.with_response_reward(tree, reward).R.astype(jnp.float32)
            state, metrics = ppo_train(key_ppo, reference=jnp.log(sft).astype(jnp.float32), reward_params=table)
            probs = tm.response_probs(tree, ppo.policy_probabilities(pipe.ppo, state.params.actor, states))
            return {
                "gold": gold_return(tree, probs),
                "labels": jnp.sum(weights).astype(jnp.int32),
                "correlation": pref.centred_correlation(reward, gold, sft_probs),
                "rm_loss": rm_loss,
                "nonfinite": metrics.nonfinite,
            }

        over_budgets = jax.vmap(one, in_axes=(None, 0))
        return jax.vmap(over_budgets, in_axes=(0, None))(features, budgets)

    return route


def gold_at_budget(cum_labels, gold, start, budget) -> np.ndarray:
    """Gold return of the last policy whose cumulative labels are ≤ ``budget``; ``start`` if none is.

    ``cum_labels`` and ``gold`` are ``[..., U]`` (non-decreasing ``cum_labels``), ``start`` is ``[...]``.
    """
    cum_labels, gold = np.asarray(cum_labels), np.asarray(gold)
    if cum_labels.shape != gold.shape:
        raise ValueError(f"cum_labels and gold must share a shape [..., U], got {cum_labels.shape} and {gold.shape}")
    if np.any(np.diff(cum_labels, axis=-1) < 0):
        raise ValueError("cum_labels must be non-decreasing along the last axis")
    n_within = np.sum(cum_labels <= budget, axis=-1)
    last = np.take_along_axis(gold, np.maximum(n_within - 1, 0)[..., None], axis=-1)[..., 0]
    return np.where(n_within > 0, last, np.asarray(start, dtype=np.float64))


def labels_to_reach(cum_labels, fraction, threshold: float) -> np.ndarray:
    """Labels spent when ``fraction [..., U]`` first reaches ``threshold`` (``inf`` if it never does)."""
    cum_labels, fraction = np.asarray(cum_labels, dtype=np.float64), np.asarray(fraction)
    if cum_labels.shape != fraction.shape:
        raise ValueError(
            f"cum_labels and fraction must share a shape [..., U], got {cum_labels.shape} and {fraction.shape}"
        )
    reached = fraction >= threshold
    first = np.argmax(reached, axis=-1)
    spent = np.take_along_axis(cum_labels, first[..., None], axis=-1)[..., 0]
    return np.where(reached.any(-1), spent, np.inf)


def median_ratio(direct, model) -> float:
    """``median(direct) / median(model)`` of labels-to-reach (``inf`` = never).

    0 if only the model's median is never, ``inf`` if only the direct route's, NaN if both are never.
    """
    d, m = float(np.median(direct)), float(np.median(model))
    if np.isinf(m):
        return 0.0 if np.isfinite(d) else float("nan")
    return d / m


def median_ratio_interval(direct, model, n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """``(estimate, lo, hi)``: :func:`median_ratio` with a paired percentile bootstrap over seeds.

    Resamples where neither reaches (NaN) count as ratio 1 (no evidence either way);
    quantiles without interpolation, so censored (``inf``) values stay exact.
    """
    direct, model = np.asarray(direct, dtype=np.float64), np.asarray(model, dtype=np.float64)
    if direct.shape != model.shape or direct.ndim != 1:
        raise ValueError(f"direct and model must both be [seeds], got {direct.shape} and {model.shape}")
    rng = np.random.default_rng(seed)
    n = direct.shape[0]
    draws = [rng.integers(0, n, n) for _ in range(n_boot)]
    stats = np.array([median_ratio(direct[i], model[i]) for i in draws])
    stats = np.where(np.isnan(stats), 1.0, stats)
    lo, hi = np.quantile(stats, [0.025, 0.975], method="inverted_cdf")
    return median_ratio(direct, model), float(lo), float(hi)


# ------------------------------------------------------------------------------------------
# Part B: a prompt-selection bandit with an offline table
# ------------------------------------------------------------------------------------------


class BanditWorld(NamedTuple):
    """One seed's hidden world: query features and success probabilities."""

    train_features: jax.Array
    """``[Q_train, d]``: features of the queries in the offline table."""
    test_features: jax.Array
    """``[Q_test, d]``: features of the fresh queries the selection is judged on."""
    train_success: jax.Array
    """``[Q_train, K]``: hidden ``p[q, k]``."""
    test_success: jax.Array
    """``[Q_test, K]``: hidden ``p[q, k]``."""


def sample_world(key: jax.Array, config: Config) -> BanditWorld:
    """Draw ``b_k, v_k, u_q, ε`` and ``p = σ(b_0 + b_k + u_q·v_k + ε)`` (see the module docstring)."""
    K, d = config.n_candidates, config.n_query_features
    Q_tr, Q_te = config.n_train_queries, config.n_test_queries
    key_b, key_v, key_u, key_e = jax.random.split(key, 4)
    bias = config.prompt_scale * jax.random.normal(key_b, (K,))
    directions = config.interaction_scale / np.sqrt(d) * jax.random.normal(key_v, (K, d))
    u = jax.random.normal(key_u, (Q_tr + Q_te, d))
    eps = config.idiosyncratic_scale * jax.random.normal(key_e, (Q_tr + Q_te, K))
    p = jax.nn.sigmoid(config.base_logit + bias + u @ directions.T + eps)
    return BanditWorld(u[:Q_tr], u[Q_tr:], p[:Q_tr], p[Q_tr:])


def selection_features(query_features: jax.Array, n_candidates: int) -> jax.Array:
    """``[Q, K, K·(d+1)]``: ``one_hot(k) ⊗ [1, u_q]``, a separate intercept and slope per prompt."""
    Q = query_features.shape[0]
    x = jnp.concatenate([jnp.ones((Q, 1), query_features.dtype), query_features], -1)  # [Q, d+1]
    eye = jnp.eye(n_candidates, dtype=x.dtype)
    return jnp.einsum("kj,qf->qkjf", eye, x).reshape(Q, n_candidates, -1).astype(jnp.float32)


def exact_success(success: jax.Array, choice: jax.Array) -> jax.Array:
    """Exact expected success ``mean_q p[q, choice_q]`` of choosing prompt ``choice [Q]`` for each query."""
    if success.ndim != 2 or choice.shape != success.shape[:1]:
        raise ValueError(f"choice must have shape [Q] = [{success.shape[0]}] for success [Q, K], got {choice.shape}")
    return jnp.mean(jnp.take_along_axis(success, choice[:, None], axis=1))


def best_single_success(success: jax.Array) -> jax.Array:
    """``max_k mean_q p[q, k]``: the best one prompt for every query, in hindsight (reads the hidden ``p``)."""
    return jnp.max(jnp.mean(success, 0))


def oracle_success(success: jax.Array) -> jax.Array:
    """``mean_q max_k p[q, k]``: the best prompt for each query (reads the hidden ``p``)."""
    return jnp.mean(jnp.max(success, 1))


def make_bandit(config: Config):
    """``bandit(key) -> dict``: exact success of each policy in :data:`BANDIT_POLICIES` order, ``[tables, 4]``."""
    sizes = jnp.asarray(config.table_sizes)
    n_max = max(config.table_sizes)
    K = config.n_candidates
    model = config.success_model

    def bandit(key):
        key_world, key_q, key_k, key_y, key_fit = jax.random.split(key, 5)
        world = sample_world(key_world, config)
        query = jax.random.randint(key_q, (n_max,), 0, config.n_train_queries)
        prompt = jax.random.randint(key_k, (n_max,), 0, K)
        outcome = jax.random.bernoulli(key_y, world.train_success[query, prompt]).astype(jnp.float32)
        logged = selection_features(world.train_features, K)[query, prompt]  # [n, F]
        test = selection_features(world.test_features, K)  # [Q_test, K, F]

        def one(n):
            weights = (jnp.arange(n_max) < n).astype(jnp.float32)
            params, loss = pref.fit_reward_model(key_fit, model, logged, jnp.zeros_like(logged), outcome, weights)
            choice = jnp.argmax(pref.predict_reward(model, params, test), -1)
            tries = jnp.zeros(K).at[prompt].add(weights)
            wins = jnp.zeros(K).at[prompt].add(weights * outcome)
            table_best = jnp.argmax((wins + 1.0) / (tries + 2.0))
            success = jnp.stack(
                [
                    exact_success(world.test_success, choice),
                    jnp.mean(world.test_success[:, table_best]),
                    best_single_success(world.test_success),
                    oracle_success(world.test_success),
                ]
            )
            return {"success": success, "table_rows": jnp.sum(weights).astype(jnp.int32), "loss": loss}

        return jax.vmap(one)(sizes)

    return bandit


# ------------------------------------------------------------------------------------------
# The sweep: both parts, every seed, one compiled program
# ------------------------------------------------------------------------------------------


def make_sweep(config: Config, task: tm.TokenTask, tree: tm.TokenTree):
    """``sweep(keys [seeds], expert [S, A]) -> dict`` of arrays with a leading ``[seeds]`` axis."""
    direct = make_direct_route(config, tree)
    route = make_reward_model_route(config, task, tree)
    bandit = make_bandit(config)
    noises = jnp.asarray([0.0, config.label_temperature])  # JUDGES order

    def one_seed(key, expert):
        key_sft, key_direct, key_rm, key_bandit = jax.random.split(key, 4)
        sft, expert_labels = rlhf.fit_sft(key_sft, tree, expert, config.n_demos, config.sft_pseudo_count)
        sft_probs = tm.response_probs(tree, sft)
        oracle = tilted.tilted_response_probs(sft_probs, tree.gold, config.beta)
        direct_gold, direct_labels, direct_nonfinite = jax.vmap(direct, in_axes=(None, None, 0, None))(
            key_direct, sft, noises, config.direct_learning_rate
        )
        rm = route(key_rm, sft)
        b = bandit(key_bandit)
        return {
            "sft_gold": gold_return(tree, sft_probs),
            "oracle_gold": gold_return(tree, oracle),
            "expert_labels": expert_labels,
            "direct_gold": direct_gold,  # [judges, U]
            "direct_labels": direct_labels,  # [judges, U]
            "direct_nonfinite": direct_nonfinite,
            "rm_gold": rm["gold"],  # [kinds, budgets]
            "rm_labels": rm["labels"],
            "rm_correlation": rm["correlation"],
            "rm_loss": rm["rm_loss"],
            "rm_nonfinite": rm["nonfinite"],
            "bandit_success": b["success"],  # [tables, policies]
            "table_rows": b["table_rows"],
            "bandit_loss": b["loss"],
        }

    return jax.jit(jax.vmap(one_seed, in_axes=(0, None)))


def summarise(config: Config, out: dict) -> dict:
    """Host-side numbers from the sweep: gain fractions, gold at each budget, labels to reach the threshold."""
    sft, oracle = out["sft_gold"], out["oracle_gold"]
    gain = (oracle - sft)[:, None]
    budgets = np.asarray(config.label_budgets)
    cum = np.cumsum(out["direct_labels"], axis=-1)  # [seeds, judges, U]
    direct_at = np.stack(
        [gold_at_budget(cum, out["direct_gold"], sft[:, None], m) for m in budgets], axis=-1
    )  # [seeds, judges, budgets]
    direct_fraction = (out["direct_gold"] - sft[:, None, None]) / gain[..., None]
    rm_fraction = (out["rm_gold"] - sft[:, None, None]) / gain[..., None]  # [seeds, kinds, budgets]
    direct_reach = labels_to_reach(cum, direct_fraction, config.gain_fraction)  # [seeds, judges]
    rm_budgets = np.broadcast_to(budgets, rm_fraction.shape).astype(np.float64)
    rm_reach = labels_to_reach(rm_budgets, rm_fraction, config.gain_fraction)  # [seeds, kinds]
    return {
        "cum_labels": cum,
        "direct_at_budget": direct_at,
        "direct_fraction": direct_fraction,
        "rm_fraction": rm_fraction,
        "direct_reach": direct_reach,
        "rm_reach": rm_reach,
    }


def criteria_from(config: Config, rm_gold, direct_at, direct_reach, rm_reach, bandit_success) -> list[Criterion]:
    """The five pre-registered criteria.

    ``rm_gold [seeds, kinds, budgets]`` and ``direct_at [seeds, judges, budgets]`` (gold returns, kinds in
    :data:`REWARD_MODELS`, judges in :data:`JUDGES` order); ``direct_reach [seeds, judges]`` and
    ``rm_reach [seeds, kinds]`` (labels to reach the gain fraction, ``inf`` = never);
    ``bandit_success [seeds, tables, policies]`` (:data:`BANDIT_POLICIES` order).
    """
    rm_gold, direct_at = np.asarray(rm_gold), np.asarray(direct_at)
    n_budgets = len(config.label_budgets)
    if rm_gold.ndim != 3 or rm_gold.shape[1:] != (len(REWARD_MODELS), n_budgets):
        raise ValueError(f"rm_gold must be [seeds, {len(REWARD_MODELS)}, {n_budgets}], got {rm_gold.shape}")
    if direct_at.shape != (rm_gold.shape[0], len(JUDGES), n_budgets):
        raise ValueError(f"direct_at must be [seeds, {len(JUDGES)}, {n_budgets}], got {direct_at.shape}")
    noisy = JUDGES.index("noisy judge")
    L = config.label_budgets[-1]
    pct = round(100 * config.gain_fraction)
    criteria = []
    for k, kind in enumerate(REWARD_MODELS):
        diff = rm_gold[:, k, -1] - direct_at[:, noisy, -1]
        est, lo, hi = bootstrap_interval(diff, np.mean)
        criteria.append(
            Criterion(
                f"at equal label budget L = {L}, the reward model ({kind}) route's gold return exceeds the "
                "direct route's (noisy judge): paired difference, bootstrap CI above 0",
                est,
                (lo, hi),
                bool(lo > 0),
                f"reward model {rm_gold[:, k, -1].mean():.4f} vs direct {direct_at[:, noisy, -1].mean():.4f} "
                f"(noise-free judge {direct_at[:, 0, -1].mean():.4f}); {diff.shape[0]} seeds",
            )
        )
    for k, kind in enumerate(REWARD_MODELS):
        est, lo, hi = median_ratio_interval(direct_reach[:, noisy], rm_reach[:, k])
        criteria.append(
            Criterion(
                f"labels to reach {pct}% of the SFT → oracle gain: median direct (noisy judge) / median reward "
                f"model ({kind}) > 1, bootstrap CI above 1",
                est,
                (lo, hi),
                bool(lo > 1),
                f"median labels: direct {np.median(direct_reach[:, noisy]):.0f}, reward model "
                f"{np.median(rm_reach[:, k]):.0f} (inf = never; budgets {config.label_budgets})",
            )
        )
    success = np.asarray(bandit_success)
    diff = success[:, -1, 0] - success[:, -1, 2]
    est, lo, hi = bootstrap_interval(diff, np.mean)
    small = success[:, 0, 0] - success[:, 0, 2]
    criteria.append(
        Criterion(
            f"with the largest offline table ({config.table_sizes[-1]} outcomes), per-query selection by the learned "
            "success model beats the best single prompt in hindsight: exact success difference, bootstrap CI above 0",
            est,
            (lo, hi),
            bool(lo > 0),
            f"per-query {success[:, -1, 0].mean():.4f}, best single {success[:, -1, 2].mean():.4f}, oracle "
            f"{success[:, -1, 3].mean():.4f}; smallest table ({config.table_sizes[0]}): difference {small.mean():+.4f}",
        )
    )
    return criteria


def resources(config: Config, out: dict, summary: dict) -> dict:
    """What each route consumed (DESIGN.md pitfall 6): labels, gold queries, env steps, per seed mean."""
    pc, rm_ppo = config.direct_ppo(), rvs.pipeline_config(config.token_config()).ppo
    rm_steps = rm_ppo.n_updates * rm_ppo.n_envs * rm_ppo.n_steps
    direct_steps = pc.n_updates * pc.n_envs * pc.n_steps
    demos = float(np.asarray(out["expert_labels"]).mean())
    total = summary["cum_labels"][..., -1]  # [seeds, judges]
    res = {
        f"direct ({judge})": {
            "expert_labels": demos,
            "human_judgements_total": float(total[:, j].mean()),
            "gold_queries_total": float(total[:, j].mean()),
            "preference_labels": 0,
            "env_steps": direct_steps,
            "note": "one human judgement (= one gold query) per finished response; curves index it exactly",
        }
        for j, judge in enumerate(JUDGES)
    }
    for kind in REWARD_MODELS:
        res[f"reward model ({kind})"] = {
            "expert_labels": demos,
            "preference_labels": [int(m) for m in np.asarray(out["rm_labels"])[0, 0]],
            "gold_queries": 0,
            "env_steps": rm_steps,
            "known_dynamics": True,
        }
    res["bandit"] = {
        "offline_table_rows": [int(n) for n in np.asarray(out["table_rows"])[0]],
        "extra_queries": 0,
        "note": "best single (hindsight) and per-query oracle read the hidden p: references, not methods",
    }
    return res


def run(quick: bool = True, seeds: int | None = None, progress: Progress | None = None) -> ExperimentResult:
    progress = progress or Progress(enabled=False)
    config = Config.quick() if quick else Config()
    if seeds is not None:
        config = dataclasses.replace(config, n_seeds=seeds)
    if config.n_seeds < 2:
        raise ValueError(f"seeds: need at least 2 for intervals, got {config.n_seeds}")
    task, tree, expert = rvs.build(config.token_config())
    keys = jax.random.split(jax.random.key(3), config.n_seeds)
    progress(
        f"{NAME}: compiling ({config.n_seeds} seeds; direct route x {len(JUDGES)} judges, reward model x "
        f"{len(REWARD_MODELS)} x {len(config.label_budgets)} budgets, bandit x {len(config.table_sizes)} tables)"
    )
    sweep = make_sweep(config, task, tree)
    compiled, compile_s = timed(lambda: sweep.lower(keys, expert).compile())
    out, run_s = timed(compiled, keys, expert)
    progress(f"{NAME}: compiled in {compile_s:.1f}s, ran in {run_s:.1f}s")
    out = jax.tree.map(np.asarray, out)
    pref.check_finite_losses(out["rm_loss"], "reward model")
    pref.check_finite_losses(out["bandit_loss"], "success model")
    raise_if_nonfinite(out["direct_nonfinite"], "PPO (direct route)")
    raise_if_nonfinite(out["rm_nonfinite"], "PPO (reward-model route)")

    s = summarise(config, out)
    spent = s["cum_labels"][..., -1]
    if spent.min() < max(config.label_budgets):
        raise ValueError(
            f"direct_updates = {config.direct_updates} spent only {int(spent.min())} labels in some run, fewer than "
            f"max(label_budgets) = {max(config.label_budgets)}: the equal-budget comparison would shortchange the "
            "direct route; raise direct_updates"
        )
    sft, gain = out["sft_gold"], out["oracle_gold"] - out["sft_gold"]
    criteria = criteria_from(
        config, out["rm_gold"], s["direct_at_budget"], s["direct_reach"], s["rm_reach"], out["bandit_success"]
    )
    measurements = {
        "sft_gold_mean": float(out["sft_gold"].mean()),
        "oracle_gold_mean": float(out["oracle_gold"].mean()),
        "gain_fraction_at_budget_mean": {
            **{
                f"direct ({j})": ((s["direct_at_budget"][:, i] - sft[:, None]) / gain[:, None]).mean(0).tolist()
                for i, j in enumerate(JUDGES)
            },
            **{f"reward model ({k})": s["rm_fraction"][:, i].mean(0).tolist() for i, k in enumerate(REWARD_MODELS)},
        },
        "labels_to_reach_median": {
            **{f"direct ({j})": float(np.median(s["direct_reach"][:, i])) for i, j in enumerate(JUDGES)},
            **{f"reward model ({k})": float(np.median(s["rm_reach"][:, i])) for i, k in enumerate(REWARD_MODELS)},
        },
        "reward_model_centred_correlation_mean": {
            k: out["rm_correlation"][:, i].mean(0).tolist() for i, k in enumerate(REWARD_MODELS)
        },
        "bandit_success_mean": {
            p: out["bandit_success"][:, :, i].mean(0).tolist() for i, p in enumerate(BANDIT_POLICIES)
        },
        "resources": resources(config, out, s),
    }
    arrays = {
        "label_budgets": np.asarray(config.label_budgets),
        "table_sizes": np.asarray(config.table_sizes),
        "sft_gold": out["sft_gold"],
        "oracle_gold": out["oracle_gold"],
        "direct_gold": out["direct_gold"],
        "direct_labels": out["direct_labels"],
        "direct_at_budget": s["direct_at_budget"],
        "direct_reach": s["direct_reach"],
        "rm_gold": out["rm_gold"],
        "rm_labels": out["rm_labels"],
        "rm_reach": s["rm_reach"],
        "rm_correlation": out["rm_correlation"],
        "bandit_success": out["bandit_success"],
        "table_rows": out["table_rows"],
        "expert_labels": out["expert_labels"],
    }
    figure = plot(config, out, s)
    return ExperimentResult(
        name=NAME,
        claim=CLAIM,
        config={
            **dataclasses.asdict(config),
            "quick": quick,
            "reward_models": list(REWARD_MODELS),
            "judges": list(JUDGES),
            "bandit_policies": list(BANDIT_POLICIES),
        },
        arrays=arrays,
        criteria=criteria,
        figure=figure,
        timings={"compile_s": compile_s, "run_s": run_s},
        measurements=measurements,
    )


def plot(config: Config, out: dict, summary: dict):
    """(a) gain against human labels, (b) reward model − direct at equal labels, (c) the prompt bandit."""
    import matplotlib.pyplot as plt

    from toyrlhf.plotting import PALETTE, apply_style, seed_band

    apply_style()
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
    budgets = np.asarray(config.label_budgets, dtype=np.float64)
    sft, oracle = out["sft_gold"], out["oracle_gold"]
    gain = oracle - sft
    cum = summary["cum_labels"]

    ax = axes[0]
    top = float(cum[..., -1].min())
    grid = np.unique(np.geomspace(min(10.0, budgets[0]), top, 80).round())
    for j, judge in enumerate(JUDGES):
        curves = np.stack([gold_at_budget(cum[:, j], out["direct_gold"][:, j], sft, L) for L in grid], -1)
        seed_band(
            ax,
            grid,
            (curves - sft[:, None]) / gain[:, None],
            label=f"direct, {judge}",
            color=PALETTE[3 + j],
            linestyle=":" if j == 0 else "-",
        )
    for k, kind in enumerate(REWARD_MODELS):
        frac = summary["rm_fraction"][:, k]
        mean = frac.mean(0)
        se = frac.std(0, ddof=1) / np.sqrt(frac.shape[0])
        ax.errorbar(budgets, mean, 1.96 * se, marker="o", color=PALETTE[k], label=f"reward model ({kind})", capsize=3)
    ax.axhline(
        config.gain_fraction, color="0.5", ls="--", lw=0.8, label=f"{round(100 * config.gain_fraction)}% of the gain"
    )
    ax.axhline(0.0, color="0.8", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("human labels spent\n(direct: scores of single responses; reward model: pairwise comparisons)")
    ax.set_ylabel("fraction of the SFT → oracle gold gain (exact)")
    ax.set_title("A. true return per human label\n(a judgement and a comparison are not equal effort)", fontsize=9)
    ax.legend(fontsize=7)

    ax = axes[1]
    noisy = JUDGES.index("noisy judge")
    for k, kind in enumerate(REWARD_MODELS):
        diff = out["rm_gold"][:, k] - summary["direct_at_budget"][:, noisy]
        seed_band(ax, budgets, diff, label=f"reward model ({kind}) − direct", color=PALETTE[k], marker="o")
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("label budget L = M")
    ax.set_ylabel("gold return difference at equal labels")
    ax.set_title("A. reward model route minus direct route (noisy judge)", fontsize=9)
    ax.legend(fontsize=7)

    ax = axes[2]
    sizes = np.asarray(config.table_sizes, dtype=np.float64)
    styles = ("-", "-", "--", ":")
    for i, policy in enumerate(BANDIT_POLICIES):
        seed_band(
            ax,
            sizes,
            out["bandit_success"][:, :, i],
            label=policy,
            color=PALETTE[[0, 1, 7, 2][i]],
            linestyle=styles[i],
            marker="o" if i < 2 else None,
        )
    ax.set_xscale("log")
    ax.set_xlabel("offline table size (logged outcomes; zero extra queries)")
    ax.set_ylabel("exact expected success on fresh queries")
    ax.set_title(
        f"B. prompt selection: {config.n_candidates} prompts, {config.n_test_queries} fresh queries", fontsize=9
    )
    ax.legend(fontsize=7)
    fig.suptitle(
        f"The reward model as a proxy for human feedback ({config.n_seeds} seeds; bands: mean ± 1.96 SE; "
        f"β = {config.beta}, human noise τ = {config.label_temperature})",
        fontsize=11,
    )
    fig.tight_layout()
    return fig
