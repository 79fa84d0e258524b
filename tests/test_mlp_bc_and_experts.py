"""MLP behavior cloning, policy demonstrations, and the PPO CartPole expert's demonstration file."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import toyrlhf  # noqa: F401  (x64)
from toyrlhf import demonstrations
from toyrlhf.algorithms import bc, experts
from toyrlhf.envs import CartPole


def test_cross_entropy_loss_hand_computed():
    logits = jnp.array([[0.0, 0.0], [np.log(3.0), 0.0], [5.0, -5.0]])
    actions = jnp.array([1, 0, 1])
    weights = jnp.array([1.0, 1.0, 0.0])  # the third (badly predicted) row is padding
    expected = (np.log(2.0) + np.log(4.0 / 3.0)) / 2
    np.testing.assert_allclose(bc.cross_entropy_loss(logits, actions, weights), expected, rtol=1e-6)
    with pytest.raises(ValueError, match="must agree"):
        bc.cross_entropy_loss(logits, actions[:2], weights)


def test_mlp_bc_fits_a_full_coverage_dataset_exactly():
    """Every point of a 2-D grid labelled by a nonlinear rule: BC must reproduce every label."""
    grid = np.stack(np.meshgrid(np.linspace(-1, 1, 12), np.linspace(-1, 1, 12)), -1).reshape(8, 18, 2)
    actions = (np.abs(grid[..., 0]) + grid[..., 1] > 0.3).astype(np.int32)
    valid = np.ones(actions.shape, bool)
    valid[0, 10:] = False  # padded steps: their (wrong) labels must not matter
    labels_with_padding = np.where(valid, actions, 1 - actions)
    demos = demonstrations.Demonstrations(
        jnp.asarray(grid, jnp.float32), jnp.asarray(labels_with_padding), jnp.zeros(actions.shape), jnp.asarray(valid)
    )
    config = bc.MLPBCConfig(n_steps=1000, learning_rate=1e-2)
    result = jax.jit(jax.vmap(bc.make_train_mlp(config, 2, 2), in_axes=(0, None)))(
        jax.random.split(jax.random.key(0), 2), demos
    )
    predicted = np.asarray(jax.vmap(config.network.apply, in_axes=(0, None))(result.params, grid).argmax(-1))
    assert np.all(predicted[:, valid] == actions[valid])
    assert np.all(np.asarray(result.losses[:, -1]) < 0.05) and np.all(np.asarray(result.losses[:, 0]) > 0.6)
    assert np.all(np.asarray(result.resources.expert_labels) == valid.sum())
    with pytest.raises(ValueError, match="observations"):
        bc.make_train_mlp(config, 3, 2)(jax.random.key(0), demos)


def test_policy_demonstrations_mask_steps_after_the_end():
    env = CartPole()
    always_left = lambda params, obs: jnp.stack([jnp.ones(obs.shape[0]), jnp.zeros(obs.shape[0])], -1)  # noqa: E731
    demos = experts.policy_demonstrations(jax.random.key(0), env, env.default_params(), always_left, None, 3, 100)
    lengths = np.asarray(demos.valid).sum(1)
    assert demos.observations.shape == (3, 100, 4) and np.all(lengths < 100) and np.all(lengths > 5)
    for n, length in enumerate(lengths):  # valid is a prefix; the return counts exactly the valid steps
        assert np.asarray(demos.valid[n, :length]).all() and not np.asarray(demos.valid[n, length:]).any()
    np.testing.assert_array_equal(demos.returns(), lengths)
    assert np.all(np.asarray(demos.actions) == 0)


@pytest.fixture(scope="module")
def expert():
    return experts.train_cartpole_expert(seed=1)


def test_cartpole_expert_demonstrations_round_trip(expert, tmp_path):
    assert expert.gymnasium_return >= 475
    demos, source = experts.cartpole_demonstrations(expert, n_episodes=4, seed=3)
    assert demos.observations.shape == (4, 500, 4) and demos.observations.dtype == jnp.float32
    assert float(demos.returns().mean()) >= 475  # the same expert in the JAX port
    assert source.expert == "ppo" and source.env == "CartPole-v1" and source.seed == 3
    path = demonstrations.save(tmp_path / "cartpole.npz", demos, source)
    loaded, loaded_source = demonstrations.load(path)
    assert loaded_source == source
    for a, b in zip(loaded, demos, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
