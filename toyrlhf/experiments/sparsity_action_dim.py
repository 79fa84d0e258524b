"""Is policy learning harder with more actions and a single reward at the end? (claim T4)

The paper argues that RLHF's policy step is harder than textbook inverse RL because
the action space is a whole vocabulary and the feedback arrives once per sequence.
We measure how many episodes PPO and the vanilla policy gradient need on the token
MDP as the vocabulary ``V`` and the length ``T`` grow, with the reward delivered
per token, once at the end, or by a learned reward model.

Task. :class:`~toyrlhf.envs.token_mdp.TokenTask` with one prompt and no EOS (every
response has ``T`` tokens); the gold reward is
:class:`~toyrlhf.envs.token_mdp.TargetPattern`, the fraction of positions that match
a hidden target response ``y*`` (drawn uniformly at random, fixed per cell). Its
optimal gold return is exactly 1 for every ``V`` and ``T`` (answer ``y*``), so
"90% of optimal" needs no enumeration. The same reward, split over positions, is a
:class:`PositionReward` ``r(y) = Σ_t w[t, y_t]`` with ``w = one_hot(y*) / T``:

- **dense**: ``w[t, y_t]`` is paid on the step that writes token ``t``;
- **sparse**: ``Σ_t w[t, y_t]`` is paid on the last step (the token MDP's own reward);
- **learned**: a Bradley–Terry reward model, linear in (position, token) indicators
  (well specified for this gold reward), fitted once per cell from
  :data:`N_LABELS` labels on pairs of uniformly random responses (labeller
  temperature :data:`LABEL_TEMPERATURE`), paid on the last step like the sparse one.

Learners. PPO (clip 0.2, 4 epochs x 4 minibatches) and the vanilla policy gradient
(REINFORCE with a learned baseline: one full-batch step per batch, no clip,
GAE λ = 1), both from :mod:`toyrlhf.algorithms.ppo` (the ablation is config values).
The policy is a table of logits per position, ``π(y_t | t) = softmax(W[t])``: the
observation is the position index (:class:`PositionObserved`). That is a language
model with no context beyond the position; it can represent the optimum (answer
``y*``) and keeps the parameter count ``T·V`` small enough to sweep ``V`` to 1024,
but it is no transformer: what is measured is exploration over ``V`` tokens and
credit assignment over ``T`` positions, not generalisation across contexts.
No entropy bonus, no learning-rate annealing, γ = 1 (the return is undiscounted).
Each update rolls out :data:`N_ENVS` complete responses (``n_steps = T``), so
episodes = updates x :data:`N_ENVS` exactly.

Measurement. After every update the *exact* expected gold return of the policy,
``J(π) = (1/T) Σ_t π(y*_t | t)``, is computed from its logits (no sampling noise).
Steps-to-solve is the number of episodes consumed when ``J`` first reaches 90% of
the optimum; a run that never does is right-censored at the budget. All runs of a
cell share the budget (type I censoring), so the Kaplan–Meier median is the
smallest time by which half the runs have solved, and is "> budget" (reported as
∞) when fewer than half solve. For each (method, reward, V, T) the learning rate
of the grid :data:`LEARNING_RATES` with the smallest median is used (a tuned method,
ties to the smaller rate); intervals are percentile bootstraps over seeds.

Reference: a 4-action gridworld (``open-5x5``, 8 steps from corner to corner, horizon
16, reward 1 on reaching the goal and nothing else: sparse in time *and* binary, where the
token MDP's end reward is graded), the same learners with a tabular state policy, 16
rollouts of 16 steps per update (counted as 16 episodes, though an episode that reaches
the goal early is followed by another); its optimal
return (1) and the exact return of each policy come from :mod:`toyrlhf.tabular`.

Compilation. ``V`` and ``T`` set array shapes, so each (V, T) cell compiles one
program per method (PPO, vanilla PG); within it every reward kind, learning rate and
seed is one vmapped call. Compile and run times are reported separately.

Pre-registered criteria (the issue's, fixed before the first run):

1. under sparse reward, the median steps-to-solve is non-decreasing in ``V`` (each
   ``T``) and in ``T`` (each ``V``), for both methods: every adjacent pair of cells;
   two censored medians count as non-decreasing (and are reported as undetermined);
2. sparse >= dense in every (V, T) cell, paired by seed: for each cell and method the
   median over (learning rate, seed) pairs of ``steps(sparse) − steps(dense)`` (same
   key, same learning rate) is >= 0. Censored runs enter at the budget, which keeps
   the sign of every difference right (two censored runs tie).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from toyrlhf import tabular
from toyrlhf.algorithms import ppo
from toyrlhf.algorithms import preferences as prefs
from toyrlhf.diagnostics import raise_if_nonfinite
from toyrlhf.envs import token_mdp
from toyrlhf.envs.functional import Step, gridworld_env
from toyrlhf.envs.gridworld import make_gridworld
from toyrlhf.experiments.common import Criterion, ExperimentResult, Progress, timed
from toyrlhf.nets import Table

NAME = "sparsity-action-dim"
CLAIM = (
    "T4: policy learning gets harder with a larger action space (vocabulary V) and with one reward at the end "
    "of a sequence (sparse vs dense), on a token MDP, against a 4-action gridworld."
)

METHODS = ("PPO", "Vanilla PG")
REWARDS = ("dense", "sparse", "learned")
LEARNING_RATES = (0.03, 0.1, 0.3)
"""Adam step sizes every method and reward runs on, fixed before the first full run (a pilot at V = 8, T = 4
and V = 1024, T = 16 showed 0.01 too slow for the vanilla gradient within any affordable budget)."""
SOLVE_FRACTION = 0.9
"""A run solves when its exact expected gold return first reaches this fraction of the optimum."""
N_ENVS = 16
"""Complete responses (episodes) per update."""
N_LABELS = 1000
"""Preference labels for each cell's reward model."""
LABEL_TEMPERATURE = 0.1
GRIDWORLD_MAP, GRIDWORLD_HORIZON = "open-5x5", 16


