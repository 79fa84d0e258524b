"""sparsity-action-dim (claim T4): censored steps-to-solve, the criteria on null data, the context-observed
token MDP and its exact returns, the padded vocabulary and length, and one tiny sweep shared by the tests."""

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
            assert sad.seed_medians(times) == sad.km_median(steps, solved)


def test_median_interval_is_the_binomial_order_statistic_interval():
    t = np.arange(1, 11) * 16.0  # n = 10: Pr(Bin(10, 1/2) <= 1) = 11/1024 <= 0.025 < Pr(<= 2): [t_(2), t_(9)]
    assert stats.median_interval(t) == (32.0, 144.0)
    assert stats.median_interval(np.r_[t[:7], [np.inf] * 3]) == (32.0, np.inf)  # t_(9) is censored: beyond the budget
    assert stats.median_interval(t[:5]) == (0.0, np.inf)  # 5 runs: 2 * 2^-5 > 0.05, no order statistic will do
    rng = np.random.default_rng(0)
    draws = rng.exponential(1.0, (4000, 10))
    covered = np.mean([lo <= np.log(2) <= hi for lo, hi in map(stats.median_interval, draws)])
    assert covered == pytest.approx(1 - 2 * 11 / 1024, abs=0.01)


def test_paired_signs_survive_censoring():
    # (censored sparse, solved dense): sparse slower; (solved sparse, censored dense): faster; both censored: a
    # tie (NaN), dropped by the sign test rather than counted for either side.
    sparse = sad.censored_times([100, 20, 100], [False, True, False])
    dense = sad.censored_times([50, 100, 100], [True, False, False])
    signs = sad.paired_signs(sparse, dense)
    np.testing.assert_array_equal(signs[:2], [1, -1])
    assert np.isnan(signs[2]) and stats.sign_test(signs)[:2] == (1, 2)


def test_regression_recovers_a_power_law_and_leaves_censored_cells_out():
    Vs, Ts = (2, 4, 8), (2, 4, 8)
    V, T = np.meshgrid(Vs, Ts, indexing="ij")
    times = np.broadcast_to(3.0 * V**0.7 * T**1.2, (9, 3, 3)).copy()
    np.testing.assert_allclose(sad.regression(times, Vs, Ts), [np.log(3.0), 0.7, 1.2], atol=1e-9)
    times[5:, 2, 2] = np.inf  # 4 of 9 runs censored: the median is still in the budget
    np.testing.assert_allclose(sad.regression(times, Vs, Ts)[1:], [0.7, 1.2], atol=1e-9)
    times[:, 2, 2] = np.inf  # the median is beyond the budget: the cell is left out, the others still fit
    np.testing.assert_allclose(sad.regression(times, Vs, Ts)[1:], [0.7, 1.2], atol=1e-9)
    times[:, 1:, 1:] = np.inf  # 5 cells left: still 2 V and 2 T
    assert np.isfinite(sad.regression(times, Vs, Ts)).all()
    times[:, 0, 1:] = np.inf  # only T = 2 left: no T exponent, NaN rather than a guess
    assert np.isnan(sad.regression(times, Vs, Ts)).all()


# ------------------------------------------------------------------------------------------
# The criteria on hand-built outputs (no training)
# ------------------------------------------------------------------------------------------

CONFIG = sad.Config(vocab_sizes=(2, 4, 8), lengths=(2, 4, 8), n_seeds=10, n_updates=80, n_boot=500)
M, G, D, NV, NT, S = len(sad.METHODS), len(sad.GOLDS), len(sad.DELIVERIES), 3, 3, 10
SHAPE = (M, G, D, NV, NT, S)


def output_solving_at(updates) -> sad.Output:
    """Progress 0.1 until update ``updates[m, g, d, i, j, s]`` (1-based; > n_updates: never), then 1."""
    u = np.arange(1, CONFIG.n_updates + 1)
    curves = np.where(u >= np.asarray(updates)[..., None], 1.0, 0.1).astype(np.float32)
    episodes = np.full((M, NT, CONFIG.n_updates), CONFIG.n_envs, np.int32)
    return sad.Output(sad._curves(curves), sad._curves(curves), np.ones((G, NV, NT)), episodes)


