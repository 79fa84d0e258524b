"""Over-optimisation: the criteria on hand-built curves (null and good), the exact sweep's invariants, bad input."""

import dataclasses

import matplotlib.pyplot as plt
import numpy as np
import pytest

from toyrlhf.experiments import common
from toyrlhf.experiments import overoptimization as oo
from toyrlhf.experiments.common import NOT_SUPPORTED, SUPPORTED
from toyrlhf.experiments.token_setting import TokenSetting

TINY = dataclasses.replace(oo.Config(), n_seeds=4, n_betas=12, max_log2_n=10, rm_steps=600, n_labels=1500)


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    """The contract end to end, computed once: run, write, load back."""
    run = common.run_experiment(oo, TINY)
    folder = tmp_path_factory.mktemp("overoptimization")
    common.write_result(run, folder)
    plt.close(run.figure)
    return run, folder


def test_fit_form_recovers_known_coefficients():
    d = np.linspace(0.1, 3.0, 30)
    for kind in ("bon", "rl"):
        y = oo.form(d, 1.3, 0.4, kind)
        alpha, beta = oo.fit_form(d, y, kind)
        assert alpha == pytest.approx(1.3) and beta == pytest.approx(0.4)
    np.testing.assert_allclose(oo.form(np.array([2.0]), 1.0, 0.5, "bon"), [0.0])  # 2 (1 - 0.5·2)


def test_peak_and_drop_by_hand():
    gold = np.array([[0.0, 2.0, 1.0], [0.0, 4.0, 1.0]])
    peak, drops, se = oo.misspecified_drop(gold)
    assert peak == 1 and np.allclose(drops, [1.0, 3.0]) and se == pytest.approx(np.std([1, 3], ddof=1) / np.sqrt(2))
    assert oo.peak_ratio(gold) == pytest.approx(1.0 / 3.0)
    peak, prominence = oo.peak_prominence(np.array([[0.5, 2.0, 1.0], [0.0, 4.0, 3.5]]))
    assert peak == 1 and np.allclose(prominence, [1.0, 0.5])  # the lower of the rise and the fall
    _, at_end = oo.peak_prominence(np.array([[0.0, 1.0, 2.0], [0.0, 1.5, 2.5]]))
    np.testing.assert_array_equal(at_end, [0.0, 0.0])
    # each seed is measured where the *other* seeds peak: seed 0 at index 2 (1.0, not its own peak 3.0),
    # seeds 1 and 2 at index 1 (the mean of seed 0 and the other is [0, 2, 1.5, 0])
    gold = np.array([[0.0, 3.0, 1.0, 0.0], [0.0, 1.0, 2.0, 0.0], [0.0, 1.0, 2.0, 0.0]])
    _, prominence = oo.peak_prominence(gold)
    np.testing.assert_allclose(prominence, [1.0, 1.0, 1.0])


def test_the_sweep_holds_its_invariants_and_counts_labels(result):
    run, _ = result
    out = run.output
    assert [c.verdict for c in run.checks] == [SUPPORTED] * 4, [c.line() for c in run.checks]
    np.testing.assert_array_equal(out.labels, TINY.n_labels)
    betas, ns = oo.grids(TINY)
    for setting in (out.primary, out.first_planned):
        for method, grid in (("best-of-n", ns), ("KL-tilted", betas)):
            for model in oo.MODELS:
                c = oo.curves(setting, method, model)
                assert c.kl.shape == c.gold.shape == c.proxy.shape == (TINY.n_seeds, len(grid))
                # n = 1 is the reference itself: no KL, no gain
                if method == "best-of-n":
                    np.testing.assert_allclose(c.kl[:, 0], 0.0, atol=1e-12)
                    np.testing.assert_allclose(c.gold[:, 0], 0.0, atol=1e-12)
    # the same label draws under both gold rewards: the well-specified model learns both (it can represent either)
    assert np.all(out.primary.correlation_well_specified > 0.9)
    assert np.all(out.first_planned.correlation_well_specified > 0.9)
    assert len(run.criteria) == 8 and sum(c.kind == "control" for c in run.criteria) == 4


def test_the_misspecified_model_over_optimises_at_the_primary_penalty(result):
    """Even with 4 seeds and 1,500 labels: every seed's gold rises, peaks and falls for both optimisers."""
    run, _ = result
    for method in oo.METHODS:
        c = oo.curves(run.output.primary, method, "misspecified")
        _, prominence = oo.peak_prominence(c.gold)
        assert np.all(prominence > 0.05), (method, prominence)
        assert np.all(np.diff(c.proxy, axis=-1) >= -1e-9)  # while the proxy only ever rises
        well = oo.curves(run.output.primary, method, "well-specified")
        assert np.all(well.gold[:, -1] >= 0.9 * well.gold.max(-1))