@dataclasses.dataclass(frozen=True)
class Config:
    """Sizes of the sweep (methods, rewards, learning rates and definitions are module constants)."""

    vocab_sizes: tuple[int, ...] = (2, 4, 8, 16, 32, 64, 128, 256, 1024)
    """``V`` values (512 is left out: the cost of a cell grows as ``V T``, and 2 CPU cores bound the sweep)."""
    lengths: tuple[int, ...] = (4, 8, 16)
    """``T`` values."""
    seeds: int = 10
    """Seeds per (method, reward, learning rate, cell)."""
    n_updates: int = 200
    """Updates per run (x :data:`N_ENVS` episodes: the censoring budget)."""

    @classmethod
    def quick(cls) -> Config:
        return cls(vocab_sizes=(2, 8, 32, 128), lengths=(4, 8, 16), seeds=10, n_updates=60)


# ------------------------------------------------------------------------------------------
# The token MDP seen through positions, with the reward per token or at the end
# ------------------------------------------------------------------------------------------


class PositionReward(NamedTuple):
    """A sequence reward additive over positions: ``r(x, y) = Σ_t weights[x, t, y_t]``.

    A gold-reward family of :mod:`toyrlhf.envs.token_mdp` (called as ``gold(prompt, tokens, eos)``,
    for responses without EOS). ``weights = one_hot(targets) / T`` is exactly
    :class:`~toyrlhf.envs.token_mdp.TargetPattern`; a Bradley–Terry model linear in
    (position, token) indicators is another.
    """

    weights: jax.Array
    """``[P, T, V]`` float32."""

    def __call__(self, prompt, tokens, eos: bool = False):
        if eos:
            raise ValueError("PositionReward scores full-length responses: use a TokenTask with eos=False")
        return jnp.sum(self.weights[prompt, jnp.arange(tokens.shape[-1]), tokens])


class PositionParams(NamedTuple):
    """Traceable parameters of :class:`PositionObserved` (stack them to vmap reward kinds)."""

    reward: PositionReward
    """The reward the learner is paid (gold or learned)."""
    dense: jax.Array
    """``[]`` bool: pay ``weights[x, t, y_t]`` on each step (True) or the sum on the last step (False)."""


