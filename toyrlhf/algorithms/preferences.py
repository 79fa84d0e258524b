"""Learning a reward from pairwise preferences: a synthetic human and Bradley–Terry reward models.

The labeller. A (simulated) human compares two items ``y¹, y²`` (token responses
to the same prompt, or trajectory segments of a gridworld) whose hidden gold
returns are ``g¹, g²``. It is Boltzmann-rational with temperature ``τ`` and
answers at random with probability ``ε``:

    Pr(y¹ ≻ y²) = ε/2 + (1 − ε) σ((g¹ − g²) / τ),        σ(z) = 1 / (1 + e^{−z}).

Every label is counted (:func:`label` returns the running count): labels are the
expensive resource of claim T3.

The reward model. Bradley–Terry (1952) models ``Pr(y¹ ≻ y²) = σ(r_θ(y¹) − r_θ(y²))``
and fits ``θ`` by maximum likelihood (Christiano et al. 2017; Ouyang et al. 2022):

    L(θ) = −(1/M) Σ_m [ z_m log σ(Δ_m) + (1 − z_m) log σ(−Δ_m) ] + λ ‖θ‖²,
    Δ_m = r_θ(y¹_m) − r_θ(y²_m),

with ``z_m ∈ [0, 1]`` the label (1: the first item was preferred; a probability
gives the soft-label, population version of the same loss). ``r_θ(y) = f_θ(φ(y))``
on features ``φ``: a table (one-hot ``φ``: one free reward per item), a linear
model on hand-made features, or an MLP (:mod:`toyrlhf.nets`), optionally an
ensemble of independently initialised members trained on bootstrap resamples.

Only differences of ``r`` enter the likelihood, so a reward model is defined up
to an additive constant (per prompt, when pairs always share a prompt; DESIGN.md
pitfall 8). Evaluate it with :func:`pairwise_accuracy` (held-out pairs, against
the exact :func:`bayes_accuracy` of the noisy labeller) or
:func:`centred_correlation` with the gold reward, never by raw values. With
``ε = 0`` and a model that can represent the gold reward, the population
minimiser is ``r_θ = g / τ + const``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from toyrlhf import tabular
from toyrlhf.envs.token_mdp import response_length
from toyrlhf.nets import MLP, Table
from toyrlhf.optimize import minimize
from toyrlhf.validation import instance, non_negative_float, positive_float, positive_int

# ------------------------------------------------------------------------------------------
# The synthetic labeller
# ------------------------------------------------------------------------------------------


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Labeller:
    """A Boltzmann-rational labeller (traceable numbers: vmap over them to sweep label noise)."""

    temperature: float = 1.0
    """``τ > 0``: rationality temperature; small is a sharp, almost deterministic judge."""
    random_prob: float = 0.0
    """``ε ∈ [0, 1]``: probability of answering with a fair coin instead."""


def _check_labeller(labeller: Labeller) -> None:
    if not isinstance(labeller, Labeller):
        raise TypeError(f"labeller must be a Labeller, got {type(labeller).__name__}")
    t, e = labeller.temperature, labeller.random_prob
    if not isinstance(t, jax.core.Tracer) and not float(t) > 0:
        raise ValueError(f"labeller.temperature must be positive, got {t}")
    if not isinstance(e, jax.core.Tracer) and not 0.0 <= float(e) <= 1.0:
        raise ValueError(f"labeller.random_prob must lie in [0, 1], got {e}")


def preference_probability(gold_first: jax.Array, gold_second: jax.Array, labeller: Labeller) -> jax.Array:
    """``Pr(first ≻ second) = ε/2 + (1 − ε) σ((g¹ − g²)/τ)``, elementwise over ``[...]``."""
    _check_labeller(labeller)
    z = (gold_first - gold_second) / labeller.temperature
    return 0.5 * labeller.random_prob + (1.0 - labeller.random_prob) * jax.nn.sigmoid(z)


def label(
    key: jax.Array, labeller: Labeller, gold_first: jax.Array, gold_second: jax.Array, count: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Ask the labeller about ``M`` pairs: ``(prefer_first [M] float 0/1, count + M)``.

    ``count`` is the number of labels given so far (start from 0): thread it
    through every call, so the total spent is always known.
    """
    gold_first, gold_second = jnp.asarray(gold_first), jnp.asarray(gold_second)
    if gold_first.shape != gold_second.shape or gold_first.ndim != 1:
        raise ValueError(
            f"gold_first and gold_second must both have shape [M], got {gold_first.shape} and {gold_second.shape}"
        )
    p = preference_probability(gold_first, gold_second, labeller)
    prefer_first = jax.random.bernoulli(key, p).astype(p.dtype)
    return prefer_first, count + gold_first.shape[0]


def bayes_accuracy(prob_first: jax.Array) -> jax.Array:
    """Best achievable expected accuracy on noisy labels: ``mean(max(p, 1 − p))`` over pairs ``[M]``."""
    return jnp.mean(jnp.maximum(prob_first, 1.0 - prob_first))


def pairwise_accuracy(pred_first: jax.Array, pred_second: jax.Array, prob_first: jax.Array) -> jax.Array:
    """Expected accuracy of a reward model's choices on held-out pairs ``[M]``, against the labeller's answers.

    The model picks the item with the larger predicted reward (a tie counts one
    half); the labeller answers "first" with probability ``prob_first``. Using the
    exact ``prob_first`` instead of one sampled label per pair removes the label
    noise from the estimate; it is at most :func:`bayes_accuracy` on the same pairs.
    """
    d = pred_first - pred_second
    return jnp.mean(jnp.where(d > 0, prob_first, jnp.where(d < 0, 1.0 - prob_first, 0.5)))


def centred_correlation(pred: jax.Array, gold: jax.Array, weights: jax.Array | None = None) -> jax.Array:
    """Weighted Pearson correlation of ``pred`` and ``gold`` ``[P, N]`` after centring each row (prompt).

    Row ``p`` is centred by its weighted mean (weights ``[P, N]``, e.g. the reference
    policy's response probabilities times the prompt probability; uniform by
    default), since a Bradley–Terry reward is only defined up to a constant per prompt.
    """
    pred, gold = jnp.asarray(pred), jnp.asarray(gold)
    if pred.shape != gold.shape or pred.ndim != 2:
        raise ValueError(f"pred and gold must both have shape [P, N], got {pred.shape} and {gold.shape}")
    w = jnp.ones_like(gold) if weights is None else jnp.asarray(weights)
    w = w / w.sum()
    row = w.sum(-1, keepdims=True)
    centre = lambda x: x - jnp.sum(w * x, -1, keepdims=True) / jnp.where(row > 0, row, 1.0)  # noqa: E731
    a, b = centre(pred), centre(gold)
    return jnp.sum(w * a * b) / jnp.sqrt(jnp.sum(w * a * a) * jnp.sum(w * b * b))


# ------------------------------------------------------------------------------------------
# Pairs of items to compare
# ------------------------------------------------------------------------------------------


class ResponsePairs(NamedTuple):
    """``M`` pairs of responses to the same prompt, as indices into a token tree's response list."""

    prompt: jax.Array
    """``[M]`` int: the prompt ``x``."""
    first: jax.Array
    """``[M]`` int: index of ``y¹`` (``0 .. N-1``)."""
    second: jax.Array
    """``[M]`` int: index of ``y²``."""

    def gather(self, values: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(values[x, y¹], values[x, y²])`` for per-(prompt, response) ``values [P, N, ...]`` (gold, features)."""
        return values[self.prompt, self.first], values[self.prompt, self.second]


def sample_response_pairs(key: jax.Array, probs: jax.Array, n_pairs: int) -> ResponsePairs:
    """Draw ``n_pairs`` prompts uniformly and two independent responses from ``probs [P, N]`` for each."""
    P = probs.shape[0]
    key_x, key_1, key_2 = jax.random.split(key, 3)
    prompt = jax.random.randint(key_x, (n_pairs,), 0, P)
    logits = jnp.log(probs)[prompt]
    return ResponsePairs(prompt, jax.random.categorical(key_1, logits), jax.random.categorical(key_2, logits))


class SegmentPairs(NamedTuple):
    """``M`` pairs of trajectory segments of a tabular MDP (e.g. a gridworld), as feature counts."""

    first: jax.Array
    """``[M, S·A]``: visit counts of each (s, a) in segment 1 (a linear reward model on them is ``Σ r(s, a)``)."""
    second: jax.Array
    """``[M, S·A]``: the same for segment 2."""
    gold_first: jax.Array
    """``[M]``: the gold return of segment 1 (the labeller's, hidden from the learner)."""
    gold_second: jax.Array
    """``[M]``: the gold return of segment 2."""
    states_first: jax.Array | None = None
    """``[M, L]`` int: the states of segment 1, for drawing it (:func:`toyrlhf.plotting.draw_trajectory`)."""
    actions_first: jax.Array | None = None
    """``[M, L]`` int: the actions of segment 1."""
    states_second: jax.Array | None = None
    """``[M, L]`` int: the states of segment 2."""
    actions_second: jax.Array | None = None
    """``[M, L]`` int: the actions of segment 2."""


def sample_segment_pairs(
    key: jax.Array, mdp: tabular.TabularMDP, policy, n_pairs: int, segment_length: int
) -> SegmentPairs:
    """Cut ``2·n_pairs`` segments of ``segment_length`` steps from episodes of ``policy`` and pair them.

    Each segment starts at a uniformly random step of its own episode (Christiano
    et al. 2017 compare short clips, not whole episodes). Gold = the segment's sum
    of rewards.
    """
    T = mdp.horizon
    if not 1 <= segment_length <= T:
        raise ValueError(f"segment_length must lie in [1, {T}], got {segment_length}")
    key_ep, key_start = jax.random.split(key)
    episodes = tabular.sample_episodes(key_ep, mdp, policy, 2 * n_pairs)
    starts = jax.random.randint(key_start, (2 * n_pairs,), 0, T - segment_length + 1)
    steps = starts[:, None] + jnp.arange(segment_length)
    s = jnp.take_along_axis(episodes.states, steps, axis=1)
    a = jnp.take_along_axis(episodes.actions, steps, axis=1)
    r = jnp.take_along_axis(episodes.rewards, steps, axis=1)
    S, A = mdp.n_states, mdp.n_actions
    counts = jax.vmap(lambda s_, a_: jnp.zeros(S * A).at[s_ * A + a_].add(1.0))(s, a)
    gold = r.sum(-1)
    m = n_pairs
    return SegmentPairs(counts[:m], counts[m:], gold[:m], gold[m:], s[:m], a[:m], s[m:], a[m:])


# ------------------------------------------------------------------------------------------
# Bradley–Terry reward models
# ------------------------------------------------------------------------------------------


def bradley_terry_loss(
    reward_first: jax.Array, reward_second: jax.Array, prefer_first: jax.Array, weights: jax.Array | None = None
) -> jax.Array:
    """Negative log-likelihood of preferences under Bradley–Terry (to minimise); scalar from ``[M]`` inputs.

    ``L = −Σ_m w_m [ z_m log σ(Δ_m) + (1 − z_m) log σ(−Δ_m) ] / Σ_m w_m`` with
    ``Δ_m = r(y¹_m) − r(y²_m)`` and ``z_m = prefer_first[m] ∈ [0, 1]`` (1: the
    first was preferred). Bradley & Terry (1952); Christiano et al. (2017).
    ``weights`` (default ones) mask padding or weight pairs by their probability.
    Sign: minimising raises the reward of preferred items.
    """
    if not reward_first.shape == reward_second.shape == prefer_first.shape:
        raise ValueError(
            f"reward_first, reward_second and prefer_first must share a shape, got "
            f"{reward_first.shape}, {reward_second.shape}, {prefer_first.shape}"
        )
    d = reward_first - reward_second
    nll = -(prefer_first * jax.nn.log_sigmoid(d) + (1.0 - prefer_first) * jax.nn.log_sigmoid(-d))
    w = jnp.ones_like(nll) if weights is None else weights
    return jnp.sum(w * nll) / jnp.maximum(jnp.sum(w), 1e-12)


@dataclasses.dataclass(frozen=True)
class RewardModelConfig:
    """A Bradley–Terry reward model ``r_θ(y) = f_θ(φ(y))`` and how it is fitted (static)."""

    kind: str = "linear"
    """``"linear"`` (``φ·θ``; with one-hot ``φ`` it is the tabular model: one reward per item) or ``"mlp"``."""
    hidden: tuple[int, ...] = (32, 32)
    """Hidden widths of the MLP (``kind="mlp"``)."""
    ensemble_size: int = 1
    """Members; with more than one, each is trained on a bootstrap resample and predictions are averaged."""
    n_steps: int = 500
    """Full-batch Adam steps."""
    learning_rate: float = 0.05
    """Adam step size."""
    l2: float = 0.0
    """``λ``: weight decay on all parameters (keeps unseen items' rewards at 0 in the tabular model)."""

    def __post_init__(self):
        if self.kind not in ("linear", "mlp"):
            raise ValueError(f"kind must be 'linear' or 'mlp', got {self.kind!r}")
        positive_int("ensemble_size", self.ensemble_size)
        positive_int("n_steps", self.n_steps)
        positive_float("learning_rate", self.learning_rate)
        non_negative_float("l2", self.l2)
        if self.kind == "mlp":
            MLP(hidden=self.hidden)  # the MLP checks its widths: fail here, not at the first fit

    @property
    def network(self):
        return Table() if self.kind == "linear" else MLP(hidden=self.hidden)


def init_reward_model(key: jax.Array, config: RewardModelConfig, n_features: int) -> Any:
    """Parameters of ``ensemble_size`` members (leading axis ``[E]`` on every leaf), float32."""
    keys = jax.random.split(key, config.ensemble_size)
    return jax.vmap(lambda k: config.network.init(k, n_features, 1))(keys)


def predict_reward(config: RewardModelConfig, params: Any, features: jax.Array) -> jax.Array:
    """``r_θ(φ)``: the ensemble-mean reward of features ``[..., F]`` → ``[...]``."""
    features = jnp.asarray(features, jnp.float32)
    members = jax.vmap(lambda p: config.network.apply(p, features)[..., 0])(params)
    return members.mean(0)


def fit_reward_model(
    key: jax.Array,
    config: RewardModelConfig,
    features_first: jax.Array,
    features_second: jax.Array,
    prefer_first: jax.Array,
    weights: jax.Array | None = None,
) -> tuple[Any, jax.Array]:
    """Fit by full-batch Adam on :func:`bradley_terry_loss`; returns ``(params, loss per step [n_steps])``.

    ``features_*`` are ``[M, F]`` and ``prefer_first`` ``[M]``; ``weights [M]``
    (default ones) lets a fixed-size array hold fewer pairs (zero weight = absent),
    so a sweep over label budgets is one compiled call. Pure and jit-able; the
    loss curve is returned so NaN can be detected by the caller. The loss curve is
    the mean over ensemble members.
    """
    instance("config", config, RewardModelConfig)
    features_first = jnp.asarray(features_first, jnp.float32)
    features_second = jnp.asarray(features_second, jnp.float32)
    prefer_first = jnp.asarray(prefer_first, jnp.float32)
    M, F = features_first.shape
    if features_second.shape != (M, F) or prefer_first.shape != (M,):
        raise ValueError(
            f"expected features_first [M, F], features_second [M, F], prefer_first [M]; got "
            f"{features_first.shape}, {features_second.shape}, {prefer_first.shape}"
        )
    net = config.network

    def data_loss(p, w):
        r1, r2 = net.apply(p, features_first)[..., 0], net.apply(p, features_second)[..., 0]
        return bradley_terry_loss(r1, r2, prefer_first, w)

    return _fit_bradley_terry(key, config, F, data_loss, prefer_first, weights)


def fit_tabular_reward(
    key: jax.Array,
    config: RewardModelConfig,
    first: jax.Array,
    second: jax.Array,
    prefer_first: jax.Array,
    n_items: int,
    weights: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
    """The tabular reward model (one free reward per item) fitted on item indices: ``(r̂ [n_items], losses)``.

    The same model and fit as :func:`fit_reward_model` with ``kind="linear"`` on one-hot
    features of ``n_items`` items (zero start, full-batch Adam, ``l2``, ensembles), but each
    step costs ``O(M + n_items)`` instead of ``O(M · n_items)``: ``first`` and ``second`` are
    ``[M]`` int indices (a response of prompt ``x`` is item ``x · N + y``). Returns the
    ensemble-mean reward of every item (float32) and the loss curve.
    """
    instance("config", config, RewardModelConfig)
    if config.kind != "linear":
        raise ValueError(f"a tabular reward model needs config.kind = 'linear', got {config.kind!r}")
    first, second = jnp.asarray(first), jnp.asarray(second)
    prefer_first = jnp.asarray(prefer_first, jnp.float32)
    if first.ndim != 1 or first.shape != second.shape or prefer_first.shape != first.shape:
        raise ValueError(
            f"expected first [M], second [M], prefer_first [M]; got {first.shape}, {second.shape}, {prefer_first.shape}"
        )
    if not jnp.issubdtype(first.dtype, jnp.integer) or not jnp.issubdtype(second.dtype, jnp.integer):
        raise TypeError("first and second must be integer item indices")
    net = Table()

    def data_loss(p, w):
        return bradley_terry_loss(net.apply(p, first)[..., 0], net.apply(p, second)[..., 0], prefer_first, w)

    params, losses = _fit_bradley_terry(key, config, n_items, data_loss, prefer_first, weights)
    return params[..., 0].mean(0), losses


def _fit_bradley_terry(key, config: RewardModelConfig, n_features: int, data_loss, prefer_first, weights):
    """Full-batch Adam on ``data_loss(params, weights [M])`` (a Bradley–Terry loss) plus ``l2``, per member."""
    M = prefer_first.shape[0]
    weights = jnp.ones(M, jnp.float32) if weights is None else jnp.asarray(weights, jnp.float32)
    tx = optax.adam(config.learning_rate)
    key_init, key_boot = jax.random.split(key)
    params = init_reward_model(key_init, config, n_features)
    if config.ensemble_size > 1:  # bootstrap: multinomial resampling weights per member
        draws = jax.random.categorical(key_boot, jnp.log(weights / weights.sum()), shape=(config.ensemble_size, M))
        member_weights = jax.vmap(lambda d: jnp.zeros(M).at[d].add(1.0))(draws).astype(jnp.float32)
    else:
        member_weights = weights[None]

    def fit_one(p, w):
        def loss_fn(p):
            penalty = sum(jnp.sum(x**2) for x in jax.tree.leaves(p))
            return data_loss(p, w) + config.l2 * penalty

        return minimize(loss_fn, p, tx, config.n_steps)

    params, losses = jax.vmap(fit_one)(params, member_weights)
    return params, losses.mean(0)


# ------------------------------------------------------------------------------------------
# Features of token responses
# ------------------------------------------------------------------------------------------


def token_count_features(responses: jax.Array, vocab_size: int, eos: bool = True, length_squared: bool = False):
    """``φ(y)``: counts of each content token, optionally with ``L`` and ``L²`` appended; ``[N, F]`` float32.

    Counts alone make a reward that is additive over tokens (``Σ_i w[y_i]``): it
    cannot express a preferred length, so it is *misspecified* for
    :class:`~toyrlhf.envs.token_mdp.ConcaveQuality`; with ``length_squared`` it can
    represent that gold reward exactly (*well-specified*).
    """
    responses = jnp.asarray(responses)
    length = response_length(responses, eos)
    in_response = jnp.arange(responses.shape[-1]) < length[..., None]
    counts = jnp.sum(jax.nn.one_hot(responses, vocab_size) * in_response[..., None], axis=-2)
    if eos:
        counts = counts[..., 1:]
    parts = [counts]
    if length_squared:
        L = length.astype(jnp.float32)[..., None]
        parts += [L, L**2]
    return jnp.concatenate(parts, axis=-1).astype(jnp.float32)


def per_prompt_features(features: jax.Array, n_prompts: int) -> jax.Array:
    """``[P, N, P·F]``: ``one_hot(x) ⊗ φ(y)``, so a linear model has separate weights per prompt."""
    eye = jnp.eye(n_prompts, dtype=features.dtype)
    return jnp.einsum("px,nf->pnxf", eye, features).reshape(n_prompts, features.shape[0], -1)


def check_finite_losses(losses, name: str = "reward model") -> None:
    """Raise FloatingPointError if a fitted model's loss curve (any shape) holds NaN or inf."""
    losses = np.asarray(losses)
    if not np.all(np.isfinite(losses)):
        raise FloatingPointError(f"{name} training produced NaN or inf loss values; lower the learning rate")
