"""bc-vs-irl-data: the tiling trick is exact, the budgets are counted, the sweep's learners learn (one
module-scoped compute on small shapes), and every criterion and check against hand-built null data."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toyrlhf import demonstrations as demo_lib
from toyrlhf import tabular
from toyrlhf.algorithms import bc, dagger, experts, gail, maxent_irl
from toyrlhf.envs import tabular_env, toy_mdps
from toyrlhf.experiments import bc_vs_irl_data as x
from toyrlhf.experiments import common
from toyrlhf.experiments import imitation_sweep as sweep
from toyrlhf.experiments.common import NOT_SUPPORTED, SUPPORTED, UNDETERMINED
from toyrlhf.experiments.imitation_sweep import METHODS, SweepScores


@pytest.fixture(scope="module")
def cliff():
    mdp = toy_mdps.reset_cliff(6, n_good=5)
    return mdp, sweep.stationary_expert(mdp)


@pytest.mark.parametrize("n", [1, 2, 4])
def test_first_n_tiled_keeps_normalised_counts_of_the_first_n_episodes(cliff, n):
    mdp, expert = cliff
    demos = demo_lib.sample_demonstrations(jax.random.key(3), mdp, expert, 8)
    tiled = sweep.first_n_tiled(demos, jnp.asarray(n))
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


def test_tiling_leaves_gails_discriminator_loss_unchanged(cliff):
    """GAIL on the first n episodes tiled to 4 rows is GAIL on those n: its discriminator normalises the
    expert term by its total weight (checked at a random discriminator, up to float32 round-off)."""
    mdp, expert = cliff
    keys = jax.random.split(jax.random.key(0), 3)
    env, env_params = tabular_env(mdp, "index")
    pieces = gail.make_gail(sweep.MethodSettings(gail_updates=2).gail_config(), env, env_params)
    demos = demo_lib.sample_demonstrations(keys[0], mdp, tabular.time_indexed(mdp, expert), 4)
    expert_tiled = pieces.init(keys[1], sweep.first_n_tiled(demos, 1)).expert
    expert_first = pieces.init(keys[1], demo_lib.Demonstrations(*(f[:1] for f in demos))).expert
    table = jax.random.normal(keys[2], (mdp.n_states, mdp.n_actions), jnp.float32)
    learner_logits = table[jnp.arange(mdp.n_states) % mdp.n_states, 0]

    def loss(e):
        return gail.discriminator_loss(table[e.obs, e.action], learner_logits, e.weight, jnp.ones_like(learner_logits))

    assert expert_tiled.obs.shape[0] == 4 * expert_first.obs.shape[0]
    np.testing.assert_allclose(loss(expert_tiled), loss(expert_first), rtol=1e-6)


def test_config_rejects_bad_values_naming_the_field():
    with pytest.raises(ValueError, match="divide the largest"):
        x.Config(n_demos=(4, 12, 16))
    with pytest.raises(ValueError, match="multiples of dagger_rounds"):
        x.Config(n_demos=(2, 4), dagger_rounds=4)
    full = x.Config()
    for field, value, error in [
        ("n_demos", (8, 4), ValueError), ("n_demos", (4,), ValueError), ("horizon", 0, ValueError),
        ("n_seeds", 2.0, TypeError), ("cartpole_episodes", (1, 3, 4), ValueError),
        ("cartpole_episodes", (1, 32), ValueError), ("cartpole_seeds", 17, ValueError),
        ("cartpole_bc_steps", 0, ValueError), ("default_action", 4, ValueError), ("grid_slip", -0.1, ValueError),
        ("irl_steps", 0, ValueError), ("seed", -2, ValueError), ("lake_map", (), TypeError),
        ("cartpole_eval_every", 7, ValueError), ("cartpole_last_checkpoints", 11, ValueError),
        ("cartpole_last_checkpoints", 0, ValueError), ("cartpole_eval_episodes", 0, ValueError),
    ]:
        with pytest.raises(error, match=field):
            dataclasses.replace(full, **{field: value})
    quick = x.Config.quick()
    assert quick.n_seeds >= 8 and min(quick.cartpole_episodes) == 1  # the bootstrap criteria can be decided


def test_only_maxent_irl_reports_using_the_known_dynamics(cliff):
    """The sweep's KNOWN_DYNAMICS agrees with each algorithm's own Resources flag."""
    mdp, expert = cliff
    demos = demo_lib.sample_demonstrations(jax.random.key(0), mdp, tabular.time_indexed(mdp, expert), 4)
    flags = {
        "BC (time-indexed)": bc.tabular_resources(demos).known_dynamics,
        "DAgger": dagger.make_train(dagger.DAggerConfig(n_rounds=2, episodes_per_round=2), mdp, expert)(
            jax.random.key(1)).resources.known_dynamics,
        "MaxEnt IRL": maxent_irl.make_train(maxent_irl.MaxEntIRLConfig(n_steps=2), mdp)(demos).resources.known_dynamics,
    }
    # Of the five methods this experiment runs, only MaxEnt IRL plans in the known dynamics.
    assert {m for m, used in flags.items() if bool(used)} == set(sweep.KNOWN_DYNAMICS) & set(METHODS) == {"MaxEnt IRL"}


def test_expected_budgets_count_labels_env_steps():
    config = x.Config(n_demos=(4, 8), horizon=10)
    budget = x.expected_budgets(config)
    np.testing.assert_array_equal(budget["expert_labels"], np.tile([40, 80], (len(METHODS), 1)))
    assert budget["env_steps"][METHODS.index("DAgger")].tolist() == [30, 60]  # rounds 1..3 of N/4 episodes
    gail_row = METHODS.index("GAIL")
    assert budget["env_steps"][gail_row].tolist() == [60 * 16 * 48] * 2  # GAILConfig.tabular(): 60 x 16 x (32 + 16)
    assert budget["env_steps"].sum() == 90 + 2 * 60 * 16 * 48


def test_cartpole_streams_give_every_seed_its_own_first_episode():
    config = x.Config(cartpole_seeds=16)
    demos, _ = experts.committed_cartpole_demonstrations()
    streams = x.cartpole_streams(config, demos)
    assert streams.observations.shape == (16, 16, 500, 4)
    for s in (0, 5, 15):
        np.testing.assert_array_equal(np.asarray(streams.observations[s, 0]), np.asarray(demos.observations[s]))
        np.testing.assert_array_equal(np.asarray(streams.actions[s, 1]), np.asarray(demos.actions[(s + 1) % 16]))
    firsts = np.asarray(streams.observations[:, 0, 0])
    assert len(np.unique(firsts, axis=0)) == 16


# -- the experiment on small shapes: one compute, shared by the tests below ----------------------

# The settings of notebooks/bc_vs_irl.ipynb with QUICK = True: the notebook, run later in the same session,
# loads these compiled programs from the session's compilation cache instead of compiling them.
SMALL = x.Config(n_demos=(4, 16, 64), horizon=16, n_seeds=24, irl_steps=40, gail_updates=20,
                 cartpole_episodes=(1, 2), cartpole_seeds=2, cartpole_gail_updates=2, cartpole_eval_every=1,
                 cartpole_last_checkpoints=2, cartpole_eval_episodes=2)


@pytest.fixture(scope="module")
def small():
    clock = common.Clock()
    return x.compute(SMALL, clock), clock


def test_compute_compiles_one_program_per_method_family(small):
    output, clock = small
    assert clock.n_compiles == 1 + len(SMALL.cartpole_episodes) + 1  # lava lake, MLP BC per n, GAIL
    assert common.nonfinite_fields(output) == []
    assert output.lava_lake.gap.shape == (SMALL.n_seeds, len(METHODS), len(SMALL.n_demos))


def test_bc_improves_with_data_and_both_irl_methods_beat_it_with_little(small):
    """Lava lake, H = 16: time-indexed BC's gap falls with N; MaxEnt IRL's and GAIL's are below half of it at N = 4."""
    output, _ = small
    bc_time = sweep.gaps_of(output.lava_lake, "BC (time-indexed)").mean(0)
    assert np.all(np.diff(bc_time) < 0), bc_time
    for method in sweep.IRL_METHODS:
        other = sweep.gaps_of(output.lava_lake, method).mean(0)
        assert other[0] < 0.5 * bc_time[0], (method, other, bc_time)
    # BC's own error is measured on the expert's states: it shrinks as the data grow.
    errors = output.lava_lake.error_on_expert_states[:, METHODS.index("BC (time-indexed)")].mean(0)
    assert errors[-1] < errors[0]