@dataclasses.dataclass(frozen=True)
class PositionObserved:
    """A :class:`~toyrlhf.envs.token_mdp.TokenEnv` whose observation is the index ``x (T+1) + t``.

    The dynamics are the token MDP's own (append the token, end after ``T``); only the
    observation (prompt and position, for a ``Table`` policy over positions) and the
    timing of the reward (dense or at the end, chosen by ``params.dense``) change.
    """

    token_env: token_mdp.TokenEnv

    def __post_init__(self):
        if self.token_env.task.eos:
            raise ValueError("PositionObserved needs a TokenTask with eos=False (every response has T tokens)")

    @property
    def n_actions(self) -> int:
        return self.token_env.task.vocab_size

    @property
    def n_states(self) -> int:
        return self.token_env.task.n_prompts * (self.token_env.task.length + 1)

    @property
    def observation_shape(self) -> tuple[int, ...]:
        return ()

    def index(self, state: token_mdp.TokenState) -> jax.Array:
        return (state.prompt * (self.token_env.task.length + 1) + state.t).astype(jnp.int32)

    def reset(self, key: jax.Array, params: PositionParams) -> tuple[jax.Array, token_mdp.TokenState]:
        _, state = self.token_env.reset(key, params.reward)
        return self.index(state), state

    def step(self, key: jax.Array, state: token_mdp.TokenState, action: jax.Array, params: PositionParams) -> Step:
        step = self.token_env.step(key, state, action, params.reward)  # pays the whole sum on the last step
        per_token = params.reward.weights[state.prompt, state.t, action]
        reward = jnp.where(params.dense, per_token, step.reward).astype(jnp.float32)
        return step._replace(obs=self.index(step.state), reward=reward)


def gold_return(actor: jax.Array, targets: jax.Array) -> jax.Array:
    """Exact ``J(π) = (1/T) Σ_t π(y*_t | t)`` of a position policy ``actor [T+1, V]`` (one prompt), targets ``[T]``.

    The expectation of :class:`~toyrlhf.envs.token_mdp.TargetPattern` under independent tokens per position.
    """
    T = targets.shape[-1]
    probs = jax.nn.softmax(actor[:T].astype(jnp.float64), axis=-1)
    return jnp.mean(probs[jnp.arange(T), targets])


# ------------------------------------------------------------------------------------------
# Steps to solve, with censoring
# ------------------------------------------------------------------------------------------


def steps_to_solve(curves, threshold: float, steps_per_update: int) -> tuple[np.ndarray, np.ndarray]:
    """``(steps [...], solved [...])`` from curves ``[..., U]`` of the value after each update.

    ``steps`` is ``u · steps_per_update`` for the first (1-based) update ``u`` with value >= ``threshold``;
    an unsolved run gets the budget ``U · steps_per_update`` (a lower bound: it is censored).
    """
    curves = np.asarray(curves, dtype=np.float64)
    if curves.ndim < 1 or curves.shape[-1] < 1:
        raise ValueError(f"curves must have shape [..., U] with U >= 1, got {curves.shape}")
    if steps_per_update < 1:
        raise ValueError(f"steps_per_update must be a positive int, got {steps_per_update}")
    hit = curves >= threshold
    solved = hit.any(-1)
    first = np.where(solved, np.argmax(hit, axis=-1) + 1, curves.shape[-1])
    return first * steps_per_update, solved


def km_median(steps, solved) -> float:
    """Kaplan–Meier median of times ``steps [n]`` with ``solved [n]`` flags (all censored at one budget).

    With a single censoring time the Kaplan–Meier curve is the empirical fraction unsolved, so the median
    is the smallest solved time by which at least half of the runs have solved; ``inf`` if fewer than half
    ever do (the median lies beyond the budget).
    """
    steps, solved = np.asarray(steps, dtype=np.float64).ravel(), np.asarray(solved, dtype=bool).ravel()
    if steps.shape != solved.shape or steps.size == 0:
        raise ValueError(f"steps and solved must be non-empty and of equal size, got {steps.shape}, {solved.shape}")
    times = np.sort(steps[solved])
    need = int(np.ceil(steps.size / 2))
    return float(times[need - 1]) if times.size >= need else float("inf")


