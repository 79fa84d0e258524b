"""The exact tabular core: Bellman identities, closed forms, Monte Carlo agreement, bad input."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toyrlhf import tabular
from toyrlhf.envs import toy_mdps
from toyrlhf.tabular import TabularMDP


def random_mdp(seed=0, S=5, A=3, T=6, discount=0.9, sparse=False):
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.ones(S) * 0.5, size=(S, A))
    if sparse:  # knock out some successors to exercise the sparse path
        P = np.where(rng.random(P.shape) < 0.5, 0.0, P) + np.eye(S)[:, None, :] * 1e-3
        P /= P.sum(-1, keepdims=True)
    R = rng.normal(size=(S, A))
    init = rng.dirichlet(np.ones(S))
    return TabularMDP(P, R, init, T, discount)


def random_policy(seed, S, A, T=None):
    rng = np.random.default_rng(seed)
    shape = (S, A) if T is None else (T, S, A)
    return rng.dirichlet(np.ones(A), size=shape[:-1])


@pytest.fixture(scope="module", params=[False, True], ids=["dense", "sparse"])
def mdp(request):
    return random_mdp(sparse=request.param)


def test_bellman_optimality(mdp):
    sol = tabular.solve(mdp)
    P, R = np.asarray(mdp.P), np.asarray(mdp.R)
    V_next = np.vstack([np.asarray(sol.V[1:]), np.zeros((1, mdp.n_states))])
    expected_Q = R[None] + 0.9 * np.einsum("sax,tx->tsa", P, V_next)
    np.testing.assert_allclose(sol.Q, expected_Q, atol=1e-12)
    np.testing.assert_allclose(sol.V, expected_Q.max(-1), atol=1e-12)
    np.testing.assert_allclose(tabular.evaluate(mdp, sol.policy), mdp.init @ sol.V[0], atol=1e-12)


def test_optimal_beats_every_policy_in_a_batch_under_vmap(mdp):
    policies = jnp.stack([random_policy(i, mdp.n_states, mdp.n_actions, mdp.horizon) for i in range(64)])
    values = jax.jit(jax.vmap(lambda pi: tabular.evaluate(mdp, pi)))(policies)
    best = mdp.init @ tabular.solve(mdp).V[0]
    assert values.shape == (64,)
    assert np.all(values <= best + 1e-12)


def test_soft_bellman_and_low_temperature_limit(mdp):
    tau = 0.5
    soft = tabular.solve(mdp, temperature=tau)
    np.testing.assert_allclose(soft.V, tau * jax.nn.logsumexp(soft.Q / tau, axis=-1), atol=1e-12)
    np.testing.assert_allclose(soft.policy, jax.nn.softmax(soft.Q / tau, axis=-1), atol=1e-12)
    # The soft value is the return plus τ times the discounted entropy of the soft policy.
    entropy = -jnp.sum(soft.policy * jnp.log(soft.policy), axis=-1)  # [T, S]
    d = tabular.visitation(mdp, soft.policy)
    discounts = 0.9 ** jnp.arange(mdp.horizon)
    entropy_bonus = tau * jnp.sum(discounts * jnp.sum(d * entropy, axis=-1))
    np.testing.assert_allclose(mdp.init @ soft.V[0], tabular.evaluate(mdp, soft.policy) + entropy_bonus, atol=1e-10)
    cold = tabular.solve(mdp, temperature=1e-4)
    np.testing.assert_allclose(cold.V, tabular.solve(mdp).V, atol=1e-3)


def test_evaluate_and_kl_match_enumeration_of_every_trajectory():
    mdp = random_mdp(seed=3, S=3, A=2, T=3, discount=0.8)
    p = random_policy(1, 3, 2, T=3)
    q = random_policy(2, 3, 2, T=3)
    P, R, init = np.asarray(mdp.P), np.asarray(mdp.R), np.asarray(mdp.init)
    J, kl = 0.0, 0.0
    for traj in itertools.product(range(3), range(2), range(3), range(2), range(3), range(2)):
        s, a = traj[0::2], traj[1::2]
        prob_p, prob_q, ret = init[s[0]], init[s[0]], 0.0
        for t in range(3):
            prob_p *= p[t, s[t], a[t]]
            prob_q *= q[t, s[t], a[t]]
            ret += 0.8**t * R[s[t], a[t]]
            if t < 2:
                prob_p *= P[s[t], a[t], s[t + 1]]
                prob_q *= P[s[t], a[t], s[t + 1]]
        J += prob_p * ret
        kl += prob_p * np.log(prob_p / prob_q)
    np.testing.assert_allclose(tabular.evaluate(mdp, p), J, atol=1e-12)
    np.testing.assert_allclose(tabular.kl_divergence(mdp, p, q), kl, atol=1e-12)
    assert float(tabular.kl_divergence(mdp, p, p)) == pytest.approx(0.0, abs=1e-14)


def test_visitation_occupancy_and_reward_per_step(mdp):
    pi = random_policy(5, mdp.n_states, mdp.n_actions)
    d = tabular.visitation(mdp, pi)
    np.testing.assert_allclose(d.sum(-1), 1.0, atol=1e-12)
    np.testing.assert_allclose(d[0], mdp.init)
    np.testing.assert_allclose(d[1], np.einsum("s,sa,sax->x", d[0], pi, mdp.P), atol=1e-12)
    rho = tabular.occupancy(mdp, pi)
    np.testing.assert_allclose(rho.sum((-1, -2)), 1.0, atol=1e-12)
    r = tabular.reward_per_step(mdp, pi)
    np.testing.assert_allclose(jnp.sum(0.9 ** jnp.arange(mdp.horizon) * r), tabular.evaluate(mdp, pi), atol=1e-12)


def test_performance_difference_identity(mdp):
    expert = tabular.solve(mdp).policy
    for seed in range(3):
        learner = random_policy(seed, mdp.n_states, mdp.n_actions, mdp.horizon)
        terms = tabular.performance_difference(mdp, learner, expert)
        gap = tabular.evaluate(mdp, expert) - tabular.evaluate(mdp, learner)
        assert terms.shape == (mdp.horizon,)
        assert abs(float(terms.sum() - gap)) < 1e-6
        assert np.all(np.asarray(terms) >= -1e-12)  # the expert is optimal: no negative disadvantage


def test_monte_carlo_returns_and_visitation_match_exact(mdp):
    pi = random_policy(7, mdp.n_states, mdp.n_actions, mdp.horizon)
    n = 20_000
    episodes = jax.jit(tabular.sample_episodes, static_argnums=3)(jax.random.key(0), mdp, pi, n)
    returns = episodes.returns(0.9)
    exact = float(tabular.evaluate(mdp, pi))
    se = float(returns.std()) / np.sqrt(n)
    assert abs(float(returns.mean()) - exact) < 4 * se
    freq = np.stack([np.bincount(np.asarray(episodes.states[:, t]), minlength=mdp.n_states) / n for t in range(3)])
    d = np.asarray(tabular.visitation(mdp, pi)[:3])
    assert np.all(np.abs(freq - d) < 4 * np.sqrt(d * (1 - d) / n) + 1e-9)


def test_trap_closed_form_and_recoverability():
    T, eps = 40, 0.03
    mdp = toy_mdps.trap(T)
    expert = tabular.solve(mdp).policy
    learner = np.array([[1 - eps, eps], [1.0, 0.0]])
    gap = tabular.evaluate(mdp, expert) - tabular.evaluate(mdp, learner)
    closed = T - (1 - eps) * (1 - (1 - eps) ** T) / eps
    assert abs(float(gap) - closed) / closed < 1e-12
    err_expert_states = tabular.disagreement(mdp, learner, expert, states_of=expert)
    np.testing.assert_allclose(err_expert_states, eps, atol=1e-12)
    # On its own states the learner spends time in the trap, where every action agrees.
    err_own_states = tabular.disagreement(mdp, learner, expert, states_of=learner)
    np.testing.assert_allclose(err_own_states, eps * (1 - eps) ** np.arange(T), atol=1e-12)
    assert float(tabular.recoverability(mdp)) == T
    assert float(tabular.recoverability(toy_mdps.lane(T))) == 2.0


def test_jit_vmap_over_discount_and_traced_construction():
    base = random_mdp(seed=1)
    P = base.P

    @jax.jit
    def value_at(discount):
        mdp = TabularMDP(P, base.R, base.init, base.horizon, discount)  # P is traced here
        return mdp.init @ tabular.solve(mdp).V[0]

    discounts = jnp.array([0.5, 0.9, 1.0])
    batched = jax.vmap(value_at)(discounts)
    for d, v in zip(discounts, batched):
        mdp = TabularMDP(P, base.R, base.init, base.horizon, float(d))
        np.testing.assert_allclose(v, mdp.init @ tabular.solve(mdp).V[0], atol=1e-12)


def test_sparse_storage_round_trips_the_dense_tensor():
    rng = np.random.default_rng(0)
    P = rng.dirichlet(np.ones(4), size=(4, 2))
    P[0, 0] = [0, 1, 0, 0]
    mdp = TabularMDP(P, np.zeros((4, 2)), np.full(4, 0.25), 3)
    np.testing.assert_allclose(mdp.P, P, atol=1e-15)
    deterministic = TabularMDP(np.eye(4)[np.array([[1, 2], [2, 3], [3, 0], [0, 1]])], np.zeros((4, 2)), np.eye(4)[0], 2)
    assert deterministic.next_states.shape == (4, 2, 1)


def test_with_horizon_keeps_everything_else():
    mdp = random_mdp()
    longer = mdp.with_horizon(12)
    assert longer.horizon == 12
    np.testing.assert_allclose(longer.P, mdp.P)
    assert float(longer.discount) == pytest.approx(0.9)


def _good():
    return dict(P=np.full((2, 2, 2), 0.5), R=np.zeros((2, 2)), init=np.array([1.0, 0.0]), horizon=3)


@pytest.mark.parametrize(
    "change, error, match",
    [
        (dict(P=np.full((2, 2), 0.5)), ValueError, r"P must have shape \[S, A, S\]"),
        (dict(P=np.full((2, 2, 3), 1 / 3)), ValueError, r"P must have shape"),
        (dict(P=np.array([[[1.5, -0.5], [0.5, 0.5]], [[0.5, 0.5], [0.5, 0.5]]])), ValueError, "negative probability"),
        (dict(P=np.full((2, 2, 2), 0.4)), ValueError, "sum to one"),
        (dict(init=np.array([0.5, 0.4])), ValueError, "init must sum to one"),
        (dict(init=np.array([1.0, 0.0, 0.0])), ValueError, r"init must have shape \[S\]"),
        (dict(R=np.array([[np.nan, 0], [0, 0]])), ValueError, "R contains NaN"),
        (dict(R=np.zeros((2, 3))), ValueError, r"R must have shape \[S, A\]"),
        (dict(P=np.full((2, 2, 2), np.inf)), ValueError, "P contains NaN or inf"),
        (dict(horizon=0), ValueError, "horizon must be at least 1"),
        (dict(horizon=2.0), TypeError, "horizon must be a Python int"),
        (dict(discount=1.5), ValueError, "discount must lie in"),
        (dict(terminal=np.array([True, False])), ValueError, "terminal state 0 must be absorbing"),
    ],
)
def test_bad_inputs_raise_clear_errors(change, error, match):
    kwargs = {**_good(), **change}
    with pytest.raises(error, match=match):
        TabularMDP(**kwargs)


def test_bad_policies_and_temperature_raise():
    mdp = TabularMDP(**_good())
    with pytest.raises(ValueError, match=r"policy must have shape"):
        tabular.evaluate(mdp, np.full((3, 2), 0.5))
    with pytest.raises(ValueError, match="policy must sum to one"):
        tabular.evaluate(mdp, np.full((2, 2), 0.4))
    with pytest.raises(ValueError, match="temperature must be positive"):
        tabular.solve(mdp, temperature=0.0)
    with pytest.raises(ValueError, match="next_states must lie in"):
        TabularMDP.from_successors(np.full((2, 2, 1), 5), np.ones((2, 2, 1)), np.zeros((2, 2)), np.array([1.0, 0]), 2)
