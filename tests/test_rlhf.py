"""RLHF pipeline: PPO (the project's PPO) reaches the exact KL-tilted optimum; resources are counted."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toyrlhf.algorithms import ppo, rlhf, tilted
from toyrlhf.algorithms import preferences as pref
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
