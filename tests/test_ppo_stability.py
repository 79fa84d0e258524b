"""ppo-stability: the collapse definition, the exact stratified interval, every criterion on null data, the
learned token reward, Baird's checks, and one tiny token-task run shared by the tests (and the notebook)."""

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


def test_collapse_definition():
    curves = np.array(
        [
            [10, 50, 95, 60, 40],  # reached 95 >= 90, then 40 < 47.5: collapse
            [10, 50, 95, 60, 48],  # 48 >= 47.5: no collapse
            [10, 50, 80, 10, 10],  # never reached 90: cannot collapse
            [10, 30, 20, 95, 90],  # dropped (20 < 25) before reaching: not a collapse
        ],
        dtype=float,
    )
    collapsed, reached = ps.collapses(curves, optimum=100.0)
    np.testing.assert_array_equal(collapsed, [True, False, False, False])
    np.testing.assert_array_equal(reached, [True, True, False, True])
    # The definitions are settings: a stricter reach (96) leaves nothing to collapse.
    collapsed, reached = ps.collapses(curves, 100.0, reach_fraction=0.96)
    assert not collapsed.any() and not reached.any()


@pytest.mark.parametrize("table", [[[2, 8], [7, 3]], [[0, 10], [5, 5]], [[4, 6], [4, 6]], [[10, 0], [3, 7]]])
def test_one_table_interval_is_fishers_conditional_interval(table):
    lo, hi, p_less = ps.common_odds_ratio_interval([table])
    ci = odds_ratio(np.array(table), kind="conditional").confidence_interval(0.95)
    assert lo == pytest.approx(ci.low, rel=1e-6, abs=1e-12)
    assert hi == pytest.approx(ci.high, rel=1e-6) if math.isfinite(ci.high) else hi == math.inf
    (a, b), (c, d) = table
    assert p_less == pytest.approx(stats.fisher_exact(a, a + b, c, c + d, "less")[1], rel=1e-9)


def test_two_strata_interval_by_hand():
    """Two tables [[1, 1], [1, 1]]: each a_k ∈ {0, 1, 2} with weights 1, 4, 1, so S = a_1 + a_2 has weights
    (1, 8, 18, 8, 1) ψ^S; s_obs = 2."""
    lo, hi, p_less = ps.common_odds_ratio_interval([[[1, 1], [1, 1]]] * 2)
    assert p_less == pytest.approx(27 / 36)
    w = np.array([1.0, 8, 18, 8, 1])
    upper_tail = lambda psi: (w[2:] * psi ** np.arange(2, 5)).sum() / (w * psi ** np.arange(5)).sum()  # noqa: E731
    lower_tail = lambda psi: (w[:3] * psi ** np.arange(3)).sum() / (w * psi ** np.arange(5)).sum()  # noqa: E731
    assert upper_tail(lo) == pytest.approx(0.025, rel=1e-6) and lower_tail(hi) == pytest.approx(0.025, rel=1e-6)
    assert lo * hi == pytest.approx(1.0, rel=1e-6)  # the symmetric table: the interval is symmetric in log ψ
    # Tables with an empty margin carry nothing: with only those, every odds ratio fits.
    assert ps.common_odds_ratio_interval([[[0, 10], [0, 10]], [[10, 0], [10, 0]]]) == (0.0, math.inf, 1.0)


# ------------------------------------------------------------------------------------------
# The criteria on hand-built outputs (no training)
# ------------------------------------------------------------------------------------------

CONFIG = ps.Config(n_seeds=10, token_updates=20, cartpole_updates=20)
U = 20
RISE = np.linspace(0.0, 1.0, U)  # reaches the optimum at the end: no collapse
COLLAPSE = np.where(np.arange(U) < 10, np.linspace(0.0, 1.0, U) * 2, 0.1)  # reaches 0.95 at update 10, then 0.1
FLAT = np.full(U, 0.1)  # never learns


def runs_of(per_method: dict) -> ps.TaskRuns:
    """``per_method[name]``: a function (learning-rate index, seed) -> curve [U]; missing methods are flat."""
    L, S = len(CONFIG.learning_rates), CONFIG.n_seeds
    curves = {m: np.array([[per_method.get(m, lambda i, s: FLAT)(i, s) for s in range(S)] for i in range(L)])
              for m in ps.METHODS}
    zeros = np.zeros((L, S, U))
    return ps.TaskRuns(ps.MethodCurves(*(curves[m] for m in ps.METHODS)), ps.PPOFamilyCurves(*([zeros] * 4)),
                       zeros, np.array(1.0))


def output_of(runs: ps.TaskRuns) -> ps.Output:
    L, S = len(CONFIG.learning_rates), CONFIG.n_seeds
    values = ps.TokenValues(*([np.zeros((2, 2))] * 2), *([np.array(0.0)] * 3), *([np.zeros((L, S))] * 2),
                            np.array(0.0))
    baird = ps.Baird(np.ones((3, 8)), np.ones((3, 8)), np.zeros((8, 8)), np.zeros((8, 8)), np.ones(2), np.ones(2))
    return ps.Output(runs, runs, values, baird)


