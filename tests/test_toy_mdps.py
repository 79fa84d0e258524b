"""The literature MDPs have the structure and the known numbers their papers give them."""

import numpy as np
import pytest

from toyrlhf import tabular
from toyrlhf.envs import toy_mdps


def test_trap_expert_earns_every_step_and_mistakes_are_permanent():
    mdp = toy_mdps.trap(horizon=7, n_actions=3)
    sol = tabular.solve(mdp)
    assert float(mdp.init @ sol.V[0]) == 7.0
    np.testing.assert_array_equal(np.asarray(sol.policy[:, 0]).argmax(-1), 0)
    P = np.asarray(mdp.P)
    assert np.all(P[0, 1:, 1] == 1.0) and np.all(P[1, :, 1] == 1.0)


def test_lane_expert_walks_back_to_the_centre():
    K = 3
    mdp = toy_mdps.lane(horizon=20, half_width=K)
    expert = np.asarray(tabular.solve(mdp).policy[0]).argmax(-1)
    # 0 = stay, 1 = left, 2 = right; state s is position s - K.
    np.testing.assert_array_equal(expert, [2, 2, 2, 0, 1, 1, 1])
    # From position +3 the expert needs 3 steps to arrive, then earns every step.
    start_far = mdp.with_horizon(10)
    V = tabular.policy_values(start_far, tabular.solve(start_far).policy)[1]
    assert float(V[0, 2 * K]) == 10 - 2


def test_lane_dagger_like_learner_loses_about_one_step_per_mistake():
    T, eps = 200, 1e-3
    mdp = toy_mdps.lane(horizon=T)
    expert = np.asarray(tabular.solve(mdp).policy[0])
    noisy = (1 - eps) * expert + eps * (1 - expert) / 2
    gap = float(tabular.evaluate(mdp, expert) - tabular.evaluate(mdp, noisy))
    assert abs(gap - eps * T) / (eps * T) < 0.01


def test_reset_cliff_draws_states_from_rho_and_falls_otherwise():
    rho = np.array([0.5, 0.3, 0.2])
    mdp = toy_mdps.reset_cliff(horizon=5, n_good=3, n_actions=3, rho=rho, expert_actions=[1, 2, 1])
    P = np.asarray(mdp.P)
    np.testing.assert_allclose(P[0, 1, :3], rho)
    assert P[0, 0, 3] == 1.0 and P[1, 1, 3] == 1.0 and P[3, 2, 3] == 1.0
    assert float(mdp.init @ tabular.solve(mdp).V[0]) == 5.0
    assert bool(mdp.terminal[3])
    # A learner always wrong in state 2 (probability 0.2 per step) keeps 0.8^(t+1) at step t.
    learner = np.array([[0, 1, 0], [0, 0, 1], [1, 0, 0], [1, 0, 0]], dtype=float)
    expected = sum(0.8 ** (t + 1) for t in range(5))
    assert float(tabular.evaluate(mdp, learner)) == pytest.approx(expected, rel=1e-12)


def test_reset_cliff_with_safe_actions_gives_them_the_experts_next_states_and_no_reward():
    rho = np.array([0.5, 0.3, 0.2])
    mdp = toy_mdps.reset_cliff(horizon=4, n_good=3, n_actions=4, rho=rho, expert_actions=[3, 3, 3], n_safe=2)
    P, R = np.asarray(mdp.P), np.asarray(mdp.R)
    for a in (1, 2, 3):
        np.testing.assert_allclose(P[:3, a, :3], np.tile(rho, (3, 1)))
    assert np.all(P[:3, 0, 3] == 1.0) and np.all(P[3, :, 3] == 1.0)
    np.testing.assert_array_equal(R[:3], np.tile([0.0, 0.0, 0.0, 1.0], (3, 1)))
    assert float(mdp.init @ tabular.solve(mdp).V[0]) == 4.0
    # A learner always playing the safe action 1 never falls and earns nothing.
    assert float(tabular.evaluate(mdp, np.tile([0.0, 1.0, 0.0, 0.0], (4, 1)))) == 0.0
    with pytest.raises(ValueError, match="n_safe"):
        toy_mdps.reset_cliff(4, n_good=3, n_actions=4, expert_actions=[3, 2, 3], n_safe=2)  # would make 0 safe


def test_standard_imitation_gap_is_exactly_linear():
    mdp = toy_mdps.standard_imitation(horizon=30, n_states=6, n_actions=3)
    P = np.asarray(mdp.P)
    np.testing.assert_allclose(P[:, 0], P[:, 1])
    expert = np.asarray(tabular.solve(mdp).policy[0])
    eps = 0.07
    learner = (1 - eps) * expert + eps * (1 - expert) / 2
    gap = float(tabular.evaluate(mdp, expert) - tabular.evaluate(mdp, learner))
    assert gap == pytest.approx(eps * 30, rel=1e-12)


def test_baird_has_zero_values_and_the_textbook_features():
    baird = toy_mdps.baird_counterexample(horizon=50)
    assert baird.features.shape == (7, 8)
    np.testing.assert_array_equal(baird.features[6], [0, 0, 0, 0, 0, 0, 1, 2])
    np.testing.assert_array_equal(baird.features[0], [2, 0, 0, 0, 0, 0, 0, 1])
    assert float(tabular.evaluate(baird.mdp, baird.behavior)) == 0.0
    np.testing.assert_allclose(np.asarray(baird.mdp.P)[3, 0, :6], 1 / 6)
    assert float(baird.mdp.discount) == pytest.approx(0.99)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: toy_mdps.trap(5, n_actions=1), "n_actions must be at least 2"),
        (lambda: toy_mdps.lane(5, half_width=0), "half_width must be at least 1"),
        (lambda: toy_mdps.lane(5, slip=1.5), r"slip must lie in \[0, 1\]"),
        (lambda: toy_mdps.reset_cliff(5, n_good=3, rho=[0.5, 0.5]), r"rho must have shape"),
        (lambda: toy_mdps.reset_cliff(5, n_good=2, expert_actions=[0, 7]), "expert_actions must be"),
        (lambda: toy_mdps.standard_imitation(5, n_states=2.5), "n_states must be an int"),
        (lambda: toy_mdps.trap(0), "horizon must be at least 1"),
    ],
)
def test_bad_arguments_raise(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()
