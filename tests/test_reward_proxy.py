"""reward-proxy: label counts, the judge's noise model, exact bandit values, criteria by hand, it learns."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toyrlhf import experiments
from toyrlhf.algorithms import preferences as pref
from toyrlhf.algorithms import rlhf, tilted
from toyrlhf.envs import token_mdp as tm
from toyrlhf.envs.functional import TabularState, tabular_env
from toyrlhf.experiments import reward_proxy as rp
from toyrlhf.experiments import rlhf_vs_sft as rvs

TINY = dataclasses.replace(
    rp.Config(),
    n_seeds=3,
    direct_updates=30,
    label_budgets=(10, 1000),
    table_sizes=(8, 4000),
    n_test_queries=400,
)


@pytest.fixture(scope="module")
def token():
    task, tree, expert = rvs.build(TINY.token_config())
    keys = jax.random.split(jax.random.key(11), TINY.n_seeds)
    sft = jax.vmap(lambda k: rlhf.fit_sft(k, tree, expert, TINY.n_demos, TINY.sft_pseudo_count)[0])(keys)
    return task, tree, sft


@pytest.fixture(scope="module")
def direct(token):
    """The direct route, compiled once: ``(keys [n], reference [S, A], noise, learning_rate)``."""
    _, tree, _ = token
    return jax.jit(jax.vmap(rp.make_direct_route(TINY, tree), in_axes=(0, None, None, None)))


def fixed_length_policy(tree, end_now: bool):
    """A policy that (almost surely) ends at once (``end_now``) or never says EOS (every response has length T)."""
    S, A = tree.mdp.R.shape
    logits = np.full((S, A), -30.0)
    if end_now:
        logits[:, tm.EOS] = 0.0
    else:
        logits[:, 1] = 0.0
    return jax.nn.softmax(jnp.asarray(logits), -1)


def test_registered():
    assert experiments.get(rp.NAME) is rp


@pytest.mark.parametrize("end_now", [True, False])
def test_direct_route_labels_equal_finished_responses(token, direct, end_now):
    """Learning rate 0 keeps the policy fixed: every response has a known length, so the count is exact."""
    _, tree, _ = token
    policy = fixed_length_policy(tree, end_now)
    keys = jax.random.split(jax.random.key(0), 2)
    gold, labels, nonfinite = map(np.asarray, direct(keys, policy, 1.0, 0.0))
    n, T = TINY.direct_envs * TINY.direct_steps, TINY.length
    per_update = n if end_now else TINY.direct_envs * (TINY.direct_steps // T)  # T divides the steps: 2 per env
    assert np.all(labels == per_update)
    assert not nonfinite.any()
    # the policy did not move, and its gold return is the exact one of the fixed policy
    np.testing.assert_allclose(gold, float(rp.gold_return(tree, tm.response_probs(tree, policy))), atol=1e-6)


def test_direct_route_learns_from_noisy_judgements(token, direct):
    """PPO on the judge's scores, from SFT: most of the SFT → oracle gain within 30 updates (≈ 250 judgements)."""
    _, tree, sft = token
    keys = jax.random.split(jax.random.key(1), TINY.n_seeds)
    fractions = []
    for i in range(TINY.n_seeds):
        gold, labels, _ = map(np.asarray, direct(keys[i : i + 1], sft[i], 1.0, TINY.direct_learning_rate))
        probs = tm.response_probs(tree, sft[i])
        start = float(rp.gold_return(tree, probs))
        oracle = float(rp.gold_return(tree, tilted.tilted_response_probs(probs, tree.gold, TINY.beta)))
        fractions.append((gold[0, -1] - start) / (oracle - start))
        # every update spends at least one judgement per env that finished, at most one per step
        assert np.all((labels >= TINY.direct_envs) & (labels <= TINY.direct_envs * TINY.direct_steps))
    assert min(fractions) > 0.75, fractions


