"""RLHF pipeline: PPO (the project's PPO) reaches the exact KL-tilted optimum; resources are counted."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toyrlhf.algorithms import rlhf, tilted
from toyrlhf.diagnostics import raise_if_nonfinite
from toyrlhf.envs import token_mdp as tm


@pytest.fixture(scope="module")
def run():
    task = tm.TokenTask(vocab_size=3, length=3)
    tree = tm.enumerate_tokens(task, tm.ConcaveQuality(jnp.array([[0.0, 1.0, -0.5]]), 2.0, 0.5))
    S, A = tree.mdp.R.shape
    expert = tilted.tilted_policy(tree, jnp.full((S, A), 1.0 / A), tree.gold, 1.0)  # a soft, imperfect expert
    config = rlhf.RLHFConfig()
    result = jax.jit(rlhf.make_train(config, tree))(jax.random.key(0), expert)
    return tree, config, result


def test_ppo_matches_the_exact_tilted_optimum(run):
    """KL(π_β ‖ π_PPO) < 0.01 nats, with π_β = π_SFT exp(r̂/β)/Z computed exactly for the learned r̂."""
    tree, config, result = run
    raise_if_nonfinite(result.metrics.nonfinite, "PPO")
    sft = tm.response_probs(tree, result.sft_policy)
    target = tilted.tilted_response_probs(sft, result.reward, config.ppo.hyper.kl_coef)
    got = tm.response_probs(tree, result.policy)
    assert float(tm.response_kl(target, jnp.log(got))) < 0.01
    # RLHF improves the gold return over SFT here (the reward model is good on SFT's support)
    assert float(jnp.sum(got * tree.gold)) > float(jnp.sum(sft * tree.gold)) + 0.5


def test_resources_are_counted(run):
    tree, config, result = run
    res = result.resources
    assert int(res.preference_labels) == config.n_labels
    assert int(res.gold_queries) == 0
    assert int(res.env_steps) == config.ppo.n_updates * config.ppo.n_envs * config.ppo.n_steps
    # one demonstrated token per step before the response ends: between 1 and T per demonstration
    assert config.n_demos <= int(res.expert_labels) <= config.n_demos * tree.mdp.horizon
    assert bool(res.known_dynamics)
    assert np.all(np.isfinite(np.asarray(result.reward_model_loss)))
