"""Maximum-entropy inverse RL (Ziebart et al. 2008), exact and tabular.

Model. The demonstrator is assumed to follow the soft-optimal (MaxEnt) policy of
an unknown reward ``r_θ(s, a) = φ(s, a) · θ`` at temperature ``τ``:

    π_θ,t(a|s) = exp((Q_θ,t(s, a) - V_θ,t(s)) / τ),    V_θ,t(s) = τ log Σ_a exp(Q_θ,t(s, a) / τ)

(``tabular.solve(mdp_θ, temperature=τ)``: soft value iteration with the *known*
dynamics). θ is fitted by minimising the MaxEnt (causal entropy) dual

    L(θ) = (1/τ) ( Σ_s init(s) V_θ,0(s)  -  Σ_{s,a} μ_D(s, a) r_θ(s, a) ),
    μ_D(s, a) = (1/N) Σ_n Σ_t 1[s^n_t = s, a^n_t = a]          (empirical occupancy),

which is convex in θ and whose gradient is occupancy matching, because the
soft value's derivative with respect to the reward is the model's occupancy:

    ∇_θ L = (1/τ) φᵀ( μ_θ - μ_D ),    μ_θ = Σ_t ρ^θ_t  (``tabular.occupancy``, exact).

``L`` is the expected negative log-likelihood of the demonstrated actions,
``-(1/N) Σ_n Σ_t log π_θ,t(a^n_t | s^n_t)``, with the expectation taken over the
dynamics' randomness; with deterministic dynamics and the demonstrations' own
start distribution the two are equal (the test checks both identities). This
module computes the gradient directly. Adam on θ, a fixed number of steps,
inside one ``lax.scan``.

Evaluation. A recovered reward is judged by the return its (hard) optimal policy
earns under the *true* reward: ``tabular.evaluate(mdp, solve(mdp_θ).policy)``.
The reward itself is identifiable only up to shaping and constants, so
comparing ``r_θ`` with ``R`` directly would be meaningless.

Why it does not compound. The learner never copies actions state by state: it
plans through the known dynamics. A state the demonstrations never show still
gets the action that leads back to demonstrated behaviour, because the soft
values of the states it leads to are learned; e.g. on Reset Cliff, falling into
the absorbing state (never demonstrated, so its reward is pushed down) is avoided
even in states nobody demonstrated.

Resources: the expert labels in the demonstrations, no environment steps (all
expectations are exact), and the known dynamics.

Default features: one-hot ``(s, a)`` (``φ = I``), so ``r_θ`` is a free table.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from toyrlhf import tabular
from toyrlhf.algorithms import bc
from toyrlhf.algorithms.resources import Resources
from toyrlhf.demonstrations import Demonstrations
from toyrlhf.diagnostics import all_finite
from toyrlhf.validation import instance, non_negative_float, positive_float, positive_int


@dataclasses.dataclass(frozen=True)
class MaxEntIRLConfig:
    """Settings of tabular MaxEnt IRL."""

    n_steps: int = 300
    """Adam steps on θ (static: the length of the scan)."""
    learning_rate: float = 0.1
    """Adam step size."""
    temperature: float = 1.0
    """τ of the assumed soft-optimal demonstrator."""
    l2: float = 0.0
    """Weight of ``(l2 / 2) |θ|²`` added to the loss (0: pure maximum likelihood)."""

    def __post_init__(self):
        positive_int("n_steps", self.n_steps)
        positive_float("learning_rate", self.learning_rate)
        positive_float("temperature", self.temperature)
        non_negative_float("l2", self.l2)


class MaxEntIRLResult(NamedTuple):
    """Output of one MaxEnt IRL run."""

    theta: jax.Array
    """``[F]``: reward weights."""
    reward: jax.Array
    """``[S, A]``: the recovered reward ``φ · θ``."""
    policy: jax.Array
    """``[T, S, A]``: hard optimal policy of the recovered reward (what is evaluated); first ``horizon`` steps."""
    soft_policy: jax.Array
    """``[T, S, A]``: the fitted soft-optimal policy ``π_θ``."""
    losses: jax.Array
    """``[n_steps]``: the dual ``L(θ)`` before each step (expected negative log-likelihood per episode)."""
    resources: Resources
    """Demonstration labels, no env steps, known dynamics."""
    nonfinite: jax.Array
    """``[n_steps]`` bool: the step's loss, gradient or new θ was NaN/inf (``diagnostics.raise_if_nonfinite``)."""


def with_reward(mdp: tabular.TabularMDP, reward: jax.Array) -> tabular.TabularMDP:
    """The same dynamics, initial distribution and horizon with reward ``[S, A]`` (the learner's model).

    Terminal flags are dropped on purpose: absorbing states stay absorbing, but the
    learned reward there is free (DESIGN.md pitfall 7). Learning a negative reward
    for the absorbing "fallen" state is exactly how IRL learns not to fall.
    """
    return tabular.TabularMDP.from_successors(
        mdp.next_states, mdp.next_probs, reward, mdp.init, mdp.horizon, mdp.discount
    )


def empirical_occupancy(demos: Demonstrations, n_states: int, n_actions: int) -> jax.Array:
    """``[S, A]``: ``(1/N) Σ_n Σ_t 1[s^n_t = s, a^n_t = a]``, the demonstrations' occupancy."""
    counts = bc.action_counts(demos.observations, demos.actions, n_states, n_actions, False, demos.valid)
    return counts / demos.n_episodes


