"""RLHF pipeline: PPO (the project's PPO) reaches the exact KL-tilted optimum; resources are counted."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toyrlhf.algorithms import ppo, rlhf, tilted
from toyrlhf.algorithms import preferences as pref
from toyrlhf.demonstrations import sample_demonstrations
from toyrlhf.diagnostics import raise_if_nonfinite
from toyrlhf.envs import token_mdp as tm
from toyrlhf.nets import MLP


@pytest.fixture(scope="module")
def tree():
    task = tm.TokenTask(vocab_size=3, length=3)
    return tm.enumerate_tokens(task, tm.ConcaveQuality(jnp.array([[0.0, 1.0, -0.5]]), 2.0, 0.5))


@pytest.fixture(scope="module")
def run(tree):
    S, A = tree.mdp.R.shape
    expert = tilted.tilted_policy(tree, jnp.full((S, A), 1.0 / A), tree.gold, 1.0)  # a soft, imperfect expert
    config = rlhf.RLHFConfig()
    result = jax.jit(rlhf.make_train(config, tree))(jax.random.key(0), expert)
    return config, result


def test_ppo_matches_the_exact_tilted_optimum(tree, run):
    """KL(π_β ‖ π_PPO) < 0.01 nats, with π_β = π_SFT exp(r̂/β)/Z computed exactly for the learned r̂."""
    config, result = run
    raise_if_nonfinite(result.metrics.nonfinite, "PPO")
    sft = tm.response_probs(tree, result.sft_policy)
    target = tilted.tilted_response_probs(sft, result.reward, config.beta)
    got = tm.response_probs(tree, result.policy)
    assert float(tm.response_kl(target, jnp.log(got))) < 0.01
    # RLHF improves the gold return over SFT here (the reward model is good on SFT's support)
    assert float(jnp.sum(got * tree.gold)) > float(jnp.sum(sft * tree.gold)) + 0.5


def test_resources_are_counted(tree, run):
    config, result = run
    res = result.resources
    assert int(res.preference_labels) == config.n_labels
    assert int(res.gold_queries) == 0
    assert int(res.env_steps) == config.ppo.n_updates * config.ppo.n_envs * config.ppo.n_steps == config.env_steps
    # one demonstrated token per step before the response ends: between 1 and T per demonstration
    assert config.n_demos <= int(res.expert_labels) <= config.n_demos * tree.mdp.horizon
    assert bool(res.known_dynamics)
    assert np.all(np.isfinite(np.asarray(result.reward_model_loss)))


def test_reward_table_hook_reads_the_table():
    table = jnp.arange(12.0).reshape(4, 3)
    for s in range(4):
        for a in range(3):
            assert float(rlhf.reward_table_fn(jnp.int32(s), a, None, table)) == 3 * s + a


def test_labelled_pairs_are_the_policys_responses_labelled_by_the_gold_reward(tree):
    """A policy that always says token 1 then EOS: every pair is (1, 1), a tie the labeller calls at 50%."""
    S, A = tree.mdp.R.shape
    logits = np.full((S, A), -40.0)
    logits[:, tm.EOS] = 0.0
    logits[tree.global_state(0, 0), :] = -40.0
    logits[tree.global_state(0, 0), 1] = 0.0
    policy = jax.nn.softmax(jnp.asarray(logits), -1)
    data = jax.jit(rlhf.label_response_pairs, static_argnums=3)(
        jax.random.key(1), tree, policy, 4000, pref.Labeller(1.0)
    )
    only = int(np.argmax(np.asarray(tm.response_probs(tree, policy))[0]))
    assert np.all(np.asarray(data.pairs.first) == only) and np.all(np.asarray(data.pairs.second) == only)
    assert int(data.count) == 4000 and data.prefer_first.shape == (4000,)
    assert abs(float(data.prefer_first.mean()) - 0.5) < 4 * 0.5 / np.sqrt(4000)


def test_zero_weights_are_absent_labels(tree):
    """The fit with weight 1 on the first m pairs and 0 on the rest is the fit on the first m pairs alone."""
    S, A = tree.mdp.R.shape
    uniform = jnp.full((S, A), 1.0 / A)
    config = dataclasses.replace(rlhf.RLHFConfig().reward_model, n_steps=300)
    features = rlhf.tabular_features(tree)

    @jax.jit
    def both(key):
        data = rlhf.label_response_pairs(key, tree, uniform, 200, pref.Labeller(1.0))
        weights = (jnp.arange(200) < 60).astype(jnp.float32)
        nested, _ = rlhf.fit_response_reward(key, config, features, data, weights)
        first = rlhf.LabelledPairs(pref.ResponsePairs(*(x[:60] for x in data.pairs)), data.prefer_first[:60], 60)
        alone, _ = rlhf.fit_response_reward(key, config, features, first)
        return nested, alone

    nested, alone = map(np.asarray, both(jax.random.key(2)))
    np.testing.assert_allclose(nested, alone, atol=1e-5)
    assert np.ptp(alone) > 0.1  # it learned something


def test_bad_config_names_the_field():
    for field, value in (("n_demos", 0), ("n_labels", 2.5), ("sft_pseudo_count", 0.0),
                         ("label_temperature", -1.0), ("label_random_prob", 1.5)):
        with pytest.raises(ValueError, match=field):
            rlhf.RLHFConfig(**{field: value})
    with pytest.raises(TypeError, match="reward_model"):
        rlhf.RLHFConfig(reward_model="tabular")
    with pytest.raises(TypeError, match="ppo"):
        rlhf.RLHFConfig(ppo=None)
    base = rlhf.RLHFConfig().ppo
    with pytest.raises(ValueError, match="ppo.actor"):
        rlhf.RLHFConfig(ppo=dataclasses.replace(base, actor=MLP()))
    with pytest.raises(ValueError, match="kl_coef"):
        rlhf.RLHFConfig(ppo=dataclasses.replace(base, hyper=ppo.PPOHyperparams(kl_coef=0.0)))


def test_response_counts_and_sft_on_preferred_responses(tree):
    S, A = tree.mdp.R.shape
    n = int(np.flatnonzero(np.asarray(tree.lengths) == 2)[0])  # a two-token response: three steps (EOS included)
    counts = rlhf.response_counts(tree, jnp.array([0]), jnp.array([n]))
    assert float(counts.sum()) == 3.0
    steps = np.asarray(tree.path_mask[n])
    np.testing.assert_array_equal(
        np.asarray(counts[tree.path_states[n][steps], tree.path_actions[n][steps]]), np.ones(3)
    )
    expert = tilted.tilted_policy(tree, jnp.full((S, A), 1.0 / A), tree.gold, 1.0)

    @jax.jit
    def fits(key):
        data = rlhf.label_response_pairs(jax.random.key(6), tree, expert, 50, pref.Labeller(1.0))
        sft, labels = rlhf.fit_sft(key, tree, expert, 10, 0.5)
        demos = sample_demonstrations(key, tree.mdp, expert, 10)  # what fit_sft drew
        none, labels_none = rlhf.fit_preferred_sft(tree, demos, 0.5, data, jnp.zeros(50))
        # nested demonstrations: weight 0 on the last ones is SFT on the first ones alone
        first, _ = rlhf.sft_from_demonstrations(tree, demos, 0.5, (jnp.arange(10) < 4).astype(jnp.float32))
        alone, _ = rlhf.sft_from_demonstrations(tree, jax.tree.map(lambda x: x[:4], demos), 0.5)
        some, _ = rlhf.fit_preferred_sft(tree, demos, 0.5, data)
        return data, sft, labels, none, labels_none, first, alone, some

    data, sft, labels, none, labels_none, first, alone, some = fits(jax.random.key(5))
    np.testing.assert_allclose(none, sft, atol=1e-12)  # zero weight: no preferred response, the same demonstrations
    assert int(labels_none) == int(labels)
    np.testing.assert_allclose(first, alone, atol=1e-12)
    winners = jnp.where(data.prefer_first > 0.5, data.pairs.first, data.pairs.second)
    best = tm.response_probs(tree, some)[0, winners].mean()
    assert float(best) > float(tm.response_probs(tree, sft)[0, winners].mean())  # moved towards the winners


def test_irl_reward_is_the_demonstrators_log_probability(tree):
    """MaxEnt IRL on many demonstrations of a soft-optimal demonstrator: r̂/τ = log π_E + const (its model)."""
    from toyrlhf.algorithms import maxent_irl

    S, A = tree.mdp.R.shape
    expert = tilted.tilted_policy(tree, jnp.full((S, A), 1.0 / A), tree.gold, 0.5)
    config = maxent_irl.MaxEntIRLConfig(n_steps=400, learning_rate=0.1, temperature=1.0)
    features = tm.length_and_count_features(tree)
    demos = sample_demonstrations(jax.random.key(1), tree.mdp, expert, 3000)
    reward, result = jax.jit(rlhf.fit_irl_reward, static_argnums=2)(tree, demos, config, features)
    assert not np.any(np.asarray(result.nonfinite))
    log_expert = jnp.log(tm.response_probs(tree, expert))
    probs = tm.response_probs(tree, expert)
    assert float(pref.centred_correlation(reward, log_expert, probs)) > 0.98
    # and on 5 demonstrations it is far from it: the test can fail
    fit = jax.jit(rlhf.fit_irl_reward, static_argnums=2)
    few, _ = fit(tree, jax.tree.map(lambda x: x[:5], demos), config, features)
    many = float(pref.centred_correlation(reward, log_expert, probs))
    assert float(pref.centred_correlation(few, log_expert, probs)) < many
