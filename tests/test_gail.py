"""GAIL: sign convention, absorbing states, tabular GAIL against the exact expert return, CartPole in Gymnasium."""


import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import toyrlhf  # noqa: F401  (x64)
from toyrlhf import demonstrations, tabular
from toyrlhf.algorithms import bc, experts, gail
from toyrlhf.envs import CartPole, evaluate_in_gymnasium, reset_cliff, tabular_env
from toyrlhf.nets import MLP
from toyrlhf.optimize import minimize

# ------------------------------------------------------------------------------------------
# Sign convention and the loss, by hand
# ------------------------------------------------------------------------------------------


def test_discriminator_loss_hand_computed():
    f_e, f_l = jnp.array([0.0, 2.0]), jnp.array([-1.0])
    w_e, w_l = jnp.array([1.0, 3.0]), jnp.array([2.0])
    expected = (np.log(2.0) + 3 * np.log1p(np.exp(-2.0))) / 4 + np.log1p(np.exp(-1.0))
    np.testing.assert_allclose(gail.discriminator_loss(f_e, f_l, w_e, w_l), expected, rtol=1e-6)
    with pytest.raises(ValueError, match="logits and weights"):
        gail.discriminator_loss(f_e, f_l, w_e[:1], w_l)


def test_optimal_discriminator_reward_is_log_occupancy_ratio_and_favours_the_expert():
    """Free logits per pair, fitted to convergence: f* = log ρ_E/ρ_π, so the reward is higher on expert pairs."""
    rho_e = jnp.array([0.6, 0.3, 0.1])
    rho_l = jnp.array([0.1, 0.3, 0.6])

    def loss(f):
        return gail.discriminator_loss(f, f, rho_e, rho_l)

    f, losses = jax.jit(lambda f0: minimize(loss, f0, optax.adam(0.05), 3000))(jnp.zeros(3))
    np.testing.assert_allclose(f, np.log(rho_e / rho_l), atol=1e-3)
    reward = gail.discriminator_reward(f)
    assert rho_e @ reward > rho_l @ reward  # E_E[r] > E_π[r]
    assert losses[-1] < losses[0]


# ------------------------------------------------------------------------------------------
# Absorbing states
# ------------------------------------------------------------------------------------------


def test_fixed_horizon_keeps_returns_and_drops_terminal_flags():
    mdp = reset_cliff(horizon=6, n_good=4)
    env, params = tabular_env(mdp, "index")
    fixed = gail.fixed_horizon(params).mdp
    assert bool(mdp.terminal.any()) and not bool(fixed.terminal.any())
    uniform = jnp.full((mdp.n_states, mdp.n_actions), 0.5)
    np.testing.assert_allclose(tabular.evaluate(fixed, uniform), tabular.evaluate(mdp, uniform), rtol=1e-12)


def test_absorbing_wrapper_and_reward_tail():
    env = gail.WithAbsorbing(CartPole())
    params = CartPole().default_params()
    obs, state = env.reset(jax.random.key(0), params)
    assert env.observation_shape == (5,) and obs.shape == (5,) and obs[-1] == 0
    falling = state._replace(theta=jnp.float32(0.25))  # past 12 degrees (0.209 rad)
    step = env.step(jax.random.key(1), falling, jnp.int32(0), params)
    assert bool(step.terminated)
    np.testing.assert_array_equal(step.obs, [0, 0, 0, 0, 1])
    live = env.step(jax.random.key(1), state, jnp.int32(0), params)
    assert not bool(live.terminated) and live.obs[-1] == 0

    config = gail.GAILConfig.cartpole(n_updates=1)
    pieces = gail.make_gail(config, CartPole(), params)
    net = config.discriminator.init(jax.random.key(2), 4, 2, 1.0)
    disc = gail.DiscriminatorParams(net, jnp.float32(-0.5))
    f = config.discriminator.apply(net, obs[:4])[1]
    gamma = jnp.float32(0.9)
    np.testing.assert_allclose(pieces.reward_fn(obs, jnp.int32(1), live.obs, (disc, gamma)), f, rtol=1e-6)
    np.testing.assert_allclose(  # terminating step: f(s, a) + γ/(1-γ) f_abs = f - 4.5
        pieces.reward_fn(obs, jnp.int32(1), step.obs, (disc, gamma)), f - 4.5, rtol=1e-5
    )
    drop = gail.DropFlag(MLP((8,)))
    p = drop.init(jax.random.key(3), 5, 2)
    assert p[0]["w"].shape == (4, 8)
    np.testing.assert_array_equal(drop.apply(p, obs), MLP((8,)).apply(p, obs[:4]))


# ------------------------------------------------------------------------------------------
# Tabular GAIL on Reset Cliff, exact evaluation
# ------------------------------------------------------------------------------------------

N_SEEDS = 4


