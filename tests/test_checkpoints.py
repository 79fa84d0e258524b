"""Trained parameters saved and loaded without pickle, with clear refusals."""

import jax
import numpy as np
import pytest

from toyrlhf import checkpoints
from toyrlhf.algorithms.ppo import PPOConfig, make_train
from toyrlhf.envs import tabular_env
from toyrlhf.envs.gridworld import make_gridworld


@pytest.fixture(scope="module")
def trained():
    grid = make_gridworld("four-rooms", slip=0.1, horizon=30)
    env, params = tabular_env(grid.mdp, "one_hot")
    train = jax.jit(make_train(PPOConfig(n_updates=2, n_envs=4, n_steps=16, n_minibatches=2), env, params))
    state, _ = train(jax.random.key(0))
    fresh, _ = train(jax.random.key(1))
    return state.params, fresh.params


def test_round_trip_into_a_template(trained, tmp_path):
    params, other = trained
    path = checkpoints.save_params(tmp_path / "ppo.npz", params, "ppo", {"n_updates": 2})
    loaded = checkpoints.load_params(path, like=other, kind="ppo")
    for a, b in zip(jax.tree.leaves(loaded), jax.tree.leaves(params), strict=True):
        np.testing.assert_array_equal(a, b)
    assert jax.tree.structure(loaded) == jax.tree.structure(params)
    assert checkpoints.read_header(path)["metadata"] == {"n_updates": 2}
    assert set(checkpoints.load_params(path)) == {leaf["path"] for leaf in checkpoints.read_header(path)["leaves"]}


def test_refuses_other_kinds_versions_structures_and_files(trained, tmp_path):
    params, _ = trained
    path = checkpoints.save_params(tmp_path / "ppo.npz", params, "ppo")
    with pytest.raises(ValueError, match="'ppo' parameters, not 'gail'"):
        checkpoints.load_params(path, kind="gail")
    with pytest.raises(ValueError, match="leaves"):
        checkpoints.load_params(path, like={"w": np.zeros(3, np.float32)})
    np.savez(tmp_path / "plain.npz", x=np.zeros(2))
    with pytest.raises(ValueError, match="not a toyrlhf parameter file"):
        checkpoints.load_params(tmp_path / "plain.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ValueError, match="not a toyrlhf parameter file"):
        checkpoints.load_params(tmp_path / "text.npz")
    np.savez(tmp_path / "evil.npz", __header__=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="not a toyrlhf parameter file"):
        checkpoints.read_header(tmp_path / "evil.npz")
    with pytest.raises(ValueError, match="kind"):
        checkpoints.save_params(tmp_path / "x.npz", params, "")
    shapes_differ = jax.tree.map(lambda x: np.zeros((*x.shape, 1), x.dtype), params)
    with pytest.raises(ValueError, match="template"):
        checkpoints.load_params(path, like=shapes_differ)


def test_refuses_a_newer_format_version(tmp_path):
    import json

    header = {"format": checkpoints.FORMAT, "version": 99, "kind": "ppo", "leaves": [], "metadata": {}}
    np.savez(tmp_path / "new.npz", __header__=np.frombuffer(json.dumps(header).encode(), np.uint8))
    with pytest.raises(ValueError, match="version 99"):
        checkpoints.load_params(tmp_path / "new.npz")
