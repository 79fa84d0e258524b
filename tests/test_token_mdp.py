"""Token MDP: hand-computed responses, gold values and probabilities; exact vs tabular cross-checks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toyrlhf import tabular
from toyrlhf.envs import token_mdp as tm

QUALITY = tm.ConcaveQuality(quality=jnp.array([[0.0, 1.0, -1.0]]), target_length=1.0, length_penalty=0.5)


@pytest.fixture(scope="module")
def small_tree():
    return tm.enumerate_tokens(tm.TokenTask(vocab_size=3, length=2), QUALITY)


def test_responses_listed_by_hand(small_tree):
    # V = 3 (EOS + tokens 1, 2), T = 2: "", "1", "1 1", "1 2", "2", "2 1", "2 2".
    got = {tuple(int(t) for t in y) for y in np.asarray(small_tree.responses)}
    assert got == {(0, 0), (1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (2, 2)}
    assert small_tree.n_responses == 7 == tm.count_responses(tm.TokenTask(3, 2))
    assert small_tree.n_prefixes == 3  # "", "1", "2"
    assert small_tree.mdp.n_states == 4  # plus the terminal state


def test_concave_quality_by_hand(small_tree):
    gold = {tuple(int(t) for t in y): float(g) for y, g in zip(np.asarray(small_tree.responses), small_tree.gold[0])}
    # Σ quality - 0.5 (L - 1)²
    assert gold[(0, 0)] == pytest.approx(-0.5)
    assert gold[(1, 0)] == pytest.approx(1.0)
    assert gold[(1, 1)] == pytest.approx(1.5)
    assert gold[(1, 2)] == pytest.approx(-0.5)
    assert gold[(2, 2)] == pytest.approx(-2.5)


def test_uniform_policy_probabilities_and_return(small_tree):
    S, A = small_tree.mdp.R.shape
    uniform = jnp.full((S, A), 1.0 / A)
    probs = tm.response_probs(small_tree, uniform)[0]
    lengths = np.asarray(small_tree.lengths)
    expected = np.where(lengths == 0, 1 / 3, 1 / 9)  # "" has 1/3, everything else 1/9
    np.testing.assert_allclose(probs, expected, atol=1e-12)
    # The MDP's exact return equals the response-level expectation of gold.
    assert float(tabular.evaluate(small_tree.mdp, uniform)) == pytest.approx(float(probs @ small_tree.gold[0]))


def test_target_pattern_and_regular_language_by_hand():
    targets = jnp.array([[1, 2, 0], [2, 2, 2]])
    pattern = tm.TargetPattern(targets)
    assert float(pattern(0, jnp.array([1, 2, 0]))) == pytest.approx(1.0)
    assert float(pattern(1, jnp.array([1, 2, 0]))) == pytest.approx(1 / 3)
    lang = tm.no_repeat_language(vocab_size=3, min_length=2)
    # "1 2 1": 3 tokens alive, accepted (length >= 2): 3/3 + 1
    assert float(lang(0, jnp.array([1, 2, 1]))) == pytest.approx(2.0)
    # "1 1 2": the repeat kills it after one token: 1/3, not accepted
    assert float(lang(0, jnp.array([1, 1, 2]))) == pytest.approx(1 / 3)
    # "1": one token, too short to accept
    assert float(lang(0, jnp.array([1, 0, 0]))) == pytest.approx(1 / 3)
    # without EOS token 0 is content: "0 0 1" dies at the second token
    lang_no_eos = tm.no_repeat_language(vocab_size=2, eos=False, min_length=1)
    assert float(lang_no_eos(0, jnp.array([0, 0, 1]), False)) == pytest.approx(1 / 3)
    assert float(lang_no_eos(0, jnp.array([0, 1, 0]), False)) == pytest.approx(2.0)


def test_multi_prompt_tree_and_inverse_maps():
    task = tm.TokenTask(vocab_size=3, length=3, n_prompts=2)
    gold = tm.ConcaveQuality(jnp.array([[0.0, 1.0, -1.0], [0.0, -1.0, 1.0]]), 2.0, 0.3)
    tree = tm.enumerate_tokens(task, gold)
    S, A = tree.mdp.R.shape
    logits = jax.random.normal(jax.random.key(0), (S, A))
    policy = jax.nn.softmax(logits)
    probs = tm.response_probs(tree, policy)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-12)
    # Inverse map: the policy is recovered on every reachable prefix (all of them here).
    recovered = tm.policy_from_response_probs(tree, probs)
    np.testing.assert_allclose(recovered[:-1], policy[:-1], atol=1e-10)
    # The exact MDP return is the response-level expectation of gold.
    assert float(tabular.evaluate(tree.mdp, policy)) == pytest.approx(float(jnp.mean(jnp.sum(probs * tree.gold, -1))))
    # Response-level KL equals the trajectory KL of the tabular core.
    other = jax.nn.softmax(jax.random.normal(jax.random.key(1), (S, A)))
    other = other.at[-1].set(policy[-1])  # the terminal state's actions do nothing; the trajectory KL counts them
    kl = tm.response_kl(probs, tm.response_log_probs(tree, jnp.log(other)))
    assert float(kl) == pytest.approx(float(tabular.kl_divergence(tree.mdp, policy, other)), rel=1e-10)
    # Swapping the reward: the gold reward through with_response_reward is the same MDP.
    mdp = tm.with_response_reward(tree, tree.gold)
    np.testing.assert_allclose(mdp.R, tree.mdp.R)


def test_sampled_responses_match_exact_probabilities(small_tree):
    """Monte Carlo through the tabular sampler vs the exact response probabilities (5 SE tolerance)."""
    S, A = small_tree.mdp.R.shape
    policy = jax.nn.softmax(jnp.arange(S * A, dtype=jnp.float64).reshape(S, A) % 3)
    n = 20_000
    episodes = tabular.sample_episodes(jax.random.key(3), small_tree.mdp, policy, n)
    returns = np.asarray(episodes.returns())
    probs = np.asarray(tm.response_probs(small_tree, policy)[0])
    exact = probs @ np.asarray(small_tree.gold[0])
    se = returns.std() / np.sqrt(n)
    assert abs(returns.mean() - exact) < 5 * se


def test_bad_input():
    with pytest.raises(ValueError, match="vocab_size"):
        tm.TokenTask(vocab_size=2, length=3)
    with pytest.raises(ValueError, match="max_responses"):
        tm.enumerate_tokens(tm.TokenTask(vocab_size=10, length=8), QUALITY)


def test_functional_env_matches_exact_tree():
    """Rollouts of a linear policy in TokenEnv vs exact evaluation on the enumerated tree (5 SE)."""
    from toyrlhf.rollout import rollout, start

    task = tm.TokenTask(vocab_size=4, length=3, n_prompts=2)
    gold = tm.ConcaveQuality(jnp.array([[0.0, 1.0, -0.5, 0.3], [0.0, -1.0, 0.5, 0.8]]), 2.0, 0.4)
    env = tm.TokenEnv(task)
    tree = tm.enumerate_tokens(task, gold)
    weights = 0.7 * jax.random.normal(jax.random.key(0), (*env.observation_shape, 4), jnp.float32)
    obs_table = tm.tree_observations(env, tree)
    exact = float(tabular.evaluate(tree.mdp, jax.nn.softmax(obs_table.astype(jnp.float64) @ weights)))

    carry = start(jax.random.key(1), env, gold, 256)
    _, batch = jax.jit(lambda c: rollout(jax.random.key(2), env, gold, c, lambda w, o: o @ w, weights, 60))(carry)
    returns = np.asarray(batch.episode_return)[np.asarray(batch.done)]
    assert returns.size > 3000
    se = returns.std() / np.sqrt(returns.size)
    assert abs(returns.mean() - exact) < 5 * se
    # decode inverts observe on every state of the tree
    decoded = jax.vmap(env.decode)(obs_table[:-1])
    np.testing.assert_array_equal(decoded.tokens, np.tile(np.asarray(tree.prefix_tokens), (2, 1)))
    np.testing.assert_array_equal(decoded.t, np.tile(np.asarray(tree.prefix_depth), 2))


def test_path_state_indices_match_enumerated_paths():
    for task in (tm.TokenTask(vocab_size=4, length=3, n_prompts=2), tm.TokenTask(3, 3, 2, eos=False)):
        tree = tm.enumerate_tokens(task, tm.TargetPattern(jnp.zeros((2, 3), jnp.int32)))
        for x in range(2):
            got = jax.vmap(lambda y, x=x, task=task: tm.path_state_indices(task, x, y))(tree.responses)
            want = tree.global_state(x, tree.path_states)
            np.testing.assert_array_equal(np.where(tree.path_mask, got, -1), np.where(tree.path_mask, want, -1))


def test_step_mask_matches_enumerated_paths():
    task = tm.TokenTask(vocab_size=4, length=3)
    tree = tm.enumerate_tokens(task, tm.TargetPattern(jnp.zeros((1, 3), jnp.int32)))
    np.testing.assert_array_equal(tm.step_mask(task, tree.responses), tree.path_mask)


def test_ending_pair_features_and_length_count_features():
    task = tm.TokenTask(vocab_size=3, length=3, n_prompts=2)
    gold = tm.ConcaveQuality(jnp.array([[0.0, 1.0, -0.5], [0.0, -0.3, 0.8]]), 2.0, 0.4)
    tree = tm.enumerate_tokens(task, gold)
    phi = tm.length_and_count_features(tree)
    P, N = tree.gold.shape
    assert phi.shape == (P, N, P * (2 + 3 + 1))
    # a linear reward on them represents ConcaveQuality exactly
    X, y = np.asarray(phi).reshape(P * N, -1), np.asarray(tree.gold).ravel()
    theta, *_ = np.linalg.lstsq(X, y, rcond=None)
    np.testing.assert_allclose(X @ theta, y, atol=1e-9)
    # on the ending pairs, φ·θ pays each response's value once, where with_response_reward puts it
    w = jax.random.normal(jax.random.key(0), (phi.shape[-1],))
    on_pairs = tm.on_ending_pairs(tree, phi)
    np.testing.assert_allclose(on_pairs @ w, tm.with_response_reward(tree, phi @ w).R, atol=1e-5)
    states, actions = tm.ending_pairs(tree)
    assert states.shape == actions.shape == (P, N)
    with pytest.raises(ValueError, match="response_features"):
        tm.on_ending_pairs(tree, phi[:, :-1])
