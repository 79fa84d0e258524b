"""bc-vs-irl-data: the tiling trick is exact, the budgets are counted, and the sweep's learners learn."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toyrlhf import demonstrations as demo_lib
from toyrlhf import tabular
from toyrlhf.algorithms import bc, maxent_irl
from toyrlhf.envs import toy_mdps
from toyrlhf.experiments import bc_vs_irl_data as x
from toyrlhf.experiments.compounding_error import stationary_expert


@pytest.fixture(scope="module")
def cliff():
    mdp = toy_mdps.reset_cliff(6, n_good=5)
    return mdp, stationary_expert(mdp)


@pytest.mark.parametrize("n", [1, 2, 4])
def test_first_n_tiled_keeps_normalised_counts_of_the_first_n_episodes(cliff, n):
    mdp, expert = cliff
    demos = demo_lib.sample_demonstrations(jax.random.key(3), mdp, expert, 8)
    tiled = x.first_n_tiled(demos, jnp.asarray(n))
    assert tiled.n_episodes == 8
    first = demo_lib.Demonstrations(*(f[:n] for f in demos))
    S, A = mdp.n_states, mdp.n_actions
    for time_indexed in (True, False):
        np.testing.assert_array_equal(
            bc.fit_tabular(tiled, S, A, time_indexed=time_indexed, default_action=0),
            bc.fit_tabular(first, S, A, time_indexed=time_indexed, default_action=0),
        )
    np.testing.assert_allclose(
        maxent_irl.empirical_occupancy(tiled, S, A), maxent_irl.empirical_occupancy(first, S, A), atol=1e-12
    )
    # Row n is episode 0 again: episodes n..7 of the draw are left out.
    assert np.all(np.asarray(tiled.observations)[n] == np.asarray(demos.observations)[0])


def test_config_rejects_sizes_that_do_not_tile_or_split_into_rounds():
    with pytest.raises(ValueError, match="divide the largest"):
        x.Config(n_demos=(4, 12, 16))
    with pytest.raises(ValueError, match="multiples of dagger_rounds"):
        x.Config(n_demos=(2, 4), dagger_rounds=4)


def test_budgets_count_labels_env_steps_and_dynamics():
    config = x.Config(n_demos=(4, 8), horizon=10)
    budget = x.budgets(config, np.array([30, 60]))
    np.testing.assert_array_equal(budget["expert_labels"], np.tile([40, 80], (len(x.METHODS), 1)))
    dagger_row = x.METHODS.index("DAgger")
    assert budget["env_steps"][dagger_row].tolist() == [30, 60]
    assert budget["env_steps"].sum() == 90
    assert budget["known_dynamics"][x.METHODS.index("MaxEnt IRL")].all()
    assert budget["known_dynamics"].sum() == 2 * len(x.IRL_METHODS)


def test_dagger_sweep_reports_its_own_env_steps(cliff):
    mdp, expert = cliff
    config = x.Config(n_demos=(4, 8), horizon=6, dagger_rounds=4)
    scores, used = jax.jit(x.make_dagger_sweep(config, mdp, expert, 8))(jax.random.key(0))
    assert int(used.expert_labels) == 8 * 6 and int(used.env_steps) == 3 * 2 * 6  # rounds 1..3 of 2 episodes
    assert not bool(used.known_dynamics)
    assert 0 <= float(scores[0]) <= 6


def test_offline_sweep_bc_improves_with_data_and_irl_beats_it_with_little(cliff):
    """Reset Cliff, 5 good states, H = 6: time-indexed BC's gap falls with N; MaxEnt IRL's is smaller at N = 1."""
    mdp, expert = cliff
    config = x.Config(n_demos=(1, 4, 16), horizon=6, dagger_rounds=1, irl_steps=60)
    keys = jax.random.split(jax.random.key(0), 64)
    scores = np.asarray(jax.jit(jax.vmap(x.make_offline_sweep(config, mdp, expert)))(keys))  # [n, n_N, 3, 3]
    gaps = scores[..., 0]
    bc_time, irl = gaps[:, :, 0].mean(0), gaps[:, :, 2].mean(0)
    assert np.all(np.diff(bc_time) < 0), bc_time
    assert irl[0] < 0.5 * bc_time[0], (irl, bc_time)
    j_expert = float(tabular.evaluate(mdp, expert))
    assert np.all((gaps >= -1e-9) & (gaps <= j_expert + 1e-9))
    # BC's own error is measured on the expert's states: with N = 16 and 5 states it is nearly 0.
    assert scores[:, -1, 0, 1].mean() < scores[:, 0, 0, 1].mean()
