"""Same key, same bits: every train function is a pure function of its key and data.

``train(key)`` is the contract that lets ``jax.vmap(train)`` give seeds and lets a
committed result be reproduced. For each learner: two separate calls with the
same key (with a different key's call in between) return bit-identical outputs,
every leaf of them; a different key changes what is learned (for stochastic
methods), and different data changes it (for the deterministic ones, which take
no key). A hidden key, a global seed, state carried between calls, or an
order-dependent reduction (scatter-adds on accelerators) would break the first
property; a key that is ignored, the second.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tiny_learners as tiny


def as_arrays(tree) -> list[np.ndarray]:
    """The leaves of ``tree`` as NumPy arrays (typed PRNG keys as their raw bits)."""
    leaves = []
    for leaf in jax.tree.leaves(tree):
        if isinstance(leaf, jax.Array) and jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
        leaves.append(np.asarray(leaf))
    return leaves


def assert_bit_identical(a, b):
    a, b = as_arrays(a), as_arrays(b)
    assert len(a) == len(b) and len(a) > 0
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        assert x.dtype == y.dtype and x.shape == y.shape, f"leaf {i}"
        assert np.array_equal(x, y, equal_nan=np.issubdtype(x.dtype, np.inexact)), f"leaf {i} differs"


def differs(a, b) -> bool:
    return any(not np.array_equal(x, y) for x, y in zip(as_arrays(a), as_arrays(b), strict=True))


# name -> (run(i): the output of call i (0 and 1 differ in key or data), learned(output): what must depend on it)
KEYED = {
    "PPO": (lambda i: tiny.run_ppo(jax.random.key(i)), lambda out: out[0].params),
    "DQN": (lambda i: tiny.run_dqn(jax.random.key(i)), lambda out: out[0].params),
    "GAIL": (lambda i: tiny.run_gail(jax.random.key(i)), lambda out: (out[0].ppo.params, out[0].discriminator)),
    "MLP BC": (lambda i: tiny.run_mlp_bc(jax.random.key(i)), lambda out: out.params),
    "DAgger": (lambda i: tiny.run_dagger(jax.random.key(i)), lambda out: out.data),
    "reward model": (lambda i: tiny.run_reward_model(jax.random.key(i)), lambda out: out[0]),
}
DATA_ONLY = {
    "MaxEnt IRL": (lambda i: tiny.run_maxent_irl(tiny.tabular_demos(i)), lambda out: out.theta),
    "DPO": (lambda i: tiny.run_dpo([(1.0, 0.0, 1.0, 1.0), (0.0, 1.0, 0.0, 0.0)][i]), lambda out: out[0]),
}


@pytest.mark.parametrize("name", [*KEYED, *DATA_ONLY])
def test_same_key_gives_bit_identical_output_and_another_key_or_data_another(name):
    run, learned = {**KEYED, **DATA_ONLY}[name]
    first = run(0)
    other = run(1)
    again = run(0)
    assert_bit_identical(first, again)
    assert differs(learned(first), learned(other)), f"{name}: the learned part ignores the key (or the data)"



def test_one_experiment_end_to_end_is_bit_identical_in_separate_calls():
    """The whole prompt-bandit experiment, computed twice from one Config (seed 0), then with seed 1."""
    import dataclasses

    from toyrlhf.experiments import common
    from toyrlhf.experiments import prompt_bandit as pb

    config = dataclasses.replace(pb.Config(), n_seeds=4, table_sizes=(8, 400), n_test_queries=200)
    first = common._flatten(pb.compute(config))
    again = common._flatten(pb.compute(config))
    other = common._flatten(pb.compute(dataclasses.replace(config, seed=1)))
    assert first.keys() == again.keys()
    for name in first:
        assert np.array_equal(first[name], again[name], equal_nan=True), name
    assert any(not np.array_equal(first[k], other[k]) for k in first), "another seed must give another result"
