"""rlhf-vs-sft: a tiny sweep checked against exact quantities, and the criteria on hand-built outputs."""

import dataclasses

import matplotlib.pyplot as plt
import numpy as np
import pytest

from toyrlhf.experiments import common
from toyrlhf.experiments import rlhf_vs_sft as rvs
from toyrlhf.experiments.common import NOT_SUPPORTED, SUPPORTED
from toyrlhf.experiments.token_setting import SFTSetting, TokenSetting

TINY = dataclasses.replace(
    rvs.Config(),
    token=TokenSetting(length=3),
    label_budgets=(10, 3000),
    n_seeds=3,
    ppo_updates=150,
    dpo_steps=600,
    n_held_out=2000,
)


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    """The contract end to end, computed once: run, write, load back."""
    run = common.run_experiment(rvs, TINY)
    folder = tmp_path_factory.mktemp("rlhf-vs-sft")
    common.write_result(run, folder)
    plt.close(run.figure)
    return run, folder


def test_labels_and_resources_are_counted(result):
    run, _ = result
    out = run.output
    assert out.labels.shape == (TINY.n_seeds, 2)
    assert np.all(out.labels == np.array(TINY.label_budgets))
    # one demonstrated token per step before the response ends (EOS step included): n_demos .. n_demos·T
    n = TINY.sft.n_demos
    assert np.all((out.expert_labels >= n) & (out.expert_labels <= n * TINY.token.length))
    res = rvs.resources(TINY, out)
    assert res["RLHF"]["env_steps"] == 150 * 16 * 16 and res["DPO"]["env_steps"] == 0
    assert all(res[m]["gold_queries"] == 0 for m in ("SFT", "RLHF", "DPO", "best-of-n"))
    assert res["oracle"]["gold_queries"] == TINY.token.tree().gold.size


def test_checks_hold_and_sft_and_oracle_do_not_depend_on_the_budget(result):
    run, _ = result
    assert [c.verdict for c in run.checks] == [SUPPORTED] * 4, [c.line() for c in run.checks]
    out = run.output
    for values in (out.gold.sft, out.gold.oracle):
        np.testing.assert_allclose(values[:, 0], values[:, 1], rtol=1e-12)
    np.testing.assert_allclose(out.kl_to_sft.sft, 0.0, atol=1e-12)


def test_it_learns_with_many_labels(result):
    """3000 labels: accuracy near Bayes and above 10 labels', PPO at the exact tilted optimum, RLHF above SFT."""
    run, _ = result
    out = run.output
    acc = out.accuracy
    assert np.all(acc[:, 1] > acc[:, 0])
    assert np.all(out.bayes - acc[:, 1] < 0.03)
    assert np.all(acc[:, 1] <= out.bayes + 1e-12)  # nobody beats Bayes on the same pairs
    assert np.all(out.ppo_kl_to_target[:, 1] < 0.02)  # KL(π_β ‖ π_PPO) in nats
    g = out.gold
    assert np.all(g.rlhf[:, 1] > g.sft[:, 1] + 0.3) and np.all(g.dpo[:, 1] > g.sft[:, 1])
    assert np.all(g.best_of_n[:, 1] > g.sft[:, 1])
    assert np.all(np.abs(g.oracle[:, 1] - g.rlhf[:, 1]) < 0.1)


def test_saved_result_loads_and_redraws(result, tmp_path):
    run, folder = result
    config, output, summary = common.load_result(rvs, folder)
    assert config == TINY
    np.testing.assert_array_equal(output.gold.rlhf, run.output.gold.rlhf)
    assert [c["verdict"] for c in summary["criteria"]] == [c.verdict for c in run.criteria]
    assert [p.suffix for p in common.replot(rvs, folder, tmp_path)] == [".png", ".pdf"]


# -- the criteria on hand-built outputs -----------------------------------------------------------

CONFIG = dataclasses.replace(rvs.Config(), label_budgets=(100, 300, 1000), n_held_out=10)


def hand_output(rlhf, accuracy, bayes=0.75, oracle=2.0):
    """An Output with SFT at 0, the oracle at ``oracle``, RLHF ``rlhf`` and accuracy ``accuracy`` [seeds, budgets]."""
    rlhf, accuracy = np.asarray(rlhf, float), np.asarray(accuracy, float)
    zeros = np.zeros_like(rlhf)
    methods = rvs.Methods(zeros, rlhf, zeros, zeros, np.full_like(rlhf, oracle))
    seeds = rlhf.shape[0]
    return rvs.Output(
        gold=methods, kl_to_sft=rvs.Methods(*(zeros for _ in range(5))), accuracy=accuracy,
        bayes=np.full(seeds, bayes), correlation=zeros, ppo_kl_to_target=zeros,
        labels=np.broadcast_to(CONFIG.label_budgets, rlhf.shape), expert_labels=np.full(seeds, 50),
        sft_mean_length=np.full(seeds, 2.0), oracle_mean_length=np.full(seeds, 3.0),
        reward_model_final_loss=zeros, dpo_final_loss=zeros,
    )


