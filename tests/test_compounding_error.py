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
from toyrlhf.experiments.imitation_sweep import METHODS, SweepScores


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
        ("dagger_rounds", 3, ValueError), ("default_action", 2, ValueError), ("default_action", -1, ValueError),
        ("irl_learning_rate", 0.0, ValueError), ("gail_updates", True, TypeError), ("grid_slip", 1.5, ValueError),
        ("seed", -1, ValueError), ("cliff_states", 0, ValueError),
    ]:
        with pytest.raises(error, match=field):
            dataclasses.replace(full, **{field: value})
    assert dataclasses.replace(full, default_action=None).methods().default_action is None
    # The runner's --set parses a field by its type: a map is a tuple of rows.
    lake = common.parse_override(full, "lake_map=LLLL,L.GL,LSLL")
    assert lake.lake_map == ("LLLL", "L.GL", "LSLL")


# -- the sweep on small shapes: one compute, shared by the tests below ----------------------------

# The settings of notebooks/compounding_error.ipynb under TOYRLHF_QUICK: the notebook, run later in the same
# session, loads these three compiled programs from the session's compilation cache instead of compiling them.
SMALL = ce.Config(n_demos=20, horizons=(2, 4, 8, 16, 32), n_seeds=32, irl_steps=40, gail_updates=20)


@pytest.fixture(scope="module")
def small():
    clock = common.Clock()
    output = ce.compute(SMALL, clock)
    return output, clock


def test_compute_is_one_program_per_mdp_and_its_output_is_finite(small):
    output, clock = small
    assert clock.n_compiles == 3
    assert common.nonfinite_fields(output) == []
    P, M = len(SMALL.horizons), len(METHODS)
    assert output.reset_cliff.gap.shape == (SMALL.n_seeds, M, P)
    assert output.reset_cliff.visits.shape == (SMALL.n_seeds, M, SMALL.cliff_states + 1)
    assert output.lava_lake.visits.shape[-1] == output.lake_expert_visits.shape[0]


def test_time_indexed_bc_matches_the_closed_form_monte_carlo(small):
    """32 simulated data sets: the mean exact gap at every H within 4 standard errors of E[gap_H]."""
    output, _ = small
    gaps = sweep.gaps_of(output.reset_cliff, "BC (time-indexed)")
    expected, eps = ce.expected_bc_gap(SMALL)
    assert eps > 0.05  # small N: the learner really errs
    se = gaps.std(0, ddof=1) / np.sqrt(len(gaps))
    assert np.all(np.abs(gaps.mean(0) - expected) <= 4 * se), (gaps.mean(0), expected, se)
    assert np.all(np.diff(gaps.mean(0)) > 0)


def test_stationary_bc_pools_more_data_and_maxent_irl_does_not_fall(small):
    output, _ = small
    time_indexed = sweep.gaps_of(output.reset_cliff, "BC (time-indexed)")
    stationary = sweep.gaps_of(output.reset_cliff, "BC (stationary)")
    # Pooling N h samples sees every state more often than N samples per step: better on average at the
    # largest H by more than half.
    assert stationary[:, -1].mean() < 0.5 * time_indexed[:, -1].mean()
    # MaxEnt IRL plans through the known dynamics: its gap does not grow with H (its stationary
    # reward also pools the N h samples, so it shrinks) and stays far below time-indexed BC's.
    irl = sweep.gaps_of(output.reset_cliff, "MaxEnt IRL").mean(0)
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
    i = METHODS.index("BC (time-indexed)")
    measured = output.reset_cliff.gap[:, i, -1] - output.reset_cliff.visits[:, i, bad]
    np.testing.assert_allclose(measured, p_fall, rtol=0, atol=1e-9)
    assert 0 < p_fall.mean() < 1  # some data sets fall, some do not