def growing_updates(rng) -> np.ndarray:
    """Solve times ~ V^0.5 T^0.5 (updates), sparse 1.5x dense, and the sparse prefix runs ~ T^1; noise per seed."""
    V = np.array([2.0, 4.0, 8.0])[:, None]
    T = np.array([2.0, 4.0, 8.0])[None, :]
    base = 2.0 * np.sqrt(V * T)  # [V, T]
    updates = np.broadcast_to(base[None, None, None, :, :, None], SHAPE).copy()
    updates[:, :, 1] *= 1.5  # sparse
    updates[:, 1, 1] = (3.0 * np.sqrt(V) * T)[..., None]  # prefix, sparse: grows faster with T
    return np.round(updates * (1 + 0.1 * rng.random(SHAPE)))


def verdicts(updates) -> list[str]:
    return [c.verdict for c in sad.criteria(CONFIG, output_solving_at(updates))]


def test_growing_and_sparse_slower_is_supported():
    found = sad.criteria(CONFIG, output_solving_at(growing_updates(np.random.default_rng(0))))
    assert [c.verdict for c in found] == [SUPPORTED] * 7, [c.line() for c in found]
    assert all(c.kind == "finding" for c in found)


def test_nothing_learns_is_undetermined():
    assert verdicts(np.full(SHAPE, 10**6)) == [UNDETERMINED] * 7


def test_identical_deliveries_are_not_supported():
    same = growing_updates(np.random.default_rng(1))
    same[:, :, 1] = same[:, :, 0]  # sparse == dense, run by run: every pair ties, equal exponents
    found = verdicts(same)
    assert found[0] == found[1] == UNDETERMINED  # no untied pair: nothing to judge
    assert found[6] != SUPPORTED


def test_flat_in_v_and_t_is_not_supported():
    rng = np.random.default_rng(2)
    flat = np.full(SHAPE, 6)  # every cell solves at update 6
    found = verdicts(flat)
    assert found[2:] == [NOT_SUPPORTED] * 5  # exponents exactly 0, zero-width intervals
    noisy = 6 + rng.integers(0, 3, SHAPE)  # the same distribution in every cell
    assert SUPPORTED not in verdicts(noisy)[2:]


def test_a_decrease_in_v_or_a_faster_sparse_run_is_not_supported():
    updates = growing_updates(np.random.default_rng(3))
    updates[:, 1, 1] = updates[:, 1, 1, ::-1]  # prefix, sparse: faster with larger V
    updates[:, 0, 1] = np.maximum(updates[:, 0, 0] - 2, 1)  # additive: sparse always faster than dense
    c = sad.criteria(CONFIG, output_solving_at(updates))
    assert c[1].verdict == NOT_SUPPORTED and c[2].verdict == NOT_SUPPORTED, [x.line() for x in c]


def test_censored_cells_are_left_out_not_entered_at_the_budget():
    updates = growing_updates(np.random.default_rng(4))
    updates[:, :, :, 2, 2] = 10**6  # the largest cell never solves, under every delivery
    c = sad.criteria(CONFIG, output_solving_at(updates))
    assert "left out: PPO 1, Vanilla PG 1 of 9" in c[2].detail
    assert c[2].verdict == SUPPORTED  # the other 8 cells still show the growth
    updates[:, :, :, :, 1:] = 10**6  # only T = 2 solves: no T exponent can be fitted
    c = sad.criteria(CONFIG, output_solving_at(updates))
    assert np.isnan(c[3].measured) and c[3].verdict == UNDETERMINED


def test_checks_flag_a_wrong_episode_count():
    output = output_solving_at(growing_updates(np.random.default_rng(5)))
    assert [c.verdict for c in sad.checks(CONFIG, output)] == [SUPPORTED]
    episodes = output.episodes.copy()
    episodes[0, 0, 3] = 2 * CONFIG.n_envs  # one update that counted two responses per environment
    wrong = output._replace(episodes=episodes)
    assert [c.verdict for c in sad.checks(CONFIG, wrong)] == [NOT_SUPPORTED]


# ------------------------------------------------------------------------------------------
# Config
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [("vocab_sizes", (8, 2)), ("vocab_sizes", (1, 4)), ("lengths", ()), ("n_seeds", 0), ("ppo_learning_rate", 0.0),
     ("pg_learning_rate", float("inf")), ("solve_fraction", 0.0), ("n_minibatches", 3), ("shaping", -1.0),
     ("seed", -2), ("n_boot", 0), ("rm_steps", 0), ("gae_lambda", 1.5)],
)
def test_config_rejects_bad_values(field, value):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(sad.Config.quick(), **{field: value})


