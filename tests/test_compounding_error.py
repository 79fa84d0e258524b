"""compounding-error: the closed form by exact enumeration, the sweep's learners on small shapes (one
module-scoped compute), and every criterion and check against hand-built null data."""

import dataclasses
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toyrlhf import tabular
from toyrlhf.algorithms import bc, gail
from toyrlhf.demonstrations import Demonstrations
from toyrlhf.envs import tabular_env, toy_mdps
from toyrlhf.experiments import common
from toyrlhf.experiments import compounding_error as ce
from toyrlhf.experiments import imitation_sweep as sweep
from toyrlhf.experiments.common import NOT_SUPPORTED, SUPPORTED, UNDETERMINED
from toyrlhf.experiments.imitation_sweep import SweepScores


@pytest.mark.parametrize(("n_demos", "horizon"), [(1, 3), (2, 2), (3, 2)])
@pytest.mark.parametrize("default_action", [0, None])
def test_reset_cliff_bc_expected_gap_matches_exact_enumeration(n_demos, horizon, default_action):
    """E[gap] over all data sets, each BC policy evaluated exactly, equals the closed form.

    Expert demonstrations on Reset Cliff visit a fresh ρ-draw at every step, so a data
    set is the N x T grid of states, with probability the product of their ρ's. With a
    uniform default action an unseen state falls with probability 1/2.
    """
    rho = np.array([0.5, 0.3, 0.2])
    mdp = toy_mdps.reset_cliff(horizon, n_good=3, rho=rho)
    expert = tabular.solve(mdp).policy
    j_expert = float(tabular.evaluate(mdp, expert))
    assert j_expert == horizon
    grids = np.array(list(itertools.product(range(3), repeat=n_demos * horizon))).reshape(-1, n_demos, horizon)
    probs = np.prod(rho[grids], axis=(1, 2))
    assert probs.sum() == pytest.approx(1.0, abs=1e-12)
    ones = jnp.ones(grids.shape[1:], bool)

    def value(states):  # the expert's action is 1 in every good state
        demos = Demonstrations(states, jnp.ones_like(states), ones * 1.0, ones)
        return tabular.evaluate(mdp, bc.fit_tabular(demos, 4, 2, time_indexed=True, default_action=default_action))

    values = np.asarray(jax.jit(jax.vmap(value))(jnp.asarray(grids)))
    expected_gap = float(np.sum(probs * (j_expert - values)))
    p = ce.fall_if_unseen(default_action)
    assert p == (1.0 if default_action == 0 else 0.5)
    closed, eps = ce.reset_cliff_bc_expected_gap(rho, n_demos, [horizon], p)
    assert eps == pytest.approx(p * float(np.sum(rho * (1 - rho) ** n_demos)), abs=1e-15)
    assert closed[0] == pytest.approx(expected_gap, abs=1e-12)


def test_reset_cliff_closed_form_is_the_trap_formula_at_small_eps():
    gaps, eps = ce.reset_cliff_bc_expected_gap(np.full(4, 0.25), 40, np.array([1, 2, 10]))
    np.testing.assert_allclose(gaps, eps * np.array([1, 3, 55]), rtol=10 * eps * 10)  # ≈ ε H(H+1)/2
    zero, eps0 = ce.reset_cliff_bc_expected_gap(np.array([1.0]), 5, [3])
    assert eps0 == 0.0 and zero[0] == 0.0
    assert ce.fall_if_unseen(1) == 0.0  # the expert's own action never falls
    _, never = ce.reset_cliff_bc_expected_gap(np.full(4, 0.25), 3, [5], ce.fall_if_unseen(1))
    assert never == 0.0