@pytest.fixture(scope="module")
def reset_cliff_run():
    mdp = reset_cliff(horizon=10, n_good=10)
    expert = demonstrations.tabular_expert(mdp)
    demos = demonstrations.sample_demonstrations(jax.random.key(1), mdp, expert, 2)
    env, env_params = tabular_env(mdp, "index")
    config = gail.GAILConfig.tabular(n_updates=40)
    train = jax.jit(jax.vmap(gail.make_train(config, env, env_params), in_axes=(0, None)))
    result, metrics = train(jax.random.split(jax.random.key(0), N_SEEDS), demos)
    policy = gail.tabular_policy(config, result, env_params)
    returns = jax.vmap(lambda p: tabular.evaluate(mdp, p))(policy)
    return mdp, expert, demos, config, result, metrics, np.asarray(returns)


def test_tabular_gail_reaches_near_expert_return_where_bc_falls(reset_cliff_run):
    mdp, expert, demos, _, _, metrics, returns = reset_cliff_run
    unseen = set(range(10)) - set(np.asarray(demos.observations).ravel().tolist())
    assert unseen, "the test needs good states the two demonstrations never show"
    assert not np.asarray(metrics.nonfinite).any()
    j_expert = float(tabular.evaluate(mdp, expert))
    j_bc = float(tabular.evaluate(mdp, bc.fit_tabular(demos, mdp.n_states, 2, time_indexed=False, default_action=0)))
    assert j_expert == pytest.approx(10.0)
    assert returns.mean() >= 0.9 * j_expert, returns  # measured 9.45 mean (9.01-9.66) with the earlier settings
    assert returns.min() > j_bc + 2.0, (returns, j_bc)  # BC: 5.43 (falls in every unseen state)


def test_tabular_gail_reward_is_higher_on_expert_pairs_and_resources(reset_cliff_run):
    *_, config, result, metrics, _ = reset_cliff_run
    late = slice(-10, None)
    expert_reward = np.asarray(metrics.expert_reward[:, late]).mean(1)
    assert np.all(expert_reward > np.asarray(metrics.learner_reward[:, late]).mean(1))
    # the absorbing fall state: never demonstrated, only the learner goes there, so its learned reward is negative
    table = np.asarray(result.discriminator.net)  # [seeds, S, A]
    assert np.all(table[:, 10, :].max(-1) < 0)
    res = result.resources
    assert np.all(np.asarray(res.expert_labels) == 20)
    per_round = config.ppo.n_envs * (config.ppo.n_steps + config.disc_n_steps)
    assert np.all(np.asarray(res.env_steps) == config.ppo.n_updates * per_round)
    assert not np.asarray(res.known_dynamics).any()


# ------------------------------------------------------------------------------------------
# CartPole: GAIL learns from a PPO expert, scored in Gymnasium
# ------------------------------------------------------------------------------------------


def test_gail_learns_cartpole_in_gymnasium():
    # The GAIL benchmark's target: each seed's greedy policy reaches a mean Gymnasium return >= 450
    # at some evaluation within 100 rounds (one every 10); GAIL's policy oscillates once there, so
    # the last policy is not a stable statistic. The data are the package's committed 16 expert
    # episodes (the GAIL benchmark's): a PPO expert retrained here differs across machines (XLA's
    # CPU code), and from one retrained expert both seeds peaked at 161-193 (an open finding about
    # that expert, not GAIL: the same code on these data reaches 500 and 478 within 30 rounds).
    demos, _ = experts.committed_cartpole_demonstrations()
    env = CartPole()
    config = gail.GAILConfig.cartpole(n_updates=100)
    pieces = gail.make_gail(config, env, env.default_params())
    run_chunk = jax.jit(jax.vmap(lambda s: jax.lax.scan(lambda s, _: pieces.update(s), s, None, length=10)))
    state = jax.jit(jax.vmap(pieces.init, in_axes=(0, None)))(jax.random.split(jax.random.key(0), 2), demos)
    best = np.zeros(2)
    for _ in range(10):
        state, metrics = run_chunk(state)
        assert not np.asarray(metrics.nonfinite).any()
        actor = jax.vmap(pieces.result)(state).ppo.params.actor
        returns = evaluate_in_gymnasium(MLP().apply, actor, n_episodes=10, n_policies=2)
        best = np.maximum(best, returns.mean(1))
        if np.all(best >= 450):
            break
    assert np.all(best >= 450), best  # untrained: ~10-20


# ------------------------------------------------------------------------------------------
# Convergence settings: persistent discriminator Adam, gradient penalty, absorbing reward, 2 log 2
# ------------------------------------------------------------------------------------------


