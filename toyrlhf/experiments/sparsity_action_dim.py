"""Is policy learning harder with more actions and a single reward at the end? (claim T4)

The paper argues that RLHF's policy step is harder than textbook inverse RL because
the action space is a whole vocabulary and the feedback arrives once per sequence.
We measure how many episodes PPO and the vanilla policy gradient need on the token
MDP as the vocabulary ``V`` and the length ``T`` grow, with the reward delivered
per token, once at the end, or by a learned reward model.

Task. The token MDP of :mod:`toyrlhf.envs.token_mdp` with one prompt and no EOS:
a response is ``T`` tokens, appending a token is the known transition. A hidden
target ``y*`` (uniformly random, fixed per cell) defines two gold rewards, both
with optimum exactly 1 (answer ``y*``) for every ``V`` and ``T``:

- **additive** (:class:`~toyrlhf.envs.token_mdp.TargetPattern`): the fraction of
  positions that match, ``(1/T) Σ_t 1[y_t = y*_t]``, a sum over positions;
- **prefix** (:class:`CorrectPrefix`): the length of the correct prefix up to the
  first error, ``(1/T) Σ_k Π_{t ≤ k} 1[y_t = y*_t]``, *not* a sum over positions: a
  token earns something only after every earlier token was right.

Each is paid in three ways (:data:`DELIVERIES`):

- **dense**: the term of step ``t`` on that step (additive: ``1[y_t = y*_t]/T``;
  prefix: ``1[y_1..y_t all right]/T``);
- **sparse**: the gold reward once, on the last step;
- **learned**: a Bradley–Terry reward model linear in (position, token) indicators,
  fitted per cell from ``n_labels`` labels on pairs of uniformly random responses
  (well specified for the additive gold, misspecified for the prefix one), paid on
  the last step like the sparse one.

``shaping = β > 0`` adds ``β ×`` the dense term on every step to the sparse and
learned rewards (an exercise; 0 in the registered runs).

Policy: it sees the tokens so far. The observation is the pair (position ``t``,
previous token ``y_{t-1}``) (:class:`ContextObserved`), and the policy a table of
logits per pair, ``π(y_t | t, y_{t-1}) = softmax(W[t, y_{t-1}])``: a bigram language
model with position-specific tables (``(T+1)(V+1)V`` logits). It represents the
optimum, and under the prefix reward what it writes after a wrong token does not
matter while what it writes after the right one does: under the sparse reward the
learner must find out from one number per response which context earned it, which
is credit assignment through context. Under the additive reward every context
row has to learn the same target token. No transformer: what is measured is
exploration over ``V`` tokens and credit assignment over ``T`` positions, not
generalisation across contexts.

Learners. PPO (clip ``clip_eps``, ``n_epochs`` x ``n_minibatches``, GAE λ =
``gae_lambda``) and the vanilla policy gradient (REINFORCE with a learned baseline:
one full-batch step per batch, no clip, GAE λ = 1), both from
:mod:`toyrlhf.algorithms.ppo` (the ablation is config values). γ = 1, entropy bonus
``ent_coef`` (0), no learning-rate annealing. One learning rate per method, fixed
before any run of this version (``ppo_learning_rate``, ``pg_learning_rate``; see
:data:`LEARNING_RATE_DISCLOSURE`): nothing is tuned on the evaluation seeds.

Measurement. After every update the *exact* expected return of the policy is
computed from its logits (the bigram chain's marginals; no sampling): its gold
return, and the expected value of the reward it is paid. A run's **progress** is
``(J(π) − J(π_0)) / (J* − J(π_0))`` for the reward it is paid (``π_0`` the uniform
start, ``J*`` that reward's optimum: 1 for the gold rewards, the reward model's own
optimum for the learned one, so learned-reward runs are judged on how fast RL
optimises the reward it was given; the gold return of the reward model's optimum
is reported beside). Episodes-to-solve is the number of episodes consumed when
progress first reaches ``solve_fraction``; a run that never does is right-censored
at its cell's budget. Medians are Kaplan–Meier medians (all runs of a cell share
one budget, so it is the smallest time by which half the runs have solved, ∞ when
fewer than half do), with the distribution-free order-statistic interval
(:func:`toyrlhf.stats.median_interval`).

Compilation: one program per method for every cell, reward and seed. Every cell is
padded to the largest vocabulary ``V_max`` and the largest length ``T_max``:

- padded tokens start at :data:`MASKED_LOGIT` (the uniform start over the cell's own
  ``V`` tokens is PPO's reference policy, with no KL penalty), their probability is
  exactly 0, so their gradient is exactly 0 and Adam never moves them; the reward
  model's padded features are 0 and its padded weights stay 0;
- the length is a traced parameter of the environment: every update rolls out
  ``n_envs`` environments for ``T_max`` steps, and a response of length ``T < T_max``
  is followed by ``T_max − T`` padding steps that pay nothing, whose states' values
  stay exactly 0 (zero targets from a zero start), so each update completes exactly
  ``n_envs`` responses in every cell (checked against PPO's own count). Advantages
  are not normalised (``normalize_advantages=False``): a padded step's advantage is
  then exactly 0 and moves nothing, and the real steps' advantages are those of the
  unpadded episode. What padding still changes: PPO's loss averages over the padded
  steps too, which scales the real gradient by about ``T / T_max`` (Adam is
  invariant to a constant scale; the gradient-norm clip is not, and it binds less
  for short responses), and PPO's minibatches hold fewer real steps.

Criteria (findings), fixed before the run that judges them:

1. prefix reward, sparse slower than dense: over every (cell, seed) pair (same key),
   the fraction of untied pairs in which the sparse run takes more episodes (a
   censored run is slower than a solved one; two censored runs and equal times are
   ties, excluded as in the sign test) is > 1/2, for each method: the smaller of
   the two fractions, with Clopper–Pearson intervals at the Bonferroni level;
2. the same for the additive reward (the contrast: no credit assignment through
   context is needed);
3. prefix reward, sparse: the exponent ``b_V`` of the regression
   ``log median(V, T) = a + b_V log V + b_T log T`` over cells is > 0, both methods;
4. prefix reward, sparse: ``b_T`` > 0, both methods;
5. additive reward, sparse: ``b_V`` > 0, both methods;
6. additive reward, sparse: ``b_T`` > 0, both methods;
7. prefix reward: ``b_T(sparse) − b_T(dense)`` > 0, both methods (the cost of the
   end-of-sequence reward grows with the length when credit must be assigned
   through context).

Regressions: each cell's Kaplan–Meier median enters in logs; a cell whose median
lies beyond its budget (more than half its runs censored) is left out of the fit
rather than entered at the budget (which would bend the fit by construction), and
the detail reports how many cells were left out; a fit needs at least 4 cells with
2 distinct ``V`` and 2 distinct ``T``, else it is NaN. Intervals: BCa bootstrap over
seeds (seed indices resampled jointly over cells, and over the two deliveries of
criterion 7, which share keys), Bonferroni over the two methods; a statistic that is
NaN on more than 5% of the resamples has interval ``(−∞, ∞)`` (UNDETERMINED), as has
any bootstrap over fewer than 8 seeds.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from toyrlhf import stats
from toyrlhf.algorithms import ppo
from toyrlhf.algorithms import preferences as prefs
from toyrlhf.diagnostics import raise_if_nonfinite
from toyrlhf.envs.functional import Step
from toyrlhf.experiments.common import Clock, Criterion
from toyrlhf.nets import Table

NAME = "sparsity-action-dim"
CLAIM = (
    "T4: policy learning gets harder with a larger action space (vocabulary V) and with one reward at the end "
    "of a sequence (sparse vs dense), on a token MDP whose policy sees the previous token, for a gold reward "
    "additive over positions and one that pays only the correct prefix."
)

METHODS = ("PPO", "Vanilla PG")
"""Display names, in the order of :class:`MethodCurves`' fields."""
GOLDS = ("additive", "prefix")
"""Gold rewards, in the order of :class:`GoldCurves`' fields."""
DELIVERIES = ("dense", "sparse", "learned")
"""How the reward is paid, in the order of :class:`DeliveryCurves`' fields."""
MASKED_LOGIT = -1e9
"""Logit of a padded token: ``exp`` of it underflows to exactly 0 in float32."""
ALPHA = 0.05
"""1 − the coverage of every (simultaneous) interval."""
LEARNING_RATE_DISCLOSURE = (
    "Learning rates fixed a priori, one per method, before any run of this version (PPO 0.1, vanilla PG 0.3): "
    "the modal best rates of the previous version's full run (a position-only policy on the additive reward, "
    "chosen there on its evaluation seeds: vanilla PG 0.3 in 24 of 27 sparse cells, PPO split between 0.03, 0.1 "
    "and 0.3). This version draws other seeds and tunes nothing on them."
)