def test_lava_lake_pays_one_per_step_on_the_floor_and_keeps_the_gridworld_dynamics():
    grid, mdp = sweep.lava_lake(horizon=8, slip=0.1)
    terminal = np.asarray(mdp.terminal)
    np.testing.assert_array_equal(terminal, grid.terminal)
    assert terminal.sum() == len(grid.lava_states) + len(grid.goal_states) == 27 + 1
    assert (~terminal).sum() == 35  # the 5 x 7 floor
    np.testing.assert_array_equal(np.asarray(mdp.R), np.where(terminal, 0.0, 1.0)[:, None] * np.ones((1, 4)))
    np.testing.assert_array_equal(np.asarray(mdp.next_states), np.asarray(grid.mdp.next_states))
    np.testing.assert_allclose(np.asarray(mdp.init)[grid.start_states], 1 / 6)
    # The expert stays on the floor almost surely: two slips in a row toward the lava are needed.
    expert = sweep.stationary_expert(mdp)
    assert 8 - 0.01 < float(tabular.evaluate(mdp, expert)) <= 8


# -- Config -------------------------------------------------------------------------------------


def test_config_quick_and_full_are_valid_and_bad_values_name_the_field():
    quick, full = ce.Config.quick(), ce.Config()
    assert quick.n_seeds < full.n_seeds and max(quick.horizons) == max(full.horizons) == 64
    assert full.lake_map == sweep.LAVA_LAKE and full.default_action == 0
    for field, value, error in [
        ("n_demos", 0, ValueError), ("n_seeds", 1.5, TypeError), ("horizons", (4, 8), ValueError),
        ("horizons", (8, 4, 16), ValueError), ("horizons", (0, 4, 8), ValueError),
        ("dagger_rounds", 0, ValueError), ("dagger_episodes", 0, ValueError), ("default_action", 2, ValueError),
        ("default_action", -1, ValueError), ("irl_learning_rate", 0.0, ValueError), ("gail_updates", True, TypeError),
        ("grid_slip", 1.5, ValueError), ("lane_slip", -0.1, ValueError), ("lane_half_width", 0, ValueError),
        ("seed", -1, ValueError), ("cliff_states", 0, ValueError), ("safe_actions", 0, ValueError),
        ("lake_few_demos", 3, ValueError), ("irl_absorbing_reward", "free", ValueError),
        ("irl_absorbing_steps", "twice", ValueError),
    ]:
        with pytest.raises(error, match=field):
            dataclasses.replace(full, **{field: value})
    assert dataclasses.replace(full, default_action=None).methods().default_action is None
    # The runner's --set parses a field by its type: a map is a tuple of rows.
    lake = common.parse_override(full, "lake_map=LLLL,L.GL,LSLL")
    assert lake.lake_map == ("LLLL", "L.GL", "LSLL")


def test_safe_cliff_hides_the_experts_action_from_the_dynamics():
    mdp = ce.build_mdps(ce.Config.quick())[ce.SAFE_CLIFF]
    P, R = np.asarray(mdp.P), np.asarray(mdp.R)
    assert mdp.n_actions == 4
    np.testing.assert_array_equal(P[:10, 1], P[:10, 3])  # a safe action and the expert's: same next states
    np.testing.assert_array_equal(P[:10, 2], P[:10, 3])
    assert np.all(P[:10, 0, 10] == 1.0)  # action 0 falls
    np.testing.assert_array_equal(R[:10], np.tile([0.0, 0.0, 0.0, 1.0], (10, 1)))


# -- the sweep on small shapes: one compute, shared by the tests below ----------------------------

SMALL = ce.Config(n_demos=20, horizons=(2, 4, 8, 16, 32), n_seeds=32, irl_steps=40, gail_updates=20)


@pytest.fixture(scope="module")
def small():
    clock = common.Clock()
    output = ce.compute(SMALL, clock)
    return output, clock


def test_compute_is_one_program_per_mdp_and_its_output_is_finite(small):
    output, clock = small
    assert clock.n_compiles == 5  # the lava lake's two sweeps share one program
    assert common.nonfinite_fields(output) == []
    P = len(SMALL.horizons)
    for name, field in zip(ce.MDPS, ce.Output._fields):
        scores = getattr(output, field).scores
        assert scores.gap.shape == (SMALL.n_seeds, len(ce.METHODS_OF[name]), P), name
    assert output.reset_cliff.scores.visits.shape == (SMALL.n_seeds, 6, SMALL.cliff_states + 1)
    assert output.lava_lake.scores.visits.shape[-1] == output.lake_expert_visits.shape[0]
    few, many = output.lava_lake_few.scores, output.lava_lake.scores
    np.testing.assert_array_equal(few.expert_labels[0], SMALL.lake_few_demos * np.array(SMALL.horizons))
    np.testing.assert_array_equal(many.expert_labels[0], SMALL.n_demos * np.array(SMALL.horizons))


def test_time_indexed_bc_matches_the_closed_form_monte_carlo(small):
    """32 simulated data sets: the mean exact gap at every H within 4 standard errors of E[gap_H]."""
    output, _ = small
    for mdp in (ce.CLIFF, ce.SAFE_CLIFF):  # the safe actions change nothing for BC: its default action 0 falls
        gaps = ce.gaps(output, mdp, "BC (time-indexed)")
        expected, eps = ce.expected_bc_gap(SMALL)
        assert eps > 0.05  # small N: the learner really errs
        se = gaps.std(0, ddof=1) / np.sqrt(len(gaps))
        assert np.all(np.abs(gaps.mean(0) - expected) <= 4 * se), (mdp, gaps.mean(0), expected, se)
        assert np.all(np.diff(gaps.mean(0)) > 0)


def test_time_indexed_irl_errs_without_falling_where_the_dynamics_hide_the_action(small):
    """Safe cliff: gap within 4 standard errors of H ε_N at every H, and never a step in the fall state.
    Stationary IRL on the two-action cliff: the dynamics reveal the action and the gap is exactly 0 at the
    largest H (the confound)."""
    output, _ = small
    irl = ce.gaps(output, ce.SAFE_CLIFF, sweep.IRL_TIME_INDEXED)
    expected, eps = ce.expected_irl_gap(SMALL)
    se = irl.std(0, ddof=1) / np.sqrt(len(irl))
    assert np.all(np.abs(irl.mean(0) - expected) <= 4 * se + 1e-12), (irl.mean(0), expected, se)
    i = ce.METHODS_OF[ce.SAFE_CLIFF].index(sweep.IRL_TIME_INDEXED)
    assert np.max(output.safe_cliff.scores.visits[:, i, SMALL.cliff_states]) < 1e-9
    assert np.all(ce.gaps(output, ce.CLIFF, "MaxEnt IRL")[:, -1] == 0.0)
    bc_gap = ce.gaps(output, ce.SAFE_CLIFF, "BC (time-indexed)")[:, -1].mean()
    assert 0 < irl[:, -1].mean() < 0.5 * bc_gap


def test_stationary_bc_pools_more_data_and_maxent_irl_does_not_fall(small):
    output, _ = small
    time_indexed = ce.gaps(output, ce.CLIFF, "BC (time-indexed)")
    stationary = ce.gaps(output, ce.CLIFF, "BC (stationary)")
    # Pooling N h samples sees every state more often than N samples per step: better on average at the
    # largest H by more than half.
    assert stationary[:, -1].mean() < 0.5 * time_indexed[:, -1].mean()
    # Stationary MaxEnt IRL plans through the known dynamics: its gap does not grow with H (its stationary
    # reward also pools the N h samples, so it shrinks) and stays far below time-indexed BC's.
    irl = ce.gaps(output, ce.CLIFF, "MaxEnt IRL").mean(0)
    assert np.all(np.diff(irl) <= 0), irl
    assert irl[-1] < 0.1 * time_indexed[:, -1].mean()


