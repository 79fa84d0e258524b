"""Semi-gradient TD(0) with linear features, as *expected* updates (no sampling): Baird's counterexample.

The value estimate is linear, ``v_w(s) = x(s)ᵀ w`` with features ``x(s)`` (``[S, F]``).
One expected semi-gradient TD(0) update ("semi-gradient DP", Sutton & Barto 2018, §11.2, eq. 11.9
with states weighted by ``μ``) is::

    w ← w + α Σ_s μ(s) Σ_a b(a|s) ρ(s, a) ( R(s, a) + γ Σ_{s'} P(s'|s, a) v_w(s') − v_w(s) ) x(s),

    ρ(s, a) = π(a|s) / b(a|s)        (importance ratio on the target policy π),

where ``μ`` is the state distribution the updates are made under and ``b`` the
policy whose actions are taken. Off-policy TD: ``μ = d_b`` (the behavior
policy's stationary distribution) with ratios ``ρ``. On-policy TD: ``b = π`` (so
``ρ = 1``) and ``μ = d_π``. The expectation over actions and next states is
computed exactly with the MDP's tables, so the whole trajectory of weights is a
deterministic linear recursion ``w_{k+1} = (I + α A) w_k`` with

    A = Xᵀ diag(μ) (γ P_π − I) X .

Off-policy, ``A`` can have an eigenvalue with a positive real part even though
every policy's true value is representable: the weights diverge. On Baird's
counterexample (:func:`toyrlhf.envs.toy_mdps.baird_counterexample`, γ = 0.99)
``A`` has the eigenvalue ``+0.2393`` under ``μ = d_b`` (uniform), so the norm grows
like ``(1 + 0.2393 α)^k``; on-policy, ``μ = d_π`` puts all its mass on the lower
state, the update only shrinks ``v_w`` there, and the norm never increases.

Pseudocode::

    w = w0
    repeat n_updates times:
        v = X w                                   # [S]
        q = R + γ E_{s'|s,a}[v(s')]               # [S, A]  exact, from the tables
        δ(s) = Σ_a π(a|s) (q(s, a) − v(s))        # b·ρ = π wherever b > 0
        w = w + α Xᵀ (μ ⊙ δ)
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from toyrlhf import tabular
from toyrlhf.envs.toy_mdps import baird_counterexample
from toyrlhf.validation import positive_int


def importance_ratios(behavior, target) -> jax.Array:
    """``ρ(s, a) = π(a|s) / b(a|s)``, shape ``[S, A]``; zero where ``b = 0`` (those actions are never taken).

    Raises ValueError (when concrete) if the target takes an action the behavior never
    does: off-policy learning from ``b`` cannot see it.
    """
    behavior, target = jnp.asarray(behavior), jnp.asarray(target)
    if behavior.shape != target.shape or behavior.ndim != 2:
        raise ValueError(f"behavior and target must both be [S, A] policies, got {behavior.shape} and {target.shape}")
    if not isinstance(behavior, jax.core.Tracer) and not isinstance(target, jax.core.Tracer):
        uncovered = np.asarray((behavior == 0) & (target > 0))
        if uncovered.any():
            s, a = np.argwhere(uncovered)[0]
            raise ValueError(f"target takes action {a} in state {s} where behavior has probability 0")
    safe = jnp.where(behavior > 0, behavior, 1.0)
    return jnp.where(behavior > 0, target / safe, 0.0)


def expected_td_update(mdp: tabular.TabularMDP, features, weights, state_weights, behavior, target) -> jax.Array:
    """The expected semi-gradient TD(0) direction ``Σ_s μ(s) Σ_a b ρ (R + γ E v(s') − v(s)) x(s)``, ``[F]``.

    Args:
        mdp: the MDP (its ``discount`` is γ).
        features: ``[S, F]`` linear features ``x(s)``.
        weights: ``[F]`` current weights ``w``.
        state_weights: ``[S]`` the distribution ``μ`` the update averages over.
        behavior: ``[S, A]`` policy ``b`` whose actions are taken.
        target: ``[S, A]`` policy ``π`` whose value is learned.
    """
    features = jnp.asarray(features)
    if features.ndim != 2 or features.shape[0] != mdp.n_states:
        raise ValueError(f"features must have shape [S, F] with S = {mdp.n_states}, got {features.shape}")
    if jnp.shape(weights) != features.shape[1:]:
        raise ValueError(f"weights must have shape [F] = {features.shape[1:]}, got {jnp.shape(weights)}")
    if jnp.shape(state_weights) != (mdp.n_states,):
        raise ValueError(f"state_weights must have shape [S] = {(mdp.n_states,)}, got {jnp.shape(state_weights)}")
    rho = importance_ratios(behavior, target)
    v = features @ weights  # [S]
    q = mdp.R + mdp.discount * mdp.expected_next(v)  # [S, A]
    delta = jnp.sum(behavior * rho * (q - v[:, None]), axis=-1)  # [S]
    return features.T @ (state_weights * delta)


def expected_td(mdp, features, initial_weights, state_weights, behavior, target, step_size, n_updates: int):
    """Run ``n_updates`` expected TD(0) updates; returns every iterate ``[n_updates + 1, F]`` (``w_0`` first).

    ``step_size`` (α) may be traced, so ``jax.vmap`` sweeps step sizes in one call.
    """

    def update(w, _):
        w_next = w + step_size * expected_td_update(mdp, features, w, state_weights, behavior, target)
        return w_next, w_next

    w0 = jnp.asarray(initial_weights, dtype=jnp.float64)
    _, ws = jax.lax.scan(update, w0, length=n_updates)
    return jnp.concatenate([w0[None], ws])


class BairdRun(NamedTuple):
    """Expected TD(0) on Baird's counterexample, off- and on-policy."""

    off_policy: jax.Array
    """``[K + 1, 8]`` weights: μ = d_b (uniform), actions from b, ratios ρ = π / b."""
    on_policy: jax.Array
    """``[K + 1, 8]`` weights: μ = d_π (all mass on the lower state), actions from π."""


def stationary_distribution(mdp: tabular.TabularMDP, policy) -> jax.Array:
    """``d_{T-1}``, the exact state distribution at the MDP's last step (``[S]``): the stationary one
    for a chain that has mixed by then (Baird's mixes in one step under both policies)."""
    return tabular.visitation(mdp, policy)[-1]


def baird_td(step_size=0.01, n_updates: int = 1000, discount: float = 0.99) -> BairdRun:
    """Expected semi-gradient TD(0) on Baird's counterexample from ``w0 = (1, 1, 1, 1, 1, 1, 10, 1)``.

    Defaults are Sutton & Barto's Fig. 11.2 (α = 0.01, γ = 0.99). ``step_size`` may be
    an array of step sizes (vmapped: outputs gain a leading axis).
    """
    positive_int("n_updates", n_updates)
    baird = baird_counterexample(discount=discount)
    mdp, X, w0 = baird.mdp, baird.features, baird.initial_weights
    d_b = stationary_distribution(mdp, baird.behavior)
    d_pi = stationary_distribution(mdp, baird.target)

    def both(alpha):
        off = expected_td(mdp, X, w0, d_b, baird.behavior, baird.target, alpha, n_updates)
        on = expected_td(mdp, X, w0, d_pi, baird.target, baird.target, alpha, n_updates)
        return BairdRun(off, on)

    step_size = jnp.asarray(step_size, dtype=jnp.float64)
    run = jax.jit(both if step_size.ndim == 0 else jax.vmap(both))
    return run(step_size)


def growth_matrix(mdp: tabular.TabularMDP, features, state_weights, target) -> jax.Array:
    """``A = Xᵀ diag(μ) (γ P_π − I) X`` (``[F, F]``): expected TD(0) is ``w ← (I + α A) w`` (zero reward)."""
    X = jnp.asarray(features)
    P_pi = jnp.einsum("sa,sat->st", jnp.asarray(target), mdp.P)
    return X.T @ (state_weights[:, None] * (mdp.discount * P_pi @ X - X))


# ------------------------------------------------------------------------------------------
# A convergent off-policy alternative: TD with gradient correction (TDC), as expected updates
# ------------------------------------------------------------------------------------------


def expected_tdc_update(mdp: tabular.TabularMDP, features, weights, aux, state_weights, behavior, target):
    """The expected TDC directions ``(Δw [F], Δv [F])`` (Sutton et al. 2009; Sutton & Barto 2018, eq. 11.30)::

        Δw = E_μ,b[ ρ (δ x − γ x' (xᵀ v)) ],     Δv = E_μ,b[ ρ (δ − xᵀ v) x ],

    with ``δ = R + γ x'ᵀ w − xᵀ w`` and ``ρ = π / b``; the expectation over states (``μ``),
    actions and next states is exact, so ``w ← w + α Δw``, ``v ← v + β Δv`` is the
    "expected TDC" of Sutton & Barto's Fig. 11.6 (right), made synchronous over states.
    """
    X = jnp.asarray(features)
    td_direction = expected_td_update(mdp, X, weights, state_weights, behavior, target)  # E[ρ δ x]
    rho_b = behavior * importance_ratios(behavior, target)  # [S, A]: ρ b (= π where b > 0)
    next_x = jnp.einsum("sa,sat,tf->sf", rho_b, mdp.P, X)  # E[ρ x' | s]
    xv = X @ aux  # [S]
    correction = mdp.discount * next_x.T @ (state_weights * xv)
    dv = td_direction - X.T @ (state_weights * xv)
    return td_direction - correction, dv


def expected_tdc(mdp, features, initial_weights, state_weights, behavior, target, step_size, aux_step_size,
                 n_updates: int):
    """``n_updates`` expected TDC updates from ``(w_0, v_0 = 0)``; returns ``(w [n+1, F], v [n+1, F])``."""

    def update(carry, _):
        w, v = carry
        dw, dv = expected_tdc_update(mdp, features, w, v, state_weights, behavior, target)
        new = (w + step_size * dw, v + aux_step_size * dv)
        return new, new

    w0 = jnp.asarray(initial_weights, dtype=jnp.float64)
    v0 = jnp.zeros_like(w0)
    _, (ws, vs) = jax.lax.scan(update, (w0, v0), length=n_updates)
    return jnp.concatenate([w0[None], ws]), jnp.concatenate([v0[None], vs])


def tdc_matrix(mdp: tabular.TabularMDP, features, state_weights, target, step_size, aux_step_size) -> jax.Array:
    """``M [2F, 2F]``: with zero reward, expected TDC is the linear recursion ``(w, v) ← (I + M)(w, v)``.

    ``M = [[α A, −α γ (P_π X)ᵀ D X], [β A, −β C]]`` with ``A`` of :func:`growth_matrix`,
    ``D = diag(μ)``, ``C = Xᵀ D X``.
    """
    X = jnp.asarray(features)
    D = jnp.asarray(state_weights)[:, None]
    A = growth_matrix(mdp, X, state_weights, target)
    P_pi = jnp.einsum("sa,sat->st", jnp.asarray(target), mdp.P)
    cross = mdp.discount * (P_pi @ X).T @ (D * X)
    C = X.T @ (D * X)
    return jnp.block([[step_size * A, -step_size * cross], [aux_step_size * A, -aux_step_size * C]])


def projected_bellman_error(mdp: tabular.TabularMDP, features, weights, state_weights, target) -> jax.Array:
    """``√PBE = ‖Π (B_π v_w − v_w)‖_μ`` with ``Π = X (Xᵀ D X)⁺ Xᵀ D`` (Sutton & Barto 2018, §11.4); ``[]``
    (or ``[K]`` for weights ``[K, F]``)."""
    X = jnp.asarray(features)
    D = jnp.asarray(state_weights)
    R_pi = jnp.sum(jnp.asarray(target) * mdp.R, axis=-1)
    P_pi = jnp.einsum("sa,sat->st", jnp.asarray(target), mdp.P)
    v = jnp.asarray(weights) @ X.T  # [..., S]
    delta = R_pi + mdp.discount * v @ P_pi.T - v
    projection = X @ jnp.linalg.pinv(X.T @ (D[:, None] * X)) @ X.T * D[None, :]  # [S, S]
    projected = delta @ projection.T
    return jnp.sqrt(jnp.sum(D * projected**2, axis=-1))


class BairdTDCRun(NamedTuple):
    """Expected TDC on Baird's counterexample (off-policy, μ = d_b)."""

    weights: jax.Array
    """``[K + 1, 8]``: ``w_k``."""
    aux: jax.Array
    """``[K + 1, 8]``: the secondary weights ``v_k``."""


def baird_tdc(step_size=0.005, aux_step_size=0.05, n_updates: int = 1000, discount: float = 0.99) -> BairdTDCRun:
    """Expected TDC on Baird's counterexample from ``w0 = (1, 1, 1, 1, 1, 1, 10, 1)``, ``v0 = 0``.

    Defaults are Sutton & Barto's Fig. 11.6 (α = 0.005, β = 0.05, γ = 0.99).
    """
    positive_int("n_updates", n_updates)
    baird = baird_counterexample(discount=discount)
    d_b = stationary_distribution(baird.mdp, baird.behavior)
    run = jax.jit(lambda a, b: expected_tdc(baird.mdp, baird.features, baird.initial_weights, d_b, baird.behavior,
                                            baird.target, a, b, n_updates))
    return BairdTDCRun(*run(jnp.float64(step_size), jnp.float64(aux_step_size)))
