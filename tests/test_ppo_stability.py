"""ppo-stability: the collapse detector on scripted curves, the exact intervals, every criterion on null data and
on hand-built outputs that can pass, the learned token reward, Baird's checks and control (TD vs TDC), and one
tiny run of every program shared by the tests."""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats.contingency import odds_ratio

import toyrlhf  # noqa: F401  (x64)
from toyrlhf import stats
from toyrlhf.envs import token_mdp
from toyrlhf.envs.cartpole import CartPole
from toyrlhf.experiments import ppo_stability as ps
from toyrlhf.experiments.common import NOT_SUPPORTED, SUPPORTED, UNDETERMINED

# ------------------------------------------------------------------------------------------
# Counting: collapses, Fisher, and the exact stratified interval
# ------------------------------------------------------------------------------------------


def test_pooled_fisher_p_by_hand():
    """The pooled one-sided Fisher p reported in the measurements (``stats.fisher_exact``, "less")."""
    less = lambda a, n1, b, n2: stats.fisher_exact(a, n1, b, n2, "less")[1]  # noqa: E731
    # 0/10 vs 5/10: p = Pr(X = 0), X ~ Hypergeom(20, 5, 10) = C(10,0) C(10,5) / C(20,5) = 252 / 15504.
    assert less(0, 10, 5, 10) == pytest.approx(252 / 15504, rel=1e-12)
    # 1/4 vs 3/4: p = [C(4,0)C(4,4) + C(4,1)C(4,3)] / C(8,4) = (1 + 16) / 70.
    assert less(1, 4, 3, 4) == pytest.approx(17 / 70, rel=1e-12)
    assert less(0, 40, 0, 40) == 1.0  # no events: no evidence
    assert less(3, 5, 0, 5) == 1.0  # group 1 worse: p = 1
    cdf = [less(a, 6, 7 - a, 9) for a in range(7)]  # 7 events among 6 + 9 trials
    pmf = np.diff([0.0, *cdf])
    assert cdf[-1] == pytest.approx(1.0) and pmf.min() >= 0
    assert pmf[2] == pytest.approx(math.comb(6, 2) * math.comb(9, 5) / math.comb(15, 7))


# ------------------------------------------------------------------------------------------
# The collapse detector on scripted curves
# ------------------------------------------------------------------------------------------


def test_noisy_rising_run_is_not_a_collapse():
    """The old definition's false alarm (…241, 500, 198…): one low evaluation after a peak is not sustained."""
    rising = np.array([50, 120, 241, 500, 198, 350, 480, 500, 420, 500.0])
    c = ps.detect_collapse(rising, 500.0)
    assert c.reached and not c.collapsed and c.onset == -1


def test_sustained_drop_is_a_collapse():
    drop = np.array([50, 200, 480, 500, 500, 100, 80, 90, 60, 70.0])
    c = ps.detect_collapse(drop, 500.0)
    assert c.collapsed and c.onset == 5
    assert c.peak == pytest.approx((480 + 500 + 500) / 3) and c.final == pytest.approx((90 + 60 + 70) / 3)


def test_detector_edge_cases():
    curves = np.array([
        [50, 200, 480, 500, 500, 100, 80, 490, 500, 500],  # two low evaluations, then back: not sustained
        [50, 200, 400, 440, 440, 100, 80, 90, 60, 70],  # never reached 450: cannot collapse
        [10, 10, 10, 460, 460, 460, 460, 460, 460, 460],  # low *before* reaching: not a collapse
        [460, 460, 460, 460, 460, 460, 460, 200, 200, 200],  # a drop to 43% in the last three evaluations
        [460, 460, 460, 460, 460, 460, 460, 460, 200, 200],  # only two left: censored, not a collapse
    ], dtype=float)
    c = ps.detect_collapse(curves, 500.0)
    np.testing.assert_array_equal(c.collapsed, [False, False, False, True, False])
    np.testing.assert_array_equal(c.reached, [True, False, True, True, True])
    # the settings are fields: patience 2 catches the censored one, collapse_fraction 0.4 nothing at 43%
    assert ps.detect_collapse(curves[4], 500.0, patience=2).collapsed
    assert not ps.detect_collapse(curves[3], 500.0, collapse_fraction=0.4).collapsed


def test_smoothed_is_a_trailing_mean():
    np.testing.assert_allclose(ps.smoothed([3.0, 6, 9, 0], 2), [3, 4.5, 7.5, 4.5])


