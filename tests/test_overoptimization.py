"""Over-optimisation: the criteria on hand-built curves (null and good), the exact sweep's invariants, bad input."""

import dataclasses

import matplotlib.pyplot as plt
import numpy as np
import pytest

from toyrlhf.experiments import common
from toyrlhf.experiments import overoptimization as oo
from toyrlhf.experiments.common import NOT_SUPPORTED, SUPPORTED
from toyrlhf.experiments.token_setting import TokenSetting

TINY = dataclasses.replace(oo.Config(), n_seeds=4, n_betas=12, max_log2_n=10, rm_steps=600, n_labels=1500,
                           label_sweep=(30, 300, 1500))


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    """The contract end to end, computed once: run, write, load back."""
    run = common.run_experiment(oo, TINY)
    folder = tmp_path_factory.mktemp("overoptimization")
    common.write_result(run, folder)
    plt.close(run.figure)
    return run, folder


def test_fit_form_recovers_known_coefficients_and_measures_its_fit():
    d = np.linspace(0.1, 3.0, 30)
    for kind in ("bon", "rl"):
        y = oo.form(d, 1.3, 0.4, kind)
        alpha, beta = oo.fit_form(d, y, kind)
        assert alpha == pytest.approx(1.3) and beta == pytest.approx(0.4)
        fit = oo.fit_quality(np.r_[0.0, d], np.r_[5.0, y], kind)  # the d = 0 point is left out of the fit
        assert fit.r2 == pytest.approx(1.0) and fit.rmse == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(oo.form(np.array([2.0]), 1.0, 0.5, "bon"), [0.0])  # 2 (1 - 0.5·2)
    # R² by hand: y = d on d = 1, 2, 3 under d(α − βd) is fitted exactly (α = 1, β = 0); y = (0, 1, 0) is not
    assert oo.fit_quality(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0]), "bon").r2 == pytest.approx(1.0)
    x, y = np.array([1.0, 2.0, 3.0]), np.array([0.0, 1.0, 0.0])
    alpha, beta = oo.fit_form(x, y, "bon")
    resid = y - oo.form(x, alpha, beta, "bon")
    assert oo.fit_quality(x, y, "bon").r2 == pytest.approx(1 - np.sum(resid**2) / np.sum((y - y.mean()) ** 2))
    assert oo.fit_quality(x, np.zeros(3), "rl").r2 == 0.0  # a flat curve: nothing explained
    # vectorised rows give the row-by-row fits
    ys = np.stack([oo.form(d, a, 0.3, "rl") for a in (0.5, 1.0)])
    alphas, betas, r2, _ = oo.fit_forms(np.broadcast_to(d, ys.shape), ys, "rl")
    np.testing.assert_allclose(alphas, [0.5, 1.0]) and np.testing.assert_allclose(betas, 0.3)


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
    assert len(run.criteria) == 20 and sum(c.kind == "control" for c in run.criteria) == 4
    # the label sweep: [seeds, M, grid], each budget used its M labels, n = 1 is the reference itself
    sweep = out.sweep
    np.testing.assert_array_equal(sweep.labels, np.broadcast_to(TINY.label_sweep, sweep.labels.shape))
    for method, grid in (("best-of-n", ns), ("KL-tilted", betas)):
        for capacity in oo.CAPACITIES:
            c = oo.sweep_curves(sweep, method, capacity)
            assert c.gold.shape == (TINY.n_seeds, len(TINY.label_sweep), len(grid))
            if method == "best-of-n":
                np.testing.assert_allclose(c.gold[..., 0], 0.0, atol=1e-12)
    # at the largest M the sweep's feature model is the structural well-specified model (same labels, same fit)
    np.testing.assert_allclose(oo.sweep_curves(sweep, "KL-tilted", "features").gold[:, -1],
                               out.primary.tilted_well_specified.gold, atol=1e-6)


def test_the_reward_models_improve_with_labels(result):
    """More labels, better proxies: the centred correlation with gold rises from M = 30 to M = 1,500 in every
    seed, for both well-specified models; the 10-parameter model is the better one at 1,500 labels."""
    sweep = result[0].output.sweep
    for corr in (sweep.correlation_features, sweep.correlation_tabular):
        assert np.all(corr[:, -1] > corr[:, 0]), corr
    assert np.all(sweep.correlation_features[:, -1] > 0.95)
    assert np.all(sweep.correlation_features[:, -1] > sweep.correlation_tabular[:, -1])


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


