"""Expected semi-gradient TD(0) on Baird's counterexample, against hand-computed numbers."""

import jax.numpy as jnp
import numpy as np
import pytest

import toyrlhf  # noqa: F401  (x64)
from toyrlhf.algorithms import td
from toyrlhf.envs.toy_mdps import baird_counterexample

ALPHA, GAMMA = 0.01, 0.99


@pytest.fixture(scope="module")
def baird():
    return baird_counterexample(discount=GAMMA)


@pytest.fixture(scope="module")
def runs():
    """α = 0.01 (Sutton & Barto Fig. 11.2) for 3,000 updates."""
    return td.baird_td(ALPHA, n_updates=3000, discount=GAMMA)


def test_first_off_policy_update_by_hand(baird):
    # w0 = (1,1,1,1,1,1,10,1): v(upper i) = 2 + 1 = 3, v(lower) = 10 + 2 = 12. Zero reward; the target
    # always goes to the lower state, so δ(s) = γ·12 − v(s): 8.88 on each upper state, −0.12 on the lower.
    # μ uniform: Δw_i = (1/7)·8.88·2 for i < 6, Δw_6 = (1/7)(−0.12)·1, Δw_7 = (1/7)(6·8.88 − 2·0.12).
    d = np.full(7, 1 / 7)
    step = td.expected_td_update(baird.mdp, baird.features, baird.initial_weights, d, baird.behavior, baird.target)
    upper, lower = GAMMA * 12 - 3, GAMMA * 12 - 12
    expected = np.array([2 * upper] * 6 + [lower, 6 * upper + 2 * lower]) / 7
    np.testing.assert_allclose(step, expected, rtol=1e-12)


def test_importance_ratios():
    rho = td.importance_ratios(np.array([[6 / 7, 1 / 7]]), np.array([[0.0, 1.0]]))
    np.testing.assert_allclose(rho, [[0.0, 7.0]])
    with pytest.raises(ValueError, match="behavior has probability 0"):
        td.importance_ratios(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]))
    with pytest.raises(ValueError, match="behavior and target"):
        td.importance_ratios(np.ones((2, 2)) / 2, np.ones((3, 2)) / 2)


def test_stationary_distributions(baird):
    np.testing.assert_allclose(td.stationary_distribution(baird.mdp, baird.behavior), np.full(7, 1 / 7), atol=1e-12)
    np.testing.assert_allclose(td.stationary_distribution(baird.mdp, baird.target), np.eye(7)[6], atol=1e-12)


def test_iterates_follow_the_linear_recursion(baird, runs):
    A = td.growth_matrix(baird.mdp, baird.features, jnp.full(7, 1 / 7), baird.target)
    w = baird.initial_weights.copy()
    for _ in range(50):
        w = w + ALPHA * np.asarray(A) @ w
    np.testing.assert_allclose(runs.off_policy[50], w, rtol=1e-10)
    # The unstable eigenvalue of A off-policy (computed once with numpy: +0.2392504642).
    eig = np.linalg.eigvals(np.asarray(A))
    assert np.max(eig.real) == pytest.approx(0.2392504642, abs=1e-9)


def test_off_policy_diverges_on_policy_bounded(baird, runs):
    norms_off = np.linalg.norm(runs.off_policy, axis=-1)
    norms_on = np.linalg.norm(runs.on_policy, axis=-1)
    start = np.linalg.norm(baird.initial_weights)
    # Off-policy, α = 0.01: ~42x after 1,000 updates, 1,000x first reached at update 2,280
    # (growth (1 + 0.2393 α)^k); the textbook step size needs ~2,300 updates, not 1,000, for 1,000x.
    assert norms_off[1000] / start == pytest.approx(42.23, rel=1e-3)
    assert int(np.argmax(norms_off / start >= 1000)) == 2280
    assert np.all(np.diff(norms_off[100:]) > 0)
    # On-policy: only v(lower) moves, towards zero; the norm never increases.
    assert np.all(np.diff(norms_on) <= 1e-12)