def test_frozen_noisy_policy_is_rarely_flagged():
    """A policy whose episodes are 500 or 10 (p = 0.95): means of 16 episodes, 10 evaluations, 2,000 runs."""
    rng = np.random.default_rng(0)
    episodes = np.where(rng.random((2000, 10, 16)) < 0.95, 500.0, 10.0)
    c = ps.detect_collapse(episodes.mean(-1), 500.0)
    assert c.reached.mean() > 0.9 and c.collapsed.mean() == 0.0


@pytest.mark.parametrize("table", [[[2, 8], [7, 3]], [[0, 10], [5, 5]], [[4, 6], [4, 6]], [[10, 0], [3, 7]]])
def test_one_table_interval_is_fishers_conditional_interval(table):
    lo, hi, p_less = stats.common_odds_ratio_interval([table])
    ci = odds_ratio(np.array(table), kind="conditional").confidence_interval(0.95)
    assert lo == pytest.approx(ci.low, rel=1e-6, abs=1e-12)
    assert hi == pytest.approx(ci.high, rel=1e-6) if math.isfinite(ci.high) else hi == math.inf
    (a, b), (c, d) = table
    assert p_less == pytest.approx(stats.fisher_exact(a, a + b, c, c + d, "less")[1], rel=1e-9)


def test_two_strata_interval_by_hand():
    """Two tables [[1, 1], [1, 1]]: each a_k ∈ {0, 1, 2} with weights 1, 4, 1, so S = a_1 + a_2 has weights
    (1, 8, 18, 8, 1) ψ^S; s_obs = 2."""
    lo, hi, p_less = stats.common_odds_ratio_interval([[[1, 1], [1, 1]]] * 2)
    assert p_less == pytest.approx(27 / 36)
    w = np.array([1.0, 8, 18, 8, 1])
    upper_tail = lambda psi: (w[2:] * psi ** np.arange(2, 5)).sum() / (w * psi ** np.arange(5)).sum()  # noqa: E731
    lower_tail = lambda psi: (w[:3] * psi ** np.arange(3)).sum() / (w * psi ** np.arange(5)).sum()  # noqa: E731
    assert upper_tail(lo) == pytest.approx(0.025, rel=1e-6) and lower_tail(hi) == pytest.approx(0.025, rel=1e-6)
    assert lo * hi == pytest.approx(1.0, rel=1e-6)  # the symmetric table: the interval is symmetric in log ψ
    # Tables with an empty margin carry nothing: with only those, every odds ratio fits.
    assert stats.common_odds_ratio_interval([[[0, 10], [0, 10]], [[10, 0], [10, 0]]]) == (0.0, math.inf, 1.0)


# ------------------------------------------------------------------------------------------
# The criteria on hand-built outputs (no training)
# ------------------------------------------------------------------------------------------

CONFIG = ps.Config(n_seeds=10, n_tune_seeds=2, n_evals=10, ppo_cartpole_updates=20, dqn_cartpole_updates=20,
                   ppo_token_updates=20, dqn_token_updates=20)
K = CONFIG.n_evals
RISE = np.linspace(0.1, 1.0, K)  # reaches the optimum at the end: no collapse
COLLAPSE = np.array([0.1, 0.5, 0.95, 1.0, 1.0, 0.1, 0.1, 0.1, 0.1, 0.1])  # reaches, then a sustained drop
FLAT = np.full(K, 0.1)  # never learns
FROZEN_GOOD = np.full(K, 0.97)  # a frozen policy that reached and stays


def method_of(curve, frozen=lambda i, s: FROZEN_GOOD) -> ps.MethodRuns:
    L, S = len(CONFIG.ppo_learning_rates), CONFIG.n_runs_per_rate
    ev = np.array([[curve(i, s) for s in range(S)] for i in range(L)])
    fz = np.array([[frozen(i, s) for s in range(S)] for i in range(L)])
    return ps.MethodRuns(ev, fz, np.zeros((L, S, 20)))


def runs_of(per_method: dict, frozen=lambda i, s: FROZEN_GOOD) -> ps.TaskRuns:
    """``per_method[name]``: a function (rate index, seed) -> evaluation curve [K]; missing methods are flat."""
    L, S = len(CONFIG.ppo_learning_rates), CONFIG.n_runs_per_rate
    methods = ps.MethodSet(*(method_of(per_method.get(m, lambda i, s: FLAT), frozen) for m in ps.METHODS))
    zeros = np.zeros((L, S, 20))
    return ps.TaskRuns(methods, ps.PPOFamilyCurves(*([zeros] * 4)), zeros, np.array(1.0))


def baird_null() -> ps.Baird:
    return ps.Baird(np.ones((3, 8)), np.ones((3, 8)), np.zeros((8, 8)), np.zeros((8, 8)), np.ones(2), np.ones(2),
                    np.ones((3, 8)), np.ones((3, 8)), np.ones(3), np.ones(3), np.zeros((16, 16)))


