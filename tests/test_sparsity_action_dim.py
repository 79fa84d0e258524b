"""sparsity-action-dim (claim T4): censored steps-to-solve, the criteria on null data, the position-observed
token MDP, the padded vocabulary, and one tiny sweep shared by the tests (and the notebook)."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from toyrlhf import losses, stats, tabular
from toyrlhf.envs import token_mdp
from toyrlhf.experiments import sparsity_action_dim as sad
from toyrlhf.experiments.common import NOT_SUPPORTED, SUPPORTED, UNDETERMINED

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
    np.testing.assert_array_equal(sad.censored_times(steps, solved), [48, 16, np.inf])


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


def test_km_median_is_the_kaplan_meier_median_of_stats():
    rng = np.random.default_rng(0)
    for n in (4, 7, 10):
        for _ in range(20):
            steps = rng.integers(1, 10, n) * 16.0
            solved = rng.random(n) < 0.7
            steps[~solved] = 160.0  # the common budget
            if solved.any():
                assert sad.km_median(steps, solved) == stats.kaplan_meier_median(steps, solved)[0]
            times = sad.censored_times(steps, solved)
            assert sad.rate_medians(times[None])[0] == sad.km_median(steps, solved)


def test_median_interval_is_the_binomial_order_statistic_interval():
    t = np.arange(1, 11) * 16.0  # n = 10: Pr(Bin(10, 1/2) <= 1) = 11/1024 <= 0.025 < Pr(<= 2): [t_(2), t_(9)]
    assert sad.median_interval(t) == (32.0, 144.0)
    assert sad.median_interval(np.r_[t[:7], [np.inf] * 3]) == (32.0, np.inf)  # t_(9) is censored: beyond the budget
    assert sad.median_interval(t[:5]) == (0.0, np.inf)  # 5 runs: 2 * 2^-5 > 0.05, no order statistic will do
    rng = np.random.default_rng(0)
    draws = rng.exponential(1.0, (4000, 10))
    covered = np.mean([lo <= np.log(2) <= hi for lo, hi in map(sad.median_interval, draws)])
    assert covered == pytest.approx(1 - 2 * 11 / 1024, abs=0.01)


def test_paired_signs_survive_censoring():
    # (censored sparse, solved dense): sparse slower; (solved sparse, censored dense): faster; both censored: a
    # tie (NaN), dropped by the sign test rather than counted for either side.
    sparse = sad.censored_times([100, 20, 100], [False, True, False])
    dense = sad.censored_times([50, 100, 100], [True, False, False])
    with np.errstate(invalid="ignore"):
        signs = np.sign(sparse - dense)
    np.testing.assert_array_equal(signs[:2], [1, -1])
    assert np.isnan(signs[2]) and stats.sign_test(signs)[:2] == (1, 2)


# ------------------------------------------------------------------------------------------
# The criteria on hand-built outputs (no training)
# ------------------------------------------------------------------------------------------

CONFIG = sad.Config(vocab_sizes=(2, 8), lengths=(4, 8), n_seeds=10, n_updates=60, learning_rates=(0.1, 0.3))
SHAPE = (len(sad.METHODS), len(sad.REWARDS), 2, 2, 2, 10)  # [M, R, V, T, L, S]


def output_solving_at(updates) -> sad.Output:
    """Curves at 0.1 until update ``updates[m, r, i, j, l, s]`` (1-based; > n_updates: never), then 1."""
    u = np.arange(1, CONFIG.n_updates + 1)
    curves = np.where(u >= np.asarray(updates)[..., None], 1.0, 0.1).astype(np.float32)
    grid = np.full((len(CONFIG.learning_rates), CONFIG.n_seeds, CONFIG.n_updates), 0.1, np.float32)
    return sad.Output(
        sad.MethodCurves(*(sad.RewardCurves(*curves[m]) for m in range(len(sad.METHODS)))),
        np.ones((2, 2)),
        sad.GridworldCurves(grid, grid),
    )


def growing_updates(rng) -> np.ndarray:
    """Solve times that double with V and with T, sparse 3 updates after dense, a little noise per seed."""
    base = np.array([[4.0, 8.0], [8.0, 16.0]])[None, None, :, :, None, None]  # [V, T]
    offset = np.array([0.0, 3.0, 3.0])[None, :, None, None, None, None]  # dense, sparse, learned
    return np.broadcast_to(base + offset, SHAPE) + rng.integers(0, 2, SHAPE)


def verdicts(updates) -> list[str]:
    return [c.verdict for c in sad.criteria(CONFIG, output_solving_at(updates))]


def test_growing_and_sparse_slower_is_supported():
    found = sad.criteria(CONFIG, output_solving_at(growing_updates(np.random.default_rng(0))))
    assert [c.verdict for c in found] == [SUPPORTED, SUPPORTED], [c.line() for c in found]


def test_nothing_learns_is_undetermined():
    assert verdicts(np.full(SHAPE, 10**6)) == [UNDETERMINED, UNDETERMINED]


def test_identical_rewards_and_identical_cells_are_not_supported():
    rng = np.random.default_rng(1)
    same_rewards = growing_updates(rng)
    same_rewards[:, 1] = same_rewards[:, 0]  # sparse == dense, run by run: every pair ties
    assert verdicts(same_rewards)[1] == UNDETERMINED
    flat = np.full(SHAPE, 6)  # every cell solves at update 6: every ratio is exactly 1, a tie
    assert verdicts(flat) == [NOT_SUPPORTED, UNDETERMINED]
    noisy = 6 + rng.integers(0, 3, SHAPE)  # the same distribution in every cell
    assert SUPPORTED not in verdicts(noisy)


def test_a_decrease_or_a_faster_sparse_cell_is_not_supported():
    updates = growing_updates(np.random.default_rng(2))
    updates[1, 1, 1, 1] = 2  # Vanilla PG, sparse, at (V=8, T=8): faster than its smaller neighbours
    c1, c2 = sad.criteria(CONFIG, output_solving_at(updates))
    assert c1.verdict == NOT_SUPPORTED and c2.verdict == NOT_SUPPORTED
    assert "Vanilla PG" in c1.detail and "Vanilla PG V=8 T=8" in c2.detail


def test_both_medians_beyond_the_budget_leave_a_pair_undetermined():
    updates = growing_updates(np.random.default_rng(3))
    updates[:, :, 1] = 10**6  # V = 8 never solves, at both T: its T-pair has nothing to compare
    c1 = sad.criteria(CONFIG, output_solving_at(updates))[0]
    _, info = sad.monotone_criterion(CONFIG, output_solving_at(updates))
    assert info["both_beyond_budget"] == 2 and c1.verdict == UNDETERMINED
    assert c1.interval[0] == -np.inf  # the V-steps (to a median beyond the budget) still count as increases
    assert info["increasing"] == 6


# ------------------------------------------------------------------------------------------
# Config
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [("vocab_sizes", (8, 2)), ("vocab_sizes", (1, 4)), ("lengths", ()), ("n_seeds", 0), ("learning_rates", (0.0,)),
     ("solve_fraction", 0.0), ("n_minibatches", 3), ("gridworld_map", "nowhere"), ("vocab_group_ratio", 0.5),
     ("shaping", -1.0), ("seed", -2)],
)
def test_config_rejects_bad_values(field, value):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(sad.Config.quick(), **{field: value})


def test_vocab_groups():
    full = sad.Config()
    assert sad.vocab_groups(full) == [(1024,), (128, 256), (32, 64), (8, 16), (2, 4)]
    assert sad.vocab_groups(sad.Config.quick()) == [(2, 8, 32, 128)]
    assert sad.vocab_groups(dataclasses.replace(full, vocab_group_ratio=1.0)) == [(v,) for v in full.vocab_sizes[::-1]]


# ------------------------------------------------------------------------------------------
# The reward, the exact gold return, the padded vocabulary
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
    # Padded to 7 tokens with masked logits, the policy and its return are unchanged.
    padded = jnp.concatenate([logits, jnp.full((T + 1, 4), sad.MASKED_LOGIT)], axis=-1)
    assert float(sad.gold_return(padded, targets)) == pytest.approx(float(exact), abs=1e-7)


def test_position_observed_env_dense_rewards_sum_to_the_sparse_one():
    V, T = 4, 3
    env = sad.PositionObserved(token_mdp.TokenEnv(token_mdp.TokenTask(vocab_size=V, length=T, eos=False)))
    weights = jax.random.uniform(jax.random.key(2), (1, T, V))
    response = [1, 3, 0]
    totals = {}
    for dense, shaping in ((True, 0.0), (False, 0.0), (False, 0.25)):
        params = sad.PositionParams(sad.PositionReward(weights), jnp.array(dense), jnp.float32(shaping))
        obs, state = env.reset(jax.random.key(0), params)
        observed, rewards, ends = [int(obs)], [], []
        for a in response:
            step = env.step(jax.random.key(0), state, jnp.int32(a), params)
            observed.append(int(step.obs))
            rewards.append(float(step.reward))
            ends.append(bool(step.terminated))
            state = step.state
        assert observed == [0, 1, 2, 3] and ends == [False, False, True]
        totals[dense, shaping] = rewards
    expected = np.array([float(weights[0, t, a]) for t, a in enumerate(response)])
    np.testing.assert_allclose(totals[True, 0.0], expected, rtol=1e-6)
    np.testing.assert_allclose(totals[False, 0.0], [0.0, 0.0, expected.sum()], rtol=1e-6)
    np.testing.assert_allclose(totals[False, 0.25], 0.25 * expected + [0.0, 0.0, expected.sum()], rtol=1e-6)
    assert env.n_states == T + 1 and env.observation_shape == ()
    with pytest.raises(ValueError, match="eos=False"):
        sad.PositionObserved(token_mdp.TokenEnv(token_mdp.TokenTask(vocab_size=4, length=3, eos=True)))


def test_masked_tokens_get_no_probability_no_gradient_and_no_adam_step():
    logits = sad.initial_policy(3, 2, 8)  # [T+1 = 3, 8]: 3 valid tokens
    assert logits.shape == (3, 8)
    np.testing.assert_array_equal(jax.nn.softmax(logits[0])[3:], 0.0)
    actions = jnp.array([0, 2, 1])

    def loss(w):  # PPO's pieces: log-probabilities of taken actions and the entropy bonus
        return -losses.categorical_log_prob(w, actions).sum() - 0.3 * losses.categorical_entropy(w).sum()

    grad = jax.grad(loss)(logits + jax.random.normal(jax.random.key(0), logits.shape) * (logits == 0))
    np.testing.assert_array_equal(grad[:, 3:], 0.0)
    assert np.all(np.asarray(grad[:, :3]) != 0)
    tx = optax.chain(optax.clip_by_global_norm(0.5), optax.adam(0.3, eps=1e-5))
    state, w = tx.init(logits), logits
    for _ in range(5):
        updates, state = tx.update(jax.grad(loss)(w), state, w)
        w = optax.apply_updates(w, updates)
    np.testing.assert_array_equal(w[:, 3:], sad.MASKED_LOGIT)
    assert not np.allclose(w[:, :3], 0.0)


def test_padded_reward_model_is_the_unpadded_one():
    config = sad.Config.tiny()
    targets = jnp.array([1, 0, 3, 2])
    fit = lambda v, width: sad.fit_learned_reward(jax.random.key(4), v, targets, width, config)  # noqa: E731
    plain, opt_plain, _ = jax.jit(lambda: fit(4, 4))()
    padded, opt_padded, _ = jax.jit(lambda v: fit(v, 16))(jnp.int32(4))
    np.testing.assert_allclose(padded.weights[..., :4], plain.weights, atol=1e-5)
    np.testing.assert_array_equal(padded.weights[..., 4:], 0.0)
    assert float(opt_plain) == float(opt_padded)


# ------------------------------------------------------------------------------------------
# It learns: the tiny sweep, one compiled program per method (V = 2 padded to V = 4)
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny():
    config = sad.Config.tiny()
    return config, sad.compute(config)


def test_tiny_dense_runs_solve_every_seed(tiny):
    config, output = tiny
    dense = output.curves.ppo.dense  # [V, T, L, S, U]
    # The uniform policy's exact gold return is 1/V; every dense seed reaches 90% of the optimum 1, V = 2
    # (padded to 4 tokens) as well as V = 4.
    assert np.all(dense[1, ..., 0] < 0.6)
    _, solved = sad.steps_to_solve(dense, config.solve_fraction, config.n_envs)
    assert solved.all(), dense[..., -1]
    assert np.all(dense[..., -1] > 0.9)


def test_tiny_sparse_and_learned_runs_learn(tiny):
    config, output = tiny
    for rewards in output.curves:
        assert np.all(rewards.sparse[1, ..., -1] > rewards.sparse[1, ..., 0] + 0.3), rewards.sparse[1, ..., -1]
    assert np.all(output.learned_optimum_gold > 0.9)  # 200 labels suffice for V <= 4, T = 4
    assert np.all(output.curves.ppo.learned[..., -1] > 0.6)


def test_tiny_criteria_cannot_decide_on_four_seeds(tiny):
    config, output = tiny
    c1, c2 = sad.criteria(config, output)
    assert c1.interval == (-np.inf, np.inf)  # no bootstrap below 8 seeds
    assert c2.verdict != SUPPORTED and sad.checks(config, output) == []
