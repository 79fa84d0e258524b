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
    irl_steps=200,
    demo_multipliers=(3, 10),
    lengths=(2, 3),
    length_budget=300,
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
    assert [c.verdict for c in run.checks] == [SUPPORTED] * 6, [c.line() for c in run.checks]
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
    # the exact RL step is what PPO aims at; IPO and SFT on the preferred responses learn from the labels too
    assert np.all(np.abs(g.rlhf_exact[:, 1] - g.rlhf[:, 1]) < 0.05)
    assert np.all(g.ipo[:, 1] > g.sft[:, 1]) and np.all(g.preferred_sft[:, 1] > g.sft[:, 1])
    # IRL on the demonstrations alone, then RL, beats SFT; more demonstrations approach the demonstrator
    assert np.all(g.irl_exact[:, 0] > g.sft[:, 0]) and np.all(g.irl_rl[:, 0] > g.sft[:, 0])
    assert np.all(out.more_demos_labels[:, 1] > out.more_demos_labels[:, 0])
    assert np.all(out.more_demos_gold <= g.oracle[:, :1] + 1e-9)


def test_dpo_puts_more_mass_than_ipo_on_undefeated_responses(result):
    """Azar et al.'s argument on the enumerated tree: with 10 labels DPO piles onto the undefeated responses."""
    out = result[0].output
    u = out.undefeated
    assert np.all(u.count[:, 0] > 0)
    assert np.all(u.dpo[:, 0] > u.ipo[:, 0]) and np.all(u.dpo[:, 0] > u.sft[:, 0])
    np.testing.assert_allclose(out.azar.ipo, out.azar.ipo_closed_form, atol=1e-3)
    assert np.all(out.azar.dpo[:, 0] > 0.99)


def test_saved_result_loads_and_redraws(result, tmp_path):
    run, folder = result
    config, output, summary = common.load_result(rvs, folder)
    assert config == TINY
    np.testing.assert_array_equal(output.gold.rlhf, run.output.gold.rlhf)
    assert [c["verdict"] for c in summary["criteria"]] == [c.verdict for c in run.criteria]
    assert [p.suffix for p in common.replot(rvs, folder, tmp_path)] == [".png", ".pdf"]


# -- the criteria on hand-built outputs -----------------------------------------------------------

CONFIG = dataclasses.replace(rvs.Config(), label_budgets=(100, 300, 1000), n_held_out=10, demo_multipliers=(3, 10))
N_OLD = 5
"""Criteria 1-4 (five entries) come first; the isolation criteria 5-12 follow."""


def hand_output(rlhf, accuracy, bayes=0.75, oracle=2.0, gold=None, more_demos=None, expert=0.0, dpo_mass=0.5,
                ipo_mass=0.5, length=None):
    """An Output with SFT at 0, the oracle at ``oracle``, RLHF ``rlhf`` and accuracy ``accuracy`` [seeds, budgets];
    every other method at 0 unless ``gold`` (a dict of [seeds, budgets]) says otherwise."""
    rlhf, accuracy = np.asarray(rlhf, float), np.asarray(accuracy, float)
    seeds, budgets = rlhf.shape
    zeros = np.zeros_like(rlhf)
    arms = {f: zeros for f in rvs.Methods._fields}
    arms.update(rlhf=rlhf, rlhf_exact=rlhf, oracle=np.full_like(rlhf, oracle))
    arms.update({k: np.broadcast_to(np.asarray(v, float), rlhf.shape) for k, v in (gold or {}).items()})
    K = len(CONFIG.demo_multipliers)
    more = np.zeros((seeds, K)) if more_demos is None else np.broadcast_to(np.asarray(more_demos, float), (seeds, K))
    full = lambda v: np.broadcast_to(np.asarray(v, float), rlhf.shape)  # noqa: E731
    if length is None:
        length = rvs.LengthMethods(*(np.zeros((seeds, 2)) for _ in rvs.LengthMethods._fields))
    taus = len(CONFIG.azar_taus)
    closed = np.tile([0.5, 0.3, 0.2], (taus, 1))
    return rvs.Output(
        gold=rvs.Methods(**arms), kl_to_sft=rvs.Methods(*(zeros for _ in rvs.Methods._fields)), accuracy=accuracy,
        bayes=np.full(seeds, bayes), correlation=zeros, ppo_kl_to_target=zeros, irl_ppo_kl_to_target=np.zeros(seeds),
        undefeated=rvs.Undefeated(np.full(rlhf.shape, 5), full(0.2), full(0.3), full(dpo_mass), full(ipo_mass)),
        labels=np.broadcast_to(CONFIG.label_budgets, rlhf.shape), expert_labels=np.full(seeds, 50),
        more_demos_gold=more, more_demos_labels=np.broadcast_to(150 * np.asarray(CONFIG.demo_multipliers), (seeds, K)),
        expert_gold=np.full(seeds, expert),
        sft_mean_length=np.full(seeds, 2.0), oracle_mean_length=np.full(seeds, 3.0),
        reward_model_final_loss=zeros, dpo_final_loss=zeros, ipo_final_loss=zeros, irl_final_loss=np.zeros(seeds),
        length_gold=length,
        azar=rvs.AzarExample(np.tile([0.999, 0.001, 0.0], (taus, 1)), closed, closed),
    )