def test_gail_learns_where_bc_falls_on_reset_cliff(small):
    """Reset Cliff, N = 20: BC falls on unseen states; GAIL's gap is a fraction of BC's at H = 32."""
    output, _ = small
    bc_gap = sweep.gaps_of(output.reset_cliff, "BC (time-indexed)").mean(0)
    gail_gap = sweep.gaps_of(output.reset_cliff, "GAIL").mean(0)
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
    np.testing.assert_allclose(sweep.gaps_of(output.reset_cliff, "GAIL")[:8, 0], np.asarray(gaps), atol=1e-5)
    assert np.all(np.asarray(resources.env_steps) == sweep.gail_env_steps(gail_config))
    assert np.all(np.asarray(resources.expert_labels) == SMALL.n_demos * h)


def test_resources_are_each_methods_own_counts(small):
    output, _ = small
    used = ce.resources(SMALL, output)
    assert used["GAIL"] == "640 expert labels, 15360 env steps, no dynamics model"  # 20 x 16 x (32 + 16)
    assert used["DAgger"] == "640 expert labels, 480 env steps, no dynamics model"  # rounds 1-3 of 5 episodes x 32
    assert used["MaxEnt IRL"] == "640 expert labels, 0 env steps, known dynamics"
    np.testing.assert_array_equal(output.reset_cliff.expert_labels, np.tile(20 * np.array(SMALL.horizons), (5, 1)))


def test_checks_hold_on_the_small_sweep(small):
    output, _ = small
    identities = {c.statement: c for c in ce.checks(SMALL, output)[1:]}
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
    np.testing.assert_array_equal(loaded.lava_lake.visits, output.lava_lake.visits)
    assert [c["verdict"] for c in summary["criteria"]] == [c.verdict for c in result.criteria]
    assert {p.suffix for p in common.replot(ce, tmp_path, tmp_path / "again")} == {".png", ".pdf"}


# -- criteria and checks on hand-built outputs (no training) ---------------------------------------

QUICK = ce.Config.quick()


def hand_output(config, cliff, standard=None, visits=None):
    """An Output from gap arrays ``[n_seeds, M, P]`` (errors 0; the lake and Standard imitation as given)."""
    standard = cliff if standard is None else standard

    def scores(gap, errors=None):
        n, M, P = gap.shape
        errors = np.zeros_like(gap) if errors is None else errors
        v = np.full((n, M, 2), max(config.horizons) / 2) if visits is None else visits
        return SweepScores(gap, errors, errors, v, np.zeros((M, P), int), np.zeros((M, P), int))

    h = np.asarray(config.horizons, dtype=float)
    return ce.Output(scores(cliff), scores(cliff), scores(standard, standard / h), np.ones(2))


def curves(config, growth, scale, n_seeds=24, noise=0.1, seed=0):
    """``[n_seeds, M, P]``: ``scale[m] * growth(H)`` times a lognormal noise per seed."""
    rng = np.random.default_rng(seed)
    h = np.asarray(config.horizons, dtype=float)
    base = np.asarray(scale, dtype=float)[None, :, None] * growth(h)[None, None, :]
    return base * np.exp(noise * rng.standard_normal((n_seeds, len(METHODS), len(h))))


def verdicts(config, output):
    return [c.verdict for c in ce.criteria(config, output)]


def good_output(config=QUICK):
    # BC ~ H², IRL never falls, GAIL 1% of BC with one collapsed seed, DAgger 1.5 x BC; the control linear.
    cliff = curves(config, lambda h: h**2, [1e-3, 1e-4, 1.5e-3, 0.0, 1e-5])
    cliff[0, METHODS.index("GAIL")] = 0.9 * np.asarray(config.horizons)  # one collapsed GAIL run
    return hand_output(config, cliff, curves(config, lambda h: h, [0.03] * 5, seed=1))


def test_a_good_output_is_supported_on_every_criterion():
    assert verdicts(QUICK, good_output()) == [SUPPORTED] * 5


def test_flat_curves_identical_methods_are_not_supported():
    flat = curves(QUICK, lambda h: np.ones_like(h), [1.0] * 5)  # no growth, every method the same
    v = verdicts(QUICK, hand_output(QUICK, flat))
    assert v[:4] == [NOT_SUPPORTED] * 4  # slope 0 on both MDPs; IRL/BC = GAIL/BC = 1
    assert v[4] == SUPPORTED  # DAgger as bad as BC: what that criterion claims, not a null


