"""Labeller and Bradley–Terry reward models: hand values, exact recovery up to a constant, learning."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toyrlhf.algorithms import preferences as pref
from toyrlhf.envs import token_mdp as tm
from toyrlhf.envs.gridworld import make_gridworld


@pytest.fixture(scope="module")
def tree():
    gold = tm.ConcaveQuality(jnp.array([[0.0, 1.0, -1.0]]), target_length=1.0, length_penalty=0.5)
    return tm.enumerate_tokens(tm.TokenTask(vocab_size=3, length=2), gold)


def test_preference_probability_and_loss_by_hand():
    p = pref.preference_probability(jnp.array([1.0]), jnp.array([0.0]), pref.Labeller(1.0, 0.2))
    assert float(p[0]) == pytest.approx(0.1 + 0.8 / (1 + np.exp(-1.0)))
    p = pref.preference_probability(jnp.array([2.0]), jnp.array([0.0]), pref.Labeller(2.0, 0.0))
    assert float(p[0]) == pytest.approx(1 / (1 + np.exp(-1.0)))
    loss = pref.bradley_terry_loss(jnp.array([1.0, 0.0]), jnp.array([0.0, 0.0]), jnp.array([1.0, 0.0]))
    assert float(loss) == pytest.approx((np.log1p(np.exp(-1.0)) + np.log(2.0)) / 2)
    assert float(pref.bayes_accuracy(jnp.array([0.9, 0.2]))) == pytest.approx(0.85)
    acc = pref.pairwise_accuracy(jnp.array([1.0, 0.0, 0.0]), jnp.array([0.0, 1.0, 0.0]), jnp.array([0.9, 0.9, 0.9]))
    assert float(acc) == pytest.approx((0.9 + 0.1 + 0.5) / 3)


def test_labeller_frequencies_and_count():
    labeller = pref.Labeller(temperature=0.5, random_prob=0.3)
    g1, g2 = jnp.full(50_000, 0.4), jnp.zeros(50_000)
    labels, count = jax.jit(pref.label)(jax.random.key(0), labeller, g1, g2, jnp.int32(7))
    assert int(count) == 50_007
    p = 0.15 + 0.7 / (1 + np.exp(-0.8))
    assert abs(float(labels.mean()) - p) < 5 * np.sqrt(p * (1 - p) / 50_000)


def test_centred_correlation_ignores_per_prompt_constants():
    gold = jax.random.normal(jax.random.key(0), (3, 10))
    shifted = 2.0 * gold + jnp.array([[5.0], [-1.0], [0.3]])
    assert float(pref.centred_correlation(shifted, gold)) == pytest.approx(1.0)
    assert float(pref.centred_correlation(-gold, gold)) == pytest.approx(-1.0)


def test_tabular_model_recovers_gold_up_to_a_constant_exactly(tree):
    """Soft labels on every pair (the population loss): the minimiser is gold/τ + const, to 1e-3."""
    S, A = tree.mdp.R.shape
    ref = tm.response_probs(tree, jax.nn.softmax(jax.random.normal(jax.random.key(1), (S, A))))[0]
    N = tree.n_responses
    i, j = jnp.meshgrid(jnp.arange(N), jnp.arange(N), indexing="ij")
    i, j = i.ravel(), j.ravel()
    tau = 0.7
    z = pref.preference_probability(tree.gold[0, i], tree.gold[0, j], pref.Labeller(tau, 0.0))
    onehot = jnp.eye(N)
    config = pref.RewardModelConfig(kind="linear", n_steps=3000, learning_rate=0.05)
    params, losses = jax.jit(pref.fit_reward_model, static_argnums=1)(
        jax.random.key(2), config, onehot[i], onehot[j], z, ref[i] * ref[j]
    )
    pref.check_finite_losses(losses)
    r = pref.predict_reward(config, params, onehot)
    centred = lambda x: x - x.mean()  # noqa: E731
    np.testing.assert_allclose(centred(r), centred(tree.gold[0] / tau), atol=1e-3)


def test_tabular_model_from_sampled_labels(tree):
    """20,000 sampled labels on uniform pairs: centred rewards within 0.15 (about 4 standard errors) of gold."""
    N = tree.n_responses
    probs = jnp.full((1, N), 1.0 / N)
    pairs = pref.sample_response_pairs(jax.random.key(3), probs, 20_000)
    labels, count = pref.label(
        jax.random.key(4), pref.Labeller(), tree.gold[0, pairs.first], tree.gold[0, pairs.second], 0
    )
    assert int(count) == 20_000
    onehot = jnp.eye(N)
    config = pref.RewardModelConfig(kind="linear", n_steps=1500, learning_rate=0.05)
    params, _ = jax.jit(pref.fit_reward_model, static_argnums=1)(
        jax.random.key(5), config, onehot[pairs.first], onehot[pairs.second], labels
    )
    r = pref.predict_reward(config, params, onehot)
    centred = lambda x: x - x.mean()  # noqa: E731
    assert float(jnp.max(jnp.abs(centred(r) - centred(tree.gold[0])))) < 0.15


def test_tabular_fit_on_indices_is_the_one_hot_fit(tree):
    """fit_tabular_reward (indices, O(M) a step) gives fit_reward_model's rewards and losses on one-hot
    features, with weights and L2, and with a 2-member ensemble; 1-D integer indices only."""
    N = tree.n_responses
    pairs = pref.sample_response_pairs(jax.random.key(6), jnp.full((1, N), 1.0 / N), 500)
    labels, _ = pref.label(jax.random.key(7), pref.Labeller(), *pairs.gather(tree.gold), 0)
    weights = (jnp.arange(500) < 300).astype(jnp.float32)
    onehot = jnp.eye(N)
    for config in (pref.RewardModelConfig(n_steps=400, learning_rate=0.1, l2=1e-3),
                   pref.RewardModelConfig(n_steps=300, learning_rate=0.05, ensemble_size=2)):
        params, pair_loss = pref.fit_reward_model(
            jax.random.key(8), config, onehot[pairs.first], onehot[pairs.second], labels, weights
        )
        expected = pref.predict_reward(config, params, onehot)
        table, loss = pref.fit_tabular_reward(jax.random.key(8), config, pairs.first, pairs.second, labels, N, weights)
        assert table.shape == (N,)
        np.testing.assert_allclose(table, expected, atol=2e-4)
        np.testing.assert_allclose(loss, pair_loss, rtol=1e-4)
        assert float(jnp.std(table)) > 0.1  # it learned something
    with pytest.raises(TypeError, match="integer"):
        pref.fit_tabular_reward(jax.random.key(0), config, pairs.first * 1.0, pairs.second * 1.0, labels, N)
    with pytest.raises(ValueError, match="kind"):
        pref.fit_tabular_reward(jax.random.key(0), pref.RewardModelConfig(kind="mlp"), pairs.first, pairs.second,
                                labels, N)


def test_mlp_ensemble_learns_on_token_features():
    """An MLP ensemble on (counts, L, L²) features reaches within 0.03 of the Bayes accuracy."""
    task = tm.TokenTask(vocab_size=4, length=4)
    gold = tm.ConcaveQuality(jnp.array([[0.0, 0.6, 0.1, -0.4]]), target_length=2.5, length_penalty=0.3)
    tree = tm.enumerate_tokens(task, gold)
    phi = pref.token_count_features(tree.responses, 4, length_squared=True)
    probs = jnp.full((1, tree.n_responses), 1.0 / tree.n_responses)
    labeller = pref.Labeller()
    train, test = (pref.sample_response_pairs(jax.random.key(k), probs, m) for k, m in ((6, 3000), (7, 5000)))
    labels, _ = pref.label(jax.random.key(8), labeller, tree.gold[0, train.first], tree.gold[0, train.second], 0)
    config = pref.RewardModelConfig(kind="mlp", hidden=(32,), ensemble_size=3, n_steps=800, learning_rate=0.01)
    params, losses = jax.jit(pref.fit_reward_model, static_argnums=1)(
        jax.random.key(9), config, phi[train.first], phi[train.second], labels
    )
    pref.check_finite_losses(losses)
    assert losses[-1] < losses[0]
    r = pref.predict_reward(config, params, phi)
    p_test = pref.preference_probability(tree.gold[0, test.first], tree.gold[0, test.second], labeller)
    acc = float(pref.pairwise_accuracy(r[test.first], r[test.second], p_test))
    bayes = float(pref.bayes_accuracy(p_test))
    assert acc > bayes - 0.03, (acc, bayes)


def test_gridworld_segments_reward_model_learns():
    """Segments of a slippery gridworld: held-out accuracy rises with labels, and nears Bayes at 3,000."""
    grid = make_gridworld("S..\n.L.\n..G", slip=0.2, step_cost=0.05, horizon=8)
    S, A = grid.mdp.n_states, grid.mdp.n_actions
    policy = jnp.full((S, A), 1.0 / A)
    labeller = pref.Labeller(temperature=0.5)
    pairs = pref.sample_segment_pairs(jax.random.key(10), grid.mdp, policy, 3000, segment_length=4)
    test = pref.sample_segment_pairs(jax.random.key(11), grid.mdp, policy, 2000, segment_length=4)
    labels, _ = pref.label(jax.random.key(12), labeller, pairs.gold_first, pairs.gold_second, 0)
    config = pref.RewardModelConfig(kind="linear", n_steps=800, learning_rate=0.05, l2=1e-4)
    fit = jax.jit(jax.vmap(pref.fit_reward_model, in_axes=(None, None, None, None, None, 0)), static_argnums=1)
    budgets = jnp.array([20, 3000])
    weights = (jnp.arange(3000)[None, :] < budgets[:, None]).astype(jnp.float32)
    params, _ = fit(jax.random.key(13), config, pairs.first, pairs.second, labels, weights)
    p_test = pref.preference_probability(test.gold_first, test.gold_second, labeller)
    acc = [
        float(pref.pairwise_accuracy(*(pref.predict_reward(config, p, f) for f in (test.first, test.second)), p_test))
        for p in (jax.tree.map(lambda x, k=k: x[k], params) for k in range(2))
    ]
    bayes = float(pref.bayes_accuracy(p_test))
    assert acc[1] > acc[0] + 0.02
    assert acc[1] > bayes - 0.03, (acc, bayes)
    assert pairs.first.shape == (3000, S * A) and float(pairs.first.sum(-1).max()) == 4.0
    # gold of a segment is the sum of its rewards: check against the exact reward table
    assert float(jnp.abs(pairs.first @ grid.mdp.R.ravel() - pairs.gold_first).max()) < 1e-9


def test_bad_input():
    with pytest.raises(ValueError, match="temperature"):
        pref.preference_probability(jnp.zeros(2), jnp.zeros(2), pref.Labeller(temperature=0.0))
    with pytest.raises(ValueError, match="kind"):
        pref.RewardModelConfig(kind="transformer")
    with pytest.raises(ValueError, match="features_first"):
        pref.fit_reward_model(
            jax.random.key(0), pref.RewardModelConfig(), jnp.zeros((3, 2)), jnp.zeros((3, 4)), jnp.zeros(3)
        )
