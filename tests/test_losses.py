"""Losses against hand-computed values and plain Python loops, under jit and vmap."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import toyrlhf  # noqa: F401  (x64 on)
from toyrlhf import losses
from toyrlhf.diagnostics import all_finite, explained_variance, raise_if_nonfinite


def gae_python_loop(r, v, v_next, terminated, truncated, gamma, lam):
    """The textbook recursion, one environment, one step at a time."""
    T = len(r)
    adv = np.zeros(T)
    running = 0.0
    for t in reversed(range(T)):
        bootstrap = 0.0 if terminated[t] else v_next[t]
        delta = r[t] + gamma * bootstrap - v[t]
        if terminated[t] or truncated[t]:
            running = 0.0
        running = delta + gamma * lam * running
        adv[t] = running
    return adv, adv + v


def test_gae_scan_equals_python_loop_under_jit_and_vmap():
    rng = np.random.default_rng(0)
    T, N = 37, 5
    r = rng.normal(size=(T, N))
    v = rng.normal(size=(T, N))
    v_next = rng.normal(size=(T, N))
    terminated = rng.random((T, N)) < 0.1
    truncated = (rng.random((T, N)) < 0.1) & ~terminated
    gamma, lam = 0.97, 0.9
    adv, ret = jax.jit(losses.gae)(r, v, v_next, terminated, truncated, gamma, lam)
    for n in range(N):
        want_adv, want_ret = gae_python_loop(r[:, n], v[:, n], v_next[:, n], terminated[:, n], truncated[:, n],
                                             gamma, lam)
        np.testing.assert_allclose(adv[:, n], want_adv, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(ret[:, n], want_ret, rtol=1e-12, atol=1e-12)
    # vmap over environments (batch axis 1) gives the same numbers
    vmapped = jax.vmap(losses.gae, in_axes=(1, 1, 1, 1, 1, None, None), out_axes=1)
    adv_v, _ = vmapped(r, v, v_next, terminated, truncated, gamma, lam)
    np.testing.assert_allclose(adv_v, adv, rtol=1e-12)


def test_gae_hand_computed():
    # Three steps, γ = 0.5, λ = 0.5; step 1 is truncated (bootstrap from 4), step 2 terminates.
    r = jnp.array([1.0, 2.0, 3.0])
    v = jnp.array([0.0, 1.0, 2.0])
    v_next = jnp.array([1.0, 4.0, 100.0])
    terminated = jnp.array([False, False, True])
    truncated = jnp.array([False, True, False])
    adv, ret = losses.gae(r, v, v_next, terminated, truncated, 0.5, 0.5)
    # δ = [1 + .5*1 - 0, 2 + .5*4 - 1, 3 + 0 - 2] = [1.5, 3, 1]; the truncation cuts the recursion at t=1.
    # A_2 = 1, A_1 = 3, A_0 = 1.5 + .25 * 3 = 2.25
    np.testing.assert_allclose(adv, [2.25, 3.0, 1.0])
    np.testing.assert_allclose(ret, [2.25, 4.0, 3.0])


def test_gae_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="same shape"):
        losses.gae(jnp.zeros(3), jnp.zeros(3), jnp.zeros(4), jnp.zeros(3, bool), jnp.zeros(3, bool), 0.9, 0.9)


def test_clipped_surrogate_hand_computed_values_and_gradients():
    ratio = jnp.array([0.5, 1.0, 1.5, 1.5])
    adv = jnp.array([1.0, 2.0, -1.0, 1.0])
    old = jnp.zeros(4)
    loss, clip_fraction = losses.clipped_surrogate_loss(jnp.log(ratio), old, adv, 0.2)
    # min(ρA, clip(ρ)A) = [min(.5, .8), 2, min(-1.5, -1.2), min(1.5, 1.2)] = [.5, 2, -1.5, 1.2]
    np.testing.assert_allclose(loss, -(0.5 + 2.0 - 1.5 + 1.2) / 4)
    np.testing.assert_allclose(clip_fraction, 0.75)
    # d loss / d log π_i = -ρ_i A_i / 4 where the unclipped term is chosen, 0 where the clipped one is.
    grad = jax.grad(lambda lp: losses.clipped_surrogate_loss(lp, old, adv, 0.2)[0])(jnp.log(ratio))
    np.testing.assert_allclose(grad, [-0.5 / 4, -2.0 / 4, 1.5 / 4, 0.0])
    # Without clipping: the importance-weighted surrogate.
    loss_inf, frac_inf = jax.jit(losses.clipped_surrogate_loss)(jnp.log(ratio), old, adv, math.inf)
    np.testing.assert_allclose(loss_inf, -(0.5 + 2.0 - 1.5 + 1.5) / 4)
    assert float(frac_inf) == 0.0


def test_unclipped_surrogate_gradient_is_vanilla_policy_gradient_at_old_policy():
    logits = jnp.array([[0.3, -0.2, 1.0], [0.0, 0.5, -1.0]])
    actions = jnp.array([2, 0])
    adv = jnp.array([1.5, -0.7])
    old_lp = losses.categorical_log_prob(logits, actions)

    def surrogate(theta):
        return losses.clipped_surrogate_loss(losses.categorical_log_prob(theta, actions), old_lp, adv, math.inf)[0]

    def vanilla(theta):
        return -jnp.mean(losses.categorical_log_prob(theta, actions) * adv)

    np.testing.assert_allclose(jax.grad(surrogate)(logits), jax.grad(vanilla)(logits), rtol=1e-12)


def test_value_loss_entropy_and_kl_hand_computed():
    np.testing.assert_allclose(losses.value_loss(jnp.array([1.0, 2.0]), jnp.array([0.0, 4.0])), 0.5 * (1 + 4) / 2)
    np.testing.assert_allclose(losses.categorical_entropy(jnp.zeros(4)), math.log(4))
    np.testing.assert_allclose(losses.categorical_entropy(jnp.array([0.0, -jnp.inf])), 0.0, atol=1e-12)
    p, q = jnp.array([0.75, 0.25]), jnp.array([0.5, 0.5])
    want = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    np.testing.assert_allclose(losses.categorical_kl(jnp.log(p), jnp.log(q)), want, rtol=1e-12)
    np.testing.assert_allclose(losses.categorical_kl(jnp.log(p) + 3.0, jnp.log(q) - 1.0), want, rtol=1e-12)


def test_per_step_kl_estimator_is_unbiased():
    """Monte Carlo mean of k = log p(a) − log q(a), a ~ p, over 200,000 draws: within 5 standard errors."""
    logits_p, logits_q = jnp.array([1.0, 0.0, -1.0]), jnp.array([0.0, 0.5, 0.5])
    a = jax.random.categorical(jax.random.key(0), logits_p, shape=(200_000,))
    k = losses.kl_penalty_per_step(losses.categorical_log_prob(logits_p, a), losses.categorical_log_prob(logits_q, a))
    exact = float(losses.categorical_kl(logits_p, logits_q))
    assert abs(float(k.mean()) - exact) < 5 * float(k.std()) / math.sqrt(k.size)
    assert float(k.min()) < 0 < exact  # single samples can be negative; the mean is a KL


def test_approx_kl_and_normalize():
    np.testing.assert_allclose(losses.approx_kl(jnp.zeros(3), jnp.zeros(3)), 0.0)
    lr = jnp.log(jnp.array([2.0]))
    np.testing.assert_allclose(losses.approx_kl(lr, jnp.zeros(1)), (2.0 - 1.0) - math.log(2.0), rtol=1e-12)
    x = losses.normalize(jnp.array([1.0, 2.0, 3.0, 6.0]))
    np.testing.assert_allclose([x.mean(), x.std()], [0.0, 1.0], atol=1e-6)


def test_explained_variance_and_nonfinite_report():
    target = jnp.array([1.0, 2.0, 3.0, 4.0])
    np.testing.assert_allclose(explained_variance(target, target), 1.0)
    np.testing.assert_allclose(explained_variance(jnp.full(4, 2.5), target), 0.0)
    assert float(explained_variance(jnp.zeros(3), jnp.ones(3))) == 0.0  # nothing to explain
    assert bool(all_finite({"a": jnp.ones(2)}, jnp.arange(3)))
    assert not bool(all_finite({"a": jnp.array([1.0, jnp.nan])}))
    raise_if_nonfinite(np.zeros((3, 5), bool))
    flags = np.zeros((3, 5), bool)
    flags[1, 2:] = True
    with pytest.raises(FloatingPointError, match=r"1 of 3 runs .*run 1: update 2"):
        raise_if_nonfinite(flags, "PPO")


def test_masked_actions_give_finite_entropy_and_kl():
    masked = jnp.array([0.0, 1.0, -jnp.inf])
    np.testing.assert_allclose(losses.categorical_entropy(masked), float(losses.categorical_entropy(masked[:2])))
    np.testing.assert_allclose(losses.categorical_kl(masked, jnp.zeros(3)),
                               float(losses.categorical_kl(masked[:2], jnp.zeros(2))) + math.log(3 / 2), rtol=1e-12)
    assert math.isinf(float(losses.categorical_kl(jnp.zeros(3), masked)))
