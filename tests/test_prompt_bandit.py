"""prompt-bandit: exact success values by hand and by Monte Carlo, it learns, criteria on hand-built outputs."""

import dataclasses

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import pytest

from toyrlhf import experiments
from toyrlhf.experiments import common
from toyrlhf.experiments import prompt_bandit as pb
from toyrlhf.experiments.common import NOT_SUPPORTED, SUPPORTED

# idiosyncratic_scale 0: the success model is then well-specified
TINY = dataclasses.replace(pb.Config(), n_seeds=4, table_sizes=(8, 4000), n_test_queries=400, idiosyncratic_scale=0.0)


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    run = common.run_experiment(pb, TINY)
    folder = tmp_path_factory.mktemp("prompt-bandit")
    common.write_result(run, folder)
    plt.close(run.figure)
    return run, folder


def test_registered():
    assert experiments.get(pb.NAME) is pb


def test_exact_values_by_hand_and_by_monte_carlo():
    p = jnp.asarray([[0.1, 0.9, 0.5], [0.8, 0.3, 0.4]])
    choice = jnp.asarray([1, 0])
    assert float(pb.exact_success(p, choice)) == pytest.approx((0.9 + 0.8) / 2)
    assert float(pb.best_single_success(p)) == pytest.approx(max(0.45, 0.6, 0.45))
    assert float(pb.oracle_success(p)) == pytest.approx(0.85)
    assert float(pb.exact_success(p, jnp.asarray([2, 2]))) == pytest.approx(0.45)
    # Monte Carlo: serve uniformly drawn queries with each policy's prompt and count successes
    n = 200_000
    key_q, key_y = jax.random.split(jax.random.key(4))
    q = np.asarray(jax.random.randint(key_q, (n,), 0, 2))
    u = np.asarray(jax.random.uniform(key_y, (n,)))
    for rule in ([1, 0], [2, 0], [1, 1]):
        served = np.asarray(p)[q, np.asarray(rule)[q]]
        exact = float(pb.exact_success(p, jnp.asarray(rule)))
        assert abs(np.mean(u < served) - exact) < 4 * np.sqrt(exact * (1 - exact) / n), rule
    best = int(np.argmax(np.asarray(p).mean(0)))
    hindsight = float(pb.best_single_success(p))
    assert abs(np.mean(u < np.asarray(p)[q, best]) - hindsight) < 4 * np.sqrt(hindsight * (1 - hindsight) / n)
    with pytest.raises(ValueError, match="choice"):
        pb.exact_success(jnp.ones((3, 2)), jnp.zeros(2, jnp.int32))


def test_selection_features_give_a_per_prompt_intercept_and_slope():
    u = jnp.asarray([[1.0, -2.0], [0.5, 3.0], [0.0, 0.0]])
    phi = pb.selection_features(u, 3)
    assert phi.shape == (3, 3, 9)
    theta = jnp.arange(9.0)  # prompt k: intercept 3k, slopes (3k+1, 3k+2)
    expected = jnp.asarray([[3 * k + (3 * k + 1) * x[0] + (3 * k + 2) * x[1] for k in range(3)] for x in u])
    np.testing.assert_allclose(phi @ theta, expected, rtol=1e-6)


def test_it_learns_with_a_large_table_and_counts_rows(result):
    run, _ = result
    s, rows = run.output.success, run.output.table_rows
    assert np.all(rows == np.asarray(TINY.table_sizes))
    assert np.all(s.learned[:, -1] > s.hindsight[:, -1] + 0.1)
    assert np.all(s.oracle[:, -1] - s.learned[:, -1] < 0.03)  # 4000 outcomes, well-specified: near the oracle
    assert np.all(s.learned[:, 0] < s.learned[:, -1])  # 8 outcomes for 40 parameters: far worse
    assert [c.verdict for c in run.checks] == [SUPPORTED] * 3


def test_saved_result_loads_and_redraws(result, tmp_path):
    run, folder = result
    config, output, summary = common.load_result(pb, folder)
    assert config == TINY
    np.testing.assert_array_equal(output.success.learned, run.output.success.learned)
    assert [p.suffix for p in common.replot(pb, folder, tmp_path)] == [".png", ".pdf"]


def hand_output(learned, hindsight, seeds=6):
    rng = np.random.default_rng(0)
    shape = (seeds, 2)
    learned = np.broadcast_to(learned, shape) + 0.01 * rng.standard_normal(shape)
    hindsight = np.broadcast_to(hindsight, shape) + 0.01 * rng.standard_normal(shape)
    success = pb.Success(learned, np.minimum(hindsight, 0.5), hindsight, np.maximum(learned, hindsight) + 0.05)
    return pb.Output(success, np.broadcast_to(TINY.table_sizes, shape), np.zeros(shape))


def test_criterion_on_good_and_null_data():
    assert pb.criteria(TINY, hand_output([0.5, 0.7], [0.55, 0.55]))[0].verdict == SUPPORTED
    # the learned selection is the best single prompt: a tie, not a success
    same = hand_output([0.5, 0.55], [0.55, 0.55])
    same = same._replace(success=same.success._replace(learned=same.success.hindsight))
    assert pb.criteria(TINY, same)[0].verdict == NOT_SUPPORTED
    # nothing learns: per-query selection at chance, below the best single prompt
    assert pb.criteria(TINY, hand_output([0.4, 0.4], [0.55, 0.55]))[0].verdict == NOT_SUPPORTED
    # pure noise around the best single prompt
    rng = np.random.default_rng(1)
    noise = hand_output([0.55, 0.55], [0.55, 0.55])
    noise = noise._replace(success=noise.success._replace(learned=0.55 + 0.05 * rng.standard_normal((6, 2))))
    assert pb.criteria(TINY, noise)[0].verdict != SUPPORTED


def test_checks_can_fail():
    out = hand_output([0.5, 0.7], [0.55, 0.55])
    out = out._replace(success=out.success._replace(table_best=out.success.hindsight + 0.1))
    assert pb.checks(TINY, out)[0].verdict == NOT_SUPPORTED


def test_bad_input_names_the_field():
    for field, value in (("table_sizes", ()), ("table_sizes", (40, 10)), ("n_candidates", 1), ("n_seeds", 1),
                         ("idiosyncratic_scale", -0.1), ("n_test_queries", 0)):
        with pytest.raises(ValueError, match=field):
            dataclasses.replace(TINY, **{field: value})
    with pytest.raises(TypeError, match="success_model"):
        pb.Config(success_model=None)
