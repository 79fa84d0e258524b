"""sparsity-action-dim (claim T4): censored steps-to-solve, the position-observed token MDP, a tiny run that learns."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toyrlhf import tabular
from toyrlhf.envs import token_mdp
from toyrlhf.experiments import sparsity_action_dim as sad

# ------------------------------------------------------------------------------------------
# Steps to solve and censoring, on hand-made curves
# ------------------------------------------------------------------------------------------


def test_steps_to_solve_first_passage_and_censoring():
    curves = np.array(
        [
            [0.1, 0.5, 0.9, 0.2],  # reaches 0.9 at update 3 (first passage counts, even if it falls back)
            [0.95, 0.1, 0.1, 0.1],  # update 1
            [0.1, 0.2, 0.3, 0.89],  # never: censored at the budget, 4 updates
        ]
    )
    steps, solved = sad.steps_to_solve(curves, 0.9, steps_per_update=16)
    np.testing.assert_array_equal(steps, [48, 16, 64])
    np.testing.assert_array_equal(solved, [True, True, False])


def test_steps_to_solve_rejects_bad_input():
    with pytest.raises(ValueError, match="steps_per_update"):
        sad.steps_to_solve(np.zeros((2, 3)), 0.9, 0)
    with pytest.raises(ValueError, match="curves"):
        sad.steps_to_solve(np.zeros((2, 0)), 0.9, 1)


def test_km_median_with_a_common_censoring_time():
    # 5 runs, 2 censored: half (3 of 5) have solved by the third solved time.
    assert sad.km_median([30, 10, 99, 50, 99], [True, True, False, True, False]) == 50
    # 4 runs, 2 censored: the Kaplan–Meier curve reaches 0.5 at the second solved time.
    assert sad.km_median([20, 40, 99, 99], [True, True, False, False]) == 40
    # 5 runs, 3 censored: the median lies beyond the budget.
    assert sad.km_median([20, 40, 99, 99, 99], [True, True, False, False, False]) == np.inf
    # An unsolved run's recorded time is never used, however small.
    assert sad.km_median([1, 30, 40], [False, True, True]) == 40


def test_paired_difference_signs_survive_censoring():
    # budget 100: (censored sparse, solved dense) > 0; (solved sparse, censored dense) < 0; both censored tie.
    sparse = np.array([100, 20, 100])
    dense = np.array([50, 100, 100])
    assert np.sign(sparse - dense).tolist() == [1, -1, 0]
    assert sad.paired_difference_median(sparse, dense) == 0.0


def test_monotone_criterion_flags_a_decrease_and_passes_a_monotone_table():
    # steps [methods=2, V=2, T=2, L=1, S=3], all solved.
    base = np.array([[10, 20], [30, 40]], dtype=float)  # rises in V (rows) and T (columns)
    steps = np.broadcast_to(base[None, :, :, None, None], (2, 2, 2, 1, 3)).copy()
    solved = np.ones_like(steps, dtype=bool)
    good, info = sad.monotone_criterion(steps, solved, (2, 4), (4, 8), 100)
    assert good.supported and info["undetermined_pairs"] == 0 and info["n_pairs"] == 8
    steps[1, 1, 1] = 5.0  # Vanilla PG at (V=4, T=8) solves faster than its smaller neighbours
    bad, info = sad.monotone_criterion(steps, solved, (2, 4), (4, 8), 100)
    assert not bad.supported and len(info["violations"]) == 2
    assert bad.measured == pytest.approx(5 / 30)
    # Two censored medians (V=4 at both T for method 0) are undetermined, not a decrease, and not the minimum.
    steps[1, 1, 1] = 40.0
    solved[0, 1] = False
    steps[0, 1] = 100.0
    undetermined, info = sad.monotone_criterion(steps, solved, (2, 4), (4, 8), 100)
    assert undetermined.supported and info["undetermined_pairs"] == 1
    assert undetermined.measured == pytest.approx(40 / 30)  # method 1's T-step at V=2


def test_sparse_vs_dense_criterion_needs_every_cell():
    # steps [methods=1, rewards=3, V=1, T=2, L=1, S=3]
    steps = np.zeros((1, 3, 1, 2, 1, 3))
    steps[0, 0] = 10.0  # dense
    steps[0, 1, 0, 0] = 20.0  # sparse slower in cell T=4
    steps[0, 1, 0, 1] = [5.0, 5.0, 30.0]  # sparse faster in 2 of 3 seeds in cell T=8
    criterion, info = sad.sparse_vs_dense_criterion(steps, (4,), (4, 8))
    assert not criterion.supported and criterion.measured == -5.0
    assert len(info["failing"]) == 1 and "T=8" in info["failing"][0]


# ------------------------------------------------------------------------------------------
# The reward and the exact gold return
# ------------------------------------------------------------------------------------------


def test_position_reward_equals_target_pattern():
    V, T = 5, 6
    targets = jnp.array([3, 0, 4, 4, 1, 2])
    gold = sad.PositionReward(jax.nn.one_hot(targets, V)[None] / T)
    pattern = token_mdp.TargetPattern(targets[None])
    tokens = jax.random.randint(jax.random.key(0), (50, T), 0, V)
    tokens = tokens.at[0].set(targets)  # the optimum, return 1
    ours = jax.vmap(lambda y: gold(0, y))(tokens)
    theirs = jax.vmap(lambda y: pattern(0, y, False))(tokens)
    np.testing.assert_allclose(ours, theirs, atol=1e-6)
    assert float(ours[0]) == pytest.approx(1.0)


def test_gold_return_equals_exact_evaluation_on_the_enumerated_tree():
    V, T = 3, 3
    task = token_mdp.TokenTask(vocab_size=V, length=T, eos=False)
    targets = jnp.array([2, 0, 1])
    tree = token_mdp.enumerate_tokens(task, token_mdp.TargetPattern(targets[None]))
    logits = jax.random.normal(jax.random.key(1), (T + 1, V))
    # The position policy on the tree: every prefix of depth t acts with softmax(logits[t]).
    per_prefix = jax.nn.softmax(logits[tree.prefix_depth].astype(jnp.float64), axis=-1)
    policy = jnp.concatenate([per_prefix, jnp.full((1, V), 1.0 / V)])  # the terminal state's row is unused
    exact = tabular.evaluate(tree.mdp, policy)
    assert float(sad.gold_return(logits, targets)) == pytest.approx(float(exact), abs=1e-12)
    optimum = float(tree.mdp.init @ tabular.solve(tree.mdp).V[0])
    assert optimum == pytest.approx(1.0)  # the analytic optimum the experiment relies on


def test_position_observed_env_dense_rewards_sum_to_the_sparse_one():
    V, T = 4, 3
    env = sad.PositionObserved(token_mdp.TokenEnv(token_mdp.TokenTask(vocab_size=V, length=T, eos=False)))
    weights = jax.random.uniform(jax.random.key(2), (1, T, V))
    response = [1, 3, 0]
    totals = {}
    for dense in (True, False):
        params = sad.PositionParams(sad.PositionReward(weights), jnp.array(dense))
        obs, state = env.reset(jax.random.key(0), params)
        observed, rewards, ends = [int(obs)], [], []
        for a in response:
            step = env.step(jax.random.key(0), state, jnp.int32(a), params)
            observed.append(int(step.obs))
            rewards.append(float(step.reward))
            ends.append(bool(step.terminated))
            state = step.state
        assert observed == [0, 1, 2, 3] and ends == [False, False, True]
        totals[dense] = rewards
    expected = [float(weights[0, t, a]) for t, a in enumerate(response)]
    np.testing.assert_allclose(totals[True], expected, rtol=1e-6)
    np.testing.assert_allclose(totals[False], [0.0, 0.0, sum(expected)], rtol=1e-6)
    assert env.n_states == T + 1 and env.observation_shape == ()
    with pytest.raises(ValueError, match="eos=False"):
        sad.PositionObserved(token_mdp.TokenEnv(token_mdp.TokenTask(vocab_size=4, length=3, eos=True)))


# ------------------------------------------------------------------------------------------
# It learns: one small compiled call, dense and sparse rewards x seeds
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_runs():
    """PPO on V = 4, T = 4: [2 rewards (dense, sparse), 4 seeds, 25 updates] exact gold returns."""
    V, T, seeds, updates = 4, 4, 4, 25
    env = sad.PositionObserved(token_mdp.TokenEnv(token_mdp.TokenTask(vocab_size=V, length=T, eos=False)))
    targets = jnp.array([1, 3, 0, 2])
    weights = jax.nn.one_hot(targets, V, dtype=jnp.float32)[None] / T
    params = sad.PositionParams(sad.PositionReward(jnp.stack([weights, weights])), jnp.array([True, False]))
    params = jax.tree.map(lambda x: jnp.repeat(x, seeds, axis=0), params)
    cfg = sad.ppo_config("PPO", T, updates)
    example = jax.tree.map(lambda x: x[0], params)
    train = sad.make_tracked_train(cfg, env, example, lambda actor: sad.gold_return(actor, targets))
    keys = jnp.tile(jax.random.split(jax.random.key(0), seeds), (2,))
    values, nonfinite = jax.jit(jax.vmap(train))(keys, sad.method_hyper("PPO", jnp.full((2 * seeds,), 0.1)), params)
    return np.asarray(values).reshape(2, seeds, updates), np.asarray(nonfinite)


def test_tiny_dense_run_solves_every_seed(tiny_runs):
    values, nonfinite = tiny_runs
    assert not nonfinite.any()
    # The uniform policy's exact gold return is 1/V = 0.25; every dense seed reaches 90% of the optimum 1.
    assert np.all(values[0, :, 0] < 0.6)
    steps, solved = sad.steps_to_solve(values[0], sad.SOLVE_FRACTION, sad.N_ENVS)
    assert solved.all(), values[0, :, -1]
    assert np.all(values[0, :, -1] > 0.9)


def test_tiny_sparse_run_learns(tiny_runs):
    values, _ = tiny_runs
    assert np.all(values[1, :, -1] > values[1, :, 0] + 0.3), values[1, :, -1]