def test_a_fall_costs_its_step_and_every_later_one_exactly(small):
    """On Reset Cliff gap_H = E[steps in the bad state] + Pr(fall before H), and Pr(no fall) is the product
    over steps of the ρ-mass of the states each step's demonstrations showed (the default action 0 falls)."""
    output, _ = small
    H, bad = max(SMALL.horizons), SMALL.cliff_states
    mdp = ce.build_mdps(SMALL)[ce.CLIFF]
    rho = np.asarray(mdp.init)[:bad]
    expert = sweep.stationary_expert(mdp)
    keys = sweep.seed_keys(SMALL.seed, SMALL.n_seeds)
    states = np.asarray(jax.vmap(lambda k: sweep.demonstrations_for(k, mdp, expert, SMALL.n_demos).observations)(keys))
    seen = np.zeros((SMALL.n_seeds, H, bad), bool)
    for s in range(bad):
        seen[..., s] = np.any(states == s, axis=1)
    p_fall = 1.0 - np.prod(seen @ rho, axis=1)  # [n_seeds]
    i = ce.METHODS_OF[ce.CLIFF].index("BC (time-indexed)")
    scores = output.reset_cliff.scores
    measured = scores.gap[:, i, -1] - scores.visits[:, i, bad]
    np.testing.assert_allclose(measured, p_fall, rtol=0, atol=1e-9)
    assert 0 < p_fall.mean() < 1  # some data sets fall, some do not


def test_gail_learns_where_bc_falls_on_reset_cliff(small):
    """Reset Cliff, N = 20: BC falls on unseen states; GAIL's gap is a fraction of BC's at H = 32."""
    output, _ = small
    bc_gap = ce.gaps(output, ce.CLIFF, "BC (time-indexed)").mean(0)
    gail_gap = ce.gaps(output, ce.CLIFF, "GAIL").mean(0)
    assert bc_gap[-1] > 0.2, bc_gap  # the data really leave states unseen
    assert gail_gap[-1] < 0.5 * bc_gap[-1], (gail_gap, bc_gap)


def test_gail_with_a_traced_horizon_is_plain_gail_at_that_horizon(small):
    """The sweep's GAIL at h = 2 (a traced env horizon, demonstrations masked after step 2) equals GAIL
    built for horizon 2 on the same data truncated to 2 steps, for the first 8 data sets."""
    output, _ = small
    h = SMALL.horizons[0]
    mdp = ce.build_mdps(SMALL)[ce.CLIFF]
    expert = sweep.stationary_expert(mdp)
    short = mdp.with_horizon(h)
    gail_config = SMALL.methods().gail_config()
    env, env_params = tabular_env(short, "index")
    train = gail.make_train(gail_config, env, env_params)

    def plain(key):
        demos = sweep.demonstrations_for(key, mdp, expert, SMALL.n_demos)
        result, _ = train(jax.random.fold_in(key, 2), demos.truncate(h))
        policy = gail.tabular_policy(gail_config, result, env_params)
        return tabular.evaluate(short, expert) - tabular.evaluate(short, policy), result.resources

    gaps, resources = jax.jit(jax.vmap(plain))(sweep.seed_keys(SMALL.seed, SMALL.n_seeds)[:8])
    np.testing.assert_allclose(ce.gaps(output, ce.CLIFF, "GAIL")[:8, 0], np.asarray(gaps), atol=1e-5)
    assert np.all(np.asarray(resources.env_steps) == sweep.gail_env_steps(gail_config))
    assert np.all(np.asarray(resources.expert_labels) == SMALL.n_demos * h)