def bootstrap_km_median(steps, solved, n_boot: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Percentile 95% bootstrap interval of :func:`km_median` over resampled runs."""
    steps, solved = np.asarray(steps).ravel(), np.asarray(solved).ravel()
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, steps.size, (n_boot, steps.size))
    medians = np.array([km_median(steps[d], solved[d]) for d in draws])
    lo, hi = np.quantile(medians, [0.025, 0.975], method="inverted_cdf")
    return float(lo), float(hi)


def paired_difference_median(steps_a, steps_b) -> float:
    """Median over pairs of ``steps_a − steps_b`` (censored runs at the budget: only signs are exact)."""
    return float(np.median(np.asarray(steps_a, np.float64).ravel() - np.asarray(steps_b, np.float64).ravel()))


# ------------------------------------------------------------------------------------------
# One (V, T) cell
# ------------------------------------------------------------------------------------------


def ppo_config(method: str, n_steps: int, n_updates: int) -> ppo.PPOConfig:
    """PPO or the vanilla policy gradient (one full-batch step per batch), tabular actor and critic."""
    base = ppo.PPOConfig(
        n_envs=N_ENVS, n_steps=n_steps, n_updates=n_updates, actor=Table(), critic=Table(), anneal_lr=False
    )
    if method == "Vanilla PG":
        return dataclasses.replace(base, n_epochs=1, n_minibatches=1)
    if method != "PPO":
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    return base


def method_hyper(method: str, learning_rates: jax.Array) -> ppo.PPOHyperparams:
    """Stacked hyperparameters ``[n]`` for ``learning_rates [n]``."""
    n = learning_rates.shape[0]
    full = lambda v: jnp.full((n,), v, jnp.float32)  # noqa: E731
    vanilla = method == "Vanilla PG"
    return ppo.PPOHyperparams(
        learning_rate=jnp.asarray(learning_rates, jnp.float32),
        gamma=full(1.0),
        gae_lambda=full(1.0 if vanilla else 0.95),
        clip_eps=full(jnp.inf if vanilla else 0.2),
        vf_coef=full(0.5),
        ent_coef=full(0.0),
        max_grad_norm=full(0.5),
        kl_coef=full(0.0),
    )


def make_tracked_train(config: ppo.PPOConfig, env, env_params, evaluate):
    """``train(key, hyper, env_params) -> (value after each update [U], nonfinite [U])``.

    PPO's own ``init`` and ``update`` (:func:`toyrlhf.algorithms.ppo.make_ppo`), scanned here so that
    ``evaluate(actor_params)``, an exact return, is recorded after every update.
    """
    learner = ppo.make_ppo(config, env, env_params)

    def train(key, hyper, env_params):
        state = learner.init(key, hyper, env_params=env_params)

        def body(state, _):
            state, metrics = learner.update(state)
            return state, (evaluate(state.params.actor), metrics.nonfinite)

        _, (values, nonfinite) = jax.lax.scan(body, state, None, length=config.n_updates)
        return values, nonfinite

    return train


def fit_learned_reward(key, task: token_mdp.TokenTask, gold: PositionReward) -> tuple[PositionReward, float]:
    """Bradley–Terry on (position, token) indicators from :data:`N_LABELS` uniformly random pairs.

    Returns the learned :class:`PositionReward` and the exact gold return of its optimum (the response
    that maximises it, ``argmax_v w[t, v]`` per position).
    """
    T, V = task.length, task.vocab_size
    key_1, key_2, key_label, key_fit = jax.random.split(key, 4)
    first = jax.random.randint(key_1, (N_LABELS, T), 0, V, dtype=jnp.int32)
    second = jax.random.randint(key_2, (N_LABELS, T), 0, V, dtype=jnp.int32)
    score = jax.vmap(lambda y: gold(0, y))
    labeller = prefs.Labeller(temperature=LABEL_TEMPERATURE)
    prefer_first, _ = prefs.label(key_label, labeller, score(first), score(second), 0)
    features = lambda y: jax.nn.one_hot(y, V, dtype=jnp.float32).reshape(y.shape[0], T * V)  # noqa: E731
    rm = prefs.RewardModelConfig(kind="linear", n_steps=300, learning_rate=0.05, l2=1e-3)
    params, losses = prefs.fit_reward_model(key_fit, rm, features(first), features(second), prefer_first)
    prefs.check_finite_losses(losses, f"reward model (V={V}, T={T})")
    weights = params[0, :, 0].reshape(1, T, V)
    best = jnp.argmax(weights[0], axis=-1)
    return PositionReward(weights), float(gold(0, best))


class CellResult(NamedTuple):
    curves: np.ndarray
    """``[methods, rewards, L, seeds, U]``: exact gold return after each update."""
    learned_optimum_gold: float
    compile_s: float
    run_s: float
    reward_model_s: float
    """Fitting the reward model (its compile included)."""


def run_cell(V: int, T: int, config: Config, progress: Progress) -> CellResult:
    """Both methods on one (V, T) cell; per method one compiled vmapped call over rewards x rates x seeds."""
    task = token_mdp.TokenTask(vocab_size=V, length=T, n_prompts=1, eos=False)
    env = PositionObserved(token_mdp.TokenEnv(task))
    key = jax.random.key(1000 * V + T)
    key_target, key_rm, key_runs = jax.random.split(key, 3)
    targets = jax.random.randint(key_target, (T,), 0, V, dtype=jnp.int32)
    gold = PositionReward(jax.nn.one_hot(targets, V, dtype=jnp.float32)[None] / T)
    (learned, learned_optimum), reward_model_s = timed(fit_learned_reward, key_rm, task, gold)
    # rewards x learning rates x seeds, reward major; the same keys for every reward (paired by seed).
    R, L, S = len(REWARDS), len(LEARNING_RATES), config.seeds
    n = R * L * S
    weights = jnp.stack([gold.weights, gold.weights, learned.weights])  # dense, sparse, learned
    env_params = PositionParams(
        PositionReward(jnp.repeat(weights, L * S, axis=0)),
        jnp.repeat(jnp.array([True, False, False]), L * S),
    )
    lrs = jnp.tile(jnp.repeat(jnp.asarray(LEARNING_RATES, jnp.float32), S), R)
    keys = jnp.tile(jax.random.split(key_runs, L * S), (R,))
    evaluate = lambda actor: gold_return(actor, targets)  # noqa: E731
    curves, compile_s, run_s = [], 0.0, 0.0
    for method in METHODS:
        cfg = ppo_config(method, T, config.n_updates)
        example = jax.tree.map(lambda x: x[0], env_params)
        train = jax.vmap(make_tracked_train(cfg, env, example, evaluate))
        hyper = method_hyper(method, lrs)
        compiled, c = timed(lambda train=train, hyper=hyper: jax.jit(train).lower(keys, hyper, env_params).compile())
        (values, nonfinite), r = timed(compiled, keys, hyper, env_params)
        raise_if_nonfinite(nonfinite, f"{method} V={V} T={T}")
        curves.append(np.asarray(values).reshape(R, L, S, config.n_updates))
        compile_s, run_s = compile_s + c, run_s + r
    progress(f"{NAME}: V={V} T={T}: compile {compile_s:.1f}s, run {run_s:.1f}s ({2 * n} runs)")
    return CellResult(np.stack(curves), learned_optimum, compile_s, run_s, reward_model_s)


def run_gridworld(config: Config) -> tuple[np.ndarray, float, float]:
    """Both methods on the 4-action gridworld: ``(curves [methods, L, seeds, U], compile_s, run_s)``."""
    grid = make_gridworld(GRIDWORLD_MAP, horizon=GRIDWORLD_HORIZON)
    env, env_params = gridworld_env(grid, "index")
    mdp = grid.mdp
    optimum = float(mdp.init @ tabular.solve(mdp).V[0])
    evaluate = lambda actor: tabular.evaluate(mdp, jax.nn.softmax(actor.astype(jnp.float64), axis=-1)) / optimum  # noqa: E731
    L, S = len(LEARNING_RATES), config.seeds
    lrs = jnp.repeat(jnp.asarray(LEARNING_RATES, jnp.float32), S)
    keys = jax.random.split(jax.random.key(5), L * S)
    curves, compile_s, run_s = [], 0.0, 0.0
    for method in METHODS:
        cfg = ppo_config(method, GRIDWORLD_HORIZON, config.n_updates)
        train = jax.vmap(make_tracked_train(cfg, env, env_params, evaluate), in_axes=(0, 0, None))
        hyper = method_hyper(method, lrs)
        compiled, c = timed(lambda train=train, hyper=hyper: jax.jit(train).lower(keys, hyper, env_params).compile())
        (values, nonfinite), r = timed(compiled, keys, hyper, env_params)
        raise_if_nonfinite(nonfinite, f"{method} gridworld")
        curves.append(np.asarray(values).reshape(L, S, config.n_updates))
        compile_s, run_s = compile_s + c, run_s + r
    return np.stack(curves), compile_s, run_s


# ------------------------------------------------------------------------------------------
# Summaries and criteria
# ------------------------------------------------------------------------------------------


def best_rate_medians(steps: np.ndarray, solved: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(median [...], best rate index [...])`` over the learning-rate axis of ``steps [..., L, S]``."""
    lead = steps.shape[:-2]
    medians = np.array([km_median(s, v) for s, v in zip(steps.reshape(-1, *steps.shape[-1:]),
                                                           solved.reshape(-1, *solved.shape[-1:]), strict=True)])
    medians = medians.reshape(*lead, steps.shape[-2])
    best = np.argmin(medians, axis=-1)  # first minimum: ties go to the smaller rate
    return np.take_along_axis(medians, best[..., None], -1)[..., 0], best


def monotone_criterion(steps, solved, vocab_sizes, lengths, episodes_budget) -> tuple[Criterion, dict]:
    """Criterion 1 on sparse reward: ``steps [methods, V, T, L, S]``."""
    medians, best = best_rate_medians(steps, solved)  # [M, V, T]
    pairs = []  # (method, smaller cell, larger cell)
    for m in range(len(METHODS)):
        for j in range(len(lengths)):
            pairs += [(m, (i, j), (i + 1, j)) for i in range(len(vocab_sizes) - 1)]
        for i in range(len(vocab_sizes)):
            pairs += [(m, (i, j), (i, j + 1)) for j in range(len(lengths) - 1)]
    ratios, undetermined, violations = [], 0, []
    for m, a, b in pairs:
        lo, hi = medians[(m, *a)], medians[(m, *b)]
        if np.isinf(lo) and np.isinf(hi):
            undetermined += 1
            ratios.append(np.nan)  # both beyond the budget: no ratio, left out of the minimum
            continue
        ratios.append(hi / lo)
        if hi < lo:
            violations.append(
                f"{METHODS[m]}: V={vocab_sizes[b[0]]},T={lengths[b[1]]} median {hi:g} < "
                f"V={vocab_sizes[a[0]]},T={lengths[a[1]]} median {lo:g}"
            )
    determined = [k for k, r in enumerate(ratios) if not np.isnan(r)]
    worst = min(determined, key=lambda k: ratios[k]) if determined else 0
    m, a, b = pairs[worst]
    interval = None
    if determined and np.isfinite(ratios[worst]):
        rng = np.random.default_rng(0)
        la, lb = best[(m, *a)], best[(m, *b)]
        sa, va = steps[(m, *a, la)], solved[(m, *a, la)]
        sb, vb = steps[(m, *b, lb)], solved[(m, *b, lb)]
        boot = []
        for _ in range(1000):
            da, db = rng.integers(0, sa.size, sa.size), rng.integers(0, sb.size, sb.size)
            x, y = km_median(sa[da], va[da]), km_median(sb[db], vb[db])
            boot.append(1.0 if np.isinf(x) and np.isinf(y) else y / x)
        interval = tuple(float(q) for q in np.quantile(boot, [0.025, 0.975], method="inverted_cdf"))
    criterion = Criterion(
        "sparse reward: median episodes-to-solve non-decreasing in V (each T) and in T (each V), both methods",
        float(ratios[worst]),
        interval,
        not violations,
        f"measured: the smallest ratio median(larger cell) / median(smaller cell) over {len(pairs)} adjacent pairs "
        f"(at {METHODS[m]} V={vocab_sizes[a[0]]},T={lengths[a[1]]} -> V={vocab_sizes[b[0]]},T={lengths[b[1]]}); "
        f"{len(violations)} decreases; {undetermined} pairs with both medians beyond the budget of "
        f"{episodes_budget} episodes (undetermined, counted as non-decreasing); each median at its best learning rate",
    )
    return criterion, {"violations": violations, "undetermined_pairs": undetermined, "n_pairs": len(pairs)}


def sparse_vs_dense_criterion(steps, vocab_sizes, lengths) -> tuple[Criterion, dict]:
    """Criterion 2: ``steps [methods, rewards, V, T, L, S]``, paired over (rate, seed)."""
    d, s = REWARDS.index("dense"), REWARDS.index("sparse")
    diffs = steps[:, s] - steps[:, d]  # [M, V, T, L, S]
    medians = np.median(diffs.reshape(*diffs.shape[:3], -1), axis=-1)  # [M, V, T]
    failing = [
        f"{METHODS[m]} V={vocab_sizes[i]} T={lengths[j]}: median {medians[m, i, j]:g}"
        for m, i, j in zip(*np.nonzero(medians < 0), strict=True)
    ]
    worst = np.unravel_index(np.argmin(medians), medians.shape)
    pairs = diffs[worst].ravel()
    rng = np.random.default_rng(1)
    boot = np.median(pairs[rng.integers(0, pairs.size, (2000, pairs.size))], axis=-1)
    lo, hi = np.quantile(boot, [0.025, 0.975])
    m, i, j = worst
    criterion = Criterion(
        "sparse >= dense in every (V, T) cell and method: median paired (rate, seed) difference "
        "steps(sparse) - steps(dense) >= 0",
        float(medians[worst]),
        (float(lo), float(hi)),
        not failing,
        f"measured: the smallest cell median difference in episodes ({METHODS[m]} V={vocab_sizes[i]} T={lengths[j]}); "
        f"{len(failing)} of {medians.size} (method, cell) medians below 0; censored runs at the budget",
    )
    share = (diffs >= 0).mean(axis=(-1, -2))  # [M, V, T]
    return criterion, {"failing": failing, "fraction_pairs_sparse_ge_dense": share}


def run(quick: bool = True, seeds: int | None = None, progress: Progress | None = None) -> ExperimentResult:
    progress = progress or Progress(enabled=False)
    config = Config.quick() if quick else Config()
    if seeds is not None:
        config = dataclasses.replace(config, seeds=seeds)
    Vs, Ts = config.vocab_sizes, config.lengths
    curves = np.zeros((len(METHODS), len(REWARDS), len(Vs), len(Ts), len(LEARNING_RATES), config.seeds,
                       config.n_updates))
    learned_optimum = np.zeros((len(Vs), len(Ts)))
    compile_s = run_s = reward_model_s = 0.0
    for i, V in enumerate(Vs):
        for j, T in enumerate(Ts):
            cell = run_cell(V, T, config, progress)
            curves[:, :, i, j] = cell.curves
            learned_optimum[i, j] = cell.learned_optimum_gold
            compile_s, run_s = compile_s + cell.compile_s, run_s + cell.run_s
            reward_model_s += cell.reward_model_s
    grid_curves, grid_compile, grid_run = run_gridworld(config)
    progress(f"{NAME}: gridworld: compile {grid_compile:.1f}s, run {grid_run:.1f}s")

    steps, solved = steps_to_solve(curves, SOLVE_FRACTION, N_ENVS)  # optimum is 1: threshold 0.9
    budget = config.n_updates * N_ENVS
    medians, best = best_rate_medians(steps, solved)  # [M, R, V, T]
    sp = REWARDS.index("sparse")
    c1, mono = monotone_criterion(steps[:, sp], solved[:, sp], Vs, Ts, budget)
    c2, paired = sparse_vs_dense_criterion(steps, Vs, Ts)
    grid_steps, grid_solved = steps_to_solve(grid_curves, SOLVE_FRACTION, N_ENVS)
    grid_medians, grid_best = best_rate_medians(grid_steps, grid_solved)  # [M]

    intervals = np.zeros((*medians.shape, 2))
    for idx in np.ndindex(medians.shape):
        lr = best[idx]
        intervals[idx] = bootstrap_km_median(steps[(*idx, lr)], solved[(*idx, lr)])
    measurements = {
        "median_episodes_to_solve": {
            f"{m}/{r}": {
                f"T={T}": {
                    f"V={V}": {
                        "median": medians[a, b, i, j],
                        "ci95": intervals[a, b, i, j].tolist(),
                        "best_learning_rate": LEARNING_RATES[best[a, b, i, j]],
                        "solved_fraction_at_best_rate": float(solved[a, b, i, j, best[a, b, i, j]].mean()),
                    }
                    for i, V in enumerate(Vs)
                }
                for j, T in enumerate(Ts)
            }
            for a, m in enumerate(METHODS)
            for b, r in enumerate(REWARDS)
        },
        "final_gold_return_mean_best_rate": {  # the rate with the highest seed-mean final return (uncensored)
            f"{m}/{r}": {
                f"T={T}": {
                    f"V={V}": float(curves[a, b, i, j, :, :, -1].mean(-1).max()) for i, V in enumerate(Vs)
                }
                for j, T in enumerate(Ts)
            }
            for a, m in enumerate(METHODS)
            for b, r in enumerate(REWARDS)
        },
        "censored_runs": {
            f"{m}/{r}": int((~solved[a, b]).sum()) for a, m in enumerate(METHODS) for b, r in enumerate(REWARDS)
        },
        "runs_per_method_reward": int(solved[0, 0].size),
        "episode_budget": budget,
        "monotone_in_V_and_T": mono,
        "sparse_vs_dense": {
            "failing_cells": paired["failing"],
            "fraction_pairs_sparse_ge_dense": {
                f"{m}": {f"T={T}": {f"V={V}": paired["fraction_pairs_sparse_ge_dense"][a, i, j] for i, V in
                                    enumerate(Vs)} for j, T in enumerate(Ts)}
                for a, m in enumerate(METHODS)
            },
        },
        "learned_reward_optimum_gold": {f"T={T}": {f"V={V}": learned_optimum[i, j] for i, V in enumerate(Vs)}
                                        for j, T in enumerate(Ts)},
        "gridworld": {
            m: {
                "median_episodes_to_solve": grid_medians[a],
                "ci95": list(bootstrap_km_median(grid_steps[a, grid_best[a]], grid_solved[a, grid_best[a]])),
                "best_learning_rate": LEARNING_RATES[grid_best[a]],
            }
            for a, m in enumerate(METHODS)
        },
        "compile_note": "one compile per (V, T) shape and method; rewards x learning rates x seeds vmapped",
    }
    arrays = {
        "vocab_sizes": np.asarray(Vs),
        "lengths": np.asarray(Ts),
        "learning_rates": np.asarray(LEARNING_RATES),
        "gold_curves": curves.astype(np.float32),
        "episodes_to_solve": steps,
        "solved": solved,
        "median_episodes_to_solve": medians,
        "median_ci95": intervals,
        "best_rate_index": best,
        "learned_optimum_gold": learned_optimum,
        "gridworld_curves": grid_curves.astype(np.float32),
        "gridworld_median_episodes_to_solve": grid_medians,
    }
    figure = plot(config, medians, intervals, solved, best, grid_medians, budget)
    return ExperimentResult(
        name=NAME,
        claim=CLAIM,
        config={
            **dataclasses.asdict(config),
            "quick": quick,
            "methods": list(METHODS),
            "rewards": list(REWARDS),
            "learning_rates": list(LEARNING_RATES),
            "episodes_per_update": N_ENVS,
            "solve_fraction": SOLVE_FRACTION,
            "n_labels": N_LABELS,
            "label_temperature": LABEL_TEMPERATURE,
            "gridworld": {"map": GRIDWORLD_MAP, "horizon": GRIDWORLD_HORIZON},
        },
        arrays=arrays,
        criteria=[c1, c2],
        figure=figure,
        timings={
            "compile_s": compile_s + grid_compile,
            "run_s": run_s + grid_run,
            "reward_model_fit_s": reward_model_s,
            "n_compiles": 2 * len(Vs) * len(Ts) + 2,
        },
        measurements=measurements,
    )


def plot(config: Config, medians, intervals, solved, best, grid_medians, budget: int):
    """Median episodes-to-solve against V, one panel per (method, T); the gridworld as a reference line."""
    import matplotlib.pyplot as plt

    from toyrlhf.plotting import apply_style

    apply_style()
    Vs, Ts = np.asarray(config.vocab_sizes), config.lengths
    fig, axes = plt.subplots(len(METHODS), len(Ts), figsize=(4.6 * len(Ts), 3.8 * len(METHODS)), squeeze=False)
    colors = dict(zip(REWARDS, plt.cm.tab10(np.arange(len(REWARDS))), strict=True))
    ceiling = budget * 1.5  # where a median beyond the budget is drawn
    for a, m in enumerate(METHODS):
        for j, T in enumerate(Ts):
            ax = axes[a, j]
            for b, r in enumerate(REWARDS):
                y = np.where(np.isfinite(medians[a, b, :, j]), medians[a, b, :, j], ceiling)
                lo = np.minimum(intervals[a, b, :, j, 0], ceiling)
                hi = np.minimum(intervals[a, b, :, j, 1], ceiling)
                ax.fill_between(Vs, lo, hi, color=colors[r], alpha=0.15, linewidth=0)
                ax.plot(Vs, y, "o-", color=colors[r], label=r, ms=4)
                censored = ~np.isfinite(medians[a, b, :, j])
                ax.plot(Vs[censored], y[censored], "x", color=colors[r], ms=8)
            ax.axhline(budget, color="0.5", ls=":", lw=1)
            if np.isfinite(grid_medians[a]):
                ax.axhline(grid_medians[a], color="k", ls="--", lw=1, label="gridworld (4 actions)")
            else:
                ax.text(0.02, 0.97, "gridworld (4 actions): median beyond the budget", transform=ax.transAxes,
                        fontsize=8, va="top")
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_title(f"{m}, T = {T}", fontsize=10)
            ax.set_xlabel("vocabulary V (actions)")
            ax.set_ylabel("median episodes to 90% of optimum")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(
        f"Token MDP: episodes to reach 90% of the optimal gold return ({config.seeds} seeds, best of "
        f"{len(LEARNING_RATES)} rates, 95% bootstrap band; x: median beyond the budget of {budget})",
        fontsize=11,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig
