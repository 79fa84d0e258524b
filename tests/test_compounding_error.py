"""The compounding-error experiment's closed form, checked by exact enumeration of every data set."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toyrlhf import tabular
from toyrlhf.algorithms import bc
from toyrlhf.demonstrations import Demonstrations
from toyrlhf.envs import toy_mdps
from toyrlhf.experiments.compounding_error import reset_cliff_bc_expected_gap


@pytest.mark.parametrize(("n_demos", "horizon"), [(1, 3), (2, 2), (3, 2)])
def test_reset_cliff_bc_expected_gap_matches_exact_enumeration(n_demos, horizon):
    """E[gap] over all data sets, each BC policy evaluated exactly, equals the closed form.

    Expert demonstrations on Reset Cliff visit a fresh ρ-draw at every step, so a data
    set is the N x T grid of states, with probability the product of their ρ's.
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
        return tabular.evaluate(mdp, bc.fit_tabular(demos, 4, 2, time_indexed=True, default_action=0))

    values = np.asarray(jax.jit(jax.vmap(value))(jnp.asarray(grids)))
    expected_gap = float(np.sum(probs * (j_expert - values)))
    closed, eps = reset_cliff_bc_expected_gap(rho, n_demos, [horizon])
    assert eps == pytest.approx(float(np.sum(rho * (1 - rho) ** n_demos)), abs=1e-15)
    assert closed[0] == pytest.approx(expected_gap, abs=1e-12)


def test_reset_cliff_closed_form_is_the_trap_formula_at_small_eps():
    gaps, eps = reset_cliff_bc_expected_gap(np.full(4, 0.25), 40, np.array([1, 2, 10]))
    np.testing.assert_allclose(gaps, eps * np.array([1, 3, 55]), rtol=10 * eps * 10)  # ≈ ε H(H+1)/2
    zero, eps0 = reset_cliff_bc_expected_gap(np.array([1.0]), 5, [3])
    assert eps0 == 0.0 and zero[0] == 0.0


# -- the sweep's pieces, on small shapes (one module-scoped compile per function) -------------------

from toyrlhf.experiments import compounding_error as ce  # noqa: E402


def test_lava_lake_pays_one_per_step_on_the_floor_and_keeps_the_gridworld_dynamics():
    grid, mdp = ce.lava_lake(horizon=8, slip=0.1)
    terminal = np.asarray(mdp.terminal)
    np.testing.assert_array_equal(terminal, grid.terminal)
    assert terminal.sum() == len(grid.lava_states) + len(grid.goal_states) == 27 + 1
    assert (~terminal).sum() == 35  # the 5 x 7 floor
    np.testing.assert_array_equal(np.asarray(mdp.R), np.where(terminal, 0.0, 1.0)[:, None] * np.ones((1, 4)))
    np.testing.assert_array_equal(np.asarray(mdp.next_states), np.asarray(grid.mdp.next_states))
    np.testing.assert_allclose(np.asarray(mdp.init)[grid.start_states], 1 / 6)
    # The expert stays on the floor almost surely: two slips in a row toward the lava are needed.
    expert = ce.stationary_expert(mdp)
    assert 8 - 0.01 < float(tabular.evaluate(mdp, expert)) <= 8


@pytest.fixture(scope="module")
def cliff_sweep():
    config = ce.Config(n_demos=8, horizons=(2, 4, 8), n_seeds=400, dagger_rounds=2, irl_steps=60)
    mdp = toy_mdps.reset_cliff(8, n_good=4)
    sweeps = ce.make_sweeps(config, mdp, ce.stationary_expert(mdp))
    keys = jax.random.split(jax.random.key(1), config.n_seeds)
    methods = ("BC (time-indexed)", "BC (stationary)", "MaxEnt IRL")
    out = jax.jit(jax.vmap(lambda k: {m: sweeps[m](k) for m in methods}))(keys)
    return config, mdp, {m: jax.tree.map(np.asarray, o) for m, o in out.items()}


def test_time_indexed_bc_sweep_matches_the_closed_form_monte_carlo(cliff_sweep):
    """400 simulated data sets: the mean exact gap at every H within 4 standard errors of E[gap_H]."""
    config, mdp, out = cliff_sweep
    gaps = out["BC (time-indexed)"].gaps
    expected, eps = ce.reset_cliff_bc_expected_gap(np.asarray(mdp.init)[:4], config.n_demos, config.horizons)
    assert eps > 0.05  # small N: the learner really errs
    se = gaps.std(0, ddof=1) / np.sqrt(len(gaps))
    assert np.all(np.abs(gaps.mean(0) - expected) <= 4 * se), (gaps.mean(0), expected, se)
    assert np.all(np.diff(gaps.mean(0)) > 0)


def test_stationary_bc_pools_more_data_and_maxent_irl_does_not_fall(cliff_sweep):
    _, _, out = cliff_sweep
    time_indexed, stationary = out["BC (time-indexed)"].gaps, out["BC (stationary)"].gaps
    # Pooling N h samples sees every state more often than N samples per step: never worse, and
    # strictly better on average at the largest H.
    assert stationary[:, -1].mean() < 0.5 * time_indexed[:, -1].mean()
    # MaxEnt IRL plans through the known dynamics: its gap does not grow with H (its stationary
    # reward also pools the N h samples, so it shrinks) and stays far below time-indexed BC's.
    irl = out["MaxEnt IRL"].gaps.mean(0)
    assert np.all(np.diff(irl) <= 0), irl
    assert irl[-1] < 0.1 * time_indexed[:, -1].mean()


def test_visits_and_errors_are_exact_quantities(cliff_sweep):
    config, mdp, out = cliff_sweep
    H = max(config.horizons)
    for o in out.values():
        np.testing.assert_allclose(o.visits.sum(-1), H, atol=1e-9)  # Σ_t Σ_s d_t(s) = H
        assert np.all((o.errors >= 0) & (o.errors <= 1))
    # A fall costs the step it happens on plus every later step, spent in the bad state, and an
    # episode falls at most once: gap = E[steps in the bad state] + Pr(fall), with Pr(fall) in [0, 1].
    bad = 4  # reset_cliff(n_good=4): the absorbing state
    bc_time = out["BC (time-indexed)"]
    p_fall = bc_time.gaps[:, -1] - bc_time.visits[:, bad]
    assert np.all((p_fall >= -1e-9) & (p_fall <= 1 + 1e-9))
    assert np.all(p_fall[bc_time.gaps[:, -1] > 0] > 0)


# -- GAIL: one compiled program for every horizon ------------------------------------------------


@pytest.fixture(scope="module")
def gail_cliff():
    """GAIL's sweep (horizons 3 and 6, traced) and plain GAIL at horizon 3 (static env, truncated demos)."""
    from toyrlhf.algorithms import gail
    from toyrlhf.demonstrations import sample_demonstrations
    from toyrlhf.envs import tabular_env

    config = ce.Config(n_demos=8, horizons=(3, 6), n_seeds=8, dagger_rounds=2, gail_updates=30)
    mdp = toy_mdps.reset_cliff(6, n_good=4)
    expert = ce.stationary_expert(mdp)
    keys = jax.random.split(jax.random.key(2), config.n_seeds)
    sweeps = ce.make_sweeps(config, mdp, expert)
    out = jax.jit(jax.vmap(lambda k: {m: sweeps[m](k) for m in ("BC (time-indexed)", "GAIL")}))(keys)

    short = toy_mdps.reset_cliff(3, n_good=4)
    gail_config = config.gail_config()
    env, env_params = tabular_env(short, "index")
    train = gail.make_train(gail_config, env, env_params)

    def plain(key):  # what the sweep does at h = 3, written without the traced horizon
        demos = sample_demonstrations(jax.random.split(key)[0], mdp, tabular.time_indexed(mdp, expert), 8)
        result, _ = train(jax.random.fold_in(key, 2), demos.truncate(3))
        policy = gail.tabular_policy(gail_config, result, env_params)
        return tabular.evaluate(short, expert) - tabular.evaluate(short, policy), result.resources

    gaps_3, resources = jax.jit(jax.vmap(plain))(keys)
    return config, jax.tree.map(np.asarray, out), np.asarray(gaps_3), jax.tree.map(np.asarray, resources)


def test_gail_sweep_with_a_traced_horizon_is_plain_gail_at_that_horizon(gail_cliff):
    config, out, gaps_3, resources = gail_cliff
    np.testing.assert_allclose(out["GAIL"].gaps[:, 0], gaps_3, atol=1e-5)
    assert np.all(resources.expert_labels == 8 * 3)
    assert np.all(resources.env_steps == ce.gail_env_steps(config.gail_config()))
    assert ce.resources(config)["GAIL"] == "48 expert labels, 23040 env steps, no dynamics model"  # 30 x 16 x 48


def test_gail_learns_where_bc_falls_on_reset_cliff(gail_cliff):
    """Reset Cliff, 4 good states, N = 8: BC falls on unseen states; GAIL's gap is a fraction of BC's at H = 6."""
    _, out, _, _ = gail_cliff
    bc_gap, gail_gap = out["BC (time-indexed)"].gaps.mean(0), out["GAIL"].gaps.mean(0)
    assert np.all(np.isfinite(out["GAIL"].gaps))
    assert bc_gap[-1] > 0.2, bc_gap  # the data really leaves states unseen
    assert gail_gap[-1] < 0.5 * bc_gap[-1], (gail_gap, bc_gap)