def test_budgets_are_n_envs_episodes_per_update_for_every_length():
    config = sad.Config.quick()
    assert {config.budget(T) for T in config.lengths} == {config.n_updates * config.n_envs}


# ------------------------------------------------------------------------------------------
# The environment, the exact returns, the padded vocabulary and length
# ------------------------------------------------------------------------------------------


def cell(length, targets, weights, prefix, dense, shaping=0.0):
    return sad.CellParams(jnp.int32(length), jnp.asarray(targets, jnp.int32), jnp.asarray(weights, jnp.float32),
                          jnp.array(prefix), jnp.array(dense), jnp.float32(shaping))


def episode(env, params, response):
    obs, state = env.reset(jax.random.key(0), params)
    observed, rewards, ends = [int(obs)], [], []
    for a in response:
        step = env.step(jax.random.key(0), state, jnp.int32(a), params)
        observed.append(int(step.obs))
        rewards.append(float(step.reward))
        ends.append(bool(step.terminated))
        state = step.state
    return observed, np.array(rewards), ends


def test_context_env_pays_the_gold_rewards_dense_or_at_the_end_and_pads_short_responses():
    V, T, T_max = 4, 3, 5
    env = sad.ContextObserved(V, T_max)
    targets = [2, 0, 1, 0, 0]
    weights = np.asarray(jax.nn.one_hot(jnp.array(targets), V)) * (np.arange(T_max) < T)[:, None] / T
    response = [2, 3, 1, 1, 2]  # right, wrong, right; then two padding steps
    for prefix, expected_terms in ((False, [1 / 3, 0, 1 / 3]), (True, [1 / 3, 0, 0])):
        gold = (token_mdp.TargetPattern if not prefix else sad.CorrectPrefix)(jnp.array([targets[:T]]))
        assert float(gold(0, jnp.array(response[:T]), False)) == pytest.approx(sum(expected_terms))
        observed, dense, ends = episode(env, cell(T, targets, weights, prefix, True), response)
        np.testing.assert_allclose(dense, [*expected_terms, 0, 0], atol=1e-7)
        _, sparse, _ = episode(env, cell(T, targets, weights, prefix, False), response)
        np.testing.assert_allclose(sparse, [0, 0, sum(expected_terms), 0, 0], atol=1e-7)
        _, shaped, _ = episode(env, cell(T, targets, weights, prefix, False, 0.5), response)
        np.testing.assert_allclose(shaped, sparse + 0.5 * np.array([*expected_terms, 0, 0]), atol=1e-7)
        assert ends == [False] * 4 + [True]  # every episode lasts T_max steps
        # (t, previous token): t (V + 1) + previous + 1
        assert observed == [t * (V + 1) + p + 1 for t, p in enumerate([-1, *response])]
    assert env.n_states == (T_max + 1) * (V + 1) and env.observation_shape == ()


def test_exact_returns_equal_evaluation_on_the_enumerated_tree():
    V, T, T_max, width = 3, 3, 4, 5  # padded in both V and T
    task = token_mdp.TokenTask(vocab_size=V, length=T, eos=False)
    targets = jnp.array([2, 0, 1])
    padded_targets = jnp.array([2, 0, 1, 0])
    env = sad.ContextObserved(width, T_max)
    actor = 1.5 * jax.random.normal(jax.random.key(1), (env.n_states, width))
    actor = jnp.where(jnp.arange(width) < V, actor, sad.MASKED_LOGIT)
    weights = jax.nn.one_hot(padded_targets, width) * (jnp.arange(T_max) < T)[:, None] / T
    for gold, ours in ((token_mdp.TargetPattern(targets[None]), sad.linear_return(actor, weights)),
                       (sad.CorrectPrefix(targets[None]), sad.prefix_return(actor, padded_targets, T))):
        tree = token_mdp.enumerate_tokens(task, gold)
        depth = tree.prefix_depth
        previous = jnp.where(depth > 0, tree.prefix_tokens[jnp.arange(depth.size), jnp.maximum(depth - 1, 0)], -1)
        policy = jax.nn.softmax(actor[env.index(depth, previous)][:, :V].astype(jnp.float64), axis=-1)
        policy = jnp.concatenate([policy, jnp.full((1, V), 1.0 / V)])  # the terminal state's row is unused
        assert float(ours) == pytest.approx(float(tabular.evaluate(tree.mdp, policy)), abs=1e-10)
        assert float(tree.mdp.init @ tabular.solve(tree.mdp).V[0]) == pytest.approx(1.0)  # the optimum is 1
    uniform = sad.initial_policy(V, T_max, width)
    assert float(sad.prefix_return(uniform, padded_targets, T)) == pytest.approx((1 / 3 + 1 / 9 + 1 / 27) / 3)
    assert float(sad.linear_return(uniform, weights)) == pytest.approx(1 / 3)


def test_gold_score_is_the_two_gold_families():
    T_max, T = 6, 4
    targets = jnp.array([1, 3, 0, 2, 0, 0])
    rng = np.random.default_rng(0)
    for _ in range(20):
        y = rng.integers(0, 4, T_max)
        k = rng.integers(0, T + 1)
        y[:k] = np.asarray(targets)[:k]  # a correct prefix of random length
        y = jnp.asarray(y)
        additive = token_mdp.TargetPattern(targets[None, :T])(0, y[:T], False)
        prefix = sad.CorrectPrefix(targets[None, :T])(0, y[:T], False)
        assert float(sad.gold_score(y, targets, T, False)) == pytest.approx(float(additive))
        assert float(sad.gold_score(y, targets, T, True)) == pytest.approx(float(prefix))


def test_masked_tokens_get_no_probability_no_gradient_and_no_adam_step():
    logits = sad.initial_policy(3, 1, 8)  # [(T+1)(width+1) = 18, 8]: 3 valid tokens
    assert logits.shape == (18, 8)
    np.testing.assert_array_equal(jax.nn.softmax(logits[0])[3:], 0.0)
    actions = jnp.arange(18) % 3

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
    fit = jax.jit(lambda v, prefix, width: sad.fit_learned_reward(jax.random.key(4), v, 3, targets, prefix, width,
                                                                  config), static_argnums=2)
    for prefix in (False, True):
        plain, gold_plain, opt_plain, _ = fit(4, prefix, 4)
        padded, gold_padded, opt_padded, _ = fit(jnp.int32(4), jnp.array(prefix), 16)
        np.testing.assert_allclose(padded[:, :4], plain, atol=1e-5)
        np.testing.assert_array_equal(padded[:, 4:], 0.0)
        np.testing.assert_array_equal(plain[3], 0.0)  # position 3 lies beyond the cell's length 3
        assert float(gold_plain) == float(gold_padded)
        assert float(opt_plain) == pytest.approx(float(opt_padded), abs=1e-5)


# ------------------------------------------------------------------------------------------
# It learns: the tiny sweep, one compiled program per method (every cell padded to V = 4, T = 4)
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny():
    from toyrlhf.experiments.common import Clock

    config = sad.Config.tiny()
    clock = Clock()
    return config, sad.compute(config, clock), clock


def test_tiny_sweep_is_three_programs_and_counts_episodes_exactly(tiny):
    config, output, clock = tiny
    assert clock.n_compiles == 3  # the reward models, PPO, the vanilla gradient
    assert [c.verdict for c in sad.checks(config, output)] == [SUPPORTED]


def test_tiny_gold_runs_solve_and_start_at_zero_progress(tiny):
    config, output, _ = tiny
    for method in output.progress:
        for gold in method:
            assert np.all(gold.dense[..., 0] < 0.8)  # one update from the uniform start is not enough
            _, solved = sad.steps_to_solve(gold.dense, config.solve_fraction, config.n_envs)
            assert solved.all(), gold.dense[..., -1]
            assert np.all(gold.sparse[..., -1] > gold.sparse[..., 0] + 0.3)
    # Gold curves of the gold deliveries are the progress curves rescaled: (J - J0) / (1 - J0).
    p, g = output.progress.ppo.additive.dense, output.gold.ppo.additive.dense
    J0 = 1.0 / np.array(config.vocab_sizes)[:, None, None, None]
    np.testing.assert_allclose(p, (g - J0) / (1 - J0), atol=2e-5)
    assert np.all(output.learned_optimum_gold[0] == 1.0)  # 200 labels find y* under the additive gold


def test_tiny_criteria_cannot_decide_on_four_seeds(tiny):
    config, output, _ = tiny
    found = sad.criteria(config, output)
    assert len(found) == 7
    assert all(c.interval == (-np.inf, np.inf) for c in found[2:])  # no bootstrap below 8 seeds