def test_on_policy_closed_form(baird, runs):
    # μ = d_π = lower state only, x = e_7 + 2 e_8 (|x|² = 5), v(lower) = xᵀw: each update is
    # w ← w − α(1−γ)(xᵀw) x, so w_k = w* + (1 − 5α(1−γ))^k (w0 − w*) with w* = w0 − (12/5) x
    # = (1, 1, 1, 1, 1, 1, 7.6, −3.8), the point where v(lower) = 0.
    x = baird.features[6]
    w_star = np.array([1, 1, 1, 1, 1, 1, 7.6, -3.8])
    k = np.arange(runs.on_policy.shape[0])[:, None]
    expected = w_star + (1 - 5 * ALPHA * (1 - GAMMA)) ** k * (baird.initial_weights - w_star)
    np.testing.assert_allclose(runs.on_policy, expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(x @ w_star, 0.0, atol=1e-12)


def test_step_size_sweep_is_vmapped():
    runs = td.baird_td(jnp.array([0.01, 0.05]), n_updates=1000)
    assert runs.off_policy.shape == (2, 1001, 8)
    ratio = np.linalg.norm(runs.off_policy[:, -1], axis=-1) / np.linalg.norm(runs.off_policy[:, 0], axis=-1)
    assert ratio[0] == pytest.approx(42.23, rel=1e-3)
    assert ratio[1] > 1e5


def test_bad_input(baird):
    with pytest.raises(ValueError, match="features"):
        td.expected_td_update(baird.mdp, np.ones((6, 8)), np.ones(8), np.ones(7) / 7, baird.behavior, baird.target)
    with pytest.raises(ValueError, match="n_updates"):
        td.baird_td(0.01, n_updates=0)


# ------------------------------------------------------------------------------------------
# TDC: a convergent off-policy method on the same expected updates (Sutton & Barto Fig. 11.6)
# ------------------------------------------------------------------------------------------


def test_first_tdc_update_by_hand(baird):
    """v0 = 0: Δw is TD's direction; Δv = E[ρ δ x] too (xᵀv = 0). With v = e_8 (xᵀv = 1 on upper, 2 on lower)
    the correction is γ E_b[ρ x' xᵀv] = γ Σ_s μ(s) (xᵀv)(s) x(lower) = γ (6·1 + 2)/7 x(lower)."""
    d = np.full(7, 1 / 7)
    w0 = baird.initial_weights
    td_dir = td.expected_td_update(baird.mdp, baird.features, w0, d, baird.behavior, baird.target)
    dw, dv = td.expected_tdc_update(baird.mdp, baird.features, w0, np.zeros(8), d, baird.behavior, baird.target)
    np.testing.assert_allclose(dw, td_dir, rtol=1e-12)
    np.testing.assert_allclose(dv, td_dir, rtol=1e-12)
    v = np.eye(8)[7]
    dw, dv = td.expected_tdc_update(baird.mdp, baird.features, w0, v, d, baird.behavior, baird.target)
    lower = np.asarray(baird.features[6])
    np.testing.assert_allclose(dw, td_dir - GAMMA * 8 / 7 * lower, rtol=1e-12)
    C_v = np.asarray(baird.features).T @ (d * (np.asarray(baird.features) @ v))
    np.testing.assert_allclose(dv, td_dir - C_v, rtol=1e-12)


def test_tdc_follows_its_linear_map_and_converges(baird):
    runs = td.baird_tdc(0.005, 0.05, n_updates=3000, discount=GAMMA)
    d = np.full(7, 1 / 7)
    M = np.asarray(td.tdc_matrix(baird.mdp, baird.features, d, baird.target, 0.005, 0.05))
    z = np.concatenate([baird.initial_weights, np.zeros(8)])
    for _ in range(100):
        z = z + M @ z
    np.testing.assert_allclose(np.concatenate([runs.weights[100], runs.aux[100]]), z, rtol=1e-10)
    norms = np.linalg.norm(runs.weights, axis=-1)
    assert norms.max() <= 1.01 * norms[0]  # never grows (semi-gradient TD: 42x by sweep 1,000)
    pbe = np.asarray(td.projected_bellman_error(baird.mdp, baird.features, runs.weights, d, baird.target))
    assert pbe[-1] < 0.01 * pbe[0]
    # √VE (the true values are 0): TDC minimises the PBE, not the VE, which stays near 2 (Fig. 11.6)
    ve = np.sqrt(d @ (np.asarray(baird.features) @ runs.weights[-1]) ** 2)
    assert 1.0 < ve < 3.0


def test_projected_bellman_error_by_hand(baird):
    """w = e_7 (v = 1 on the lower state only): δ = γ·1 − v = 0.99 on upper states, −0.01 on the lower; with
    uniform μ the projection onto the 7-dimensional feature span (rank 7 = every function of 7 states) is the
    identity, so √PBE = √(Σ μ δ²)."""
    d = np.full(7, 1 / 7)
    w = np.eye(8)[6]
    delta = np.array([GAMMA] * 6 + [GAMMA - 1])
    pbe = td.projected_bellman_error(baird.mdp, baird.features, w, d, baird.target)
    assert float(pbe) == pytest.approx(np.sqrt(d @ delta**2), rel=1e-10)