def test_compounding_in_the_control_is_not_supported():
    quadratic = curves(QUICK, lambda h: h**2, [1e-3] * 5)
    assert verdicts(QUICK, hand_output(QUICK, quadratic))[1] == NOT_SUPPORTED


def test_nothing_to_measure_is_undetermined():
    """BC never errs: the slopes and every ratio to BC's gap are undefined, not successes."""
    zeros = np.zeros((24, len(METHODS), len(QUICK.horizons)))
    assert verdicts(QUICK, hand_output(QUICK, zeros)) == [UNDETERMINED] * 5


def test_gail_with_a_typical_gap_like_bcs_is_not_supported_whatever_a_few_seeds_do():
    cliff = curves(QUICK, lambda h: h**2, [1e-3, 1e-4, 1.5e-3, 0.0, 1e-3])
    cliff[:3, METHODS.index("GAIL")] = 0.0  # three lucky seeds do not move an interquartile mean
    assert verdicts(QUICK, hand_output(QUICK, cliff))[3] == NOT_SUPPORTED


def test_dagger_that_learns_is_not_supported():
    cliff = curves(QUICK, lambda h: h**2, [1e-3, 1e-4, 1e-5, 0.0, 1e-5])
    assert verdicts(QUICK, hand_output(QUICK, cliff))[4] == NOT_SUPPORTED


def test_too_few_seeds_for_a_bootstrap_is_undetermined():
    few = good_output(dataclasses.replace(QUICK, n_seeds=5))
    few = few._replace(reset_cliff=few.reset_cliff._replace(gap=few.reset_cliff.gap[:5]),
                       standard_imitation=few.standard_imitation._replace(gap=few.standard_imitation.gap[:5]))
    assert verdicts(QUICK, few) == [UNDETERMINED] * 5


def test_closed_form_check_needs_agreement_and_precision():
    expected, _ = ce.expected_bc_gap(QUICK)
    rng = np.random.default_rng(3)
    i = METHODS.index("BC (time-indexed)")

    def verdict(last_gaps):
        cliff = np.zeros((len(last_gaps), len(METHODS), len(QUICK.horizons)))
        cliff[:, i, -1] = last_gaps
        return ce.checks(QUICK, hand_output(QUICK, cliff))[0].verdict

    assert verdict(expected[-1] + 0.05 * expected[-1] * rng.standard_normal(100)) == SUPPORTED
    assert verdict(np.zeros(100)) == NOT_SUPPORTED  # a learner that never falls
    assert verdict(2 * expected[-1] + 0.05 * rng.standard_normal(100)) == NOT_SUPPORTED
    assert verdict(expected[-1] + 3 * expected[-1] * rng.standard_normal(10)) == UNDETERMINED  # too noisy


def test_identity_checks_fail_on_inconsistent_arrays():
    output = good_output()
    assert [c.verdict for c in ce.checks(QUICK, output)[1:]] == [SUPPORTED, SUPPORTED]
    wrong_visits = output._replace(lava_lake=output.lava_lake._replace(visits=output.lava_lake.visits * 1.01))
    assert ce.checks(QUICK, wrong_visits)[1].verdict == NOT_SUPPORTED
    std = output.standard_imitation
    shifted = std._replace(error_on_own_states=std.error_on_expert_states + 1e-3)
    wrong_errors = output._replace(standard_imitation=shifted)
    assert ce.checks(QUICK, wrong_errors)[2].verdict == NOT_SUPPORTED


@pytest.mark.parametrize("n", [5, 8, 24, 100])
def test_the_fast_interquartile_mean_is_scipys_trimmed_mean(n):
    from scipy.stats import trim_mean

    from toyrlhf.stats import iqm

    sample = np.random.default_rng(n).lognormal(size=n)
    sample[0] = 55.0  # a collapsed run
    assert iqm(sample) == pytest.approx(float(trim_mean(sample, 0.25)), rel=1e-12)
    assert iqm(sample) < np.mean(sample)