def output_of(runs: ps.TaskRuns, baird=None) -> ps.Output:
    L, S = len(CONFIG.dqn_learning_rates), CONFIG.n_runs_per_rate
    values = ps.TokenValues(*([np.zeros((2, 2))] * 2), *([np.array(0.0)] * 3), *([np.zeros((L, S, K))] * 2),
                            np.array(0.0))
    return ps.Output(runs, runs, values, baird_null() if baird is None else baird)


def found(runs: ps.TaskRuns) -> dict[str, ps.Criterion]:
    """The CartPole criteria by short name (the token task's are the same functions)."""
    cs = ps.criteria(CONFIG, output_of(runs))
    assert [c.kind for c in cs] == ["finding", "finding", "control"] * 2 + ["control"]
    return dict(zip(("tuned", "clip", "frozen"), cs[:3], strict=True))


def test_nothing_learns_is_undetermined():
    cs = ps.criteria(CONFIG, output_of(runs_of({}, frozen=lambda i, s: FLAT)))
    assert [c.verdict for c in cs[:6]] == [UNDETERMINED] * 6
    assert cs[0].interval == (0.0, math.inf) and cs[2].interval == (0.0, 1.0)


def test_identical_methods_are_not_supported():
    half = lambda i, s: COLLAPSE if s % 2 else RISE  # noqa: E731
    f = found(runs_of({m: half for m in ps.METHODS}))
    assert f["tuned"].verdict == UNDETERMINED and f["clip"].verdict == UNDETERMINED


def test_pure_noise_is_not_supported():
    rng = np.random.default_rng(0)
    draws = {m: rng.random((4, CONFIG.n_runs_per_rate)) < 0.5 for m in ps.METHODS}
    noisy = {m: (lambda i, s, m=m: COLLAPSE if draws[m][i, s] else RISE) for m in draws}
    f = found(runs_of(noisy))
    assert f["tuned"].verdict != SUPPORTED and f["clip"].verdict != SUPPORTED


def test_fewer_collapses_can_be_supported_and_more_are_not():
    stable = lambda i, s: RISE  # noqa: E731
    mostly = lambda i, s: COLLAPSE if s < 10 else RISE  # noqa: E731  (tuning seeds 0, 1 collapse too)
    f = found(runs_of({"PPO": stable, "DQN": mostly, "PPO no clip": mostly}))
    assert f["tuned"].verdict == SUPPORTED and f["clip"].verdict == SUPPORTED
    f = found(runs_of({"PPO": mostly, "DQN": stable, "PPO no clip": stable}))
    assert f["tuned"].verdict == NOT_SUPPORTED and f["clip"].verdict == NOT_SUPPORTED


def test_a_dqn_that_never_reaches_is_not_a_stable_dqn():
    """A DQN that never learns never collapses; P(collapse | reached) has nothing to compare: UNDETERMINED."""
    mostly = lambda i, s: COLLAPSE if s < 10 else RISE  # noqa: E731
    f = found(runs_of({"PPO": mostly}))
    assert f["tuned"].verdict == UNDETERMINED and f["tuned"].interval == (0.0, math.inf)


def test_tuning_uses_the_tuning_seeds_only():
    """DQN's rate 3 is best on the tuning seeds, rate 0 on the evaluation seeds: the tuned rate is 3."""
    curve = lambda i, s: (RISE if i == 3 else FLAT) if s < CONFIG.n_tune_seeds else (RISE if i == 0 else FLAT)  # noqa: E731
    dqn_runs = method_of(curve)
    assert ps.tuned_rate(CONFIG, dqn_runs) == 3
    assert "lr=0.003" in found(runs_of({"DQN": curve}))["tuned"].detail


def test_clip_collapses_in_one_stratum_only_are_not_pooled_away():
    one = lambda i, s: COLLAPSE if i == 2 and s >= 2 and s < 9 else RISE  # noqa: E731
    c = found(runs_of({"PPO": lambda i, s: RISE, "PPO no clip": one}))["clip"]
    lo, hi, _ = stats.common_odds_ratio_interval([[[0, 10], [7, 3]]])
    assert c.interval == pytest.approx((lo, hi)) and c.verdict == SUPPORTED and "(1 informative)" in c.detail