GOOD_RLHF = [[0.5, 1.5, 1.9], [0.7, 1.4, 2.0], [0.6, 1.6, 1.95], [0.4, 1.5, 1.85]]
GOOD_ACCURACY = [[0.60, 0.70, 0.74], [0.62, 0.69, 0.745], [0.61, 0.71, 0.74], [0.60, 0.70, 0.74]]
JITTER = np.array([[0.01], [-0.02], [0.015], [-0.005]])


def good_output():
    """Every criterion's claim true, with seed-to-seed spread."""
    length = rvs.LengthMethods(
        sft=np.array([[1.0, 0.5]]) + JITTER, rlhf_exact=np.array([[2.0, 2.6]]) + 2 * JITTER,
        irl_exact=np.array([[2.0, 2.5]]) - JITTER, oracle=np.full((4, 2), 2.7),
    )
    return hand_output(
        GOOD_RLHF, GOOD_ACCURACY, gold={"irl_rl": 1.0 + JITTER, "preferred_sft": 0.3 + JITTER}, expert=0.8,
        more_demos=np.array([0.4, 0.6]) + JITTER, dpo_mass=0.99 + JITTER / 10, ipo_mass=0.6 + JITTER, length=length,
    )


def test_criteria_on_good_data_are_supported():
    c = rvs.criteria(CONFIG, good_output())
    assert [x.verdict for x in c] == [SUPPORTED] * (N_OLD + 8), [x.line() for x in c]
    assert c[1].measured == pytest.approx(0.75 - np.mean([0.74, 0.745, 0.74, 0.74]))
    assert c[2].measured == pytest.approx(1.5)  # M = 300 is the least-supported budget >= 300
    assert c[3].measured == pytest.approx(np.mean([2 - 0.5 - (2 - 1.9), 1.3 - 0.0, 1.4 - 0.05, 1.6 - 0.15]))
    assert c[N_OLD + 1].measured == pytest.approx(1.5 - 0.6)  # RLHF(M* = 300) − SFT(10x)
    assert c[N_OLD + 2].measured == pytest.approx(1.5 - 0.8)  # RLHF(M*) − the demonstrator
    assert c[N_OLD + 6].measured == pytest.approx((2.6 - 0.5) - (2.0 - 1.0))
    assert all(x.kind == "finding" for x in c)
    assert all(x.disclosure for x in c[N_OLD:])


def test_criteria_on_null_data_are_not_supported():
    seeds, budgets = 8, 3
    rng = np.random.default_rng(0)
    # nothing learns: RLHF is SFT at every budget, the reward model is at chance, every arm ties with SFT
    null = hand_output(np.zeros((seeds, budgets)), np.full((seeds, budgets), 0.5))
    c = rvs.criteria(CONFIG, null)
    assert [x.verdict for x in c[1:]] == [NOT_SUPPORTED] * (N_OLD + 7), [x.line() for x in c]
    # (a flat accuracy curve is non-decreasing by definition: criterion 1 alone cannot tell a reward model at
    # chance from one that learned; criterion 2 does. Noisy accuracies do not pass criterion 1, below.)
    # pure noise around chance and around SFT, for every arm
    noise = lambda *shape: 0.3 * rng.standard_normal(shape)  # noqa: E731
    length = rvs.LengthMethods(*(noise(seeds, 2) for _ in rvs.LengthMethods._fields))
    noisy = hand_output(
        noise(seeds, budgets), 0.5 + 0.05 * rng.standard_normal((seeds, budgets)),
        gold={f: noise(seeds, budgets) for f in ("irl_rl", "preferred_sft")}, more_demos=noise(seeds, 2),
        expert=0.0, dpo_mass=0.5 + noise(seeds, budgets), ipo_mass=0.5 + noise(seeds, budgets), length=length,
    )
    assert SUPPORTED not in [x.verdict for x in rvs.criteria(CONFIG, noisy)]
    # accuracy falling by many SE, RLHF below SFT at M = 1000, the oracle gap growing
    bad_rlhf, bad_acc = np.array(GOOD_RLHF), np.array(GOOD_ACCURACY)
    bad_acc[:, 2] = [0.65, 0.66, 0.64, 0.65]
    bad_rlhf[:, 2] = -0.1 - 0.01 * np.arange(4)
    c = rvs.criteria(CONFIG, hand_output(bad_rlhf, bad_acc))
    assert [x.verdict for x in c[:N_OLD]] == [NOT_SUPPORTED] * N_OLD, [x.line() for x in c]
    assert c[1].measured == pytest.approx(0.1)
    # RLHF identical across budgets: the gap does not shrink (a tie is not a success)
    same = np.ones((seeds, budgets)) + rng.normal(0, 0.1, (seeds, 1))
    flat = hand_output(same, np.array(GOOD_ACCURACY)[[0] * seeds])
    shrink, slope = rvs.criteria(CONFIG, flat)[3:5]
    assert shrink.verdict == NOT_SUPPORTED and slope.verdict != SUPPORTED  # the slope is 0 up to rounding