def test_sweep_gaps_are_the_exact_gaps_of_the_methods_trained_directly(small):
    """BC on the first n (untiled) episodes and DAgger with the sweep's key, evaluated by tabular.evaluate:
    the sweep's gaps for the first two data sets, to 1e-9."""
    output, _ = small
    _, mdp = x.lake(SMALL)
    expert = sweep.stationary_expert(mdp)
    j_expert = float(tabular.evaluate(mdp, expert))
    S, A = mdp.n_states, mdp.n_actions
    for i, key in enumerate(sweep.seed_keys(SMALL.seed, SMALL.n_seeds)[:2]):
        demos = sweep.demonstrations_for(key, mdp, expert, max(SMALL.n_demos))
        for j, n in enumerate(SMALL.n_demos):
            first = demo_lib.Demonstrations(*(f[:n] for f in demos))
            policy = bc.fit_tabular(first, S, A, time_indexed=True, default_action=0)
            gap = j_expert - float(tabular.evaluate(mdp, policy))
            assert output.lava_lake.gap[i, METHODS.index("BC (time-indexed)"), j] == pytest.approx(gap, abs=1e-9)
        n = SMALL.n_demos[0]
        run = dagger.make_train(dagger.DAggerConfig(n_rounds=4, episodes_per_round=n // 4, default_action=0),
                                mdp, tabular.time_indexed(mdp, expert))(jax.random.split(key)[1])
        gap = j_expert - float(tabular.evaluate(mdp, run.policy))
        assert output.lava_lake.gap[i, METHODS.index("DAgger"), 0] == pytest.approx(gap, abs=1e-9)


def test_checks_hold_and_budgets_are_each_methods_own_counts(small):
    output, _ = small
    assert [c.verdict for c in x.checks(SMALL, output)] == [SUPPORTED] * 3
    dagger_row = output.lava_lake.env_steps[METHODS.index("DAgger")]
    assert dagger_row.tolist() == [3 * 1 * 16, 3 * 4 * 16, 3 * 16 * 16]  # rounds 1-3 of N/4 episodes x 16 steps
    assert output.lava_lake.env_steps[METHODS.index("GAIL")].tolist() == [20 * 16 * 48] * 3


def test_cartpole_part_counts_labels_and_env_steps_and_bc_balances(small):
    output, _ = small
    cart = output.cartpole
    assert cart.mlp_bc.shape == (2, 2, 2)  # [seeds, episodes, eval episodes]
    assert cart.gail.shape == (2, 2, 2, 2)  # [seeds, episodes, last checkpoints, eval episodes]
    assert cart.gail_disc_loss.shape == cart.gail_train_return.shape == (2, 2, 2)  # [seeds, episodes, rounds]
    assert np.all(cart.gail_disc_loss > 0)
    # The committed expert balances all 500 steps: every demonstrated step is one label.
    np.testing.assert_array_equal(cart.expert_labels, [[500, 1000], [500, 1000]])
    np.testing.assert_array_equal(cart.expert_episode_returns, np.full(16, 500.0))
    assert int(cart.gail_env_steps) == 2 * 16 * (128 + 16)  # GAILConfig.cartpole(): 16 envs x (128 PPO + 16 disc)
    # 500 full-batch Adam steps on one expert episode already balance far better than chance (~20).
    assert cart.mlp_bc[:, 0].mean() > 50, cart.mlp_bc[:, 0]


def test_figure_is_redrawn_from_the_saved_files(small, tmp_path):
    import matplotlib.pyplot as plt

    output, clock = small
    figure = x.plot(SMALL, output)
    result = common.ExperimentResult(x.NAME, x.CLAIM, SMALL, output, x.criteria(SMALL, output),
                                     x.checks(SMALL, output), figure, clock.totals(), x.measurements(SMALL, output))
    common.write_result(result, tmp_path)
    plt.close(figure)
    config, loaded, summary = common.load_result(x, tmp_path)
    assert config == SMALL
    np.testing.assert_array_equal(loaded.cartpole.gail, output.cartpole.gail)
    assert [c["verdict"] for c in summary["criteria"]] == [c.verdict for c in result.criteria]
    assert {p.suffix for p in common.replot(x, tmp_path, tmp_path / "again")} == {".png", ".pdf"}


# -- criteria and checks on hand-built outputs (no training) ---------------------------------------

QUICK = x.Config.quick()


def hand_output(config, gaps, bc_returns, gail_returns):
    """An Output from gaps ``[n_seeds, M, n_N]``, BC returns ``[seeds, n_ep, n_eval]`` and GAIL's
    ``[seeds, n_ep, K, n_eval]`` (a 3-d array is repeated over the K checkpoints)."""
    n, M, P = gaps.shape
    budget = x.expected_budgets(config)
    scores = SweepScores(gaps, np.zeros_like(gaps), np.zeros_like(gaps), np.full((n, M, 2), config.horizon / 2),
                         budget["expert_labels"], budget["env_steps"])
    if gail_returns.ndim == 3:
        gail_returns = np.repeat(gail_returns[:, :, None], config.cartpole_last_checkpoints, axis=2)
    seeds, n_ep = bc_returns.shape[:2]
    labels = np.tile(500 * np.asarray(config.cartpole_episodes), (seeds, 1))
    curve = np.full((seeds, n_ep, config.cartpole_gail_updates), gail.CHANCE_LOSS)
    cart = x.CartPoleReturns(bc_returns, gail_returns, labels,
                             np.asarray(sweep.gail_env_steps(config.cartpole_gail_config())), np.full(16, 500.0),
                             curve, np.zeros_like(curve))
    return x.Output(scores, np.asarray(30.0), cart)


def lake_gaps(config, scale, slope=-0.5, n_seeds=24, noise=0.1, seed=0):
    rng = np.random.default_rng(seed)
    n = np.asarray(config.n_demos, dtype=float)
    base = np.asarray(scale, dtype=float)[None, :, None] * (n / n[0])[None, None, :] ** slope
    return base * np.exp(noise * rng.standard_normal((n_seeds, len(METHODS), len(n))))


def returns(config, level, n_seeds=3, noise=5.0, seed=1):
    """``[n_seeds, n_ep, n_eval]`` returns around ``level`` (a number, or one per number of episodes)."""
    rng = np.random.default_rng(seed)
    shape = (n_seeds, len(config.cartpole_episodes), config.cartpole_eval_episodes)
    level = np.broadcast_to(np.asarray(level, dtype=float), (len(config.cartpole_episodes),))[None, :, None]
    return np.clip(level + noise * rng.standard_normal(shape), 0, 500)


def verdicts(config, output):
    return [c.verdict for c in x.criteria(config, output)]


GOOD_LAKE = [18.0, 8.0, 20.0, 0.02, 0.5]


def good_bc(config):  # poor from one episode, at expert level from the most
    return returns(config, [200.0] + [480.0] * (len(config.cartpole_episodes) - 1))


def test_a_good_output_is_supported_on_every_criterion():
    gaps = lake_gaps(QUICK, GOOD_LAKE)
    gaps[0, METHODS.index("GAIL")] = 30.0  # a collapsed GAIL run does not move an interquartile mean
    output = hand_output(QUICK, gaps, good_bc(QUICK), returns(QUICK, 490.0))
    assert verdicts(QUICK, output) == [SUPPORTED] * 6


def test_identical_methods_and_flat_curves_are_not_supported():
    same = lake_gaps(QUICK, [10.0] * 5, slope=0.0, noise=0.0)  # every method the same, nothing changes with N
    tie = returns(QUICK, 300.0, noise=0.0)
    assert verdicts(QUICK, hand_output(QUICK, same, tie, tie)) == [NOT_SUPPORTED] * 6


def test_ties_at_the_ceiling_and_noisy_identical_methods_are_not_supported():
    noisy = lake_gaps(QUICK, [10.0] * 5, slope=0.0)  # identical methods up to noise, flat in N
    ceiling = returns(QUICK, 500.0, noise=0.0)
    v = verdicts(QUICK, hand_output(QUICK, noisy, ceiling, ceiling))
    assert SUPPORTED not in v[:4]
    assert v[3] == NOT_SUPPORTED  # both censored at 500: a tie, not a win
    # at the ceiling up to evaluation noise: still no win
    assert verdicts(QUICK, hand_output(QUICK, noisy, returns(QUICK, 500.0), returns(QUICK, 500.0)))[3] != SUPPORTED
    assert v[4:] == [SUPPORTED] * 2  # both at the expert's return: expert level is what that is


def test_nothing_learns_and_too_few_seeds_are_not_supported():
    # Nothing learns on CartPole: both policies fall at once (~9 steps), pure noise between them.
    v = verdicts(QUICK, hand_output(QUICK, lake_gaps(QUICK, GOOD_LAKE),
                                    returns(QUICK, 9.0, noise=1.0), returns(QUICK, 9.0, noise=1.0, seed=2)))
    assert v[3] != SUPPORTED
    assert v[4:] == [NOT_SUPPORTED] * 2
    # Five seeds: the bootstrap criteria are refused, whatever the data.
    few = hand_output(QUICK, lake_gaps(QUICK, GOOD_LAKE, n_seeds=5), good_bc(QUICK), returns(QUICK, 490.0))
    assert [verdicts(QUICK, few)[i] for i in (1, 2)] == [UNDETERMINED] * 2


def test_gail_is_scored_on_its_last_checkpoints_not_its_best():
    """A GAIL run that touches 500 at one checkpoint and sits at 100 at the others is not at expert level, and
    not above a BC at 300."""
    config = x.Config(cartpole_seeds=10)
    K = config.cartpole_last_checkpoints
    peaky = np.full((10, len(config.cartpole_episodes), K, config.cartpole_eval_episodes), 100.0)
    peaky[:, :, -1] = 500.0
    peaky += np.random.default_rng(0).normal(0, 5, peaky.shape)
    output = hand_output(config, lake_gaps(config, GOOD_LAKE, n_seeds=24),
                         returns(config, 300.0, n_seeds=10), peaky)
    np.testing.assert_allclose(x.gail_scores(config, output.cartpole), peaky.mean((2, 3)))
    assert verdicts(config, output)[3:5] == [NOT_SUPPORTED] * 2
    np.testing.assert_array_equal(x.checkpoint_rounds(config), [60, 70, 80, 90, 100])
    np.testing.assert_array_equal(x.checkpoint_rounds(SMALL), [1, 2])


def test_an_undertrained_bc_baseline_fails_the_control():
    output = hand_output(QUICK, lake_gaps(QUICK, GOOD_LAKE), returns(QUICK, 200.0), returns(QUICK, 490.0))
    assert verdicts(QUICK, output)[5] == NOT_SUPPORTED


def test_bc_that_gets_worse_with_data_is_not_supported():
    worse = lake_gaps(QUICK, GOOD_LAKE, slope=0.3)
    assert verdicts(QUICK, hand_output(QUICK, worse, good_bc(QUICK), returns(QUICK, 490.0)))[1] == NOT_SUPPORTED


def test_identity_checks_fail_on_inconsistent_counts():
    good = hand_output(QUICK, lake_gaps(QUICK, GOOD_LAKE), good_bc(QUICK), returns(QUICK, 490.0))
    assert [c.verdict for c in x.checks(QUICK, good)] == [SUPPORTED] * 3
    s = good.lava_lake
    assert x.checks(QUICK, good._replace(lava_lake=s._replace(visits=s.visits + 0.01)))[0].verdict == NOT_SUPPORTED
    assert x.checks(QUICK, good._replace(lava_lake=s._replace(expert_labels=s.expert_labels * 2)))[1].verdict == \
        NOT_SUPPORTED
    wrong = good._replace(cartpole=good.cartpole._replace(gail_env_steps=np.asarray(1)))
    assert x.checks(QUICK, wrong)[2].verdict == NOT_SUPPORTED
