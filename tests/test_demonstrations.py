"""Demonstrations: experts are the exact optimum, sampling matches it, files round-trip and fail clearly."""

import json
import pathlib
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toyrlhf import demonstrations as demo_lib
from toyrlhf import tabular
from toyrlhf.demonstrations import Demonstrations, Source
from toyrlhf.envs import toy_mdps
from toyrlhf.experiments.common import load_arrays


@pytest.fixture(scope="module")
def cliff():
    return toy_mdps.reset_cliff(horizon=6, n_good=4)


def test_hard_expert_is_optimal_and_soft_expert_is_softmax(cliff):
    hard = demo_lib.tabular_expert(cliff)
    assert float(tabular.evaluate(cliff, hard)) == pytest.approx(6.0, abs=1e-12)  # reward 1 every step
    soft = demo_lib.tabular_expert(cliff, temperature=0.5)
    sol = tabular.solve(cliff, temperature=0.5)
    np.testing.assert_allclose(soft, jax.nn.softmax(sol.Q / 0.5, axis=-1), atol=1e-12)


def test_sampled_demonstrations_match_the_exact_visitation(cliff):
    expert = demo_lib.tabular_expert(cliff)
    n = 4000
    demos = jax.jit(demo_lib.sample_demonstrations, static_argnums=(3,))(jax.random.key(0), cliff, expert, n)
    assert demos.observations.shape == (n, 6) and bool(demos.valid.all())
    assert demos.n_labels == n * 6
    # Monte Carlo frequency of each state at each step vs the exact d_t: 4 standard errors.
    freq = jax.nn.one_hot(demos.observations, cliff.n_states).mean(0)
    exact = np.asarray(tabular.visitation(cliff, expert))
    se = np.sqrt(exact * (1 - exact) / n) + 1e-12
    assert np.all(np.abs(freq - exact) <= 4 * se + 1e-9)
    np.testing.assert_array_equal(demos.returns(), 6.0)  # the expert never falls


def test_save_load_round_trip(tmp_path, cliff):
    demos = demo_lib.sample_demonstrations(jax.random.key(1), cliff, demo_lib.tabular_expert(cliff), 3)
    source = Source(expert="optimal", env="reset_cliff(horizon=6, n_good=4)", seed=1)
    path = demo_lib.save(tmp_path / "d.npz", demos, source)
    loaded, loaded_source = demo_lib.load(path)
    assert loaded_source == source
    for a, b in zip(demos, loaded, strict=True):
        np.testing.assert_array_equal(a, b)
        assert np.asarray(a).dtype == np.asarray(b).dtype
    assert [p.name for p in tmp_path.iterdir()] == ["d.npz"]  # no temporary file left behind


def test_load_rejects_malformed_files(tmp_path, cliff):
    with pytest.raises(FileNotFoundError):
        demo_lib.load(tmp_path / "missing.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="not a readable"):
        demo_lib.load(junk)
    partial = tmp_path / "partial.npz"
    np.savez(partial, observations=np.zeros((2, 3), int))
    with pytest.raises(ValueError, match="missing actions"):
        demo_lib.load(partial)
    bad_shape = tmp_path / "bad_shape.npz"
    np.savez(
        bad_shape,
        observations=np.zeros((2, 3), int),
        actions=np.zeros((2, 4), int),
        rewards=np.zeros((2, 3)),
        valid=np.ones((2, 3), bool),
        source_json=np.asarray(json.dumps({"expert": "optimal", "env": "x"})),
        format_version=np.asarray(demo_lib.FORMAT_VERSION),
    )
    with pytest.raises(ValueError, match="malformed demonstrations"):
        demo_lib.load(bad_shape)
    # An object array would need pickle: refused, not executed.
    pickled = tmp_path / "pickled.npz"
    with zipfile.ZipFile(pickled, "w") as z:
        with z.open("observations.npy", "w") as f:
            np.lib.format.write_array(f, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError):
        demo_lib.load(pickled)


def test_save_rejects_bad_input(tmp_path):
    demos = Demonstrations(jnp.zeros((2, 3), int), jnp.zeros((2, 3), int), jnp.zeros((2, 3)), jnp.ones((2, 3), bool))
    with pytest.raises(ValueError, match=".npz"):
        demo_lib.save(tmp_path / "d.txt", demos, Source("optimal", "x"))
    with pytest.raises(TypeError, match="source"):
        demo_lib.save(tmp_path / "d.npz", demos, {"expert": "optimal"})
    with pytest.raises(TypeError, match="actions must be integers"):
        demo_lib.save(tmp_path / "d.npz", demos._replace(actions=jnp.zeros((2, 3))), Source("optimal", "x"))


class _TouchWhenUnpickled:
    """Pickles as a call to ``Path.touch(path)``: a file appears if anyone unpickles it."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (pathlib.Path.touch, (self.path,))


def _booby_trapped_npz(path, marker) -> None:
    """A complete demonstrations file whose observations are an object array holding the trap."""
    np.savez(
        path,
        observations=np.array([_TouchWhenUnpickled(marker)], dtype=object),
        actions=np.zeros((1, 1), int),
        rewards=np.zeros((1, 1)),
        valid=np.ones((1, 1), bool),
        source_json=np.asarray(json.dumps({"expert": "optimal", "env": "x"})),
        format_version=np.asarray(demo_lib.FORMAT_VERSION),
    )


@pytest.mark.parametrize(
    "load, message",
    [
        (demo_lib.load, r"not a readable \.npz demonstrations file: Object arrays cannot be loaded"),
        (load_arrays, "holds an object array, which would need pickle to load; refused"),
    ],
    ids=["demonstrations.load", "experiments.common.load_arrays"],
)
def test_an_object_array_is_refused_and_never_unpickled(tmp_path, load, message):
    path, marker = tmp_path / "trap.npz", tmp_path / "unpickled"
    _booby_trapped_npz(path, marker)
    with np.load(path, allow_pickle=True) as data:  # control: the trap is live when pickle is allowed
        data["observations"]
    assert marker.exists()
    marker.unlink()
    with pytest.raises(ValueError, match=message):
        load(path)
    assert not marker.exists()
