"""rlhf-vs-sft: the criteria by hand, and a tiny sweep whose pieces are checked against exact quantities."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toyrlhf.algorithms import rlhf
from toyrlhf.experiments import rlhf_vs_sft as rvs

TINY = dataclasses.replace(
    rvs.Config(),
    length=3,
    label_budgets=(10, 3000),
    n_seeds=3,
    ppo_updates=150,
    dpo_steps=600,
    n_held_out=2000,
)


@pytest.fixture(scope="module")
def sweep():
    task, tree, expert = rvs.build(TINY)
    keys = jax.random.split(jax.random.key(7), TINY.n_seeds)
    out = jax.tree.map(np.asarray, rvs.make_sweep(TINY, task, tree)(keys, expert))
    return tree, out


def test_index_reward_hook_equals_the_one_hot_hook():
    table = jnp.arange(12.0).reshape(4, 3)
    for s in range(4):
        for a in range(3):
            one_hot = jax.nn.one_hot(s, 4)
            assert rvs.index_reward_fn(s, a, None, table) == rlhf.table_reward_fn(one_hot, a, None, table) == 3 * s + a


def test_labels_and_resources_are_counted(sweep):
    tree, out = sweep
    assert out["labels"].shape == (TINY.n_seeds, 2)
    assert np.all(out["labels"] == np.array(TINY.label_budgets))
    # one demonstrated token per step before the response ends (EOS step included): n_demos .. n_demos·T
    assert np.all((out["expert_labels"] >= TINY.n_demos) & (out["expert_labels"] <= TINY.n_demos * TINY.length))
    res = rvs.resources(TINY, out)
    assert res["RLHF"]["env_steps"] == 150 * 16 * 16 and res["DPO"]["env_steps"] == 0
    assert all(res[m]["gold_queries"] == 0 for m in ("SFT", "RLHF", "DPO", "best-of-n"))
    assert res["oracle"]["gold_queries"] == tree.gold.size


def test_sft_and_oracle_do_not_depend_on_the_budget(sweep):
    _, out = sweep
    for i in (rvs.METHODS.index("SFT"), rvs.METHODS.index("oracle")):
        np.testing.assert_allclose(out["gold"][:, 0, i], out["gold"][:, 1, i], rtol=1e-12)
    np.testing.assert_allclose(out["kl_to_sft"][:, :, 0], 0.0, atol=1e-12)


def test_it_learns_with_many_labels(sweep):
    """3000 labels: accuracy near Bayes and above 10 labels', PPO at the exact tilted optimum, RLHF above SFT."""
    _, out = sweep
    acc = out["accuracy"]
    assert np.all(acc[:, 1] > acc[:, 0])
    assert np.all(out["bayes"] - acc[:, 1] < 0.03)
    assert np.all(acc[:, 1] <= out["bayes"] + 1e-12)  # nobody beats Bayes on the same pairs
    assert np.all(out["ppo_kl_to_target"][:, 1] < 0.02)  # KL(π_β ‖ π_PPO) in nats
    sft, rl, dpo_, bon, oracle = (out["gold"][:, 1, i] for i in range(5))
    assert np.all(rl > sft + 0.3) and np.all(dpo_ > sft) and np.all(bon > sft)
    assert np.all(np.abs(oracle - rl) < 0.1)


def test_criteria_by_hand():
    config = dataclasses.replace(rvs.Config(), label_budgets=(100, 300, 1000), n_held_out=10)
    gold = np.zeros((4, 3, 5))
    gold[:, :, 4] = 2.0  # oracle
    gold[:, :, 1] = np.array([[0.5, 1.5, 1.9], [0.7, 1.4, 2.0], [0.6, 1.6, 1.95], [0.4, 1.5, 1.85]])  # RLHF; SFT 0
    accuracy = np.array([[0.60, 0.70, 0.74], [0.62, 0.69, 0.75], [0.61, 0.71, 0.73], [0.60, 0.70, 0.74]])
    bayes = np.full(4, 0.75)
    c = rvs.criteria_from(config, gold, accuracy, bayes)
    assert [x.supported for x in c] == [True, True, True, True]
    assert c[1].measured == pytest.approx(0.75 - 0.74)
    assert c[2].measured == pytest.approx(1.5)  # M = 300 is the least-supported budget >= 300
    assert c[3].measured == pytest.approx(np.mean([2 - 0.5 - (2 - 1.9), 1.3 - 0.0, 1.4 - 0.05, 1.6 - 0.15]))
    # an accuracy drop of many SE, a Bayes gap of 0.1, RLHF below SFT (and the oracle gap grown) at M = 1000
    accuracy[:, 2] = [0.65, 0.66, 0.64, 0.65]
    gold[:, 2, 1] = -0.1
    c = rvs.criteria_from(config, gold, accuracy, bayes)
    assert [x.supported for x in c] == [False, False, False, False]
    assert c[1].measured == pytest.approx(0.1)
