"""Direct Preference Optimization (Rafailov et al. 2023) and IPO (Azar et al. 2023): RLHF's RL step, offline.

(Named in full on purpose: "DPO" also means other things in RL.)

RLHF fits a reward model ``r`` to preferences and then maximises
``E[r] − β KL(π ‖ π_ref)``, whose optimum is ``π_β ∝ π_ref exp(r/β)``
(:mod:`toyrlhf.algorithms.tilted`). Inverting that relation,
``r(x, y) = β log π(y|x)/π_ref(y|x) + β log Z(x)``: every policy *implies* a
reward, and the partition function cancels in a Bradley–Terry comparison. Direct
Preference Optimization fits the policy directly with the Bradley–Terry loss on
the implied reward:

    L_DPO(θ) = −E_{(x, y¹, y², z)} [ z log σ(h_θ) + (1 − z) log σ(−h_θ) ],
    h_θ = β [ log π_θ(y¹|x)/π_ref(y¹|x) − log π_θ(y²|x)/π_ref(y²|x) ],

i.e. :func:`toyrlhf.algorithms.preferences.bradley_terry_loss` applied to
``β log π_θ/π_ref`` (the same function, not a copy). With labels from a
Bradley–Terry labeller on a reward ``g`` (temperature τ, no random answers) and
pairs covering the reference's support, the population minimiser implies
``β log π/π_ref = g/τ + const(x)``: exactly the KL-tilted optimum with reward
``g/τ`` (tested on an enumerable space). DPO uses no reward model, no rollouts
and no environment steps: only the preference pairs and the reference policy.

Pseudocode::

    ref_logp ← log π_ref(y¹|x), log π_ref(y²|x) for every pair      (once, frozen)
    θ ← θ_ref
    repeat n_steps:  θ ← Adam(θ, ∇_θ L_DPO(θ))                       (full batch)

**IPO** (Identity Preference Optimisation, Azar et al. 2023, eq. 17). DPO's
optimum exists only if every preference probability is strictly between 0 and
1; with finite labels a response that won every comparison it took part in
("undefeated") has an empirical preference of 1, and the Bradley–Terry loss keeps
falling as its implied reward grows: DPO drives its probability relative to the
responses it beat towards 1, whatever β. IPO regresses the log-ratio difference
onto a bounded target instead,

    L_IPO(θ) = E_{(x, y¹, y², z)} [ ( h_θ − (2z − 1)/(2τ) )² ],
    h_θ = log π_θ(y¹|x)/π_ref(y¹|x) − log π_θ(y²|x)/π_ref(y²|x),

(for ``z = 1`` this is Azar et al.'s ``(h(y_w, y_l) − 1/(2τ))²``), whose population
minimiser, with pairs drawn from ``μ`` and a policy free on ``μ``'s support, is
``π ∝ π_ref exp(p(y ≻ μ)/τ)``: the maximiser of ``E_{y~π, y'~μ}[p(y ≻ y')] − τ KL(π ‖ π_ref)``
(tested on an enumerable tree). On Azar et al.'s three-action example (uniform
reference, the pairs ``a ≻ b``, ``b ≻ c``, ``a ≻ c`` once each) the least-squares
solution is ``log π(a)/π(b) = log π(b)/π(c) = 1/(3τ)`` (:func:`ipo_three_action_optimum`),
while DPO's ``π(a)`` tends to 1. ``DPOConfig(loss="ipo")`` selects IPO, with
``beta`` playing τ (the KL coefficient of both objectives).

Policies. ``log_prob_fn(params, prompt [M], tokens [M, T]) -> [M]`` scores
responses; :func:`tree_log_prob_fn` gives the tabular policy on an enumerated
token tree (logits ``[S, A]``, the same parameters as a PPO ``Table`` actor on
one-hot observations of the tree), :func:`network_log_prob_fn` any
:mod:`toyrlhf.nets` network on :class:`~toyrlhf.envs.token_mdp.TokenEnv`
observations (any vocabulary size).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from toyrlhf.algorithms.preferences import bradley_terry_loss
from toyrlhf.envs.token_mdp import TokenEnv, TokenState, TokenTask, path_state_indices, step_mask
from toyrlhf.optimize import minimize
from toyrlhf.validation import instance, positive_float, positive_int

LogProbFn = Callable[[Any, jax.Array, jax.Array], jax.Array]


@dataclasses.dataclass(frozen=True)
class DPOConfig:
    """Settings of Direct Preference Optimization."""

    beta: float = 0.1
    """``β``: the KL coefficient of the RLHF objective whose optimum DPO targets."""
    n_steps: int = 1000
    """Full-batch Adam steps."""
    learning_rate: float = 0.05
    """Adam step size."""
    loss: str = "dpo"
    """``"dpo"`` (:func:`dpo_loss`) or ``"ipo"`` (:func:`ipo_loss`, with ``beta`` as IPO's τ)."""

    def __post_init__(self):
        positive_float("beta", self.beta)
        positive_int("n_steps", self.n_steps)
        positive_float("learning_rate", self.learning_rate)
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")


LOSSES = ("dpo", "ipo")
"""The preference losses :func:`make_train` knows."""


def dpo_loss(
    log_prob_first: jax.Array,
    log_prob_second: jax.Array,
    ref_log_prob_first: jax.Array,
    ref_log_prob_second: jax.Array,
    prefer_first: jax.Array,
    beta,
    weights: jax.Array | None = None,
) -> jax.Array:
    """``L_DPO`` (see the module docstring) from sequence log-probabilities ``[M]``; a scalar to minimise.

    ``prefer_first ∈ [0, 1]`` (1: the first response was preferred). Sign: minimising
    raises ``log π(y_preferred)`` relative to the reference.
    """
    implied_first = beta * (log_prob_first - ref_log_prob_first)
    implied_second = beta * (log_prob_second - ref_log_prob_second)
    return bradley_terry_loss(implied_first, implied_second, prefer_first, weights)


def ipo_loss(
    log_prob_first: jax.Array,
    log_prob_second: jax.Array,
    ref_log_prob_first: jax.Array,
    ref_log_prob_second: jax.Array,
    prefer_first: jax.Array,
    tau,
    weights: jax.Array | None = None,
) -> jax.Array:
    """``L_IPO`` (Azar et al. 2023, eq. 17; see the module docstring) from sequence log-probabilities ``[M]``.

    The weighted mean over pairs of ``(h − (2z − 1)/(2τ))²`` with ``h`` the difference of the two
    log-ratios to the reference. A soft label ``z = p`` gives the expected loss up to a constant.
    """
    h = (log_prob_first - ref_log_prob_first) - (log_prob_second - ref_log_prob_second)
    target = (2.0 * prefer_first - 1.0) / (2.0 * tau)
    sq = (h - target) ** 2
    w = jnp.ones_like(sq) if weights is None else weights
    return jnp.sum(w * sq) / jnp.maximum(jnp.sum(w), 1e-12)


def ipo_three_action_optimum(tau) -> jax.Array:
    """``[3]``: IPO's optimum on Azar et al.'s example (uniform reference; ``a ≻ b``, ``b ≻ c``, ``a ≻ c``).

    Minimising ``Σ (h − 1/(2τ))²`` over the three pairs with ``d₁ = f(a) − f(b)``, ``d₂ = f(b) − f(c)``
    (``f = log π/π_ref``): ``(d₁ − k)² + (d₂ − k)² + (d₁ + d₂ − k)²`` with ``k = 1/(2τ)`` is minimised at
    ``d₁ = d₂ = 2k/3 = 1/(3τ)``, so ``π ∝ (e^{2d}, e^{d}, 1)``.
    """
    d = 1.0 / (3.0 * jnp.asarray(tau, dtype=jnp.float64))
    return jax.nn.softmax(jnp.stack([2.0 * d, d, jnp.zeros_like(d)], -1), -1)


def tree_log_prob_fn(task: TokenTask) -> LogProbFn:
    """``log π(y|x)`` of a tabular tree policy with logits ``[S, A]`` (states of :func:`enumerate_tokens`)."""

    def log_prob(logits, prompt, tokens):
        states = jax.vmap(lambda x, y: path_state_indices(task, x, y))(prompt, tokens)  # [M, T]
        log_pi = jax.nn.log_softmax(logits, axis=-1)[states, tokens]
        return jnp.sum(jnp.where(step_mask(task, tokens), log_pi, 0.0), axis=-1)

    return log_prob


def network_log_prob_fn(env: TokenEnv, network) -> LogProbFn:
    """``log π(y|x)`` of a :mod:`toyrlhf.nets` network acting on :class:`TokenEnv` observations."""
    task = env.task

    def log_prob(params, prompt, tokens):
        T = task.length

        def one(x, y):
            prefixes = jnp.where(jnp.arange(T)[None, :] < jnp.arange(T)[:, None], y[None, :], 0)
            obs = jax.vmap(lambda p, t: env.observe(TokenState(x, p, t)))(prefixes, jnp.arange(T))
            log_pi = jax.nn.log_softmax(network.apply(params, obs), axis=-1)
            return jnp.take_along_axis(log_pi, y[:, None], axis=-1)[:, 0]

        steps = jax.vmap(one)(prompt, tokens)
        return jnp.sum(jnp.where(step_mask(task, tokens), steps, 0.0), axis=-1)

    return log_prob


def make_train(config: DPOConfig, log_prob_fn: LogProbFn):
    """``train(ref_params, prompt, first, second, prefer_first, weights=None) -> (params, losses [n_steps])``.

    The loss is ``config.loss``'s (:func:`dpo_loss` or :func:`ipo_loss`, with ``config.beta``).

    ``prompt [M]``, ``first`` and ``second`` ``[M, T]`` token responses, ``prefer_first [M]``;
    ``weights [M]`` masks or weights pairs (a fixed-size array can then hold any label budget).
    Starts from the reference (the SFT policy) and is deterministic (full batch), so
    it takes no key. Pure and jit-able; vmap over data for seeds. ``~isfinite(losses)``
    flags the steps that met or made NaN/inf (:func:`toyrlhf.optimize.minimize`).
    """
    instance("config", config, DPOConfig)
    if not callable(log_prob_fn):
        raise TypeError(f"log_prob_fn must be a function (params, prompt, tokens) -> [M], got {log_prob_fn!r}")
    tx = optax.adam(config.learning_rate)
    preference_loss = dpo_loss if config.loss == "dpo" else ipo_loss

    def train(ref_params, prompt, first, second, prefer_first, weights=None):
        ref_first = jax.lax.stop_gradient(log_prob_fn(ref_params, prompt, first))
        ref_second = jax.lax.stop_gradient(log_prob_fn(ref_params, prompt, second))

        def loss_fn(params):
            return preference_loss(
                log_prob_fn(params, prompt, first),
                log_prob_fn(params, prompt, second),
                ref_first,
                ref_second,
                prefer_first,
                config.beta,
                weights,
            )

        return minimize(loss_fn, ref_params, tx, config.n_steps)

    return train


def make_train_pair(config: DPOConfig, log_prob_fn: LogProbFn):
    """Like :func:`make_train`, but fits DPO and IPO (``config.loss`` is ignored) in one vmapped program.

    ``train(...)`` returns ``(params, losses)`` with a leading axis ``[2]``: index 0 is DPO, 1 is IPO
    (both with ``config.beta``). One compiled optimisation loop serves both losses.
    """
    instance("config", config, DPOConfig)
    if not callable(log_prob_fn):
        raise TypeError(f"log_prob_fn must be a function (params, prompt, tokens) -> [M], got {log_prob_fn!r}")
    tx = optax.adam(config.learning_rate)

    def train(ref_params, prompt, first, second, prefer_first, weights=None):
        ref_first = jax.lax.stop_gradient(log_prob_fn(ref_params, prompt, first))
        ref_second = jax.lax.stop_gradient(log_prob_fn(ref_params, prompt, second))

        def fit(is_ipo):
            def loss_fn(params):
                args = (log_prob_fn(params, prompt, first), log_prob_fn(params, prompt, second), ref_first, ref_second,
                        prefer_first, config.beta, weights)
                return jnp.where(is_ipo, ipo_loss(*args), dpo_loss(*args))

            return minimize(loss_fn, ref_params, tx, config.n_steps)

        return jax.vmap(fit)(jnp.array([False, True]))

    return train