def test_resources_and_labels_are_each_methods_own_counts(small):
    output, _ = small
    used = ce.resources(SMALL, output)[ce.CLIFF]
    gail_steps = sweep.gail_env_steps(SMALL.methods().gail_config())
    assert used["GAIL"].startswith(f"640 expert labels (mean 0 on uninformative states), {gail_steps} env steps")
    # DAgger: 20 demonstrations x 32 steps, then 4 rounds x 5 queried episodes x 32 steps (its own env steps).
    assert used[sweep.DAGGER_AFTER_DEMOS].startswith("1280 expert labels")
    assert used[sweep.DAGGER_AFTER_DEMOS].endswith("640 env steps, no dynamics model")
    assert used[sweep.BC_MORE_EPISODES].startswith("1280 expert labels (mean 0 on")
    assert used["MaxEnt IRL"] == "640 expert labels (mean 0 on uninformative states), 0 env steps, known dynamics"
    labels = ce.dagger_labels(SMALL, output)
    # Reset Cliff: a learner that falls spends its remaining queried steps in the fall state: labels there
    # are counted apart; on Lane every state is informative.
    assert labels[ce.CLIFF]["queried_on_uninformative_states"] > 0
    assert labels[ce.LANE]["queried_on_uninformative_states"] == 0
    for name in (ce.CLIFF, ce.LANE):
        total = labels[name]["queried_on_informative_states"] + labels[name]["queried_on_uninformative_states"]
        assert total == pytest.approx(labels[name]["queried"]) and labels[name]["queried"] == 640
    lake_bc = output.lava_lake.labels.uninformative[:, ce.METHODS_OF[ce.LAKE].index("BC (time-indexed)"), -1]
    assert lake_bc.sum() > 0  # the expert itself falls into the lava: those demonstrated labels are no information


def test_checks_hold_on_the_small_sweep(small):
    output, _ = small
    identities = {c.statement: c for c in ce.checks(SMALL, output)[2:]}
    assert all(c.verdict == SUPPORTED for c in identities.values()), [c.line() for c in identities.values()]


def test_figure_is_redrawn_from_the_saved_files(small, tmp_path):
    import matplotlib.pyplot as plt

    output, clock = small
    figure = ce.plot(SMALL, output)
    result = common.ExperimentResult(ce.NAME, ce.CLAIM, SMALL, output, ce.criteria(SMALL, output),
                                     ce.checks(SMALL, output), figure, clock.totals(),
                                     ce.measurements(SMALL, output))
    common.write_result(result, tmp_path)
    plt.close(figure)
    config, loaded, summary = common.load_result(ce, tmp_path)
    assert config == SMALL
    np.testing.assert_array_equal(loaded.lava_lake.scores.visits, output.lava_lake.scores.visits)
    np.testing.assert_array_equal(loaded.lane.labels.informative, output.lane.labels.informative)
    assert [c["verdict"] for c in summary["criteria"]] == [c.verdict for c in result.criteria]
    assert {p.suffix for p in common.replot(ce, tmp_path, tmp_path / "again")} == {".png", ".pdf"}


# -- criteria and checks on hand-built outputs (no training) ---------------------------------------

QUICK = ce.Config.quick()
N_SEEDS = 24


def curves(config, growth, scale, n_seeds=N_SEEDS, noise=0.1, seed=0):
    """``[n_seeds, M, P]``: ``scale[m] * growth(H)`` times a lognormal noise per seed."""
    rng = np.random.default_rng(seed)
    h = np.asarray(config.horizons, dtype=float)
    base = np.asarray(scale, dtype=float)[None, :, None] * growth(h)[None, None, :]
    return base * np.exp(noise * rng.standard_normal((n_seeds, len(scale), len(h))))


def hand_output(config, gaps):
    """An Output from ``gaps[name] [n_seeds, M, P]`` (every sweep of :data:`ce.MDPS`; errors chosen so that
    Standard imitation's identity holds; labels as the protocol counts them)."""
    h = np.asarray(config.horizons, dtype=float)
    queried = config.dagger_rounds * config.dagger_episodes

    def mdp_scores(name):
        gap = np.asarray(gaps[name], dtype=float)
        n, M, P = gap.shape
        errors = gap / h if name == ce.STANDARD else np.zeros_like(gap)
        labels = np.tile(config.n_demos * h.astype(int), (M, 1))
        for m in (sweep.DAGGER_AFTER_DEMOS, sweep.BC_MORE_EPISODES):
            if m in ce.METHODS_OF[name]:
                labels[ce.METHODS_OF[name].index(m)] = (config.n_demos + queried) * h.astype(int)
        scores = SweepScores(gap, errors, errors, np.full((n, M, 2), max(config.horizons) / 2), labels,
                             np.zeros((M, P), int))
        return ce.MDPScores(scores, sweep.LabelScores(np.broadcast_to(labels, gap.shape), np.zeros(gap.shape)))

    return ce.Output(*(mdp_scores(name) for name in ce.MDPS), np.ones(2))


