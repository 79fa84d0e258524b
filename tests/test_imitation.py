"""BC, DAgger and MaxEnt IRL against exact quantities (tabular)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toyrlhf import demonstrations as demo_lib
from toyrlhf import tabular
from toyrlhf.algorithms import bc, dagger, maxent_irl
from toyrlhf.demonstrations import Demonstrations
from toyrlhf.envs import toy_mdps
from toyrlhf.envs.gridworld import make_gridworld


def _demos(states, actions):
    states, actions = jnp.asarray(states), jnp.asarray(actions)
    return Demonstrations(states, actions, jnp.zeros(states.shape), jnp.ones(states.shape, bool))


# ---------------------------------------------------------------- BC


def test_bc_counts_by_hand():
    demos = _demos([[0, 1], [0, 1], [0, 2]], [[1, 0], [1, 1], [0, 1]])
    stationary = bc.fit_tabular(demos, 4, 2, time_indexed=False, default_action=0)
    # state 0: actions 1, 1, 0; state 1: 0, 1; state 2: 1; state 3: unseen -> default 0
    np.testing.assert_allclose(stationary, [[1 / 3, 2 / 3], [0.5, 0.5], [0, 1], [1, 0]], atol=1e-15)
    timed = bc.fit_tabular(demos, 4, 2, time_indexed=True, default_action=None)
    np.testing.assert_allclose(timed[0], [[1 / 3, 2 / 3], [0.5, 0.5], [0.5, 0.5], [0.5, 0.5]], atol=1e-15)
    np.testing.assert_allclose(timed[1], [[0.5, 0.5], [0.5, 0.5], [0, 1], [0.5, 0.5]], atol=1e-15)
    with pytest.raises(ValueError, match="default_action"):
        bc.fit_tabular(demos, 4, 2, time_indexed=True, default_action=2)
    with pytest.raises(ValueError, match="shape"):
        bc.action_counts(jnp.zeros((2, 3), int), jnp.zeros((2, 2), int), 4, 2, True)


def test_bc_on_full_coverage_deterministic_data_is_exactly_the_expert():
    mdp = make_gridworld("four-rooms", slip=0.0, step_cost=0.01, horizon=12).mdp
    expert = np.asarray(demo_lib.tabular_expert(mdp))  # hard: one-hot [T, S, A]
    S, T = mdp.n_states, mdp.horizon
    # One episode per state, visiting that state at every step: every (t, s) is covered.
    states = np.repeat(np.arange(S)[:, None], T, axis=1)
    actions = expert.argmax(-1).T  # [S, T]
    policy = bc.fit_tabular(_demos(states, actions), S, 4, time_indexed=True, default_action=0)
    np.testing.assert_array_equal(policy, expert)
    assert float(tabular.evaluate(mdp, policy)) == float(tabular.evaluate(mdp, expert))
    # Stationary BC with a stationary expert that every state's demonstrations cover.
    stationary_expert = expert[0]
    demos = _demos(np.tile(np.arange(S), (3, 1)), np.tile(stationary_expert.argmax(-1), (3, 1)))
    np.testing.assert_array_equal(bc.fit_tabular(demos, S, 4, time_indexed=False, default_action=0), stationary_expert)


def test_bc_from_sampled_expert_data_covers_what_it_saw():
    mdp = toy_mdps.standard_imitation(horizon=5, n_states=6)
    expert = demo_lib.tabular_expert(mdp)
    demos = demo_lib.sample_demonstrations(jax.random.key(0), mdp, expert, 200)
    policy = bc.fit_tabular(demos, 6, 3, time_indexed=True, default_action=0)
    seen = np.asarray(bc.action_counts(demos.observations, demos.actions, 6, 3, True).sum(-1) > 0)
    np.testing.assert_array_equal(np.asarray(policy)[seen], np.asarray(expert)[seen])
    assert bc.tabular_resources(demos).expert_labels == 200 * 5


# ---------------------------------------------------------------- DAgger


@pytest.fixture(scope="module")
def tiny_cliff():
    return toy_mdps.reset_cliff(horizon=3, n_good=2, rho=np.array([0.5, 0.5]))


def test_dagger_aggregates_learner_visited_states(tiny_cliff):
    """Round 0 is expert data (never the cliff); round 1's learner falls, and the cliff state is labelled.

    One episode per round, T = 3, two equally likely states: the round-1 learner knows
    one state per step, so it falls at step t with probability 1/2 given it got there,
    and the bad state appears among its 3 recorded states iff it fell at step 0 or 1:
    probability 1 - (1/2)^2 = 3/4.
    """
    mdp = tiny_cliff
    expert = demo_lib.tabular_expert(mdp)
    config = dagger.DAggerConfig(n_rounds=2, episodes_per_round=1, default_action=0)
    n_seeds = 400
    out = jax.jit(jax.vmap(dagger.make_train(config, mdp, expert)))(jax.random.split(jax.random.key(0), n_seeds))
    bad = 2
    states, labels = np.asarray(out.data.states), np.asarray(out.data.labels)
    assert states.shape == (n_seeds, 2, 1, 3)
    assert not np.any(states[:, 0] == bad)  # the expert never falls
    fell = np.any(states[:, 1] == bad, axis=(-1, -2))
    se = np.sqrt(0.75 * 0.25 / n_seeds)
    assert abs(fell.mean() - 0.75) < 4 * se
    # Every visited state carries the expert's label (expert is deterministic: exact match).
    steps = np.broadcast_to(np.arange(3), states.shape)
    np.testing.assert_array_equal(labels, np.asarray(expert).argmax(-1)[steps, states])
    # The final policy is BC on the aggregate: it plays the expert wherever round 0 or 1 had data.
    policy = np.asarray(out.policy)  # [seeds, T, S, A]
    seen = np.zeros((n_seeds, 3, 3), bool)
    seed_idx = np.arange(n_seeds)[:, None, None, None]
    seen[seed_idx, steps, states] = True
    covered = np.broadcast_to(np.asarray(expert), policy.shape)[seen]
    np.testing.assert_array_equal(policy[seen], covered)
    assert seen[..., bad].any() and not seen[:, 0, bad].all()
    # Round 0 runs the expert exactly; resources are counted.
    np.testing.assert_allclose(out.returns[:, 0], 3.0)
    assert int(out.resources.expert_labels[0]) == 2 * 1 * 3 and int(out.resources.env_steps[0]) == 3
    assert not bool(out.resources.known_dynamics[0])


def test_dagger_after_given_demonstrations_counts_its_labels_as_it_says(tiny_cliff):
    """Round 0 = the given demonstrations (BC's data); rounds 1.. query the expert on the learner's states.

    The label count is checked against an independent count of the recorded data: every
    demonstrated valid step is one label, every queried step one more, and a queried step is
    uninformative exactly when its state is the absorbing bad state (every action the same there).
    """
    mdp = tiny_cliff
    expert = demo_lib.tabular_expert(mdp)
    config = dagger.DAggerConfig(n_rounds=3, episodes_per_round=2, default_action=0)
    bad, T = 2, 3

    def run(key):
        demos = demo_lib.sample_demonstrations(jax.random.fold_in(key, 1), mdp, expert, 4)
        demos = demos._replace(valid=demos.valid.at[0, 2].set(False))  # one step missing: 11 labels
        return demos, dagger.make_train(config, mdp, expert)(key, demos)

    demos, out = jax.jit(jax.vmap(run))(jax.random.split(jax.random.key(4), 200))
    states = np.asarray(out.data.states)  # [seeds, rounds - 1, episodes, T]: only the queried rounds
    assert states.shape == (200, 2, 2, T)
    queried_bad = (states == bad).sum(axis=(1, 2))  # [seeds, T]
    per_step = out.labels_per_step
    np.testing.assert_array_equal(per_step.demonstrated, np.asarray(demos.valid).sum(1))
    np.testing.assert_array_equal(per_step.queried_uninformative, queried_bad)
    np.testing.assert_array_equal(per_step.queried_informative, 2 * 2 - queried_bad)
    assert np.all(np.asarray(out.resources.expert_labels) == 11 + 2 * 2 * T)
    assert np.all(np.asarray(out.resources.env_steps) == 2 * 2 * T)
    total = per_step.demonstrated + per_step.queried_informative + per_step.queried_uninformative
    np.testing.assert_array_equal(np.asarray(total).sum(-1), np.asarray(out.resources.expert_labels))
    assert queried_bad.sum() > 0  # some learners fell, and those labels are counted apart
    np.testing.assert_array_equal(np.asarray(dagger.informative_states(mdp)), [True, True, False])
    # DAgger knows everything BC knows: on every (t, s) of the demonstrations it plays the expert's action.
    obs, valid, policy = np.asarray(demos.observations), np.asarray(demos.valid), np.asarray(out.policy)
    for i in range(20):
        for n, t in zip(*np.nonzero(valid[i])):
            np.testing.assert_array_equal(policy[i, t, obs[i, n, t]], np.asarray(expert)[t, obs[i, n, t]])


def test_dagger_config_is_checked():
    with pytest.raises(ValueError, match="beta_decay"):
        dagger.DAggerConfig(beta_decay=1.5)
    np.testing.assert_allclose(dagger.DAggerConfig(n_rounds=3, beta_decay=0.5).betas(), [1.0, 0.5, 0.25])
    np.testing.assert_allclose(dagger.DAggerConfig(n_rounds=3).betas(), [1.0, 0.0, 0.0])


# ---------------------------------------------------------------- MaxEnt IRL


def test_occupancy_gradient_is_the_dual_gradient_and_the_dual_is_the_likelihood():
    rng = np.random.default_rng(0)
    S, A, T = 4, 3, 5
    P = rng.dirichlet(np.ones(S), size=(S, A))
    mdp = tabular.TabularMDP(P, rng.normal(size=(S, A)), rng.dirichlet(np.ones(S)), T)
    demos = demo_lib.sample_demonstrations(jax.random.key(0), mdp, demo_lib.tabular_expert(mdp, 1.0), 7)
    features = jnp.asarray(rng.normal(size=(S, A, 5)))
    theta = jnp.asarray(rng.normal(size=5))
    mu = maxent_irl.empirical_occupancy(demos, S, A)
    grad_dual = jax.jit(jax.grad(maxent_irl.dual_loss))
    loss_and_gradient = jax.jit(maxent_irl.loss_and_gradient)
    for tau in (1.0, 0.5):
        auto = grad_dual(theta, mdp, features, mu, tau)
        exact = loss_and_gradient(theta, mdp, features, mu, tau)[1]
        np.testing.assert_allclose(exact, auto, atol=1e-10)
    # Deterministic dynamics and a fixed start: the dual equals the negative log-likelihood.
    det = make_gridworld("open-5x5", slip=0.0, step_cost=0.1, horizon=6).mdp
    det_demos = demo_lib.sample_demonstrations(jax.random.key(1), det, demo_lib.tabular_expert(det, 1.0), 5)
    det_mu = maxent_irl.empirical_occupancy(det_demos, det.n_states, 4)
    det_features = jnp.asarray(rng.normal(size=(det.n_states, 4, 3)))
    nll_fn, dual_fn = jax.jit(maxent_irl.negative_log_likelihood), jax.jit(maxent_irl.dual_loss)
    for theta in (jnp.zeros(3), jnp.asarray(rng.normal(size=3))):
        nll = nll_fn(theta, det, det_features, det_demos, 0.7)
        dual = dual_fn(theta, det, det_features, det_mu, 0.7)
        assert float(dual) == pytest.approx(float(nll), abs=1e-10)


def test_time_indexed_gradient_is_the_dual_gradient_and_one_step_equals_the_stationary_reward():
    rng = np.random.default_rng(1)
    S, A, T = 4, 3, 5
    P = rng.dirichlet(np.ones(S), size=(S, A))
    mdp = tabular.TabularMDP(P, rng.normal(size=(S, A)), rng.dirichlet(np.ones(S)), T)
    demos = demo_lib.sample_demonstrations(jax.random.key(0), mdp, demo_lib.tabular_expert(mdp, 1.0), 7)
    features = jnp.asarray(rng.normal(size=(S, A, 5)))
    theta = jnp.asarray(rng.normal(size=(T, 5)))
    mu = maxent_irl.empirical_occupancy(demos, S, A, time_indexed=True)
    assert mu.shape == (T, S, A)
    for horizon in (T, 3):
        auto = jax.grad(maxent_irl.dual_loss)(theta, mdp, features, mu * (jnp.arange(T) < horizon)[:, None, None],
                                              0.7, horizon)
        exact = maxent_irl.loss_and_gradient(theta, mdp, features, mu * (jnp.arange(T) < horizon)[:, None, None],
                                             0.7, horizon)[1]
        np.testing.assert_allclose(exact, auto, atol=1e-10)
    # A time-indexed θ equal at every step is the stationary θ: same loss.
    same = jnp.broadcast_to(theta[0], (T, 5))
    stationary = maxent_irl.dual_loss(theta[0], mdp, features, mu.sum(0), 0.7)
    assert float(maxent_irl.dual_loss(same, mdp, features, mu, 0.7)) == pytest.approx(float(stationary), abs=1e-10)


def test_absorbing_state_treatments_change_only_the_terminal_features():
    mdp = toy_mdps.reset_cliff(horizon=4, n_good=2, rho=np.array([0.5, 0.5]))  # state 2 falls for good
    one_hot = jnp.eye(3 * 2).reshape(3, 2, 6)
    same = maxent_irl.absorbing_features(mdp, one_hot, "learned", "horizon")
    np.testing.assert_array_equal(same, one_hot)
    zero = np.asarray(maxent_irl.absorbing_features(mdp, one_hot, "zero"))
    np.testing.assert_array_equal(zero[2], 0.0)
    np.testing.assert_array_equal(zero[:2], np.asarray(one_hot)[:2])
    once = np.asarray(maxent_irl.absorbing_features(mdp, one_hot, "learned", "once"))
    np.testing.assert_array_equal(once[2], 0.0)
    # Action 0 falls (P = 1) and is credited the fall state's mean feature once; the expert's action 1 is not.
    np.testing.assert_allclose(once[0, 0], np.asarray(one_hot)[0, 0] + np.asarray(one_hot)[2].mean(0))
    np.testing.assert_allclose(once[0, 1], np.asarray(one_hot)[0, 1])
    with pytest.raises(ValueError, match="absorbing_reward"):
        maxent_irl.MaxEntIRLConfig(absorbing_reward="free")
    with pytest.raises(ValueError, match="absorbing_steps"):
        maxent_irl.MaxEntIRLConfig(absorbing_steps="twice")
    with pytest.raises(TypeError, match="time_indexed"):
        maxent_irl.MaxEntIRLConfig(time_indexed=1)


def test_maxent_irl_recovers_a_reward_whose_optimal_policy_is_the_experts():
    world = make_gridworld(("S.L", "...", "L.G"), slip=0.0, step_cost=0.05, horizon=6)
    mdp = world.mdp
    expert = demo_lib.tabular_expert(mdp)
    demos = demo_lib.sample_demonstrations(jax.random.key(0), mdp, expert, 10)
    train = jax.jit(maxent_irl.make_train(maxent_irl.MaxEntIRLConfig(n_steps=300), mdp))
    out = train(demos)
    assert float(out.losses[-1]) < 0.1 * float(out.losses[0])  # it actually learns
    # The recovered reward's optimal policy earns the expert's return under the TRUE reward,
    # and takes the expert's action wherever the expert goes.
    assert float(tabular.evaluate(mdp, out.policy)) == pytest.approx(float(tabular.evaluate(mdp, expert)), abs=1e-9)
    on_path = np.asarray(tabular.visitation(mdp, expert)) > 0
    np.testing.assert_array_equal(np.asarray(out.policy)[on_path], np.asarray(expert)[on_path])
    assert bool(out.resources.known_dynamics) and int(out.resources.env_steps) == 0
    assert int(out.resources.expert_labels) == 60


def test_maxent_irl_avoids_the_cliff_in_undemonstrated_states():
    """Reset Cliff: BC falls on every unseen state; the IRL policy plays the expert's action there too."""
    mdp = toy_mdps.reset_cliff(horizon=8, n_good=6)
    expert = demo_lib.tabular_expert(mdp)
    demos = demo_lib.sample_demonstrations(jax.random.key(3), mdp, expert, 3)
    out = jax.jit(maxent_irl.make_train(maxent_irl.MaxEntIRLConfig(), mdp))(demos)
    bc_policy = bc.fit_tabular(demos, mdp.n_states, 2, time_indexed=True, default_action=0)
    j_expert = float(tabular.evaluate(mdp, expert))
    gap_bc = j_expert - float(tabular.evaluate(mdp, bc_policy))
    gap_irl = j_expert - float(tabular.evaluate(mdp, out.policy))
    assert gap_bc > 1.0
    assert gap_irl < 0.1 * gap_bc, (gap_irl, gap_bc)


def test_maxent_irl_with_a_shorter_traced_horizon_equals_the_short_problem():
    """One compiled run at horizon 8 serves horizon 5: same θ as building the horizon-5 MDP."""
    mdp = toy_mdps.reset_cliff(horizon=8, n_good=4)
    demos = demo_lib.sample_demonstrations(jax.random.key(2), mdp, demo_lib.tabular_expert(mdp), 4)
    config = maxent_irl.MaxEntIRLConfig(n_steps=50)
    long = jax.jit(maxent_irl.make_train(config, mdp))(demos, 5)
    short = jax.jit(maxent_irl.make_train(config, mdp.with_horizon(5)))(demos.truncate(5))
    np.testing.assert_allclose(long.theta, short.theta, atol=1e-9)
    np.testing.assert_allclose(long.policy[:5], short.policy, atol=1e-12)
    np.testing.assert_allclose(long.losses, short.losses, atol=1e-9)