def test_frozen_control():
    # every frozen policy reaches and stays: 0 of 240 flagged, CP upper < 0.05 -> SUPPORTED
    assert found(runs_of({}))["frozen"].verdict == SUPPORTED
    # frozen policies that "collapse" (a detector that fires on noise) -> NOT SUPPORTED
    assert found(runs_of({}, frozen=lambda i, s: COLLAPSE))["frozen"].verdict == NOT_SUPPORTED
    # too few frozen policies that reach: the interval is wide -> UNDETERMINED, never SUPPORTED
    few = lambda i, s: FROZEN_GOOD if (i, s) == (0, 0) else FLAT  # noqa: E731
    assert found(runs_of({}, frozen=few))["frozen"].verdict == UNDETERMINED


def test_tdc_control_needs_convergence(baird_output):
    config, output = baird_output
    cs = ps.criteria(config, output)
    assert cs[-1].verdict == SUPPORTED
    b = output.baird
    # a "TDC" that is really TD (diverges) must fail, and so must a flat PBE
    diverging = b._replace(tdc_weights=b.off_weights, tdc_pbe=b.td_pbe)
    assert ps.criteria(config, output._replace(baird=diverging))[-1].verdict == NOT_SUPPORTED
    flat = b._replace(tdc_pbe=np.ones_like(b.tdc_pbe))
    assert ps.criteria(config, output._replace(baird=flat))[-1].verdict == NOT_SUPPORTED


# ------------------------------------------------------------------------------------------
# Config and the hyperparameter stacks
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [("n_seeds", 0), ("n_tune_seeds", 0), ("ppo_learning_rates", ()), ("dqn_learning_rates", (1e-3, -1.0)),
     ("reach_fraction", 1.5), ("ppo_minibatches", 3), ("token_targets", ((1, 2, 9, 1),)), ("hidden", ()),
     ("baird_discount", 1.0), ("seed", -1), ("ppo_ent_coef", -0.1), ("dqn_cartpole_updates", 65),
     ("n_eval_episodes", 0), ("collapse_patience", 11), ("dqn_epsilon_fraction", 0.0), ("tdc_step_size", 0.0)],
)
def test_config_rejects_bad_values(field, value):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(ps.Config.quick(), **{field: value})


def test_full_config_budgets():
    full = ps.Config()
    assert full.updates("DQN", "CartPole") * full.n_envs * full.n_steps >= 150_000
    assert full.learning_rates("DQN") != full.learning_rates("PPO")


def test_stack_hyperparams_broadcasts_and_names_unknown_fields():
    from toyrlhf.algorithms import ppo

    hyper = ps.stack_hyperparams(ppo.PPOHyperparams, 3, learning_rate=jnp.array([1.0, 2.0, 3.0]), clip_eps=0.1)
    np.testing.assert_array_equal(hyper.learning_rate, [1, 2, 3])
    np.testing.assert_array_equal(hyper.clip_eps, np.full(3, 0.1, np.float32))
    np.testing.assert_array_equal(hyper.gae_lambda, np.full(3, ppo.PPOHyperparams().gae_lambda, np.float32))
    with pytest.raises(ValueError, match="learning_rat"):
        ps.stack_hyperparams(ppo.PPOHyperparams, 3, learning_rat=1.0)


# ------------------------------------------------------------------------------------------
# The learned token reward
# ------------------------------------------------------------------------------------------


def test_learned_reward_lookup_matches_the_table():
    config = ps.Config.quick()
    env = token_mdp.TokenEnv(config.token_task)
    gold = token_mdp.TargetPattern(jnp.asarray(config.token_targets))
    tree = ps.token_tree(config)
    learned, quality = ps.fit_token_reward(jax.random.key(0), tree, config)
    reward_fn = ps.make_token_reward_fn(env)
    # Walk every response of prompt 1 through the env; the reward on its last step must be its table entry.
    P, N = tree.gold.shape
    T = config.token_task.length

    def walk(prompt, n):
        state = token_mdp.TokenState(prompt, jnp.zeros(T, jnp.int32), jnp.zeros((), jnp.int32))
        total = 0.0
        for t in range(T):
            action = tree.path_actions[n, t]
            step = env.step(jax.random.key(0), state, action, gold)
            r = reward_fn(env.observe(state), action, step.obs, learned)
            total = total + jnp.where(tree.path_mask[n, t], r, 0.0)
            state = step.state
        return total

    totals = jax.jit(jax.vmap(lambda n: walk(jnp.int32(1), n)))(jnp.arange(N))
    np.testing.assert_allclose(totals, learned.table[1], rtol=1e-6)
    # 1,000 labels, τ = 0.1, a well-specified linear model: it ranks like the gold reward and its argmax is optimal
    assert quality["centred_correlation"] > 0.9
    assert quality["gold_of_learned_argmax"] == pytest.approx(1.0)


