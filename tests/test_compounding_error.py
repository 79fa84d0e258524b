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