def test_saved_result_loads_and_redraws(result, tmp_path):
    run, folder = result
    config, output, summary = common.load_result(oo, folder)
    assert config == TINY
    np.testing.assert_array_equal(output.primary.bon_misspecified.gold, run.output.primary.bon_misspecified.gold)
    assert [c["verdict"] for c in summary["criteria"]] == [c.verdict for c in run.criteria]
    assert [p.suffix for p in common.replot(oo, folder, tmp_path)] == [".png", ".pdf"]


# -- the criteria on hand-built outputs: they can fail, and they can pass -------------------------


def hand_output(gold_misspecified, gold_well_specified, seeds=10):
    """An Output whose every misspecified curve is ``gold_misspecified [grid]`` (well-specified likewise) plus
    a little seed noise, with a rising proxy and KL."""
    rng = np.random.default_rng(0)
    grid = len(gold_misspecified)
    kl = np.broadcast_to(np.linspace(0, 5, grid), (seeds, grid))

    def curves(gold):
        noisy = np.asarray(gold)[None, :] + 0.01 * rng.standard_normal((seeds, grid))
        noisy[:, 0] = 0.0
        return oo.Curves(kl.copy(), noisy, kl.copy())

    setting = oo.GoldSetting(
        curves(gold_misspecified), curves(gold_well_specified), curves(gold_misspecified), curves(gold_well_specified),
        np.full(seeds, 0.5), np.full(seeds, 0.99),
    )
    return oo.Output(setting, setting, np.geomspace(100, 0.01, grid), np.arange(1.0, grid + 1),
                     np.linspace(0, 5, grid), np.full(seeds, 100), np.asarray(2.0))


def verdicts(output, kind):
    return [c.verdict for c in oo.criteria(TINY, output) if c.kind == kind]


def test_criteria_on_null_data_are_not_supported():
    grid = 12
    flat = hand_output(np.zeros(grid), np.zeros(grid))  # nothing happens: no peak, no gain to keep
    assert SUPPORTED not in verdicts(flat, "finding") + verdicts(flat, "control")
    rising = np.linspace(0, 2, grid)
    no_peak = hand_output(rising, rising)  # gold only rises: no over-optimisation to find
    assert verdicts(no_peak, "finding") == [NOT_SUPPORTED] * 4
    falling_back = np.concatenate([np.linspace(0, 2, grid // 2), np.linspace(2, 0.5, grid - grid // 2)])
    hacked = hand_output(falling_back, falling_back)  # the control's claim fails: well-specified falls to 1/4
    assert verdicts(hacked, "control") == [NOT_SUPPORTED] * 4
    rng = np.random.default_rng(1)
    noise = hand_output(np.zeros(grid), np.zeros(grid))
    noise = noise._replace(primary=noise.primary._replace(
        bon_misspecified=noise.primary.bon_misspecified._replace(gold=rng.standard_normal((10, grid))),
        tilted_misspecified=noise.primary.tilted_misspecified._replace(gold=rng.standard_normal((10, grid)))))
    assert SUPPORTED not in verdicts(noise, "finding")  # pure noise: its own best point is not a peak
    few = hand_output(rising, rising, seeds=5)  # fewer than 8 seeds: the bootstrap refuses to decide
    assert set(verdicts(few, "control")) == {"UNDETERMINED"}


def test_criteria_on_good_data_are_supported_and_disclose_the_moved_penalty():
    grid = 12
    hump = np.concatenate([np.linspace(0, 2, grid // 2), np.linspace(2, 0.5, grid - grid // 2)])
    good = hand_output(hump, np.linspace(0, 2, grid))
    c = oo.criteria(TINY, good)
    assert [x.verdict for x in c] == [SUPPORTED] * 8
    assert all("0.35" in x.disclosure and "1.0" in x.disclosure for x in c)
    assert all("first-planned" in x.statement for x in c[4:]) and all("primary" in x.statement for x in c[:4])


def test_checks_can_fail():
    grid = 12
    out = hand_output(np.zeros(grid), np.zeros(grid))
    bad = out.primary.bon_misspecified._replace(proxy=-out.primary.bon_misspecified.proxy)  # a falling proxy
    out = out._replace(primary=out.primary._replace(bon_misspecified=bad))
    assert oo.checks(TINY, out)[0].verdict == NOT_SUPPORTED


def test_bad_input_names_the_field():
    for field, value in (("n_seeds", 1), ("n_betas", 2), ("ref_eos_prob", 1.0), ("rm_learning_rate", 0.0),
                         ("first_planned_length_penalty", -1.0), ("n_labels", 0), ("seed", 1.5)):
        with pytest.raises(ValueError, match=field):
            dataclasses.replace(TINY, **{field: value})
    with pytest.raises(TypeError, match="token"):
        oo.Config(token={"length": 6})
    with pytest.raises(ValueError, match="quality"):
        TokenSetting(vocab_size=5)
    with pytest.raises(ValueError, match="label_temperature"):
        TokenSetting(label_temperature=0.0)