# ------------------------------------------------------------------------------------------
# Baird: the checks hold on the real recursion and fail on a broken one
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def baird_output():
    config = ps.Config()  # Sutton & Barto's settings, 3,000 expected updates
    return config, output_of(runs_of({}), ps.baird(config))


def test_baird_checks_hold(baird_output):
    config, output = baird_output
    found = ps.checks(config, output)
    assert [c.verdict for c in found] == [SUPPORTED] * 6 and all(c.kind == "check" for c in found)
    assert found[2].measured == pytest.approx(0.2393, abs=5e-5)  # the eigenvalue td.py's docstring states
    assert found[1].measured < 1e-12  # the book's DP, step for step
    # Sutton & Barto's Fig. 11.2 (right): the norm has grown about 42x after 1,000 sweeps
    book = output.baird.book_dp_weights
    assert np.linalg.norm(book[-1]) / np.linalg.norm(book[0]) == pytest.approx(42.23, rel=1e-3)


def test_baird_checks_can_fail(baird_output):
    config, output = baird_output
    b = output.baird
    broken = b._replace(off_weights=b.off_weights * (1 + 1e-6 * np.arange(b.off_weights.shape[0]))[:, None],
                        on_matrix=-b.off_matrix, tdc_matrix=np.eye(16))
    found = ps.checks(config, output._replace(baird=broken))
    assert [c.verdict for c in found] == [NOT_SUPPORTED, NOT_SUPPORTED, SUPPORTED, NOT_SUPPORTED, SUPPORTED,
                                          NOT_SUPPORTED]


def test_book_dp_is_independent_of_td():
    """The book's first sweep by hand: v(upper) = 3, v(lower) = 12, δ = 8.88 up, −0.12 down (as in test_td)."""
    w1 = ps.book_semi_gradient_dp(1)[1]
    upper, lower = 0.99 * 12 - 3, 0.99 * 12 - 12
    expected = np.array([1.0] * 6 + [10, 1]) + 0.01 * np.array([2 * upper] * 6 + [lower, 6 * upper + 2 * lower]) / 7
    np.testing.assert_allclose(w1, expected, rtol=1e-12)


# ------------------------------------------------------------------------------------------
# One tiny run of every program (CartPole and the token task)
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_token():
    """Every program on the token task, tiny (CartPole's programs are the same code on another env; the quick
    results run them)."""
    config = ps.Config.tiny()
    return config, *ps.token_runs(config)


def test_tiny_token_runs(tiny_token):
    config, runs, values = tiny_token
    S, K = config.n_runs_per_rate, config.n_evals
    for m in ps.METHODS:
        r = ps.method_runs(runs, m)
        L = len(config.learning_rates(m))
        assert r.evaluations.shape == (L, S, K) and r.frozen_evaluations.shape == (L, S, K)
        assert r.train_returns.shape == (L, S, config.updates(m, "Token MDP"))
        assert np.all(r.evaluations >= 0) and np.all(r.evaluations <= 1.0 + 1e-6)
    assert float(runs.optimum) == pytest.approx(1.0)
    # PPO and PPO no clip share keys and start alike: their first training rollouts are the same episodes.
    first = runs.methods.ppo.train_returns[..., 0]
    np.testing.assert_array_equal(first, runs.methods.ppo_no_clip.train_returns[..., 0])
    # Vanilla PG takes one step per batch, at θ = θ_old: its measured KL is 0 up to rounding, PPO's is not.
    assert np.all(runs.approx_kl.vanilla_pg < 1e-10) and np.all(runs.approx_kl.ppo[..., -1] > 1e-7)
    assert values.dqn_estimate.shape == (len(config.dqn_learning_rates), S, K)
    assert np.all(np.isfinite(values.dqn_estimate))
    assert np.all(values.dqn_greedy_value <= float(values.v_star) + 1e-9)  # no policy beats V*
    # Two evaluation seeds cannot decide a finding
    found = ps.criteria(config, ps.Output(runs, runs, values, baird_null()))
    assert SUPPORTED not in [c.verdict for c in found if c.kind == "finding"]


def test_greedy_evaluation_is_deterministic_given_the_policy():
    """DQN is evaluated greedily: a Q-function whose argmax is always 'push right' loses CartPole in ~10 steps,
    every episode the same length up to the random start."""
    env = CartPole()
    returns = ps.evaluate_policy(jax.random.key(0), env, env.default_params(),
                                 lambda obs: jnp.tile(jnp.array([0.0, 1.0]), (obs.shape[0], 1)), 16, 500, True)
    assert returns.shape == (16,) and np.all(returns < 20) and np.all(returns >= 8)