def test_config_rejects_bad_convergence_settings_naming_the_field():
    for field, value, error in [
        ("absorbing_reward", "free", ValueError), ("disc_grad_penalty", -1.0, ValueError),
        ("disc_persistent_optimizer", 1, TypeError), ("disc_learning_rate", 0.0, ValueError),
    ]:
        with pytest.raises(error, match=field):
            gail.GAILConfig.tabular(**{field: value})
    config = gail.GAILConfig.tabular()
    assert not config.ppo.anneal_lr and config.disc_persistent_optimizer and config.absorbing_reward == "learned"
    assert not gail.GAILConfig.cartpole().ppo.anneal_lr
    assert gail.CHANCE_LOSS == pytest.approx(2 * np.log(2))


@pytest.fixture(scope="module")
def small_cliff():
    mdp = reset_cliff(horizon=6, n_good=4)
    demos = demonstrations.sample_demonstrations(jax.random.key(1), mdp, demonstrations.tabular_expert(mdp), 4)
    env, env_params = tabular_env(mdp, "index")
    return mdp, demos, env, env_params


def run_rounds(config, small_cliff, n_rounds):
    _, demos, env, env_params = small_cliff
    pieces = gail.make_gail(config, env, env_params)
    state = pieces.init(jax.random.key(0), demos)
    state, metrics = jax.jit(lambda s: jax.lax.scan(lambda s, _: pieces.update(s), s, None, length=n_rounds))(state)
    return pieces, state, metrics


def test_discriminator_adam_state_persists_across_rounds_unless_told_to_restart(small_cliff):
    for persistent, expected in ((True, 3 * 4), (False, 4)):
        config = gail.GAILConfig.tabular(n_updates=3, disc_persistent_optimizer=persistent)
        _, state, metrics = run_rounds(config, small_cliff, 3)
        assert int(state.disc_opt_state[0].count) == expected  # Adam's step count: 4 steps a round
        np.testing.assert_allclose(metrics.chance_loss, 2 * np.log(2))
        assert np.all((metrics.disc_accuracy >= 0) & (metrics.disc_accuracy <= 1))


def test_gradient_penalty_shrinks_a_table_discriminator(small_cliff):
    """For a table, the penalty on one-hot inputs is an L2 penalty on the logits: a large weight keeps them small."""
    tables = {}
    for penalty in (0.0, 100.0):
        config = gail.GAILConfig.tabular(n_updates=5, disc_grad_penalty=penalty)
        _, state, _ = run_rounds(config, small_cliff, 5)
        tables[penalty] = np.abs(np.asarray(state.discriminator.net)).max()
    assert tables[100.0] < 0.2 * tables[0.0], tables


def test_zero_absorbing_reward_pays_zero_in_the_fall_state_and_leaves_it_out_of_the_data(small_cliff):
    mdp, *_ = small_cliff
    fall = int(np.flatnonzero(np.asarray(mdp.terminal))[0])
    for absorbing_reward in ("learned", "zero"):
        config = gail.GAILConfig.tabular(n_updates=10, absorbing_reward=absorbing_reward)
        pieces, state, _ = run_rounds(config, small_cliff, 10)
        table = np.asarray(state.discriminator.net)
        params = (state.discriminator, jnp.float32(0.99))
        paid = float(pieces.reward_fn(jnp.int32(fall), jnp.int32(0), jnp.int32(fall), params))
        if absorbing_reward == "zero":  # no data: the fall state's row keeps its initial zeros, and pays 0
            assert np.all(table[fall] == 0) and paid == 0.0
        else:  # only the learner falls: the learned reward there is negative
            assert table[fall].max() < 0 and paid == pytest.approx(table[fall, 0])
    live = float(pieces.reward_fn(jnp.int32(0), jnp.int32(1), jnp.int32(1), params))
    assert live == pytest.approx(float(table[0, 1]))


def test_zero_absorbing_reward_on_cartpole_fixes_the_absorbing_logit_at_zero():
    demos, _ = experts.committed_cartpole_demonstrations()
    short = demonstrations.Demonstrations(*(x[:2, :50] for x in demos))
    short = short._replace(valid=short.valid.at[1, 40:].set(False))  # one episode "ends" early: an absorbing sample
    config = gail.GAILConfig.cartpole(n_updates=2, absorbing_reward="zero")
    config = dataclasses.replace(config, ppo=dataclasses.replace(config.ppo, n_envs=2, n_steps=16))
    env = CartPole()
    pieces = gail.make_gail(config, env, env.default_params())
    state = pieces.init(jax.random.key(0), short)
    state, metrics = jax.lax.scan(lambda s, _: pieces.update(s), state, None, length=2)
    assert float(state.discriminator.absorbing) == 0.0
    obs = jnp.zeros(5)
    absorbing_next = jnp.zeros(5).at[-1].set(1.0)
    params = (state.discriminator, jnp.float32(0.9))
    np.testing.assert_allclose(pieces.reward_fn(obs, jnp.int32(0), absorbing_next, params),
                               pieces.reward_fn(obs, jnp.int32(0), obs, params), rtol=1e-6)  # no absorbing tail
