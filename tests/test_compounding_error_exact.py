"""The exact compounding-error sweep's published numbers: Rajaraman et al.'s exponents, Ross & Bagnell's 1/2,
Ross, Gordon & Bagnell's u T ε bound; their criteria on null data."""

import dataclasses
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toyrlhf import tabular
from toyrlhf.algorithms import bc
from toyrlhf.demonstrations import Demonstrations
from toyrlhf.envs import toy_mdps
from toyrlhf.experiments import compounding_error_exact as cee
from toyrlhf.experiments.common import NOT_SUPPORTED, SUPPORTED, UNDETERMINED

QUICK = cee.Config.quick()
RAJARAMAN = slice(5, 8)  # criteria 6-8


@pytest.fixture(scope="module")
def quick():
    return cee.compute(QUICK)


def test_rajaraman_instance_has_their_reset_distribution():
    mdp = toy_mdps.rajaraman_lower_bound(4, n_states=6, n_demonstrations=9, pad_states=2)
    np.testing.assert_allclose(mdp.init, [0.1, 0.1, 0.1, 0.1, 0.6, 0, 0, 0])
    assert bool(mdp.terminal[-1]) and not bool(mdp.terminal[:-1].any())
    assert float(tabular.evaluate(mdp, tabular.solve(mdp).policy)) == 4.0  # the expert never falls
    P = np.asarray(mdp.P)
    np.testing.assert_allclose(P[:7, 0, 7], 1.0)  # action 0 falls everywhere
    with pytest.raises(ValueError, match="n_demonstrations"):
        toy_mdps.rajaraman_lower_bound(4, n_states=20, n_demonstrations=5)
    with pytest.raises(ValueError, match="n_states"):
        toy_mdps.rajaraman_lower_bound(4, n_states=1, n_demonstrations=5)


@pytest.mark.parametrize(("n_states", "n_demos", "horizon"), [(4, 3, 3), (5, 2, 2), (3, 1, 4)])
def test_expected_gap_is_the_average_over_every_data_set(n_states, n_demos, horizon):
    """E_D[J(expert) - J(BC(D))] over all data sets, each BC policy evaluated exactly, equals
    bc_expected_gap (missing mass + multilinearity) and the Trap formula at μ = Σ ρ (1-ρ)^N."""
    mdp = toy_mdps.rajaraman_lower_bound(horizon, n_states, n_demos)
    rho = np.asarray(mdp.init)[:-1]
    G = len(rho)
    grids = np.array(list(itertools.product(range(G), repeat=n_demos * horizon))).reshape(-1, n_demos, horizon)
    probs = np.prod(rho[grids], axis=(1, 2))
    assert probs.sum() == pytest.approx(1.0, abs=1e-12)
    ones = jnp.ones(grids.shape[1:], bool)

    def value(states):
        demos = Demonstrations(states, jnp.ones_like(states), ones * 1.0, ones)  # the expert plays 1
        return tabular.evaluate(mdp, bc.fit_tabular(demos, G + 1, 2, time_indexed=True, default_action=0))

    values = np.asarray(jax.jit(jax.vmap(value))(jnp.asarray(grids)))
    enumerated = float(np.sum(probs * (horizon - values)))
    expert = tabular.solve(mdp).policy[0]
    exact = np.asarray(cee.bc_expected_gap(mdp, expert, n_demos, default_action=0))
    assert exact[-1] == pytest.approx(enumerated, abs=1e-12)
    mu = float(np.sum(rho * (1 - rho) ** n_demos))
    np.testing.assert_allclose(exact, cee.trap_closed_form(mu, np.arange(1, horizon + 1)), rtol=1e-12, atol=1e-15)


def test_the_fitted_exponents_come_from_the_exact_gaps(quick):
    # Every grid point of the output is the exact expected gap of the unpadded instance ...
    H = max(QUICK.rajaraman_horizons)
    for i, j in [(0, 0), (len(QUICK.rajaraman_n_states) - 1, len(QUICK.rajaraman_n_demos) - 1)]:
        S, N = QUICK.rajaraman_n_states[i], QUICK.rajaraman_n_demos[j]
        mdp = toy_mdps.rajaraman_lower_bound(H, S, N)
        exact = cee.bc_expected_gap(mdp, tabular.solve(mdp).policy[0], N)
        np.testing.assert_allclose(quick.rajaraman_gap[i, j], exact, rtol=1e-12)
        rho = np.asarray(mdp.init)
        assert quick.rajaraman_fall[i, j] == pytest.approx(np.sum(rho * (1 - rho) ** N), rel=1e-12)
    # ... and the exponents are read from those arrays: an exact power law gives exactly its exponents.
    S = np.asarray(QUICK.rajaraman_n_states, float)[:, None, None]
    N = np.asarray(QUICK.rajaraman_n_demos, float)[None, :, None]
    T = np.arange(1, H + 1)[None, None, :]
    for a, b, c in [(-1, 1, 2), (-0.5, 2, 1.5)]:
        fake = quick._replace(rajaraman_gap=0.2 * N**a * S**b * T**c)
        fit = cee.rajaraman_exponents(QUICK, fake)
        for v, want in zip(("N", "|S|", "H"), (a, b, c)):
            assert fit["exponent"][v] == pytest.approx(want, abs=1e-9)
            np.testing.assert_allclose(fit["local"][v], want, atol=1e-9)
    fit = cee.rajaraman_exponents(QUICK, quick)
    measured = [c.measured for c in cee.criteria(QUICK, quick)[RAJARAMAN]]
    assert measured == [fit["exponent"][v] for v in ("N", "|S|", "H")]
    assert fit["n_points"] >= 10