def scaled(config, name, growth, by_method, default, **kw):
    methods = ce.METHODS_OF[name]
    return curves(config, growth, [by_method.get(m, default) for m in methods], **kw)


def verdicts(config, output):
    return [c.verdict for c in ce.criteria(config, output)]


ORDER = ["bc slope", "control slope", "irl contrast", "irl ratio", "irl slope", "gail", "dagger lane",
         "dagger cliff", "dagger slope", "absorbing zero", "absorbing once"]


def verdict_of(config, output, which):
    return verdicts(config, output)[ORDER.index(which)]


def good_gaps(config=QUICK, n_seeds=N_SEEDS):
    """BC ~ H²; IRL never falls (0 on the two-action cliff, ~H on the safe one); GAIL 1% of BC with one
    collapsed seed; DAgger as BC with as many episodes on the cliff, 10x better on Lane; absorbing: the
    learned-every-step treatment worse on the few-demonstration lake; the control linear."""
    kw = {"n_seeds": n_seeds}
    quad, lin = (lambda h: h**2), (lambda h: h)
    cliff = scaled(config, ce.CLIFF, quad, {"BC (stationary)": 1e-4, "MaxEnt IRL": 0.0,
                                            sweep.IRL_TIME_INDEXED: 0.0, "GAIL": 1e-5}, 1e-3, **kw)
    cliff[0, ce.METHODS_OF[ce.CLIFF].index("GAIL")] = 0.9 * np.asarray(config.horizons)  # a collapsed run
    safe = scaled(config, ce.SAFE_CLIFF, quad, {"BC (stationary)": 0.0, "MaxEnt IRL": 0.0}, 1e-3, **kw)
    safe[:, ce.METHODS_OF[ce.SAFE_CLIFF].index(sweep.IRL_TIME_INDEXED)] = curves(config, lin, [3e-3], **kw)[:, 0]
    lane = scaled(config, ce.LANE, quad, {sweep.DAGGER_AFTER_DEMOS: 1e-4}, 1e-3, **kw)
    lake_few = scaled(config, ce.LAKE_FEW, lin, {ce.IRL_EVERY: 0.2, ce.IRL_ONCE: 0.01, ce.IRL_ZERO: 0.01}, 0.1, **kw)
    return {
        ce.CLIFF: cliff, ce.SAFE_CLIFF: safe, ce.LANE: lane,
        ce.LAKE: scaled(config, ce.LAKE, lin, {}, 0.01, **kw), ce.LAKE_FEW: lake_few,
        ce.STANDARD: scaled(config, ce.STANDARD, lin, {}, 0.03, seed=1, **kw),
    }


def test_a_good_output_is_supported_on_every_criterion():
    assert verdicts(QUICK, hand_output(QUICK, good_gaps())) == [SUPPORTED] * len(ORDER)


def test_flat_curves_identical_methods_are_not_supported():
    flat = {n: scaled(QUICK, n, np.ones_like, {}, 1.0) for n in ce.MDPS}  # no growth, every method the same
    v = dict(zip(ORDER, verdicts(QUICK, hand_output(QUICK, flat))))
    for which in ("bc slope", "control slope", "irl contrast", "irl ratio", "irl slope", "gail", "dagger lane",
                  "dagger slope"):
        assert v[which] == NOT_SUPPORTED, which
    assert v["absorbing zero"] != SUPPORTED and v["absorbing once"] != SUPPORTED  # a tie is not a success
    # DAgger as good as BC with as many episodes on the cliff: what that two-sided criterion claims, not a null.
    assert v["dagger cliff"] == SUPPORTED