GOOD_RLHF = [[0.5, 1.5, 1.9], [0.7, 1.4, 2.0], [0.6, 1.6, 1.95], [0.4, 1.5, 1.85]]
GOOD_ACCURACY = [[0.60, 0.70, 0.74], [0.62, 0.69, 0.745], [0.61, 0.71, 0.74], [0.60, 0.70, 0.74]]


def test_criteria_on_good_data_are_supported():
    c = rvs.criteria(CONFIG, hand_output(GOOD_RLHF, GOOD_ACCURACY))
    assert [x.verdict for x in c] == [SUPPORTED] * 5, [x.line() for x in c]
    assert c[1].measured == pytest.approx(0.75 - np.mean([0.74, 0.745, 0.74, 0.74]))
    assert c[2].measured == pytest.approx(1.5)  # M = 300 is the least-supported budget >= 300
    assert c[3].measured == pytest.approx(np.mean([2 - 0.5 - (2 - 1.9), 1.3 - 0.0, 1.4 - 0.05, 1.6 - 0.15]))
    assert all(x.kind == "finding" for x in c)


def test_criteria_on_null_data_are_not_supported():
    seeds, budgets = 8, 3
    rng = np.random.default_rng(0)
    # nothing learns: RLHF is SFT at every budget, the reward model is at chance
    null = hand_output(np.zeros((seeds, budgets)), np.full((seeds, budgets), 0.5))
    c = rvs.criteria(CONFIG, null)
    assert [x.verdict for x in c[1:]] == [NOT_SUPPORTED] * 4, [x.line() for x in c]
    # (a flat accuracy curve is non-decreasing by definition: criterion 1 alone cannot tell a reward model at
    # chance from one that learned; criterion 2 does. Noisy accuracies do not pass criterion 1, below.)
    # pure noise around chance and around SFT
    noise = hand_output(0.3 * rng.standard_normal((seeds, budgets)), 0.5 + 0.05 * rng.standard_normal((seeds, budgets)))
    assert SUPPORTED not in [x.verdict for x in rvs.criteria(CONFIG, noise)]
    # accuracy falling by many SE, RLHF below SFT at M = 1000, the oracle gap growing
    bad_rlhf, bad_acc = np.array(GOOD_RLHF), np.array(GOOD_ACCURACY)
    bad_acc[:, 2] = [0.65, 0.66, 0.64, 0.65]
    bad_rlhf[:, 2] = -0.1 - 0.01 * np.arange(4)
    c = rvs.criteria(CONFIG, hand_output(bad_rlhf, bad_acc))
    assert [x.verdict for x in c] == [NOT_SUPPORTED] * 5, [x.line() for x in c]
    assert c[1].measured == pytest.approx(0.1)
    # RLHF identical across budgets: the gap does not shrink (a tie is not a success)
    same = np.ones((seeds, budgets)) + rng.normal(0, 0.1, (seeds, 1))
    flat = hand_output(same, np.array(GOOD_ACCURACY)[[0] * seeds])
    shrink, slope = rvs.criteria(CONFIG, flat)[3:]
    assert shrink.verdict == NOT_SUPPORTED and slope.verdict != SUPPORTED  # the slope is 0 up to rounding


def test_checks_can_fail():
    out = hand_output(GOOD_RLHF, GOOD_ACCURACY)
    sft = out.gold.sft.copy()
    sft[:, 2] = 0.3  # SFT changed with the label budget: a bug
    out = out._replace(gold=out.gold._replace(sft=sft), accuracy=out.accuracy + 0.1)  # and beat Bayes
    verdicts = [c.verdict for c in rvs.checks(CONFIG, out)]
    assert verdicts[0] == NOT_SUPPORTED and verdicts[2] == NOT_SUPPORTED


def test_bad_input_names_the_field():
    for field, value in (("label_budgets", (300, 100)), ("label_budgets", ()), ("beta", 0.0), ("best_of_n", 0),
                         ("n_seeds", 1), ("n_held_out", 2.5), ("dpo_learning_rate", -1.0),
                         ("rlhf_above_sft_from", 10_000), ("seed", "one")):
        with pytest.raises(ValueError, match=field):
            dataclasses.replace(CONFIG, **{field: value})
    with pytest.raises(TypeError, match="sft"):
        rvs.Config(sft=TokenSetting())
    for field, value in (("n_demos", 0), ("expert_temperature", 0.0), ("sft_pseudo_count", -0.5)):
        with pytest.raises(ValueError, match=field):
            SFTSetting(**{field: value})
    for field, value in (("length", 0), ("vocab_size", 2), ("length_penalty", -1.0)):
        with pytest.raises(ValueError, match=field):
            TokenSetting(**{field: value})