def test_recoverability_by_horizon_is_tabular_recoverability(quick):
    mdps = cee.build_mdps(QUICK)
    for name in ("Trap", "Lane"):
        m, mdp = cee.MDPS.index(name), mdps[name]
        expert = cee.stationary_expert(mdp)
        for T in (1, 7, 64):
            want = float(tabular.recoverability(mdp.with_horizon(T), expert))
            assert quick.recoverability_by_horizon[m, T - 1] == pytest.approx(want, abs=1e-12)
    lane = cee.MDPS.index("Lane")
    assert quick.recoverability_by_horizon[lane, -1] == 2.0  # one step away and one back
    own = quick.own_error[lane, :, 1]
    np.testing.assert_allclose(own, np.broadcast_to(np.asarray(QUICK.epsilons)[:, None], own.shape), rtol=1e-9)


def test_the_quick_output_supports_every_criterion_and_check(quick):
    for c in cee.criteria(QUICK, quick) + cee.checks(QUICK, quick):
        assert c.verdict == SUPPORTED, c.line()
    assert cee.trap_limit_ratio(QUICK, quick) == pytest.approx(0.5, abs=2e-3)
    assert 0.4 < cee.dagger_bound_ratio(QUICK, quick) < 1.0


def verdicts(output, which=RAJARAMAN):
    return [c.verdict for c in cee.criteria(QUICK, output)[which]]


def test_rajaraman_criteria_on_null_data_are_not_supported(quick):
    flat = quick._replace(rajaraman_gap=np.full_like(quick.rajaraman_gap, 0.3))  # no dependence on anything
    assert verdicts(flat) == [NOT_SUPPORTED] * 3
    H = np.arange(1, quick.rajaraman_gap.shape[-1] + 1)
    saturated = quick._replace(rajaraman_gap=np.broadcast_to(H * 1.0, quick.rajaraman_gap.shape))  # gap = H
    assert verdicts(saturated) == [NOT_SUPPORTED] * 3
    noise = np.random.default_rng(0).lognormal(0, 1, quick.rajaraman_gap.shape)
    assert SUPPORTED not in verdicts(quick._replace(rajaraman_gap=quick.rajaraman_gap * noise))
    nothing_in_region = dataclasses.replace(QUICK, rajaraman_fit_max_load=1e-9)
    assert [c.verdict for c in cee.criteria(nothing_in_region, quick)[RAJARAMAN]] == [UNDETERMINED] * 3


def test_limit_and_dagger_checks_on_null_data_are_not_supported(quick):
    T = np.arange(1, QUICK.max_horizon + 1)
    eps = np.asarray(QUICK.limit_epsilons)[:, None]
    linear = quick._replace(trap_limit_gap=eps * T)  # no compounding: gap / (εT²) = 1/T
    assert cee.checks(QUICK, linear)[2].verdict == NOT_SUPPORTED
    lane = cee.MDPS.index("Lane")
    gap = quick.gap.copy()
    gap[lane, :, 1] = np.asarray(QUICK.epsilons)[:, None] * T**2  # a DAgger that compounds like BC
    assert cee.checks(QUICK, quick._replace(gap=gap))[3].verdict == NOT_SUPPORTED


def test_config_rejects_bad_values_naming_the_field():
    for field, value in [
        ("limit_epsilons", ()),
        ("limit_epsilons", (2.0,)),
        ("rajaraman_n_states", (32,)),
        ("rajaraman_n_states", (64, 32)),
        ("rajaraman_n_states", (2, 8)),
        ("rajaraman_n_demos", (8, 16)),  # fewer than |S| - 3
        ("rajaraman_horizons", (0, 4)),
        ("rajaraman_fit_max_load", 0.0),
        ("default_action", 1),
    ]:
        with pytest.raises(ValueError, match=field):
            dataclasses.replace(QUICK, **{field: value})
    cee.Config()  # the full settings are valid


def test_an_output_without_the_published_numbers_leaves_them_undetermined(quick):
    old = cee.Output(quick.gap, quick.mean_error, quick.reward_range, quick.recoverability)
    assert verdicts(old) == [UNDETERMINED] * 3
    assert [c.verdict for c in cee.checks(QUICK, old)[2:]] == [UNDETERMINED] * 2
    assert [c.verdict for c in cee.criteria(QUICK, old)[:5]] == [SUPPORTED] * 5  # the slopes do not need them
