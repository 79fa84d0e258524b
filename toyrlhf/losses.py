"""Policy-gradient losses and estimators, each a pure function with its equation.

Conventions: arrays are time-major ``[T, N]`` where a time axis matters (GAE),
otherwise any batch shape ``[...]``. Losses are quantities to *minimise*
(so a surrogate objective to maximise appears with a minus sign). Time-indexed
names follow rlax: ``r_t``, ``v_t``, ``v_tp1`` (= ``V(o_{t+1})``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _check_same_shape(**arrays) -> None:
    shapes = {name: jnp.shape(x) for name, x in arrays.items()}
    if len(set(shapes.values())) > 1:
        raise ValueError(f"arguments must have the same shape, got {shapes}")


# ------------------------------------------------------------------------------------------
# Categorical policies
# ------------------------------------------------------------------------------------------


def categorical_log_prob(logits: jax.Array, action: jax.Array) -> jax.Array:
    """``log π(a|s) = logits_a − logsumexp(logits)``: ``logits [..., A]``, ``action [...]`` int → ``[...]``.

    The batch shapes of ``logits`` and ``action`` broadcast (one state's logits, many actions).
    """
    log_pi = jax.nn.log_softmax(logits, axis=-1)
    shape = jnp.broadcast_shapes(log_pi.shape[:-1], jnp.shape(action))
    log_pi, action = jnp.broadcast_to(log_pi, (*shape, log_pi.shape[-1])), jnp.broadcast_to(action, shape)
    return jnp.take_along_axis(log_pi, action[..., None].astype(jnp.int32), axis=-1)[..., 0]


def categorical_entropy(logits: jax.Array) -> jax.Array:
    """``H(π(·|s)) = −Σ_a π(a|s) log π(a|s)``: ``logits [..., A]`` → ``[...]`` (nats; ``0 log 0 = 0``)."""
    log_pi = jax.nn.log_softmax(logits, axis=-1)
    pi = jnp.exp(log_pi)
    return -jnp.sum(jnp.where(pi > 0, pi * log_pi, 0.0), axis=-1)


def categorical_kl(logits_p: jax.Array, logits_q: jax.Array) -> jax.Array:
    """Exact per-state ``KL(p(·|s) ‖ q(·|s)) = Σ_a p(a|s) (log p(a|s) − log q(a|s))``: ``[..., A]`` → ``[...]``.

    Actions with ``p(a|s) = 0`` contribute 0; the KL is infinite where ``q(a|s) = 0 < p(a|s)``.
    """
    _check_same_shape(logits_p=logits_p, logits_q=logits_q)
    log_p = jax.nn.log_softmax(logits_p, axis=-1)
    log_q = jax.nn.log_softmax(logits_q, axis=-1)
    p = jnp.exp(log_p)
    return jnp.sum(jnp.where(p > 0, p * (log_p - log_q), 0.0), axis=-1)


def kl_penalty_per_step(log_prob: jax.Array, ref_log_prob: jax.Array) -> jax.Array:
    """The per-step KL estimator ``k_t = log π(a_t|s_t) − log π_ref(a_t|s_t)`` with ``a_t ~ π``; ``[...]``.

    Unbiased for the per-state KL: ``E_{a~π}[k_t] = KL(π(·|s_t) ‖ π_ref(·|s_t))``,
    so ``E[Σ_t k_t]`` is the trajectory KL that ``toyrlhf.tabular.kl_divergence``
    computes exactly. RLHF (Ziegler et al. 2019; Ouyang et al. 2022) subtracts
    ``β k_t`` from the reward, ``r'_t = r_t − β k_t``. Because ``E_π[∇ log π] = 0``,
    the policy gradient of ``E[Σ_t r'_t]`` is exactly the gradient of
    ``J(π) − β KL(P_π ‖ P_ref)``: the penalty regularises whole trajectories,
    including where the policy leads, not only the current action. Single
    samples can be negative; only the expectation is a KL.
    """
    _check_same_shape(log_prob=log_prob, ref_log_prob=ref_log_prob)
    return log_prob - ref_log_prob


# ------------------------------------------------------------------------------------------
# Advantages
# ------------------------------------------------------------------------------------------


def gae(
    r_t: jax.Array,
    v_t: jax.Array,
    v_tp1: jax.Array,
    terminated: jax.Array,
    truncated: jax.Array,
    gamma,
    lam,
) -> tuple[jax.Array, jax.Array]:
    """Generalised advantage estimation (Schulman et al. 2016), by a reverse ``lax.scan``.

    With ``done_t = terminated_t ∨ truncated_t``::

        δ_t = r_t + γ (1 − terminated_t) V(o_{t+1}) − V(o_t)
        A_t = δ_t + γ λ (1 − done_t) A_{t+1},     A_T = 0 (the rollout's end)
        G_t = A_t + V(o_t)                        (the λ-return, the value target)

    A terminated step does not bootstrap (the future is zero); a truncated step
    bootstraps from ``V(o_{t+1})`` of the final observation, and both cut the
    recursion so no advantage leaks across an episode boundary. At the end of the
    rollout ``A_T = 0`` makes ``A_{T−1} = δ_{T−1}``: bootstrapping from
    ``V(o_T)`` inside ``δ``.

    Args:
        r_t, v_t, v_tp1: ``[T, ...]`` float rewards, ``V(o_t)`` and ``V(o_{t+1})``.
        terminated, truncated: ``[T, ...]`` bool.
        gamma, lam: scalars ``γ`` and ``λ`` (may be traced).

    Returns:
        ``(advantages, returns)``, both ``[T, ...]``.
    """
    _check_same_shape(r_t=r_t, v_t=v_t, v_tp1=v_tp1, terminated=terminated, truncated=truncated)
    not_terminated = 1.0 - terminated.astype(r_t.dtype)
    not_done = 1.0 - (terminated | truncated).astype(r_t.dtype)
    delta = r_t + gamma * not_terminated * v_tp1 - v_t

    def backward(a_tp1, inputs):
        delta_t, not_done_t = inputs
        a_t = delta_t + gamma * lam * not_done_t * a_tp1
        return a_t, a_t

    _, advantages = jax.lax.scan(backward, jnp.zeros_like(delta[0]), (delta, not_done), reverse=True)
    return advantages, advantages + v_t


def normalize(x: jax.Array, eps: float = 1e-8) -> jax.Array:
    """``(x − mean(x)) / (std(x) + eps)`` over the whole batch (PPO's advantage normalisation)."""
    return (x - x.mean()) / (x.std() + eps)


# ------------------------------------------------------------------------------------------
# PPO's losses (Schulman et al. 2017)
# ------------------------------------------------------------------------------------------


def clipped_surrogate_loss(
    log_prob: jax.Array, old_log_prob: jax.Array, advantages: jax.Array, clip_eps
) -> tuple[jax.Array, jax.Array]:
    """PPO's clipped policy loss (to minimise) and the fraction of clipped samples.

    With the probability ratio ``ρ_t = π_θ(a_t|s_t) / π_old(a_t|s_t) = exp(log_prob − old_log_prob)``::

        L^CLIP = −mean_t min( ρ_t A_t,  clip(ρ_t, 1 − ε, 1 + ε) A_t )

    The minus sign turns PPO's objective (maximised) into a loss. Setting
    ``clip_eps = inf`` removes the clipping: the loss becomes the unclipped
    importance-weighted surrogate ``−mean ρ_t A_t``, whose gradient at
    ``θ = θ_old`` is the vanilla policy gradient ``−mean ∇log π(a_t|s_t) A_t``.
    ``clip_fraction = mean_t 1[|ρ_t − 1| > ε]``.

    Args:
        log_prob, old_log_prob, advantages: ``[B]``.
        clip_eps: scalar ``ε > 0`` (may be traced; ``inf`` disables clipping).

    Returns:
        ``(loss [], clip_fraction [])``.
    """
    _check_same_shape(log_prob=log_prob, old_log_prob=old_log_prob, advantages=advantages)
    ratio = jnp.exp(log_prob - old_log_prob)
    unclipped = ratio * advantages
    clipped = jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * advantages
    loss = -jnp.mean(jnp.minimum(unclipped, clipped))
    clip_fraction = jnp.mean((jnp.abs(ratio - 1.0) > clip_eps).astype(ratio.dtype))
    return loss, clip_fraction


def value_loss(values: jax.Array, returns: jax.Array) -> jax.Array:
    """``L^V = ½ mean_t (V(o_t) − G_t)²`` with ``G_t`` the λ-return targets; ``[B]`` → ``[]``."""
    _check_same_shape(values=values, returns=returns)
    return 0.5 * jnp.mean((values - returns) ** 2)


def approx_kl(log_prob: jax.Array, old_log_prob: jax.Array) -> jax.Array:
    """How far an update moved: ``mean_t[(ρ_t − 1) − log ρ_t] ≈ KL(π_old ‖ π_θ)`` (Schulman's k3, ≥ 0)."""
    _check_same_shape(log_prob=log_prob, old_log_prob=old_log_prob)
    log_ratio = log_prob - old_log_prob
    return jnp.mean(jnp.expm1(log_ratio) - log_ratio)
