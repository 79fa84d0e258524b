"""DQN: replay buffer and loss by hand, probe environments and a gridworld against exact Q*."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import toyrlhf  # noqa: F401  (x64)
from toyrlhf import tabular
from toyrlhf.algorithms import dqn
from toyrlhf.diagnostics import raise_if_nonfinite
from toyrlhf.envs.functional import tabular_env
from toyrlhf.envs.gridworld import make_gridworld
from toyrlhf.nets import MLP, Table
from toyrlhf.types import Transition

# ------------------------------------------------------------------------------------------
# Pieces, by hand
# ------------------------------------------------------------------------------------------


def _transitions(start: int, n: int) -> Transition:
    values = jnp.arange(start, start + n)
    f = values.astype(jnp.float32)
    return Transition(
        obs=f[:, None],
        action=values.astype(jnp.int32),
        log_prob=jnp.zeros(n),
        reward=f,
        next_obs=f[:, None] + 0.5,
        terminated=values % 2 == 0,
        truncated=jnp.zeros(n, bool),
        episode_return=f,
        episode_length=jnp.ones(n, jnp.int32),
    )


def test_buffer_ring():
    buffer = dqn.buffer_init(5, (1,))
    buffer = dqn.buffer_add(buffer, _transitions(0, 3))
    assert int(buffer.size) == 3 and int(buffer.position) == 3
    buffer = dqn.buffer_add(buffer, _transitions(3, 4))  # 3, 4 fill slots 3, 4; 5, 6 overwrite 0, 1
    assert int(buffer.size) == 5 and int(buffer.position) == 2
    np.testing.assert_array_equal(buffer.action, [5, 6, 2, 3, 4])
    np.testing.assert_array_equal(buffer.reward, [5, 6, 2, 3, 4])
    np.testing.assert_array_equal(buffer.next_obs[:, 0], [5.5, 6.5, 2.5, 3.5, 4.5])
    np.testing.assert_array_equal(buffer.terminated, [False, True, True, False, True])
    with pytest.raises(ValueError, match="capacity 5"):
        dqn.buffer_add(buffer, _transitions(0, 6))


def test_buffer_samples_only_filled_slots_uniformly():
    buffer = dqn.buffer_add(dqn.buffer_init(8, (1,)), _transitions(10, 3))
    sample = dqn.buffer_sample(jax.random.key(0), buffer, 30_000)
    counts = np.bincount(np.asarray(sample.action) - 10, minlength=3)
    assert counts.sum() == 30_000 and counts.size == 3  # never an empty slot (action 0)
    # Each of 3 slots has probability 1/3; binomial SD = sqrt(30000 * 2/9) ≈ 82, allow 5 SD.
    np.testing.assert_allclose(counts, 10_000, atol=410)
    np.testing.assert_array_equal(sample.reward, sample.action)  # fields stay aligned


def test_q_learning_loss_by_hand():
    q_t = jnp.array([[1.0, 2.0], [0.0, 3.0]])
    q_tp1_target = jnp.array([[4.0, 6.0], [5.0, 1.0]])
    q_tp1_online = jnp.array([[9.0, 0.0], [0.0, 9.0]])
    a, r, term = jnp.array([1, 0]), jnp.array([1.0, -1.0]), jnp.array([False, True])
    # DQN: y = (1 + 0.5 * max(4, 6), -1) = (4, -1); Q(o, a) = (2, 0); loss = ½ mean(4, 1) = 1.25.
    loss, q_taken, y = dqn.q_learning_loss(q_t, a, r, term, q_tp1_target, q_tp1_online, 0.5, double_q=False)
    np.testing.assert_allclose(y, [4.0, -1.0])
    np.testing.assert_allclose(q_taken, [2.0, 0.0])
    assert float(loss) == pytest.approx(1.25)
    # Double DQN: a* = argmax online = (0, 1) -> y = (1 + 0.5 * 4, -1) = (3, -1); loss = ½ mean(1, 1) = 0.5.
    loss, _, y = dqn.q_learning_loss(q_t, a, r, term, q_tp1_target, q_tp1_online, 0.5, double_q=True)
    np.testing.assert_allclose(y, [3.0, -1.0])
    assert float(loss) == pytest.approx(0.5)
    # Gradient only through Q(o_t, a_t): d loss / d q_t = (q - y) / B on the taken entries.
    grad = jax.grad(lambda q: dqn.q_learning_loss(q, a, r, term, q_tp1_target, q_t, 0.5, False)[0])(q_t)
    np.testing.assert_allclose(grad, [[0.0, -1.0], [0.5, 0.0]])
    with pytest.raises(ValueError, match="q_t"):
        dqn.q_learning_loss(q_t[0], a, r, term, q_tp1_target, q_tp1_online, 0.5, False)


def test_epsilon_schedule_and_logits():
    hyper = dqn.DQNHyperparams(epsilon_start=1.0, epsilon_end=0.1, epsilon_fraction=0.5)
    eps = [float(dqn.epsilon_at(u, 100, hyper)) for u in (0, 25, 50, 99)]
    np.testing.assert_allclose(eps, [1.0, 0.55, 0.1, 0.1])
    probs = jax.nn.softmax(dqn.epsilon_greedy_logits(jnp.array([0.0, 2.0, 1.0]), 0.3))
    np.testing.assert_allclose(probs, [0.1, 0.8, 0.1], rtol=1e-6)


def test_config_validation():
    with pytest.raises(ValueError, match="batch_size"):
        dqn.DQNConfig(batch_size=0)
    with pytest.raises(ValueError, match="buffer_size"):
        dqn.DQNConfig(n_envs=4, n_steps=4, buffer_size=8, learning_starts=0)
    with pytest.raises(ValueError, match="learning_starts"):
        dqn.DQNConfig(buffer_size=100, learning_starts=200)
    with pytest.raises(ValueError, match="gamma"):
        dqn.discounted_q_star(make_gridworld("open-5x5").mdp, 1.0)


# ------------------------------------------------------------------------------------------
# Probe environments (Andy Jones' probes): the right Q is known by hand and by tabular.solve
# ------------------------------------------------------------------------------------------

GAMMA = 0.5


def _chain_mdp(R, next_state, terminal, horizon):
    """Deterministic MDP: ``next_state[s, a]``, reward ``R[s, a]``, start in state 0."""
    R = np.asarray(R, dtype=np.float64)
    S, A = R.shape
    P = np.zeros((S, A, S))
    P[np.arange(S)[:, None], np.arange(A)[None, :], np.asarray(next_state)] = 1.0
    init = np.eye(S)[0]
    return tabular.TabularMDP(P, R, init, horizon, terminal=np.asarray(terminal))


PROBES = {
    # One action, one step, reward 1, then terminal: Q(0) = 1 (no bootstrapping from the terminal).
    "one-step reward": (_chain_mdp([[1.0], [0.0]], [[1], [1]], [False, True], 5), {0: [1.0]}),
    # The action is the reward: Q(0, ·) = (−1, +1).
    "action is reward": (_chain_mdp([[-1.0, 1.0], [0.0, 0.0]], [[1, 1], [1, 1]], [False, True], 5), {0: [-1, 1]}),
    # Two steps, reward only at the second: Q(0) = γ, Q(1) = 1.
    "two-step discounting": (
        _chain_mdp([[0.0], [1.0], [0.0]], [[1], [2], [2]], [False, False, True], 5),
        {0: [GAMMA], 1: [1.0]},
    ),
    # Never terminates; a time limit truncates every 3 steps. Truncation must bootstrap: Q = 1/(1−γ) = 2.
    "truncation bootstraps": (_chain_mdp([[1.0]], [[0]], [False], 3), {0: [1.0 / (1.0 - GAMMA)]}),
}

PROBE_CONFIG = dqn.DQNConfig(
    n_envs=4,
    n_steps=1,
    n_updates=1500,
    buffer_size=256,
    batch_size=32,
    learning_starts=32,
    target_update_every=10,
    network=Table(),
    hyper=dqn.DQNHyperparams(learning_rate=0.05, gamma=GAMMA, epsilon_start=1.0, epsilon_end=0.5),
)


@pytest.mark.parametrize("name", list(PROBES))
def test_probe(name):
    mdp, expected = PROBES[name]
    env, params = tabular_env(mdp)
    train = dqn.make_train(PROBE_CONFIG, env, params)
    state, metrics = jax.jit(jax.vmap(train))(jax.random.split(jax.random.key(1), 2))
    raise_if_nonfinite(metrics.nonfinite, "DQN")
    q = jax.vmap(lambda p: dqn.q_values(PROBE_CONFIG, p, params.observations))(state.params)  # [seeds, S, A]
    q_star = dqn.discounted_q_star(mdp, GAMMA)
    for s, values in expected.items():
        np.testing.assert_allclose(q_star[s], values, atol=1e-12)  # the hand value is the exact one
        # Deterministic rewards and transitions: the targets are exact, so Adam settles on Q* up to
        # float32 rounding (measured error 0); 1e-3 leaves room for other platforms' rounding only.
        np.testing.assert_allclose(q[:, s], np.broadcast_to(values, q[:, s].shape), atol=1e-3)


def test_probe_mlp_action_is_reward():
    """The same probe through an MLP: the network, not only the table, fits the target."""
    mdp, expected = PROBES["action is reward"]
    env, params = tabular_env(mdp)
    config = PROBE_CONFIG.__class__(**{**PROBE_CONFIG.__dict__, "network": MLP((16,)), "n_updates": 800})
    config = dqn.DQNConfig(**{**config.__dict__, "hyper": dqn.DQNHyperparams(learning_rate=3e-3, gamma=GAMMA)})
    state, _ = jax.jit(dqn.make_train(config, env, params))(jax.random.key(0))
    q = dqn.q_values(config, state.params, params.observations)
    np.testing.assert_allclose(q[0], expected[0], atol=0.05)


# ------------------------------------------------------------------------------------------
# A gridworld against exact Q*
# ------------------------------------------------------------------------------------------

GRID_GAMMA = 0.9
GRID_SEEDS = 3


@pytest.fixture(scope="module")
def grid_runs():
    """Tabular DQN (one-hot observations) on a 3x3 open grid, plain and double Q, 3 seeds each."""
    grid = make_gridworld("\nS..\n...\n..G\n", horizon=20)
    env, params = tabular_env(grid.mdp)
    out = {}
    for double_q in (False, True):
        config = dqn.DQNConfig(
            n_envs=4,
            n_steps=2,
            n_updates=2500,
            buffer_size=2000,
            batch_size=64,
            learning_starts=200,
            target_update_every=20,
            double_q=double_q,
            network=Table(),
            hyper=dqn.DQNHyperparams(learning_rate=0.02, gamma=GRID_GAMMA, epsilon_end=0.2, epsilon_fraction=0.3),
        )
        train = jax.jit(jax.vmap(dqn.make_train(config, env, params)))
        state, metrics = train(jax.random.split(jax.random.key(7), GRID_SEEDS))
        raise_if_nonfinite(metrics.nonfinite, "DQN")
        q = jax.vmap(lambda p, c=config: dqn.q_values(c, p, params.observations))(state.params)
        out[double_q] = (q, metrics)
    return grid, out


@pytest.mark.parametrize("double_q", [False, True])
def test_gridworld_q_matches_exact(grid_runs, double_q):
    grid, out = grid_runs
    q, _ = out[double_q]
    # Time-indexed Q*_0 of a 2,000-step horizon: within 0.9^2000 (~1e-92) of the stationary Q*.
    q_star = np.asarray(dqn.discounted_q_star(grid.mdp, GRID_GAMMA))
    live = ~np.asarray(grid.mdp.terminal)  # DQN never acts from the goal; its Q there is never trained
    error = np.abs(np.asarray(q)[:, live] - q_star[live])
    # Q* ranges over [0.59, 1]; deterministic dynamics make the targets exact, so Q converges to Q*
    # up to float32 rounding (measured 2e-7); 1e-3 absolute.
    assert error.max() < 1e-3, f"max |Q - Q*| = {error.max():.4g}"
    # The greedy policy of the learned Q is optimal, exactly evaluated on the undiscounted grid.
    for seed in range(GRID_SEEDS):
        greedy = tabular.greedy(jnp.asarray(q[seed]))
        discounted = tabular.TabularMDP.from_successors(
            grid.mdp.next_states, grid.mdp.next_probs, grid.mdp.R, grid.mdp.init, 20, GRID_GAMMA, grid.mdp.terminal
        )
        assert float(tabular.evaluate(discounted, greedy)) == pytest.approx(GRID_GAMMA**3, abs=1e-12)


def test_gridworld_return_rises(grid_runs):
    _, out = grid_runs
    _, metrics = out[False]
    returns = np.asarray(metrics.episode_return)  # [seeds, U], ε-greedy undiscounted return (goal = 1)
    early, late = returns[:, 50:150].mean(), returns[:, -200:].mean()
    assert late > early + 0.1 and late > 0.9, (early, late)


def test_learning_rate_sweep_in_one_vmap():
    mdp, _ = PROBES["action is reward"]
    env, params = tabular_env(mdp)
    config = dqn.DQNConfig(**{**PROBE_CONFIG.__dict__, "n_updates": 50})
    hyper = dqn.DQNHyperparams(learning_rate=jnp.array([0.0, 0.05]), gamma=jnp.full(2, GAMMA))
    hyper = jax.tree.map(lambda x: jnp.broadcast_to(jnp.asarray(x, jnp.float32), (2,)), hyper)
    train = jax.jit(jax.vmap(dqn.make_train(config, env, params)))
    state, metrics = train(jax.random.split(jax.random.key(0), 2), hyper)
    assert metrics.loss.shape == (2, 50)
    np.testing.assert_array_equal(state.params[0], 0.0)  # learning rate 0: the table never moves
    assert np.abs(np.asarray(state.params[1])).max() > 0.1


def test_reward_fn_replaces_what_dqn_learns_but_not_the_reported_return():
    """With ``reward_fn`` returning ψ = 3 on every step, Q(0) = 3 while episodes still report the env's 1."""
    mdp, _ = PROBES["one-step reward"]
    env, params = tabular_env(mdp)
    train = dqn.make_train(PROBE_CONFIG, env, params, reward_fn=lambda o, a, o2, psi: psi)
    state, metrics = jax.jit(train)(jax.random.key(0), reward_params=jnp.float32(3.0))
    q = dqn.q_values(PROBE_CONFIG, state.params, params.observations)
    np.testing.assert_allclose(q[0], [3.0], atol=1e-3)
    np.testing.assert_allclose(metrics.episode_return[-10:], 1.0)


def test_training_in_chunks_equals_train():
    """``make_dqn``'s ``init`` and ``update``, scanned in two chunks, reproduce ``train`` exactly."""
    mdp, _ = PROBES["action is reward"]
    env, params = tabular_env(mdp)
    config = dqn.DQNConfig(**{**PROBE_CONFIG.__dict__, "n_updates": 20})
    algo = dqn.make_dqn(config, env, params)
    key = jax.random.key(3)
    state, metrics = jax.jit(algo.train)(key)

    def chunks(key):
        s = algo.init(key)
        s, m1 = jax.lax.scan(lambda s, _: algo.update(s), s, None, length=12)
        s, m2 = jax.lax.scan(lambda s, _: algo.update(s), s, None, length=8)
        return s, jnp.concatenate([m1.loss, m2.loss])

    s2, loss = jax.jit(chunks)(key)
    np.testing.assert_array_equal(loss, metrics.loss)
    np.testing.assert_array_equal(s2.params, state.params)