QUICK_DISCLOSURE = (
    "The quick setting's vocabularies were cut from (2, 4, 8, 16) to (2, 4, 8) after its first run, for run time "
    "alone (that run: criteria 1-6 SUPPORTED, criterion 7 UNDETERMINED at 0.196 [-0.131, 0.594]); the full "
    "setting was fixed before any run."
)


def _positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


@dataclasses.dataclass(frozen=True)
class Config:
    """Settings of the sweep, fixed before the runs that judge the criteria. The two learning rates were
    fixed a priori from the previous version's results (:data:`LEARNING_RATE_DISCLOSURE`)."""

    vocab_sizes: tuple[int, ...] = (2, 4, 8, 16, 32)
    """``V`` values, increasing; every cell is padded to the largest (its cost sets every cell's cost)."""
    lengths: tuple[int, ...] = (2, 4, 8)
    """``T`` values, increasing; every cell is padded to the largest (see the module docstring)."""
    n_seeds: int = 10
    """Seeds per (method, gold, delivery, cell); the regressions bootstrap over them (8 or more needed)."""
    n_updates: int = 200
    """Updates per run; the censoring budget is ``n_updates · n_envs`` episodes."""
    ppo_learning_rate: float = 0.1
    """PPO's Adam step size (fixed a priori, see :data:`LEARNING_RATE_DISCLOSURE`)."""
    pg_learning_rate: float = 0.3
    """The vanilla policy gradient's Adam step size (fixed a priori, see :data:`LEARNING_RATE_DISCLOSURE`)."""
    n_envs: int = 16
    """Environments rolled out per update, each for ``T_max`` steps: one response each."""
    solve_fraction: float = 0.9
    """A run solves when its progress (fraction of the way from the start to the optimum) first reaches this."""
    n_labels: int = 1000
    """Preference labels for each cell's reward model."""
    label_temperature: float = 0.1
    """Temperature of the Boltzmann-rational labeller."""
    rm_steps: int = 300
    """Full-batch Adam steps of each reward-model fit."""
    rm_learning_rate: float = 0.05
    """Their step size."""
    shaping: float = 0.0
    """``β``: the sparse and learned rewards also pay ``β ×`` the dense term on every step (0: no shaping)."""
    clip_eps: float = 0.2
    """PPO's clip range (the vanilla gradient has none)."""
    gae_lambda: float = 0.95
    """PPO's GAE λ (the vanilla gradient uses 1: Monte Carlo returns)."""
    n_epochs: int = 4
    """PPO's passes over each batch (the vanilla gradient: 1)."""
    n_minibatches: int = 4
    """PPO's minibatches per pass (the vanilla gradient: 1); must divide ``n_envs · T_max``."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clip of both methods."""
    ent_coef: float = 0.0
    """Entropy bonus of both methods."""
    n_boot: int = 2000
    """Bootstrap resamples of every regression interval."""
    seed: int = 0
    """Base seed: each cell's target, reward models and runs derive from it."""

    def __post_init__(self):
        for name in ("n_seeds", "n_updates", "n_envs", "n_labels", "rm_steps", "n_epochs", "n_minibatches",
                     "n_boot"):
            _positive_int(name, getattr(self, name))
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {self.seed!r}")
        for name, values, least in (("vocab_sizes", self.vocab_sizes, 2), ("lengths", self.lengths, 1)):
            if not values or any(isinstance(v, bool) or not isinstance(v, int) or v < least for v in values):
                raise ValueError(f"{name} must be non-empty ints >= {least}, got {values!r}")
            if list(values) != sorted(set(values)):
                raise ValueError(f"{name} must be strictly increasing, got {values!r}")
        for name in ("ppo_learning_rate", "pg_learning_rate", "label_temperature", "clip_eps", "max_grad_norm",
                     "rm_learning_rate"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be positive and finite, got {value!r}")
        if not 0.0 < self.solve_fraction <= 1.0:
            raise ValueError(f"solve_fraction must lie in (0, 1], got {self.solve_fraction}")
        if not 0.0 <= self.gae_lambda <= 1.0:
            raise ValueError(f"gae_lambda must lie in [0, 1], got {self.gae_lambda}")
        for name in ("shaping", "ent_coef"):
            if not (getattr(self, name) >= 0 and math.isfinite(getattr(self, name))):
                raise ValueError(f"{name} must be non-negative and finite, got {getattr(self, name)}")
        if (self.n_envs * self.max_length) % self.n_minibatches:
            raise ValueError(f"n_minibatches = {self.n_minibatches} must divide n_envs * max length = "
                             f"{self.n_envs * self.max_length}")

    @classmethod
    def quick(cls) -> Config:
        """Quick settings (teaching, CI): shrunk for run time after a first run, see :data:`QUICK_DISCLOSURE`."""
        return cls(vocab_sizes=(2, 4, 8), lengths=(2, 4, 8), n_updates=60)

    @classmethod
    def tiny(cls) -> Config:
        """The smallest settings that run every program (the tests)."""
        return cls(vocab_sizes=(2, 4), lengths=(2, 4), n_seeds=4, n_updates=25, n_labels=200, rm_steps=100)

    @property
    def max_vocab(self) -> int:
        return max(self.vocab_sizes)

    @property
    def max_length(self) -> int:
        return max(self.lengths)

    def episodes_per_update(self, length: int) -> int:
        """Responses completed per update in a cell of length ``length`` (``n_envs``: one per environment)."""
        del length
        return self.n_envs

    def budget(self, length: int) -> int:
        """Episodes of every run of a cell of length ``length``: its censoring time."""
        return self.n_updates * self.episodes_per_update(length)


# ------------------------------------------------------------------------------------------
# Output
# ------------------------------------------------------------------------------------------


class DeliveryCurves(NamedTuple):
    """One array per delivery (:data:`DELIVERIES`), each ``[V, T, S, U]``."""

    dense: np.ndarray
    sparse: np.ndarray
    learned: np.ndarray


class GoldCurves(NamedTuple):
    """One :class:`DeliveryCurves` per gold reward (:data:`GOLDS`)."""

    additive: DeliveryCurves
    prefix: DeliveryCurves


class MethodCurves(NamedTuple):
    """One :class:`GoldCurves` per method (:data:`METHODS`)."""

    ppo: GoldCurves
    vanilla_pg: GoldCurves


class Output(NamedTuple):
    progress: MethodCurves
    """After each update: ``(J(π) − J(π_0)) / (J* − J(π_0))`` of the reward the run is paid (exact)."""
    gold: MethodCurves
    """After each update: the exact expected gold return of the run's policy."""
    learned_optimum_gold: np.ndarray
    """``[G, V, T]``: the gold return of each reward model's own optimum."""
    episodes: np.ndarray
    """``[M, T, U]``: episodes PPO counted as completed in each update (one run per length)."""


def curve_array(curves: MethodCurves) -> np.ndarray:
    """``[M, G, D, V, T, S, U]``: methods, golds and deliveries as axes."""
    return np.stack([np.stack([np.stack(list(d)) for d in g]) for g in curves])


def _curves(array) -> MethodCurves:
    array = np.asarray(array)
    return MethodCurves(*(GoldCurves(*(DeliveryCurves(*d) for d in g)) for g in array))


# ------------------------------------------------------------------------------------------
# The rewards, the environment, the exact returns
# ------------------------------------------------------------------------------------------


class CorrectPrefix(NamedTuple):
    """Gold reward: the fraction of positions in the correct prefix, ``(1/T) Σ_k Π_{t ≤ k} 1[y_t = target_t]``.

    A gold-reward family of :mod:`toyrlhf.envs.token_mdp` (``gold(prompt, tokens, eos)``, for responses
    without EOS): 1 for the target, 0 when the first token is wrong, whatever follows.
    """

    targets: jax.Array
    """``[P, T]`` int."""

    def __call__(self, prompt, tokens, eos: bool = False):
        match = (tokens == self.targets[prompt]).astype(jnp.float64)
        return jnp.mean(jnp.cumprod(match))


class CellParams(NamedTuple):
    """Traceable parameters of :class:`ContextObserved`: one cell, one gold, one delivery (stack to vmap)."""

    length: jax.Array
    """``[]`` int32: the cell's ``T`` (at most the environment's ``max_length``)."""
    targets: jax.Array
    """``[T_max]`` int32: ``y*`` (entries beyond ``length`` unused)."""
    weights: jax.Array
    """``[T_max, V_max]`` float32: the term ``w[t, y_t]`` each token adds (zero beyond ``length``)."""
    prefix: jax.Array
    """``[]`` bool: a term counts only while every token so far equals ``targets`` (the prefix gold)."""
    dense: jax.Array
    """``[]`` bool: pay each term on its step (True) or their sum on the last step (False)."""
    shaping: jax.Array
    """``[]`` float32: with ``dense`` False, also pay ``shaping ×`` each term on its step."""


class ContextState(NamedTuple):
    """State of a :class:`ContextObserved` episode."""

    t: jax.Array
    """``[]`` int32: tokens written so far."""
    previous: jax.Array
    """``[]`` int32: the last token written (−1 before the first)."""
    correct: jax.Array
    """``[]`` bool: every token so far equals the target."""
    total: jax.Array
    """``[]`` float32: the sum of the terms so far (the end reward once ``t = length``)."""


@dataclasses.dataclass(frozen=True)
class ContextObserved:
    """The token MDP (one prompt, no EOS: append a token, end after ``length``) seen as (position, previous token).

    The observation is the index ``t (V_max + 1) + y_{t−1} + 1`` (``y_{−1} = −1``), so a
    :class:`~toyrlhf.nets.Table` policy is ``π(y_t | t, y_{t−1})``. The length, the rewards and their
    timing are traced :class:`CellParams`, so cells of every ``V ≤ V_max`` and ``T ≤ T_max`` run in one
    program. The episode return is the gold (or learned) reward of the response, paid per step (dense) or
    on its last step, step ``length`` (sparse). A response shorter than ``T_max`` is followed by
    ``T_max − length`` padding steps that pay nothing and lead to states whose value stays exactly 0, so
    every episode is ``T_max`` steps: ``terminated`` on step ``T_max``, never ``truncated``.
    """

    vocab_size: int
    """``V_max``: actions (a cell with fewer tokens masks the rest in its policy)."""
    max_length: int
    """``T_max``."""

    @property
    def n_actions(self) -> int:
        return self.vocab_size

    @property
    def n_states(self) -> int:
        return (self.max_length + 1) * (self.vocab_size + 1)

    @property
    def observation_shape(self) -> tuple[int, ...]:
        return ()

    def index(self, t, previous) -> jax.Array:
        return (t * (self.vocab_size + 1) + previous + 1).astype(jnp.int32)

    def reset(self, key: jax.Array, params: CellParams) -> tuple[jax.Array, ContextState]:
        del key, params
        state = ContextState(jnp.int32(0), jnp.int32(-1), jnp.array(True), jnp.float32(0.0))
        return self.index(state.t, state.previous), state

    def step(self, key: jax.Array, state: ContextState, action: jax.Array, params: CellParams) -> Step:
        del key  # deterministic: appending a token is known and free
        action = jnp.asarray(action, jnp.int32)
        t = jnp.minimum(state.t, self.max_length - 1)
        correct = state.correct & (action == params.targets[t])
        term = params.weights[t, action] * jnp.where(params.prefix, correct, True)  # 0 once t >= length
        total = state.total + term
        last = state.t + 1 == params.length  # the response ends here
        reward = jnp.where(params.dense, term, jnp.where(last, total, 0.0) + params.shaping * term)
        next_state = ContextState(state.t + 1, action, correct, total.astype(jnp.float32))
        ended = state.t + 1 >= self.max_length  # after the padding steps of a shorter response
        return Step(self.index(next_state.t, action), next_state, reward.astype(jnp.float32), ended,
                    jnp.zeros((), bool))


def bigram_probabilities(actor: jax.Array, max_length: int) -> jax.Array:
    """``[T_max, V_max + 1, V_max]`` float64: ``π(y_t = v | t, y_{t−1} = u − 1)`` from a table actor ``[S, V_max]``."""
    width = actor.shape[-1]
    logits = actor.reshape(max_length + 1, width + 1, width)[:max_length]
    return jax.nn.softmax(logits.astype(jnp.float64), axis=-1)


def marginals(probs: jax.Array) -> jax.Array:
    """``[T_max, V_max]``: ``Pr(y_t = v)`` under the bigram policy ``probs`` (:func:`bigram_probabilities`)."""

    def step(m, p):
        m = m @ p[1:]
        return m, m

    first = probs[0, 0]
    _, rest = jax.lax.scan(step, first, probs[1:])
    return jnp.concatenate([first[None], rest])


def linear_return(actor: jax.Array, weights: jax.Array) -> jax.Array:
    """Exact ``E_π[Σ_t w[t, y_t]]`` for ``weights [T_max, V_max]`` (zero beyond the cell's length)."""
    probs = bigram_probabilities(actor, weights.shape[0])
    return jnp.sum(marginals(probs) * weights)


def prefix_return(actor: jax.Array, targets: jax.Array, length) -> jax.Array:
    """Exact expected :class:`CorrectPrefix` reward, ``(1/T) Σ_{k<T} Π_{t≤k} π(y*_t | t, y*_{t−1})``."""
    T_max = targets.shape[0]
    probs = bigram_probabilities(actor, T_max)
    previous = jnp.concatenate([jnp.array([-1]), targets[:-1]]) + 1
    p = probs[jnp.arange(T_max), previous, targets]
    in_cell = jnp.arange(T_max) < length
    return jnp.sum(jnp.where(in_cell, jnp.cumprod(p), 0.0)) / length


def initial_policy(vocab_size, max_length: int, width: int) -> jax.Array:
    """``[(T_max+1)(width+1), width]`` float32 logits: uniform over the first ``vocab_size`` tokens, masked beyond."""
    valid = jnp.arange(width) < vocab_size
    rows = (max_length + 1) * (width + 1)
    return jnp.broadcast_to(jnp.where(valid, 0.0, MASKED_LOGIT), (rows, width)).astype(jnp.float32)


def gold_score(tokens: jax.Array, targets: jax.Array, length, prefix) -> jax.Array:
    """The gold reward of ``tokens [T_max]`` in a cell of length ``length``: additive, or prefix if ``prefix``."""
    in_cell = jnp.arange(targets.shape[0]) < length
    match = ((tokens == targets) & in_cell).astype(jnp.float64)
    return jnp.where(prefix, jnp.sum(jnp.cumprod(match)), jnp.sum(match)) / length


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
    if isinstance(steps_per_update, bool) or not isinstance(steps_per_update, (int, np.integer)) \
            or steps_per_update < 1:
        raise ValueError(f"steps_per_update must be a positive int, got {steps_per_update}")
    hit = curves >= threshold
    solved = hit.any(-1)
    first = np.where(solved, np.argmax(hit, axis=-1) + 1, curves.shape[-1])
    return first * steps_per_update, solved


def censored_times(steps, solved) -> np.ndarray:
    """Times with ``inf`` for censored runs (a run that never solved is slower than every run that did)."""
    return np.where(np.asarray(solved, bool), np.asarray(steps, np.float64), np.inf)


def km_median(steps, solved) -> float:
    """Kaplan–Meier median of times ``steps [n]`` with ``solved [n]`` flags (all censored at one budget).

    With a single censoring time the Kaplan–Meier curve is the empirical fraction unsolved, so the median
    is the smallest solved time by which at least half of the runs have solved; ``inf`` if fewer than half
    ever do (the median lies beyond the budget). The median of :func:`toyrlhf.stats.kaplan_meier_median`,
    without its interval, fast enough to sit inside a bootstrap.
    """
    steps, solved = np.asarray(steps, dtype=np.float64).ravel(), np.asarray(solved, dtype=bool).ravel()
    if steps.shape != solved.shape or steps.size == 0:
        raise ValueError(f"steps and solved must be non-empty and of equal size, got {steps.shape}, {solved.shape}")
    return float(seed_medians(censored_times(steps, solved)))


def seed_medians(times, axis: int = -1) -> np.ndarray:
    """Kaplan–Meier medians of censored times (``inf``: censored) over ``axis`` (the seeds)."""
    times = np.sort(np.asarray(times, dtype=np.float64), axis=axis)
    return np.take(times, math.ceil(times.shape[axis] / 2) - 1, axis=axis)


# ------------------------------------------------------------------------------------------
# The learners
# ------------------------------------------------------------------------------------------


def ppo_config(config: Config, method: str) -> ppo.PPOConfig:
    """PPO or the vanilla policy gradient (one full-batch step per batch), tabular actor and critic."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    vanilla = method == "Vanilla PG"
    return ppo.PPOConfig(
        n_envs=config.n_envs, n_steps=config.max_length, n_updates=config.n_updates,
        n_epochs=1 if vanilla else config.n_epochs, n_minibatches=1 if vanilla else config.n_minibatches,
        actor=Table(), critic=Table(), anneal_lr=False, normalize_advantages=False,
    )


def method_hyper(config: Config, method: str) -> ppo.PPOHyperparams:
    vanilla = method == "Vanilla PG"
    return ppo.PPOHyperparams(
        learning_rate=config.pg_learning_rate if vanilla else config.ppo_learning_rate,
        gamma=1.0,
        gae_lambda=1.0 if vanilla else config.gae_lambda,
        clip_eps=math.inf if vanilla else config.clip_eps,
        vf_coef=0.5,
        ent_coef=config.ent_coef,
        max_grad_norm=config.max_grad_norm,
        kl_coef=0.0,
    )


class RunSpec(NamedTuple):
    """What one run needs beyond its key (stack to vmap)."""

    env: CellParams
    reference: jax.Array
    """``[S, V_max]``: the uniform start over the cell's tokens."""
    paid_weights: jax.Array
    """``[T_max, V_max]``: the linear reward whose exact return is the paid one (the learned reward's weights)."""
    learned: jax.Array
    """``[]`` bool: the run is paid the learned reward (its progress is measured on it)."""
    paid_optimum: jax.Array
    """``[]``: ``J*`` of the paid reward."""


def make_run(config: ppo.PPOConfig, env: ContextObserved, example: CellParams):
    """``run(key, hyper, spec) -> (progress [U], gold [U], episodes [U], nonfinite [U])``.

    PPO's own ``init`` and ``update`` (:func:`toyrlhf.algorithms.ppo.make_ppo`), scanned here so that the
    exact returns are recorded after every update.
    """
    learner = ppo.make_ppo(config, env, example)

    def returns(actor, spec: RunSpec):
        p = spec.env
        gold = jnp.where(p.prefix, prefix_return(actor, p.targets, p.length), linear_return(actor, p.weights))
        paid = jnp.where(spec.learned, linear_return(actor, spec.paid_weights), gold)
        return paid, gold

    def run(key, hyper, spec: RunSpec):
        state = learner.init(key, hyper, reference=spec.reference, env_params=spec.env)
        start, _ = returns(spec.reference, spec)
        scale = spec.paid_optimum - start

        def body(state, _):
            state, metrics = learner.update(state)
            paid, gold = returns(state.params.actor, spec)
            progress = jnp.where(scale > 1e-9, (paid - start) / jnp.where(scale > 1e-9, scale, 1.0), 0.0)
            return state, (progress, gold, metrics.episodes, metrics.nonfinite)

        _, out = jax.lax.scan(body, state, None, length=config.n_updates)
        return out

    return run


def fit_learned_reward(key, vocab_size, length, targets: jax.Array, prefix, width: int, config: Config):
    """Bradley–Terry on (position, token) indicators from ``config.n_labels`` uniformly random pairs.

    ``vocab_size``, ``length`` and ``prefix`` may be traced (a cell padded to ``width`` tokens and
    ``T_max = targets.shape[0]`` positions). Returns the weights ``[T_max, width]`` (zero on padded tokens
    and positions), the gold return of their optimum (``argmax_v w[t, v]`` over the cell's tokens), the
    optimum's value under the weights, and the loss curve.
    """
    T_max = targets.shape[-1]
    key_1, key_2, key_label, key_fit = jax.random.split(key, 4)
    first = jax.random.randint(key_1, (config.n_labels, T_max), 0, vocab_size, dtype=jnp.int32)
    second = jax.random.randint(key_2, (config.n_labels, T_max), 0, vocab_size, dtype=jnp.int32)
    score = jax.vmap(lambda y: gold_score(y, targets, length, prefix))
    labeller = prefs.Labeller(temperature=config.label_temperature)
    prefer_first, _ = prefs.label(key_label, labeller, score(first), score(second), 0)
    in_cell = (jnp.arange(T_max) < length)[:, None]

    def features(y):
        return (jax.nn.one_hot(y, width, dtype=jnp.float32) * in_cell).reshape(y.shape[0], T_max * width)

    rm = prefs.RewardModelConfig(kind="linear", n_steps=config.rm_steps, learning_rate=config.rm_learning_rate,
                                 l2=1e-3)
    params, losses = prefs.fit_reward_model(key_fit, rm, features(first), features(second), prefer_first)
    weights = params[0, :, 0].reshape(T_max, width) * in_cell
    valid = jnp.arange(width) < vocab_size
    best = jnp.argmax(jnp.where(valid, weights, -jnp.inf), axis=-1)
    optimum = jnp.sum(jnp.where(in_cell[:, 0], jnp.max(jnp.where(valid, weights, -jnp.inf), axis=-1), 0.0))
    return weights, gold_score(best, targets, length, prefix), optimum, losses


def cell_keys(config: Config, vocab_size: int, length: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(target, reward models, runs)`` keys of one cell: a function of the cell and ``config.seed`` alone."""
    key = jax.random.fold_in(jax.random.fold_in(jax.random.key(config.seed), 2), 1000 * vocab_size + length)
    return tuple(jax.random.split(key, 3))


def cells(config: Config) -> list[tuple[int, int]]:
    """``(V, T)`` of every cell, ``V`` major."""
    return [(V, T) for V in config.vocab_sizes for T in config.lengths]


def compute(config: Config, clock: Clock | None = None) -> Output:
    """Every cell, gold, delivery and seed: one reward-model program and one training program per method."""
    clock = clock or Clock()
    width, T_max = config.max_vocab, config.max_length
    G, D, S, U = len(GOLDS), len(DELIVERIES), config.n_seeds, config.n_updates
    grid = cells(config)
    C = len(grid)
    keys = [cell_keys(config, V, T) for V, T in grid]
    sizes = jnp.asarray([V for V, _ in grid], jnp.int32)
    lengths = jnp.asarray([T for _, T in grid], jnp.int32)
    targets = jnp.stack([jax.random.randint(k[0], (T_max,), 0, V, dtype=jnp.int32) for k, (V, _) in zip(keys, grid)])
    # [C, G]: one reward model per cell and gold.
    rm_keys = jnp.stack([jax.random.split(k[1], G) for k in keys])
    prefix_flags = jnp.asarray([g == "prefix" for g in GOLDS])

    fit = jax.jit(jax.vmap(jax.vmap(
        lambda k, v, t, y, p: fit_learned_reward(k, v, t, y, p, width, config),
        in_axes=(0, None, None, None, 0)), in_axes=(0, 0, 0, 0, None)))
    rm_weights, rm_gold, rm_optimum, losses = clock.call("reward models", fit, rm_keys, sizes, lengths, targets,
                                                         prefix_flags)
    prefs.check_finite_losses(losses, "reward models")

    in_cell = (jnp.arange(T_max)[None] < lengths[:, None])[..., None]  # [C, T_max, 1]
    gold_weights = jax.nn.one_hot(targets, width, dtype=jnp.float32) * in_cell / lengths[:, None, None]
    reference = jax.vmap(lambda v: initial_policy(v, T_max, width))(sizes)  # [C, S_env, width]

    # Runs: cells x golds x deliveries x seeds, flattened; the same keys for every gold and delivery of a cell.
    def per_run(x):  # [C, ...] -> [C, G, D, S, ...]
        x = jnp.asarray(x)
        return jnp.broadcast_to(x[:, None, None, None], (C, G, D, S, *x.shape[1:]))

    def per_gold(x):  # [C, G, ...] -> [C, G, D, S, ...]
        x = jnp.asarray(x)
        return jnp.broadcast_to(x[:, :, None, None], (C, G, D, S, *x.shape[2:]))

    gd = lambda values, dtype: jnp.broadcast_to(  # noqa: E731
        jnp.asarray(values, dtype)[None, :, :, None], (C, G, D, S))
    is_learned = gd([[d == "learned" for d in DELIVERIES]] * G, bool)
    env_params = CellParams(
        length=per_run(lengths),
        targets=per_run(targets),
        weights=jnp.where(is_learned[..., None, None], per_gold(rm_weights), per_run(gold_weights)),
        prefix=gd([[g == "prefix"] * D for g in GOLDS], bool),
        dense=gd([[d == "dense" for d in DELIVERIES]] * G, bool),
        shaping=gd([[0.0 if d == "dense" else config.shaping for d in DELIVERIES]] * G, jnp.float32),
    )
    spec = RunSpec(
        env=env_params,
        reference=per_run(reference),
        paid_weights=per_gold(rm_weights),
        learned=is_learned,
        paid_optimum=jnp.where(is_learned, per_gold(rm_optimum), 1.0),
    )
    spec = jax.tree.map(lambda x: x.reshape(C * G * D * S, *x.shape[4:]), spec)
    run_keys = jnp.stack([jnp.broadcast_to(jax.random.split(k[2], S), (G, D, S)) for k in keys])
    run_keys = run_keys.reshape(C * G * D * S)
    env = ContextObserved(width, T_max)
    example = jax.tree.map(lambda x: x[0], spec.env)
    progress, gold, episodes = [], [], []
    for method in METHODS:
        run = make_run(ppo_config(config, method), env, example)
        batched = jax.jit(jax.vmap(run, in_axes=(0, None, 0)))
        p, g, e, nonfinite = clock.call(f"{method} ({C * G * D * S} runs)", batched, run_keys,
                                        method_hyper(config, method), spec)
        raise_if_nonfinite(nonfinite, method)
        shape = (len(config.vocab_sizes), len(config.lengths), G, D, S, U)
        progress.append(np.moveaxis(np.asarray(p).reshape(shape), (2, 3), (0, 1)))  # [G, D, V, T, S, U]
        gold.append(np.moveaxis(np.asarray(g).reshape(shape), (2, 3), (0, 1)))
        e = np.asarray(e).reshape(shape)
        episodes.append(e[0, :, 0, 0, 0])  # [T, U]: the first run of each length (all runs of a length agree)
    learned_gold = np.moveaxis(np.asarray(rm_gold, np.float64).reshape(len(config.vocab_sizes),
                                                                       len(config.lengths), G), 2, 0)
    return Output(
        progress=_curves(np.stack(progress).astype(np.float32)),
        gold=_curves(np.stack(gold).astype(np.float32)),
        learned_optimum_gold=learned_gold,
        episodes=np.stack(episodes).astype(np.int32),
    )


# ------------------------------------------------------------------------------------------
# Criteria
# ------------------------------------------------------------------------------------------


def solve_times(config: Config, output: Output) -> np.ndarray:
    """``[M, G, D, V, T, S]`` episodes to solve, ``inf`` for censored runs."""
    curves = curve_array(output.progress)
    times = np.empty(curves.shape[:-1])
    for j, T in enumerate(config.lengths):
        steps, solved = steps_to_solve(curves[:, :, :, :, j], config.solve_fraction, config.episodes_per_update(T))
        times[:, :, :, :, j] = censored_times(steps, solved)
    return times


def paired_signs(times_a, times_b) -> np.ndarray:
    """Sign of ``times_a − times_b`` per pair (NaN: both censored, a tie like 0)."""
    with np.errstate(invalid="ignore"):
        return np.sign(np.asarray(times_a, np.float64) - np.asarray(times_b, np.float64))


def sign_criterion(config: Config, output: Output, gold: str) -> tuple[Criterion, dict]:
    """Criteria 1-2: sparse slower than dense for ``gold``, pooled over cells, the smaller of the two methods."""
    g = GOLDS.index(gold)
    times = solve_times(config, output)[:, g]  # [M, D, V, T, S]
    signs = paired_signs(times[:, DELIVERIES.index("sparse")], times[:, DELIVERIES.index("dense")])  # [M, V, T, S]
    level = 1 - ALPHA / len(METHODS)
    rows = []
    for m, method in enumerate(METHODS):
        n_pos, n, p = stats.sign_test(signs[m], "greater")
        share, lo, hi = stats.proportion_interval(n_pos, n, level)
        s = signs[m]
        rows.append({"method": method, "sparse_slower": n_pos, "untied": n, "pairs": int(s.size),
                     "ties": int((s == 0).sum()), "both_censored": int(np.isnan(s).sum()),
                     "fraction": share, "interval": [lo, hi], "sign_test_p": p})
    share = np.array([r["fraction"] for r in rows])
    lo = np.array([r["interval"][0] for r in rows])
    hi = np.array([r["interval"][1] for r in rows])
    worst = int(np.nanargmin(share)) if np.isfinite(share).any() else 0
    context = ("credit assignment through context: a token earns only after a correct prefix" if gold == "prefix"
               else "the contrast: a sum over positions, no credit assignment through context needed")
    r = rows[worst]
    criterion = Criterion(
        f"{gold} reward ({context}): sparse slower than dense, both methods: fraction of untied (cell, seed) "
        "pairs in which the sparse run takes more episodes > 1/2",
        float(np.nanmin(share)) if np.isfinite(share).any() else math.nan,
        (float(lo.min()), float(hi.min())),
        (0.5 + 1e-9, 1.0),
        "finding",
        f"the smaller of the two methods' fractions ({r['method']}: {r['sparse_slower']} of {r['untied']} untied "
        f"pairs; {r['ties']} equal times and {r['both_censored']} pairs with both runs censored excluded, of "
        f"{r['pairs']}), pooled over {len(config.vocab_sizes) * len(config.lengths)} cells; a censored run is "
        f"slower than a solved one; simultaneous 95% interval: Clopper–Pearson at level {level:.4f} (Bonferroni "
        "over the methods)",
        "more seeds, or larger cells where the two deliveries do not tie",
        "Replaces 'sparse slower than dense in every (V, T) cell' (the worst cell decided it, and in the easiest "
        "cells both deliveries solve in the same update); registered before this version's first run. "
        + LEARNING_RATE_DISCLOSURE + " " + QUICK_DISCLOSURE,
    )
    return criterion, {"methods": rows}


def regression(times, vocab_sizes, lengths) -> np.ndarray:
    """``(a, b_V, b_T)`` of ``log median = a + b_V log V + b_T log T`` over the cells with a median in the budget.

    ``times [S, V, T]`` (``inf``: censored). NaN when fewer than 4 cells, 2 distinct ``V`` or 2 distinct ``T``
    remain.
    """
    return _regression(times, *np.meshgrid(np.log(vocab_sizes), np.log(lengths), indexing="ij"))


def _regression(times, logV, logT) -> np.ndarray:
    times = np.asarray(times, np.float64)
    medians = np.sort(times, axis=0)[math.ceil(times.shape[0] / 2) - 1]  # [V, T]: Kaplan–Meier medians
    keep = np.isfinite(medians)
    if keep.sum() < 4 or keep.any(1).sum() < 2 or keep.any(0).sum() < 2:
        return np.full(3, np.nan)
    X = np.stack([np.ones(int(keep.sum())), logV[keep], logT[keep]], axis=1)
    gram = X.T @ X
    if abs(np.linalg.det(gram)) < 1e-12:
        return np.full(3, np.nan)
    return np.linalg.solve(gram, X.T @ np.log(medians[keep]))


EXPONENTS = {"V": 1, "T": 2}


def exponent_interval(config: Config, times, axis: str, level: float, seed: int, minus=None):
    """``(estimate, lo, hi)`` of ``b_axis`` (or ``b_axis(times) − b_axis(minus)``), BCa bootstrap over seeds.

    ``times`` and ``minus`` are ``[S, V, T]`` and share seed indices (resampled together).
    """
    k = EXPONENTS[axis]
    grids = np.meshgrid(np.log(config.vocab_sizes), np.log(config.lengths), indexing="ij")
    if minus is None:
        sample = np.asarray(times)[:, None]
        statistic = lambda x: _regression(x[:, 0], *grids)[k]  # noqa: E731
    else:
        sample = np.stack([times, minus], axis=1)
        statistic = lambda x: _regression(x[:, 0], *grids)[k] - _regression(x[:, 1], *grids)[k]  # noqa: E731
    return stats.bootstrap_interval(sample, statistic, n_boot=config.n_boot, seed=seed, level=level)


def exponent_criterion(config: Config, output: Output, gold: str, axis: str, versus: str | None = None,
                       seed: int = 0) -> tuple[Criterion, dict]:
    """Criteria 3-7: ``b_axis`` of the sparse runs > 0 (or minus that of ``versus`` runs), both methods."""
    g = GOLDS.index(gold)
    times = solve_times(config, output)[:, g]  # [M, D, V, T, S]
    sparse = np.moveaxis(times[:, DELIVERIES.index("sparse")], -1, 1)  # [M, S, V, T]
    other = None if versus is None else np.moveaxis(times[:, DELIVERIES.index(versus)], -1, 1)
    level = 1 - ALPHA / len(METHODS)
    rows = []
    for m, method in enumerate(METHODS):
        est, lo, hi = exponent_interval(config, sparse[m], axis, level, seed + m,
                                        None if other is None else other[m])
        left_out = int((~np.isfinite(seed_medians(sparse[m], axis=0))).sum())
        row = {"method": method, "estimate": est, "interval": [lo, hi], "sparse_cells_left_out": left_out}
        if other is not None:
            row[f"{versus}_cells_left_out"] = int((~np.isfinite(seed_medians(other[m], axis=0))).sum())
        rows.append(row)
    est = np.array([r["estimate"] for r in rows])
    lo = np.array([r["interval"][0] for r in rows])
    hi = np.array([r["interval"][1] for r in rows])
    worst = int(np.nanargmin(est)) if np.isfinite(est).any() else 0
    n_cells = len(config.vocab_sizes) * len(config.lengths)
    what = f"b_{axis}" if versus is None else f"b_{axis}(sparse) − b_{axis}({versus})"
    left = ", ".join(f"{r['method']} {r['sparse_cells_left_out']}" for r in rows)
    statement = (f"{gold} reward, sparse: episodes-to-solve grow with {axis}: the exponent b_{axis} of "
                 f"log median = a + b_V log V + b_T log T is > 0, both methods") if versus is None else (
                 f"{gold} reward: the exponent b_{axis} is larger under the sparse than under the {versus} reward "
                 f"(the end-of-sequence reward costs more as {axis} grows), both methods")
    criterion = Criterion(
        statement,
        float(np.nanmin(est)) if np.isfinite(est).any() else math.nan,
        (float(np.nanmin(lo)) if not np.isnan(lo).all() else math.nan,
         float(np.nanmin(hi)) if not np.isnan(hi).all() else math.nan),
        (1e-9, math.inf),
        "finding",
        f"the smaller of the two methods' {what} (at {rows[worst]['method']}); least squares over the {n_cells} "
        "cells' Kaplan–Meier medians (logs), a cell whose median lies beyond its budget left out (sparse cells "
        f"left out: {left} of {n_cells}); a fit needs 4 cells spanning 2 V and 2 T; simultaneous 95% interval: "
        f"BCa bootstrap over {config.n_seeds} seeds at level {level:.4f} (Bonferroni over the methods), "
        "(−∞, ∞) when the fit fails on more than 5% of the resamples or under 8 seeds",
        "more seeds, or a longer budget where cells are censored",
        "Replaces 'every adjacent-pair ratio of medians > 1' (34 ratios at quick, decided by the worst one); "
        "registered before this version's first run. " + LEARNING_RATE_DISCLOSURE + " " + QUICK_DISCLOSURE,
    )
    return criterion, {"methods": rows}


CRITERIA = (
    ("sign", "prefix", None, None),
    ("sign", "additive", None, None),
    ("exponent", "prefix", "V", None),
    ("exponent", "prefix", "T", None),
    ("exponent", "additive", "V", None),
    ("exponent", "additive", "T", None),
    ("exponent", "prefix", "T", "dense"),
)
"""The registered criteria, in order: (kind, gold, axis, compared delivery)."""


def judged(config: Config, output: Output) -> list[tuple[Criterion, dict]]:
    out = []
    for k, (kind, gold, axis, versus) in enumerate(CRITERIA):
        if kind == "sign":
            out.append(sign_criterion(config, output, gold))
        else:
            out.append(exponent_criterion(config, output, gold, axis, versus, seed=10 * k))
    return out


def criteria(config: Config, output: Output) -> list[Criterion]:
    return [c for c, _ in judged(config, output)]


def checks(config: Config, output: Output) -> list[Criterion]:
    """The episode count of every update equals ``n_envs`` (PPO's own count, one run per length)."""
    expected = np.array([config.episodes_per_update(T) for T in config.lengths])[None, :, None]
    off = np.abs(np.asarray(output.episodes, np.float64) - expected).max()
    return [Criterion(
        "every update completes exactly n_envs responses, whatever T (PPO's own episode count)",
        float(off), None, (0.0, 0.0), "check",
        f"largest deviation over methods, lengths {list(config.lengths)} and updates",
    )]


def cell_medians(config: Config, output: Output) -> tuple[np.ndarray, np.ndarray]:
    """``(median [M, G, D, V, T], its 95% interval [M, G, D, V, T, 2])`` of episodes-to-solve."""
    times = solve_times(config, output)
    medians = seed_medians(times)
    intervals = np.zeros((*medians.shape, 2))
    for idx in np.ndindex(medians.shape):
        intervals[idx] = stats.median_interval(times[idx], 1 - ALPHA)
    return medians, intervals


def exponents(config: Config, output: Output, n_boot: int = 1000) -> dict:
    """``b_V`` and ``b_T`` with 95% BCa intervals (not simultaneous) for every method, gold and delivery."""
    times = np.moveaxis(solve_times(config, output), -1, 3)  # [M, G, D, S, V, T]
    quick = dataclasses.replace(config, n_boot=n_boot)
    out = {}
    for (m, method), (g, gold), (d, delivery) in (
            (a, b, c) for a in enumerate(METHODS) for b in enumerate(GOLDS) for c in enumerate(DELIVERIES)):
        row = {}
        for axis in EXPONENTS:
            est, lo, hi = exponent_interval(quick, times[m, g, d], axis, 1 - ALPHA, seed=0)
            row[f"b_{axis}"] = {"estimate": est, "ci95": [lo, hi]}
        row["cells_left_out"] = int((~np.isfinite(seed_medians(times[m, g, d], axis=0))).sum())
        out[f"{method}/{gold}/{delivery}"] = row
    return out


def measurements(config: Config, output: Output) -> dict:
    Vs, Ts = config.vocab_sizes, config.lengths
    times = solve_times(config, output)
    medians, intervals = cell_medians(config, output)
    final_gold = curve_array(output.gold)[..., -1]  # [M, G, D, V, T, S]
    return {
        "median_episodes_to_solve": {
            f"{m}/{g}/{d}": {
                f"T={T}": {
                    f"V={V}": {
                        "median": medians[a, b, c, i, j],
                        "median_ci95": intervals[a, b, c, i, j].tolist(),
                        "solved_fraction": float(np.isfinite(times[a, b, c, i, j]).mean()),
                        "final_gold_return_mean": float(final_gold[a, b, c, i, j].mean()),
                    }
                    for i, V in enumerate(Vs)
                }
                for j, T in enumerate(Ts)
            }
            for a, m in enumerate(METHODS) for b, g in enumerate(GOLDS) for c, d in enumerate(DELIVERIES)
        },
        "exponents": exponents(config, output),
        "censored_runs": {
            f"{m}/{g}/{d}": int(np.isinf(times[a, b, c]).sum())
            for a, m in enumerate(METHODS) for b, g in enumerate(GOLDS) for c, d in enumerate(DELIVERIES)
        },
        "runs_per_method_gold_delivery": int(times[0, 0, 0].size),
        "episode_budget": {f"T={T}": config.budget(T) for T in Ts},
        "learned_reward_optimum_gold": {
            g: {f"T={T}": {f"V={V}": float(output.learned_optimum_gold[b, i, j]) for i, V in enumerate(Vs)}
                for j, T in enumerate(Ts)}
            for b, g in enumerate(GOLDS)
        },
        "sparse_vs_dense": {g: sign_criterion(config, output, g)[1]["methods"] for g in GOLDS},
    }


def plot(config: Config, output: Output):
    """Median episodes-to-solve against V: one panel per (method, gold, T), one line per delivery."""
    import matplotlib.pyplot as plt

    from toyrlhf.plotting import apply_style

    apply_style()
    Vs, Ts = np.asarray(config.vocab_sizes), config.lengths
    medians, intervals = cell_medians(config, output)
    rows = [(a, b) for a in range(len(METHODS)) for b in range(len(GOLDS))]
    fig, axes = plt.subplots(len(rows), len(Ts), figsize=(4.2 * len(Ts), 3.2 * len(rows)), squeeze=False)
    colors = dict(zip(DELIVERIES, plt.cm.tab10(np.arange(len(DELIVERIES))), strict=True))
    for r, (a, b) in enumerate(rows):
        for j, T in enumerate(Ts):
            ax = axes[r, j]
            budget = config.budget(T)
            ceiling = budget * 1.5  # where a median beyond the budget is drawn
            for c, d in enumerate(DELIVERIES):
                y = np.where(np.isfinite(medians[a, b, c, :, j]), medians[a, b, c, :, j], ceiling)
                lo = np.minimum(intervals[a, b, c, :, j, 0], ceiling)
                hi = np.minimum(intervals[a, b, c, :, j, 1], ceiling)
                ax.fill_between(Vs, np.maximum(lo, 1.0), hi, color=colors[d], alpha=0.15, linewidth=0)
                ax.plot(Vs, y, "o-", color=colors[d], label=d, ms=4)
                censored = ~np.isfinite(medians[a, b, c, :, j])
                ax.plot(Vs[censored], y[censored], "x", color=colors[d], ms=8)
            ax.axhline(budget, color="0.5", ls=":", lw=1)
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_title(f"{METHODS[a]}, {GOLDS[b]} reward, T = {T}", fontsize=10)
            ax.set_xlabel("vocabulary V (actions)")
            ax.set_ylabel("median episodes to solve")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(
        f"Token MDP, policy sees the previous token: episodes until {config.solve_fraction:g} of the way to the "
        f"optimum ({config.n_seeds} seeds, 95% order-statistic band; x: median beyond the budget, the dotted line)",
        fontsize=11,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return fig