def hand_output(gold_misspecified, gold_well_specified, seeds=10, sweep_bon=None, sweep_tilted=None, noise=0.01):
    """An Output whose every misspecified curve is ``gold_misspecified [grid]`` (well-specified likewise) plus
    a little seed noise, with a rising proxy and KL; the label sweep's best-of-n and KL-tilted curves are
    ``sweep_bon`` / ``sweep_tilted [M, grid]`` (default: flat), for both capacities."""
    rng = np.random.default_rng(0)
    grid = len(gold_misspecified)
    n_m = len(TINY.label_sweep)
    kl = np.linspace(0, 5, grid)

    def curves(gold):
        gold = np.asarray(gold, dtype=np.float64)
        shape = (seeds, *gold.shape)
        noisy = gold[None] + noise * rng.standard_normal(shape)
        noisy[..., 0] = 0.0
        return oo.Curves(np.broadcast_to(kl, shape).copy(), noisy, np.broadcast_to(kl, shape).copy())

    setting = oo.GoldSetting(
        curves(gold_misspecified), curves(gold_well_specified), curves(gold_misspecified), curves(gold_well_specified),
        np.full(seeds, 0.5), np.full(seeds, 0.99),
    )
    flat = np.zeros((n_m, grid))
    bon = flat if sweep_bon is None else sweep_bon
    tilt = flat if sweep_tilted is None else sweep_tilted
    sweep = oo.LabelSweep(curves(bon), curves(tilt), curves(bon), curves(tilt), np.full((seeds, n_m), 0.9),
                          np.full((seeds, n_m), 0.8), np.broadcast_to(TINY.label_sweep, (seeds, n_m)).copy())
    return oo.Output(setting, setting, sweep, np.geomspace(100, 0.01, grid), np.arange(1.0, grid + 1),
                     np.linspace(0, 5, grid), np.full(seeds, 100), np.asarray(2.0))


def sweep_verdicts(output):
    """The label sweep's 12 criteria: peaks at small M (4), shrinking falls (4), Gao's forms fit (4)."""
    return [c.verdict for c in oo.criteria(TINY, output)[8:]]


def verdicts(output, kind):
    """The structural case's 8 criteria of ``kind``."""
    return [c.verdict for c in oo.criteria(TINY, output)[:8] if c.kind == kind]


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


def test_label_sweep_criteria_on_null_data_are_not_supported():
    grid = 12
    n_m = len(TINY.label_sweep)
    flat = hand_output(np.zeros(grid), np.zeros(grid))  # nothing learns at any M
    assert SUPPORTED not in sweep_verdicts(flat)
    rising = np.broadcast_to(np.linspace(0, 2, grid), (n_m, grid))  # no over-optimisation at any M
    assert sweep_verdicts(hand_output(np.zeros(grid), np.zeros(grid), sweep_bon=rising, sweep_tilted=rising))[:8] == (
        [NOT_SUPPORTED] * 8
    )
    hump = np.concatenate([np.linspace(0, 2, grid // 2), np.linspace(2, 0.5, grid - grid // 2)])
    same = np.broadcast_to(hump, (n_m, grid))  # over-optimises equally at every M: it does not shrink
    v = sweep_verdicts(hand_output(np.zeros(grid), np.zeros(grid), sweep_bon=same, sweep_tilted=same))
    assert v[:4] == [SUPPORTED] * 4 and SUPPORTED not in v[4:8]
    # pure noise: every seed's curve is independent noise around 0 (no peak, nothing for a form to fit)
    assert SUPPORTED not in sweep_verdicts(hand_output(np.zeros(grid), np.zeros(grid), noise=0.3))
    few = hand_output(np.zeros(grid), np.zeros(grid), seeds=5, sweep_bon=rising, sweep_tilted=rising)
    assert set(sweep_verdicts(few)[8:]) == {"UNDETERMINED"}  # the R² bootstrap refuses fewer than 8 seeds


def test_label_sweep_criteria_on_good_data_are_supported():
    grid = 12
    d = np.sqrt(np.linspace(0, 5, grid))
    # Gao's forms exactly, the over-optimisation coefficient falling with M: a peak inside the grid at small M
    bon = np.stack([oo.form(d, 1.5, b, "bon") for b in (0.9, 0.5, 0.3)])
    tilt = np.stack([oo.form(d, 1.5, b, "rl") for b in (2.0, 1.0, 0.2)])
    good = hand_output(np.zeros(grid), np.zeros(grid), sweep_bon=bon, sweep_tilted=tilt)
    assert sweep_verdicts(good) == [SUPPORTED] * 12, [c.line() for c in oo.criteria(TINY, good)[8:]]
    assert all("before the label sweep" in c.disclosure for c in oo.criteria(TINY, good)[8:])


def test_criteria_on_good_data_are_supported_and_disclose_the_moved_penalty():
    grid = 12
    hump = np.concatenate([np.linspace(0, 2, grid // 2), np.linspace(2, 0.5, grid - grid // 2)])
    good = hand_output(hump, np.linspace(0, 2, grid))
    c = oo.criteria(TINY, good)[:8]
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
                         ("first_planned_length_penalty", -1.0), ("n_labels", 0), ("seed", 1.5),
                         ("label_sweep", (300, 30)), ("label_sweep", (30, 3000)), ("small_labels", 1500),
                         ("small_labels", 50), ("min_r2", 1.0), ("tabular_l2", -1.0), ("tabular_learning_rate", 0)):
        with pytest.raises(ValueError, match=field):
            dataclasses.replace(TINY, **{field: value})
    with pytest.raises(TypeError, match="token"):
        oo.Config(token={"length": 6})
    with pytest.raises(ValueError, match="quality"):
        TokenSetting(vocab_size=5)
    with pytest.raises(ValueError, match="label_temperature"):
        TokenSetting(label_temperature=0.0)