def test_judge_is_the_labeller_asked_for_a_score(token):
    """Scores are gold + τ(Gumbel − γ): mean g, SD πτ/√6, and 'which scored higher' is the Boltzmann labeller."""
    _, tree, _ = token
    env, params = tabular_env(tree.mdp, "index")
    judged = rp.JudgedEnv(env)
    tau = 0.7
    # two responses of prompt 0 that end from the root: "" (EOS at once) and "2" (token 2, then EOS)
    ends = [(tree.global_state(0, 0), tm.EOS), (tree.global_state(0, 2), tm.EOS)]
    g = [float(tree.mdp.R[s, a]) for s, a in ends]
    n = 40_000
    keys = jax.random.split(jax.random.key(5), (2, n))

    def scores(i, noise):
        s, a = ends[i]
        state = TabularState(jnp.int32(s), jnp.int32(0))
        step = jax.vmap(lambda k: judged.step(k, state, a, rp.JudgeParams(params, noise)))(keys[i])
        assert bool(step.terminated.all())
        return np.asarray(step.reward, dtype=np.float64)

    np.testing.assert_allclose(scores(0, 0.0), g[0], rtol=1e-6)  # the noise-free judge reads out the gold reward
    a, b = scores(0, tau), scores(1, tau)
    se = tau * np.pi / np.sqrt(6 * n)
    assert abs(a.mean() - g[0]) < 4 * se and abs(b.mean() - g[1]) < 4 * se
    assert abs(a.std() / (tau * np.pi / np.sqrt(6)) - 1) < 0.03
    p = float(pref.preference_probability(jnp.asarray(g[0]), jnp.asarray(g[1]), pref.Labeller(tau)))
    assert abs(np.mean(a > b) - p) < 4 * np.sqrt(p * (1 - p) / n)
    # a step that does not end the response pays nothing, noise included
    step = judged.step(keys[0, 0], TabularState(jnp.int32(0), jnp.int32(0)), 1, rp.JudgeParams(params, tau))
    assert not bool(step.terminated) and float(step.reward) == 0.0


def test_padded_count_features_fit_the_same_reward(token):
    """One width for both reward models: zero columns change nothing; the count model learns the gold ranking."""
    task, tree, sft = token
    features = rp.reward_model_features(task, tree)
    P, N = tree.gold.shape
    assert features.shape == (2, P, N, P * N)
    counts = pref.per_prompt_features(
        pref.token_count_features(tree.responses, task.vocab_size, length_squared=True), P
    )
    np.testing.assert_array_equal(features[1, ..., : counts.shape[-1]], counts)
    probs = tm.response_probs(tree, sft[0])
    key_pairs, key_labels = jax.random.split(jax.random.key(2))
    pairs = pref.sample_response_pairs(key_pairs, probs, 1000)
    labels, count = pref.label(
        key_labels, pref.Labeller(1.0), tree.gold[pairs.prompt, pairs.first], tree.gold[pairs.prompt, pairs.second], 0
    )
    assert int(count) == 1000
    config = rvs.pipeline_config(TINY.token_config()).reward_model
    rewards = []
    for phi in (counts, features[1]):
        params, _ = pref.fit_reward_model(
            jax.random.key(3), config, phi[pairs.prompt, pairs.first], phi[pairs.prompt, pairs.second], labels
        )
        rewards.append(np.asarray(pref.predict_reward(config, params, phi)))
    np.testing.assert_allclose(rewards[0], rewards[1], atol=1e-4)
    assert float(pref.centred_correlation(jnp.asarray(rewards[0], jnp.float64), tree.gold, probs)) > 0.95


def test_bandit_exact_values_by_hand_and_by_monte_carlo():
    p = jnp.asarray([[0.1, 0.9, 0.5], [0.8, 0.3, 0.4]])
    choice = jnp.asarray([1, 0])
    assert float(rp.exact_success(p, choice)) == pytest.approx((0.9 + 0.8) / 2)
    assert float(rp.best_single_success(p)) == pytest.approx(max(0.45, 0.6, 0.45))
    assert float(rp.oracle_success(p)) == pytest.approx(0.85)
    # Monte Carlo: serve each query with its chosen prompt, count successes
    n = 200_000
    key_q, key_y = jax.random.split(jax.random.key(4))
    q = jax.random.randint(key_q, (n,), 0, 2)
    wins = np.asarray(jax.random.bernoulli(key_y, p[q, choice[q]]))
    exact = float(rp.exact_success(p, jnp.asarray([2, 2])))
    assert exact == pytest.approx(0.45)
    assert abs(wins.mean() - 0.85) < 4 * np.sqrt(0.85 * 0.15 / n)


def test_selection_features_give_a_per_prompt_intercept_and_slope():
    u = jnp.asarray([[1.0, -2.0], [0.5, 3.0], [0.0, 0.0]])
    phi = rp.selection_features(u, 3)
    assert phi.shape == (3, 3, 9)
    theta = jnp.arange(9.0)  # prompt k: intercept 3k, slopes (3k+1, 3k+2)
    expected = jnp.asarray([[3 * k + (3 * k + 1) * x[0] + (3 * k + 2) * x[1] for k in range(3)] for x in u])
    np.testing.assert_allclose(phi @ theta, expected, rtol=1e-6)


@pytest.fixture(scope="module")
def bandit():
    keys = jax.random.split(jax.random.key(9), 4)
    clean = dataclasses.replace(TINY, idiosyncratic_scale=0.0)  # the success model is then well-specified
    return jax.tree.map(np.asarray, jax.jit(jax.vmap(rp.make_bandit(clean)))(keys))


