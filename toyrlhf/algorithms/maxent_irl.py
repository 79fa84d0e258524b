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

Policy class (``MaxEntIRLConfig.time_indexed``). A stationary reward ``r_θ(s, a)``
pools the demonstrations of every step, as stationary BC does; a time-indexed
reward ``r_θ,t(s, a) = φ(s, a) · θ_t`` matches the occupancy of each step
separately and sees ``N`` samples per step, as time-indexed BC does. Compare a
learner with BC of its own class (Foster et al. 2024).

Absorbing states (terminal states of ``mdp``: lava, a fallen state). What the
learner may believe about them is a stated setting:

- ``absorbing_reward="learned"``, ``absorbing_steps="horizon"``: the reward there
  is a free parameter and every step spent there counts, in the demonstrations'
  occupancy and the model's alike. A demonstration that slips into lava and sits
  there for the rest of the horizon then counts as many lava steps, and IRL can
  conclude that lava pays;
- ``absorbing_reward="learned"``, ``absorbing_steps="once"``: a terminal state's
  reward (``φ_abs(s') = mean_a φ(s', a)``) is paid once, on the step that enters
  it: the features of a non-terminal ``(s, a)`` become
  ``φ(s, a) + Σ_{s' terminal} P(s'|s, a) φ_abs(s')`` and a terminal state's are 0,
  so each fall counts one absorbing step, in both occupancies;
- ``absorbing_reward="zero"``: the known zero reward of a terminal state: its
  features are 0 (nothing is learned there, ``absorbing_steps`` is moot).
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
from toyrlhf.validation import boolean, instance, non_negative_float, positive_float, positive_int

ABSORBING_REWARDS = ("learned", "zero")
"""Values of ``MaxEntIRLConfig.absorbing_reward``."""
ABSORBING_STEPS = ("horizon", "once")
"""Values of ``MaxEntIRLConfig.absorbing_steps``."""


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
    time_indexed: bool = False
    """Reward class: one reward per step ``r_θ,t`` (True, ``θ`` is ``[T, F]``) or one for all steps (False)."""
    absorbing_reward: str = "learned"
    """Terminal states' reward: ``"learned"`` (a free parameter) or ``"zero"`` (known: terminal states pay 0)."""
    absorbing_steps: str = "horizon"
    """With a learned absorbing reward: ``"horizon"`` (every step spent in a terminal state counts) or
    ``"once"`` (its reward is paid once, on the step that enters it). See the module docstring."""

    def __post_init__(self):
        positive_int("n_steps", self.n_steps)
        positive_float("learning_rate", self.learning_rate)
        positive_float("temperature", self.temperature)
        non_negative_float("l2", self.l2)
        boolean("time_indexed", self.time_indexed)
        if self.absorbing_reward not in ABSORBING_REWARDS:
            raise ValueError(f"absorbing_reward must be one of {ABSORBING_REWARDS}, got {self.absorbing_reward!r}")
        if self.absorbing_steps not in ABSORBING_STEPS:
            raise ValueError(f"absorbing_steps must be one of {ABSORBING_STEPS}, got {self.absorbing_steps!r}")


class MaxEntIRLResult(NamedTuple):
    """Output of one MaxEnt IRL run."""

    theta: jax.Array
    """``[F]`` (stationary) or ``[T, F]`` (time-indexed): reward weights."""
    reward: jax.Array
    """``[S, A]`` or ``[T, S, A]``: the recovered reward ``φ · θ`` (per step of the problem)."""
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


def empirical_occupancy(demos: Demonstrations, n_states: int, n_actions: int, time_indexed: bool = False) -> jax.Array:
    """``[S, A]``: ``(1/N) Σ_n Σ_t 1[s^n_t = s, a^n_t = a]``, the demonstrations' occupancy (``[T, S, A]`` per step
    with ``time_indexed``)."""
    counts = bc.action_counts(demos.observations, demos.actions, n_states, n_actions, time_indexed, demos.valid)
    return counts / demos.n_episodes


def absorbing_features(mdp: tabular.TabularMDP, features, absorbing_reward: str = "learned",
                       absorbing_steps: str = "horizon") -> jax.Array:
    """``[S, A, F]``: ``features`` with the stated treatment of ``mdp``'s terminal states (module docstring).

    ``"learned"``/``"horizon"`` returns ``features`` unchanged; ``"zero"`` zeroes the
    terminal states' rows; ``"learned"``/``"once"`` moves a terminal state's feature
    ``mean_a φ(s', a)`` onto the transitions that enter it, weighted by ``P(s'|s, a)``.
    """
    if absorbing_reward not in ABSORBING_REWARDS or absorbing_steps not in ABSORBING_STEPS:
        raise ValueError(f"absorbing_reward must be in {ABSORBING_REWARDS} and absorbing_steps in {ABSORBING_STEPS}, "
                         f"got {absorbing_reward!r}, {absorbing_steps!r}")
    features = jnp.asarray(features, dtype=jnp.float64)
    if absorbing_reward == "learned" and absorbing_steps == "horizon":
        return features
    terminal = jnp.asarray(mdp.terminal)
    kept = jnp.where(terminal[:, None, None], 0.0, features)
    if absorbing_reward == "zero":
        return kept
    S, A = mdp.n_states, mdp.n_actions
    rows = jnp.broadcast_to(jnp.arange(S)[:, None, None], mdp.next_states.shape)
    cols = jnp.broadcast_to(jnp.arange(A)[None, :, None], mdp.next_states.shape)
    P = jnp.zeros((S, A, S)).at[rows, cols, mdp.next_states].add(mdp.next_probs)
    into_terminal = jnp.where(terminal[None, None, :] & ~terminal[:, None, None], P, 0.0)  # [S, A, S']
    return kept + jnp.einsum("sat,tf->saf", into_terminal, features.mean(axis=1))


def _rewards(features, theta, horizon_steps: int) -> jax.Array:
    """``[T, S, A]``: the reward of each step of the problem (a stationary θ ``[F]`` is repeated)."""
    if theta.ndim == 1:
        return jnp.broadcast_to(features @ theta, (horizon_steps, *features.shape[:2]))
    return jnp.einsum("saf,tf->tsa", features, theta)


def _backward(mdp: tabular.TabularMDP, rewards, horizon, temperature=None) -> tabular.Solution:
    """Backward induction with the per-step ``rewards [T, S, A]`` of the horizon-``horizon`` problem.

    Index ``i`` of the output is ``T - i`` steps to go, so the problem's step ``t`` is
    index ``t + T - horizon`` (:func:`shorter_horizon` re-indexes); ``temperature=None``: hard.
    """
    T = mdp.horizon
    per_index = rewards[jnp.clip(jnp.arange(T) - (T - horizon), 0, T - 1)]

    def backup(v_next, r):
        q = r + mdp.discount * mdp.expected_next(v_next)
        if temperature is None:
            return jnp.max(q, axis=-1), (q, jnp.max(q, axis=-1), tabular.greedy(q))
        v = temperature * jax.nn.logsumexp(q / temperature, axis=-1)
        return v, (q, v, jax.nn.softmax(q / temperature, axis=-1))

    _, (Q, V, policy) = jax.lax.scan(backup, jnp.zeros(mdp.n_states), per_index, reverse=True)
    return tabular.Solution(Q, V, policy)


def negative_log_likelihood(
    theta: jax.Array, mdp: tabular.TabularMDP, features: jax.Array, demos: Demonstrations, temperature
) -> jax.Array:
    """``L(θ) = -(1/N) Σ_n Σ_t log π_θ,t(a^n_t | s^n_t)`` under the soft-optimal policy of ``φ · θ``
    (``θ`` ``[F]`` stationary or ``[T, F]`` time-indexed)."""
    T = mdp.horizon
    soft = _backward(mdp, _rewards(features, theta, T), T, temperature)
    log_pi = (soft.Q - soft.V[..., None]) / temperature  # [T, S, A]
    steps = jnp.broadcast_to(jnp.arange(demos.horizon), demos.actions.shape)
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

    ``L(θ) = (1/τ)(init · V_θ,0 - Σ_t μ_D,t · r_θ,t)`` and ``∇_θ L = (1/τ) φᵀ(μ_θ - μ_D)`` with
    ``μ_θ = Σ_{t < horizon} ρ^θ_t`` exact (per step when ``θ`` is ``[T, F]``; ``mu_demo`` is then
    ``[T, S, A]``). ``horizon`` (default ``mdp.horizon``) may be shorter than the MDP's and traced.
    """
    T = mdp.horizon
    horizon = T if horizon is None else horizon
    rewards = _rewards(features, theta, T)  # [T, S, A], by step of the problem
    soft = _backward(mdp, rewards, horizon, temperature)
    first_h = (jnp.arange(T) < horizon)[:, None, None]
    demo_reward = jnp.sum(mu_demo * (rewards if theta.ndim == 2 else rewards[0]))
    loss = (mdp.init @ soft.V[T - horizon] - demo_reward) / temperature
    rho = jnp.where(first_h, tabular.occupancy(mdp, shorter_horizon(soft.policy, horizon)), 0.0)  # [T, S, A]
    if theta.ndim == 1:
        return loss, jnp.einsum("saf,sa->f", features, rho.sum(0) - mu_demo) / temperature
    return loss, jnp.einsum("saf,tsa->tf", features, rho - mu_demo) / temperature


def dual_loss(theta, mdp: tabular.TabularMDP, features, mu_demo, temperature, horizon=None) -> jax.Array:
    """``L(θ)`` alone (a scalar); see :func:`loss_and_gradient`."""
    return loss_and_gradient(theta, mdp, features, mu_demo, temperature, horizon)[0]


def make_train(config: MaxEntIRLConfig, mdp: tabular.TabularMDP, features: jax.Array | None = None):
    """``train(demos) -> MaxEntIRLResult``: fit θ on ``demos`` with ``mdp``'s dynamics (not its reward).

    ``features`` is ``[S, A, F]`` (default: one-hot (s, a), ``F = S A``), before the
    config's treatment of absorbing states (:func:`absorbing_features`). ``demos``
    must have ``mdp.horizon`` steps. Deterministic: vmap over data sets for seeds.
    """
    instance("config", config, MaxEntIRLConfig)
    S, A, T = mdp.n_states, mdp.n_actions, mdp.horizon
    if features is None:
        features = jnp.eye(S * A).reshape(S, A, S * A)
    features = jnp.asarray(features, dtype=jnp.float64)
    if features.ndim != 3 or features.shape[:2] != (S, A):
        raise ValueError(f"features must have shape [S, A, F] with S, A = {S, A}, got {features.shape}")
    raw_features = features
    optimizer = optax.adam(config.learning_rate)
    tau = config.temperature
    theta_shape = (T, features.shape[-1]) if config.time_indexed else (features.shape[-1],)

    def train(demos: Demonstrations, horizon=None) -> MaxEntIRLResult:
        """Fit on ``demos`` (``mdp.horizon`` steps); with ``horizon`` (traced int ``<= mdp.horizon``)
        only their first ``horizon`` steps are used and the problem is the horizon-``horizon`` one;
        the returned policies are then valid for their first ``horizon`` steps."""
        if demos.horizon != mdp.horizon:
            raise ValueError(f"demos have {demos.horizon} steps, the MDP's horizon is {mdp.horizon}")
        horizon = mdp.horizon if horizon is None else horizon
        features = absorbing_features(mdp, raw_features, config.absorbing_reward, config.absorbing_steps)
        used = demos.valid & (jnp.arange(mdp.horizon) < horizon)
        mu_demo = empirical_occupancy(demos._replace(valid=used), S, A, config.time_indexed)

        def step(carry, _):
            theta, opt_state = carry
            loss, grad = loss_and_gradient(theta, mdp, features, mu_demo, tau, horizon)
            loss, grad = loss + 0.5 * config.l2 * jnp.sum(theta * theta), grad + config.l2 * theta
            updates, opt_state = optimizer.update(grad, opt_state)
            theta_new = optax.apply_updates(theta, updates)
            return (theta_new, opt_state), (loss, ~all_finite(loss, grad, theta_new))

        theta0 = jnp.zeros(theta_shape)
        (theta, _), (losses, nonfinite) = jax.lax.scan(
            step, (theta0, optimizer.init(theta0)), length=config.n_steps
        )
        rewards = _rewards(features, theta, T)
        hard = shorter_horizon(_backward(mdp, rewards, horizon).policy, horizon)
        soft = shorter_horizon(_backward(mdp, rewards, horizon, tau).policy, horizon)
        resources = Resources(expert_labels=jnp.sum(used), env_steps=0, known_dynamics=True)
        reward = rewards if config.time_indexed else rewards[0]
        return MaxEntIRLResult(theta, reward, hard, soft, losses, resources, nonfinite)

    return train