def test_each_isolation_criterion_fails_on_its_own_null():
    """Start from data where all hold; make one arm tie with its comparison; only that criterion falls."""
    good = good_output()
    g = good.gold
    ties = {
        0: good._replace(gold=g._replace(irl_rl=g.sft)),  # IRL + RL no better than SFT
        1: good._replace(more_demos_gold=np.repeat(g.rlhf[:, 1:2], 2, 1)),  # 10x demonstrations tie with RLHF
        2: good._replace(expert_gold=g.rlhf[:, 1]),  # the demonstrator ties with RLHF
        3: good._replace(gold=g._replace(preferred_sft=g.rlhf)),  # labels without RL do as well
        4: good._replace(undefeated=good.undefeated._replace(dpo=good.undefeated.dpo - 0.1)),  # DPO at 0.89
        5: good._replace(undefeated=good.undefeated._replace(ipo=good.undefeated.dpo)),  # IPO = DPO
        # the advantage over SFT does not grow with T (it shrinks by 0.05)
        6: good._replace(length_gold=good.length_gold._replace(rlhf_exact=good.length_gold.sft + [1.0, 0.95])),
        7: good._replace(length_gold=good.length_gold._replace(irl_exact=good.length_gold.sft + [1.0, 0.95])),
    }
    for k, out in ties.items():
        verdicts = [x.verdict for x in rvs.criteria(CONFIG, out)[N_OLD:]]
        assert verdicts[k] == NOT_SUPPORTED, (k, verdicts)
        assert verdicts[:k] + verdicts[k + 1:] == [SUPPORTED] * 7, (k, verdicts)


def test_checks_can_fail():
    out = hand_output(GOOD_RLHF, GOOD_ACCURACY)
    sft = out.gold.sft.copy()
    sft[:, 2] = 0.3  # SFT changed with the label budget: a bug
    out = out._replace(gold=out.gold._replace(sft=sft), accuracy=out.accuracy + 0.1)  # and beat Bayes
    verdicts = [c.verdict for c in rvs.checks(CONFIG, out)]
    assert verdicts[0] == NOT_SUPPORTED and verdicts[2] == NOT_SUPPORTED
    assert verdicts[4:] == [SUPPORTED, SUPPORTED]
    # IPO off its closed form, DPO not deterministic on Azar et al.'s example
    azar = out.azar._replace(ipo=out.azar.ipo + 0.01, dpo=np.tile([0.9, 0.1, 0.0], (len(CONFIG.azar_taus), 1)))
    verdicts = [c.verdict for c in rvs.checks(CONFIG, out._replace(azar=azar))]
    assert verdicts[4:] == [NOT_SUPPORTED, NOT_SUPPORTED]


def test_bad_input_names_the_field():
    for field, value in (("label_budgets", (300, 100)), ("label_budgets", ()), ("beta", 0.0), ("best_of_n", 0),
                         ("n_seeds", 1), ("n_held_out", 2.5), ("dpo_learning_rate", -1.0),
                         ("rlhf_above_sft_from", 10_000), ("seed", "one"), ("demo_multipliers", (3, 3)),
                         ("lengths", (4,)), ("lengths", (6, 4)), ("irl_temperature", 0.0), ("irl_l2", -1.0),
                         ("irl_steps", 0), ("length_budget", 0), ("azar_taus", ()), ("azar_taus", (0.1, -1.0)),
                         ("azar_steps", 1.5)):
        with pytest.raises(ValueError, match=field):
            dataclasses.replace(CONFIG, **{field: value})
    with pytest.raises(TypeError, match="sft"):
        rvs.Config(sft=TokenSetting())
    with pytest.raises(TypeError, match="length_token"):
        rvs.Config(length_token=SFTSetting())
    for field, value in (("n_demos", 0), ("expert_temperature", 0.0), ("sft_pseudo_count", -0.5)):
        with pytest.raises(ValueError, match=field):
            SFTSetting(**{field: value})
    for field, value in (("length", 0), ("vocab_size", 2), ("length_penalty", -1.0)):
        with pytest.raises(ValueError, match=field):
            TokenSetting(**{field: value})