def test_compounding_in_the_control_is_not_supported():
    gaps = good_gaps()
    gaps[ce.STANDARD] = scaled(QUICK, ce.STANDARD, lambda h: h**2, {}, 1e-3)
    assert verdict_of(QUICK, hand_output(QUICK, gaps), "control slope") == NOT_SUPPORTED


def test_irl_that_compounds_or_copies_bc_is_not_supported():
    gaps = good_gaps()
    i = ce.METHODS_OF[ce.SAFE_CLIFF].index(sweep.IRL_TIME_INDEXED)
    gaps[ce.SAFE_CLIFF][:, i] = gaps[ce.SAFE_CLIFF][:, 0]  # IRL falls exactly as BC does
    out = hand_output(QUICK, gaps)
    assert verdict_of(QUICK, out, "irl ratio") == NOT_SUPPORTED
    assert verdict_of(QUICK, out, "irl slope") == NOT_SUPPORTED


def test_nothing_to_measure_is_not_a_success():
    """Nobody ever errs: the slopes and every ratio are undefined (UNDETERMINED); the absorbing-state
    differences are exactly 0, which is no improvement (NOT SUPPORTED)."""
    zeros = {n: np.zeros((N_SEEDS, len(ce.METHODS_OF[n]), len(QUICK.horizons))) for n in ce.MDPS}
    v = dict(zip(ORDER, verdicts(QUICK, hand_output(QUICK, zeros))))
    assert [v[k] for k in ORDER[:-2]] == [UNDETERMINED] * (len(ORDER) - 2)
    assert v["absorbing zero"] == v["absorbing once"] == NOT_SUPPORTED


def test_gail_with_a_typical_gap_like_bcs_is_not_supported_whatever_a_few_seeds_do():
    gaps = good_gaps()
    g, b = ce.METHODS_OF[ce.CLIFF].index("GAIL"), ce.METHODS_OF[ce.CLIFF].index("BC (time-indexed)")
    gaps[ce.CLIFF][:, g] = gaps[ce.CLIFF][:, b]
    gaps[ce.CLIFF][:3, g] = 0.0  # three lucky seeds do not move an interquartile mean
    assert verdict_of(QUICK, hand_output(QUICK, gaps), "gail") == NOT_SUPPORTED


def test_dagger_far_worse_or_far_better_than_bc_on_the_cliff_is_not_supported():
    """Two-sided: the old one-sided 'at least 0.8 of BC's' passed a DAgger five times worse."""
    for factor in (5.0, 0.05):
        gaps = good_gaps()
        d = ce.METHODS_OF[ce.CLIFF].index(sweep.DAGGER_AFTER_DEMOS)
        gaps[ce.CLIFF][:, d] *= factor
        assert verdict_of(QUICK, hand_output(QUICK, gaps), "dagger cliff") == NOT_SUPPORTED, factor


def test_dagger_no_better_than_bc_on_lane_is_not_supported():
    gaps = good_gaps()
    d, b = (ce.METHODS_OF[ce.LANE].index(m) for m in (sweep.DAGGER_AFTER_DEMOS, sweep.BC_MORE_EPISODES))
    gaps[ce.LANE][:, d] = gaps[ce.LANE][:, b] * 0.9
    assert verdict_of(QUICK, hand_output(QUICK, gaps), "dagger lane") == NOT_SUPPORTED


def test_absorbing_treatments_that_tie_or_lose_are_not_supported():
    gaps = good_gaps()
    few = gaps[ce.LAKE_FEW]
    every, zero, once = (ce.METHODS_OF[ce.LAKE_FEW].index(m) for m in (ce.IRL_EVERY, ce.IRL_ZERO, ce.IRL_ONCE))
    few[:, zero] = few[:, every]  # identical
    few[:, once] = few[:, every] * 2.0  # worse
    out = hand_output(QUICK, gaps)
    assert verdict_of(QUICK, out, "absorbing zero") != SUPPORTED
    assert verdict_of(QUICK, out, "absorbing once") == NOT_SUPPORTED
    rng = np.random.default_rng(5)  # pure noise: the two differ by chance only
    few[:, zero] = few[:, every] * np.exp(0.5 * rng.standard_normal(few[:, every].shape))
    assert verdict_of(QUICK, hand_output(QUICK, gaps), "absorbing zero") != SUPPORTED