def test_bandit_learns_with_a_large_table_and_counts_rows(bandit):
    success, rows = bandit["success"], bandit["table_rows"]
    assert np.all(rows == np.asarray(TINY.table_sizes))
    learned, table_best, hindsight, oracle = (success[:, -1, i] for i in range(4))
    assert np.all(learned > hindsight + 0.1)
    assert np.all(oracle - learned < 0.03)  # 4000 outcomes, well-specified: near the per-query oracle
    assert np.all(table_best <= hindsight + 1e-12) and np.all(oracle >= hindsight)
    assert np.all(success[:, 0, 0] < success[:, -1, 0])  # 8 outcomes for 40 parameters: far worse


def test_gold_at_budget_and_labels_to_reach_by_hand():
    cum = np.array([[5, 12, 20, 31]])
    gold = np.array([[1.0, 2.0, 3.0, 4.0]])
    start = np.array([0.5])
    assert rp.gold_at_budget(cum, gold, start, 4)[0] == 0.5  # no update fits in 4 labels: still SFT
    assert rp.gold_at_budget(cum, gold, start, 12)[0] == 2.0
    assert rp.gold_at_budget(cum, gold, start, 30)[0] == 3.0
    assert rp.gold_at_budget(cum, gold, start, 10_000)[0] == 4.0
    frac = np.array([[0.2, 0.95, 0.85, 0.99], [0.1, 0.2, 0.3, 0.4]])
    reach = rp.labels_to_reach(np.repeat(cum, 2, 0), frac, 0.9)
    assert reach[0] == 12 and np.isinf(reach[1])
    assert rp.median_ratio([100, 200, 300], [10, 20, 30]) == pytest.approx(10.0)
    assert rp.median_ratio([100, 200, 300], [np.inf] * 3) == 0.0
    assert np.isinf(rp.median_ratio([np.inf] * 3, [10, 20, 30]))
    assert np.isnan(rp.median_ratio([np.inf] * 3, [np.inf] * 3))
    with pytest.raises(ValueError, match="cum_labels"):
        rp.gold_at_budget(np.array([[3, 2]]), np.array([[1.0, 2.0]]), start, 5)
    with pytest.raises(ValueError, match="cum_labels and fraction"):
        rp.labels_to_reach(cum, frac, 0.9)


def test_criteria_by_hand():
    config = dataclasses.replace(rp.Config(), label_budgets=(10, 100))
    seeds = 6
    rm_gold = np.zeros((seeds, 2, 2))
    rm_gold[:, :, -1] = [[1.0, 2.0]] * seeds  # tabular 1.0, features 2.0 at L = 100
    direct_at = np.zeros((seeds, 2, 2))
    direct_at[:, 1, -1] = 1.5 + 0.01 * np.arange(seeds)  # noisy judge
    direct_reach = np.array([[50.0, 300.0]] * seeds)
    rm_reach = np.array([[np.inf, 100.0]] * seeds)
    success = np.zeros((seeds, 2, 4))
    success[:, -1] = [0.7, 0.5, 0.55, 0.8]
    c = rp.criteria_from(config, rm_gold, direct_at, direct_reach, rm_reach, success)
    assert [x.supported for x in c] == [False, True, False, True, True]
    assert c[0].measured == pytest.approx(1.0 - np.mean(1.5 + 0.01 * np.arange(seeds)))
    assert c[2].measured == 0.0 and c[3].measured == pytest.approx(3.0)
    assert c[4].measured == pytest.approx(0.15)
    success[:, -1, 0] = 0.5
    assert not rp.criteria_from(config, rm_gold, direct_at, direct_reach, rm_reach, success)[4].supported
    with pytest.raises(ValueError, match="rm_gold"):
        rp.criteria_from(config, rm_gold[:, :1], direct_at, direct_reach, rm_reach, success)


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="label_budgets"):
        rp.Config(label_budgets=(100, 30))
    with pytest.raises(ValueError, match="table_sizes"):
        rp.Config(table_sizes=())
    with pytest.raises(ValueError, match="gain_fraction"):
        rp.Config(gain_fraction=1.5)
    with pytest.raises(ValueError, match="n_candidates"):
        rp.Config(n_candidates=1)
    with pytest.raises(ValueError, match="direct_envs"):
        rp.Config(direct_envs=0)
    with pytest.raises(ValueError, match="choice"):
        rp.exact_success(jnp.ones((3, 2)), jnp.zeros(2, jnp.int32))
    with pytest.raises(ValueError, match="seeds"):
        rp.run(quick=True, seeds=1)
