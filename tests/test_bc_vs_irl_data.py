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
    gail_row = x.METHODS.index("GAIL")
    assert budget["env_steps"][gail_row].tolist() == [60 * 16 * 48] * 2  # GAILConfig.tabular(): 60 x 16 x (32 + 16)
    assert budget["env_steps"].sum() == 90 + 2 * 60 * 16 * 48
    assert budget["known_dynamics"][x.METHODS.index("MaxEnt IRL")].all()
    assert budget["known_dynamics"].sum() == 2  # GAIL samples the MDP: only MaxEnt IRL uses the dynamics


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


# -- GAIL on the gridworld sweep ---------------------------------------------------------------


def test_gail_sweep_tiles_exactly_and_beats_bc_with_little_data(cliff):
    """Reset Cliff, 5 good states, H = 6. GAIL on the first n episodes tiled to 4 rows is GAIL on those n
    episodes (its discriminator normalises the expert term); at N = 1 its gap is below time-indexed BC's."""
    from toyrlhf.algorithms import gail
    from toyrlhf.envs import tabular_env

    mdp, expert = cliff
    config = x.Config(n_demos=(1, 4), horizon=6, dagger_rounds=1, gail_updates=30)
    keys = jax.random.split(jax.random.key(0), 16)
    gail_scores = np.asarray(jax.jit(jax.vmap(x.make_gail_sweep(config, mdp, expert)))(keys))  # [n, n_N, 3]
    offline = np.asarray(jax.jit(jax.vmap(x.make_offline_sweep(config, mdp, expert)))(keys))  # [n, n_N, 3, 3]

    # Tiling leaves GAIL's discriminator loss unchanged (up to float32 round-off) at any discriminator.
    env, env_params = tabular_env(mdp, "index")
    pieces = gail.make_gail(config.gail_config(), env, env_params)
    demos = demo_lib.sample_demonstrations(keys[0], mdp, tabular.time_indexed(mdp, expert), 4)
    expert_tiled = pieces.init(keys[1], x.first_n_tiled(demos, 1)).expert
    expert_first = pieces.init(keys[1], demo_lib.Demonstrations(*(f[:1] for f in demos))).expert
    table = jax.random.normal(keys[2], (mdp.n_states, mdp.n_actions), jnp.float32)
    learner_logits = table[jnp.arange(mdp.n_states) % mdp.n_states, 0]

    def loss(e):
        return gail.discriminator_loss(table[e.obs, e.action], learner_logits, e.weight, jnp.ones_like(learner_logits))

    assert expert_tiled.obs.shape[0] == 4 * expert_first.obs.shape[0]
    np.testing.assert_allclose(loss(expert_tiled), loss(expert_first), rtol=1e-6)
    assert np.all(np.isfinite(gail_scores))
    bc_gap, gail_gap = offline[:, 0, 0, 0].mean(), gail_scores[:, 0, 0].mean()
    assert bc_gap > 1.0, bc_gap  # one episode leaves good states unseen at most steps
    assert gail_gap < 0.5 * bc_gap, (gail_gap, bc_gap)


# -- CartPole part (tiny settings: checks the plumbing and the counts, not the returns) ------------


def test_cartpole_part_counts_labels_and_env_steps_and_scores_in_gymnasium():
    config = x.Config(cartpole_episodes=(1, 2), cartpole_seeds=2, cartpole_gail_updates=1, cartpole_eval_episodes=2)
    out = x.run_cartpole(config, x.Progress(enabled=False))
    assert out["returns"].shape == (2, 2, 2, 2)  # [seeds, (MLP BC, GAIL), episodes, eval episodes]
    assert np.all((out["returns"] >= 1) & (out["returns"] <= 500))
    assert out["expert"]["gymnasium_return"] >= 475  # the expert's own Gymnasium check
    # The greedy expert balances all 500 steps: every demonstrated step is one label.
    np.testing.assert_array_equal(out["expert_labels"], [[500, 1000], [500, 1000]])
    assert out["gail_env_steps"] == 1 * 16 * (128 + 16)  # GAILConfig.cartpole(): 16 envs x (128 PPO + 16 disc)
    # One MLP BC epoch of 500 Adam steps on 500 labels already balances better than chance (~20).
    assert out["returns"][:, 0].mean() > 50, out["returns"][:, 0]
    with pytest.raises(ValueError, match="cartpole_episodes"):
        x.Config(cartpole_episodes=(1, 3, 4))