def test_too_few_seeds_for_a_bootstrap_is_undetermined():
    few = hand_output(QUICK, good_gaps(n_seeds=5))
    assert verdicts(QUICK, few) == [UNDETERMINED] * len(ORDER)


def test_closed_form_checks_need_agreement_and_precision():
    rng = np.random.default_rng(3)
    for k, (mdp, method, expected) in enumerate([
        (ce.CLIFF, "BC (time-indexed)", ce.expected_bc_gap(QUICK)[0]),
        (ce.SAFE_CLIFF, sweep.IRL_TIME_INDEXED, ce.expected_irl_gap(QUICK)[0]),
    ]):
        def verdict(last_gaps, k=k, mdp=mdp, method=method):
            gaps = {n: np.zeros((len(last_gaps), len(ce.METHODS_OF[n]), len(QUICK.horizons))) for n in ce.MDPS}
            gaps[mdp][:, ce.METHODS_OF[mdp].index(method), -1] = last_gaps
            return ce.checks(QUICK, hand_output(QUICK, gaps))[k].verdict

        assert verdict(expected[-1] + 0.05 * expected[-1] * rng.standard_normal(100)) == SUPPORTED
        assert verdict(np.zeros(100)) == NOT_SUPPORTED  # a learner that never errs
        assert verdict(2 * expected[-1] + 0.05 * rng.standard_normal(100)) == NOT_SUPPORTED
        assert verdict(expected[-1] + 3 * expected[-1] * rng.standard_normal(10)) == UNDETERMINED  # too noisy


def test_identity_checks_fail_on_inconsistent_arrays():
    output = hand_output(QUICK, good_gaps())
    assert [c.verdict for c in ce.checks(QUICK, output)[2:]] == [SUPPORTED] * 3
    lake = output.lava_lake
    more_visits = lake.scores._replace(visits=lake.scores.visits * 1.01)
    wrong_visits = output._replace(lava_lake=lake._replace(scores=more_visits))
    assert ce.checks(QUICK, wrong_visits)[2].verdict == NOT_SUPPORTED
    std = output.standard_imitation.scores
    shifted = std._replace(error_on_own_states=std.error_on_expert_states + 1e-3)
    wrong_errors = output._replace(standard_imitation=output.standard_imitation._replace(scores=shifted))
    assert ce.checks(QUICK, wrong_errors)[3].verdict == NOT_SUPPORTED
    lane = output.lane
    d = ce.METHODS_OF[ce.LANE].index(sweep.DAGGER_AFTER_DEMOS)
    fewer = lane.scores.expert_labels.copy()
    fewer[d] -= 1  # one label short of the protocol's count
    wrong_labels = output._replace(lane=lane._replace(scores=lane.scores._replace(expert_labels=fewer)))
    assert ce.checks(QUICK, wrong_labels)[4].verdict == NOT_SUPPORTED
    absorbed = output._replace(lane=lane._replace(labels=lane.labels._replace(
        uninformative=lane.labels.uninformative + 1)))
    assert ce.checks(QUICK, absorbed)[4].verdict == NOT_SUPPORTED  # Lane has no uninformative state


@pytest.mark.parametrize("n", [5, 8, 24, 100])
def test_the_fast_interquartile_mean_is_scipys_trimmed_mean(n):
    from scipy.stats import trim_mean

    from toyrlhf.stats import iqm

    sample = np.random.default_rng(n).lognormal(size=n)
    sample[0] = 55.0  # a collapsed run
    assert iqm(sample) == pytest.approx(float(trim_mean(sample, 0.25)), rel=1e-12)
    assert iqm(sample) < np.mean(sample)