def verdicts(runs: ps.TaskRuns) -> list[str]:
    return [c.verdict for c in ps.criteria(CONFIG, output_of(runs))]


def test_nothing_learns_is_undetermined():
    found = ps.criteria(CONFIG, output_of(runs_of({})))
    assert [c.verdict for c in found] == [UNDETERMINED] * 2
    assert all(c.interval == (0.0, math.inf) for c in found)


def test_identical_methods_are_undetermined():
    half = lambda i, s: COLLAPSE if s % 2 else RISE  # noqa: E731
    assert verdicts(runs_of({"PPO": half, "DQN": half})) == [UNDETERMINED] * 2


def test_pure_noise_is_not_supported():
    rng = np.random.default_rng(0)
    draws = {m: rng.random((4, 10)) < 0.5 for m in ("PPO", "DQN")}
    noisy = {m: (lambda i, s, m=m: COLLAPSE if draws[m][i, s] else RISE) for m in draws}
    assert SUPPORTED not in verdicts(runs_of(noisy))


def test_fewer_collapses_can_be_supported_and_more_are_not():
    stable = lambda i, s: RISE  # noqa: E731
    mostly = lambda i, s: COLLAPSE if s < 7 else RISE  # noqa: E731
    assert verdicts(runs_of({"PPO": stable, "DQN": mostly})) == [SUPPORTED] * 2
    assert verdicts(runs_of({"PPO": mostly, "DQN": stable})) == [NOT_SUPPORTED] * 2
    # A DQN that never learns never collapses: PPO's collapses then count against the claim.
    assert verdicts(runs_of({"PPO": mostly})) == [NOT_SUPPORTED] * 2


def test_collapses_in_one_stratum_only_are_not_pooled_away():
    """7/10 vs 0/10 at one learning rate, nothing anywhere else: the stratified interval uses only that rate."""
    one = lambda i, s: COLLAPSE if i == 2 and s < 7 else RISE  # noqa: E731
    c = ps.criteria(CONFIG, output_of(runs_of({"PPO": lambda i, s: RISE, "DQN": one})))[0]
    lo, hi, _ = ps.common_odds_ratio_interval([[[0, 10], [7, 3]]])
    assert c.interval == pytest.approx((lo, hi)) and c.verdict == SUPPORTED and "(1 with a collapse)" in c.detail


# ------------------------------------------------------------------------------------------
# Config and the hyperparameter stacks
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [("n_seeds", 0), ("learning_rates", ()), ("learning_rates", (1e-3, -1.0)), ("reach_fraction", 1.5),
     ("ppo_minibatches", 3), ("token_targets", ((1, 2, 9, 1),)), ("hidden", ()), ("baird_discount", 1.0),
     ("seed", -1), ("ppo_ent_coef", -0.1)],
)
def test_config_rejects_bad_values(field, value):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(ps.Config.quick(), **{field: value})


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
    return config, output_of(runs_of({}))._replace(baird=ps.baird(config))


def test_baird_checks_hold(baird_output):
    config, output = baird_output
    found = ps.checks(config, output)
    assert [c.verdict for c in found] == [SUPPORTED] * 4 and all(c.kind == "check" for c in found)
    assert found[1].measured == pytest.approx(0.2393, abs=5e-5)  # the eigenvalue td.py's docstring states


def test_baird_checks_can_fail(baird_output):
    config, output = baird_output
    b = output.baird
    broken = b._replace(off_weights=b.off_weights * (1 + 1e-6 * np.arange(b.off_weights.shape[0]))[:, None],
                        on_matrix=-b.off_matrix)
    found = ps.checks(config, output._replace(baird=broken))
    assert found[0].verdict == NOT_SUPPORTED and found[2].verdict == NOT_SUPPORTED


# ------------------------------------------------------------------------------------------
# One tiny run of every method on the token task (the notebook runs the same programs)
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_token():
    config = ps.Config.tiny()
    return config, *ps.token_runs(config)


def test_tiny_token_runs(tiny_token):
    config, runs, values = tiny_token
    L, S, U = len(config.learning_rates), config.n_seeds, config.token_updates
    assert all(c.shape == (L, S, U) for c in runs.returns) and float(runs.optimum) == pytest.approx(1.0)
    # PPO and PPO no clip share keys and start alike: their first rollouts are the same episodes.
    first = {m: ps.method_curves(runs, m)[..., 0] for m in ("PPO", "PPO no clip")}
    np.testing.assert_array_equal(first["PPO"], first["PPO no clip"])
    # Vanilla PG takes one step per batch, at θ = θ_old: its measured KL is 0 up to rounding, PPO's is not.
    assert np.all(runs.approx_kl.vanilla_pg < 1e-10) and np.all(runs.approx_kl.ppo[..., -1] > 1e-7)
    assert values.dqn_estimate.shape == (L, S) and np.all(np.isfinite(values.dqn_estimate))
    # Two seeds x two rates cannot decide (the exact interval needs more runs than that), whatever happened.
    assert [c.verdict for c in ps.criteria(config, output_of(runs))] != [SUPPORTED] * 2
