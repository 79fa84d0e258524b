"""The JAX CartPole against ``gymnasium.make("CartPole-v1")``, step for step, and the host-side evaluator.

Why float64 and no jit for the whole-episode check: Gymnasium integrates in
float64 with NumPy, one rounding per operation. Under ``jit`` XLA fuses
``a * b + c`` into a fused multiply-add (one rounding), a 1e-16 difference;
the upright pole is unstable (errors grow about ``e^{0.08}`` per step), so after
~300 open-loop steps that difference reaches 1e-5. Run op by op in float64 the
port performs exactly Gymnasium's operations, and agrees over whole 500-step
episodes (we check 1e-5, it is in fact exact). The jitted float64 and the
float32 training versions are checked one step at a time from Gymnasium's
states, where rounding cannot accumulate.
"""

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import toyrlhf  # noqa: F401  (x64 on)
from toyrlhf.envs.cartpole import CartPole
from toyrlhf.envs.in_gymnasium import evaluate_in_gymnasium


def controller_action(state, rng) -> int:
    """A noisy PD controller that keeps the pole up for the full 500 steps (truncation)."""
    x, x_dot, theta, theta_dot = state
    if rng.random() < 0.1:
        return int(rng.integers(2))
    return int(theta + 0.5 * theta_dot + 0.01 * x + 0.1 * x_dot > 0)


def gym_episode(seed: int, controlled: bool):
    """Gymnasium's float64 states, actions and flags for one episode."""
    env = gym.make("CartPole-v1")
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    states = [np.array(env.unwrapped.state, dtype=np.float64)]
    actions, rewards, terminated, truncated = [], [], [], []
    while True:
        a = controller_action(states[-1], rng) if controlled else int(rng.integers(2))
        _, r, term, trunc, _ = env.step(a)
        states.append(np.array(env.unwrapped.state, dtype=np.float64))
        actions.append(a)
        rewards.append(r)
        terminated.append(term)
        truncated.append(trunc)
        if term or trunc:
            return np.stack(states), np.array(actions), np.array(rewards), np.array(terminated), np.array(truncated)


@pytest.fixture(scope="module")
def episodes():
    # two full-length (truncated at 500) and three short, random-action (terminated) episodes
    return [gym_episode(seed, controlled=seed < 2) for seed in range(5)]


def test_episodes_cover_termination_and_truncation(episodes):
    lengths = [len(e[1]) for e in episodes]
    assert lengths[:2] == [500, 500] and all(e[4][-1] for e in episodes[:2])
    assert all(n < 100 for n in lengths[2:]) and all(e[3][-1] for e in episodes[2:])


def test_open_loop_whole_episodes_agree_with_gymnasium_float64(episodes):
    env = CartPole("float64")
    params = env.default_params()
    with jax.disable_jit():  # op by op: Gymnasium's exact sequence of roundings (see module docstring)
        for states, actions, rewards, terminated, truncated in episodes:
            state = env.state_from_array(states[0])
            for t, a in enumerate(actions):
                step = env.step(None, state, jnp.int32(a), params)
                state = step.state
                np.testing.assert_allclose(np.asarray(step.obs), states[t + 1], rtol=0, atol=1e-5)
                assert float(step.reward) == rewards[t]
                assert bool(step.terminated) == terminated[t] and bool(step.truncated) == truncated[t]


@pytest.mark.parametrize("dtype, atol", [("float64", 1e-12), ("float32", 1e-5)])
def test_jitted_step_from_each_gymnasium_state_agrees(episodes, dtype, atol):
    env = CartPole(dtype)
    params = env.default_params()

    @jax.jit
    def one_step(values, t, action):
        state = env.state_from_array(values)._replace(t=t)
        return env.step(None, state, action, params)

    for states, actions, _, terminated, truncated in episodes:
        step = jax.vmap(one_step)(states[:-1], jnp.arange(len(actions), dtype=jnp.int32), jnp.asarray(actions))
        np.testing.assert_allclose(np.asarray(step.obs, np.float64), states[1:], rtol=0, atol=atol)
        np.testing.assert_array_equal(np.asarray(step.terminated), terminated)
        np.testing.assert_array_equal(np.asarray(step.truncated), truncated)
        assert step.obs.dtype == jnp.dtype(dtype)


def test_reset_distribution_and_bad_dtype():
    env = CartPole()
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(jax.random.key(0), 4000), env.default_params())
    assert obs.dtype == jnp.float32 and obs.shape == (4000, 4)
    assert float(jnp.abs(obs).max()) <= 0.05 and float(jnp.abs(obs).max()) > 0.049
    np.testing.assert_allclose(np.asarray(obs.mean(0)), 0.0, atol=4 * 0.1 / np.sqrt(12 * 4000))
    assert int(state.t.max()) == 0
    with pytest.raises(ValueError, match="dtype"):
        CartPole("float16")


def test_evaluate_in_gymnasium_runs_the_original_environment():
    def pd_policy(params, obs):  # logits for (left, right) from a PD law on the pole
        push_right = obs @ params
        return jnp.stack([-push_right, push_right], axis=-1)

    gains = jnp.array([0.01, 0.1, 1.0, 0.5], jnp.float32)
    returns = evaluate_in_gymnasium(pd_policy, gains, "CartPole-v1", n_episodes=3, seed=0)
    np.testing.assert_array_equal(returns, [500.0, 500.0, 500.0])  # solved, cut by CartPole-v1's limit
    # two policies at once: the PD law and its opposite (falls within ~10 steps)
    both = evaluate_in_gymnasium(pd_policy, jnp.stack([gains, -gains]), "CartPole-v1", n_episodes=3, n_policies=2)
    np.testing.assert_array_equal(both[0], returns)
    assert both.shape == (2, 3) and both[1].max() < 20
    sampled = evaluate_in_gymnasium(lambda p, o: jnp.zeros((o.shape[0], 2)), None, "CartPole-v1", n_episodes=20,
                                    seed=1, deterministic=False)
    assert 10 < sampled.mean() < 40  # a uniformly random policy lasts ~22 steps


def test_ppo_learns_cartpole_scored_in_gymnasium():
    """It actually learns: 4 seeds x 30,720 env steps of PPO on the port, scored in Gymnasium's own CartPole-v1.

    A uniformly random policy lasts ~22 steps; every seed's greedy policy must last over 100 on average.
    """
    from toyrlhf.algorithms.ppo import PPOConfig, PPOHyperparams, make_train
    from toyrlhf.diagnostics import raise_if_nonfinite

    env = CartPole()
    config = PPOConfig(n_envs=16, n_steps=64, n_updates=30, hyper=PPOHyperparams(learning_rate=1e-3))
    state, metrics = jax.jit(jax.vmap(make_train(config, env, env.default_params())))(
        jax.random.split(jax.random.key(0), 4)
    )
    raise_if_nonfinite(metrics.nonfinite)
    assert np.all(np.asarray(metrics.episode_return[:, 0]) < 40)
    returns = evaluate_in_gymnasium(config.actor.apply, state.params.actor, "CartPole-v1", n_episodes=5, seed=0,
                                    n_policies=4)
    assert returns.shape == (4, 5) and np.all(returns.mean(1) > 100), returns.mean(1)