def negative_log_likelihood(
    theta: jax.Array, mdp: tabular.TabularMDP, features: jax.Array, demos: Demonstrations, temperature
) -> jax.Array:
    """``L(θ) = -(1/N) Σ_n Σ_t log π_θ,t(a^n_t | s^n_t)`` under the soft-optimal policy of ``φ · θ``."""
    soft = tabular.solve(with_reward(mdp, features @ theta), temperature)
    log_pi = (soft.Q - soft.V[..., None]) / temperature  # [T, S, A]
    T = demos.horizon
    steps = jnp.broadcast_to(jnp.arange(T), demos.actions.shape)
    picked = log_pi[steps, demos.observations, demos.actions]
    return -jnp.sum(jnp.where(demos.valid, picked, 0.0)) / demos.n_episodes


def shorter_horizon(x: jax.Array, horizon) -> jax.Array:
    """Re-index a ``[T, ...]`` backward-induction output for a shorter (possibly traced) ``horizon <= T``.

    Backward induction from ``V_T = 0`` computes, at index ``i``, the quantity with
    ``T - i`` steps to go; a problem with ``horizon`` steps uses indices
    ``T - horizon, ..., T - 1``. Returns ``y`` with ``y[t] = x[t + T - horizon]`` for
    ``t < horizon`` (entries ``t >= horizon`` are padding). This is how one
    compiled MaxEnt IRL serves every horizon of a sweep.
    """
    T = x.shape[0]
    return x[jnp.clip(jnp.arange(T) + T - horizon, 0, T - 1)]


def loss_and_gradient(theta, mdp: tabular.TabularMDP, features, mu_demo, temperature, horizon=None):
    """``(L(θ), ∇_θ L)`` from one soft value iteration and one forward pass (module docstring).

    ``L(θ) = (1/τ)(init · V_θ,0 - μ_D · r_θ)`` and ``∇_θ L = (1/τ) φᵀ(μ_θ - μ_D)`` with
    ``μ_θ = Σ_{t < horizon} ρ^θ_t`` exact. ``horizon`` (default ``mdp.horizon``) may be
    shorter than the MDP's and traced.
    """
    horizon = mdp.horizon if horizon is None else horizon
    reward = features @ theta
    soft = tabular.solve(with_reward(mdp, reward), temperature)
    loss = (mdp.init @ soft.V[mdp.horizon - horizon] - jnp.sum(mu_demo * reward)) / temperature
    rho = tabular.occupancy(mdp, shorter_horizon(soft.policy, horizon))  # [T, S, A]
    mu_model = jnp.sum(jnp.where((jnp.arange(mdp.horizon) < horizon)[:, None, None], rho, 0.0), axis=0)
    return loss, jnp.einsum("saf,sa->f", features, mu_model - mu_demo) / temperature


def dual_loss(theta, mdp: tabular.TabularMDP, features, mu_demo, temperature, horizon=None) -> jax.Array:
    """``L(θ)`` alone (a scalar); see :func:`loss_and_gradient`."""
    return loss_and_gradient(theta, mdp, features, mu_demo, temperature, horizon)[0]


def make_train(config: MaxEntIRLConfig, mdp: tabular.TabularMDP, features: jax.Array | None = None):
    """``train(demos) -> MaxEntIRLResult``: fit θ on ``demos`` with ``mdp``'s dynamics (not its reward).

    ``features`` is ``[S, A, F]`` (default: one-hot (s, a), ``F = S A``). ``demos``
    must have ``mdp.horizon`` steps. Deterministic: vmap over data sets for seeds.
    """
    instance("config", config, MaxEntIRLConfig)
    S, A = mdp.n_states, mdp.n_actions
    if features is None:
        features = jnp.eye(S * A).reshape(S, A, S * A)
    features = jnp.asarray(features, dtype=jnp.float64)
    if features.ndim != 3 or features.shape[:2] != (S, A):
        raise ValueError(f"features must have shape [S, A, F] with S, A = {S, A}, got {features.shape}")
    optimizer = optax.adam(config.learning_rate)
    tau = config.temperature

    def train(demos: Demonstrations, horizon=None) -> MaxEntIRLResult:
        """Fit on ``demos`` (``mdp.horizon`` steps); with ``horizon`` (traced int ``<= mdp.horizon``)
        only their first ``horizon`` steps are used and the problem is the horizon-``horizon`` one;
        the returned policies are then valid for their first ``horizon`` steps."""
        if demos.horizon != mdp.horizon:
            raise ValueError(f"demos have {demos.horizon} steps, the MDP's horizon is {mdp.horizon}")
        horizon = mdp.horizon if horizon is None else horizon
        used = demos.valid & (jnp.arange(mdp.horizon) < horizon)
        mu_demo = empirical_occupancy(demos._replace(valid=used), S, A)

        def step(carry, _):
            theta, opt_state = carry
            loss, grad = loss_and_gradient(theta, mdp, features, mu_demo, tau, horizon)
            loss, grad = loss + 0.5 * config.l2 * theta @ theta, grad + config.l2 * theta
            updates, opt_state = optimizer.update(grad, opt_state)
            theta_new = optax.apply_updates(theta, updates)
            return (theta_new, opt_state), (loss, ~all_finite(loss, grad, theta_new))

        theta0 = jnp.zeros(features.shape[-1])
        (theta, _), (losses, nonfinite) = jax.lax.scan(
            step, (theta0, optimizer.init(theta0)), length=config.n_steps
        )
        reward = features @ theta
        model = with_reward(mdp, reward)
        hard = shorter_horizon(tabular.solve(model).policy, horizon)
        soft = shorter_horizon(tabular.solve(model, tau).policy, horizon)
        resources = Resources(expert_labels=jnp.sum(used), env_steps=0, known_dynamics=True)
        return MaxEntIRLResult(theta, reward, hard, soft, losses, resources, nonfinite)

    return train
