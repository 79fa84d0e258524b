"""toyrlhf.stats against hand-computed values, scipy's own answers where they exist, and null data."""

import math

import numpy as np
import pytest

from toyrlhf import stats


def test_t_interval_uses_n_minus_one_degrees_of_freedom():
    x = np.array([1.0, 2.0, 3.0])  # mean 2, sample std 1
    mean, lo, hi = stats.mean_and_interval(x)
    half = 4.302652729911275 / np.sqrt(3)  # t_{0.975, 2} from tables
    assert mean == 2 and lo == pytest.approx(2 - half) and hi == pytest.approx(2 + half)
    one = stats.mean_and_interval(np.array([5.0]))
    assert one[0] == 5 and one[1] == -np.inf and one[2] == np.inf


def test_bootstrap_is_refused_under_eight_seeds_and_covers_the_mean_above():
    est, lo, hi = stats.bootstrap_interval(np.arange(7.0), np.mean)
    assert est == 3 and (lo, hi) == (-math.inf, math.inf)
    rng = np.random.default_rng(1)
    covered = 0
    for _ in range(40):
        sample = rng.normal(1.0, 1.0, size=30)
        _, lo, hi = stats.bootstrap_interval(sample, np.mean, n_boot=500)
        covered += lo <= 1.0 <= hi
    assert covered >= 33  # 95% nominal; 33 of 40 is ~4 sd below the mean of 38


def test_bootstrap_of_a_constant_is_a_point_and_of_a_nan_statistic_is_unbounded():
    assert stats.bootstrap_interval(np.ones(10), np.mean)[1:] == (1.0, 1.0)
    always_nan = lambda x: float("nan")  # noqa: E731
    assert stats.bootstrap_interval(np.arange(10.0), always_nan)[1:] == (-math.inf, math.inf)


def test_iqm_drops_the_outer_quartiles():
    assert stats.iqm(np.array([0.0, 1, 2, 3, 4, 5, 6, 100])) == pytest.approx(np.mean([2, 3, 4, 5]))


def test_counts_exact_tests():
    p, lo, hi = stats.proportion_interval(0, 10)
    assert p == 0 and lo == 0 and hi == pytest.approx(1 - 0.025 ** (1 / 10))  # Clopper–Pearson at 0 events
    odds, pvalue = stats.fisher_exact(5, 10, 5, 10)
    assert odds == 1 and pvalue == pytest.approx(1.0)
    assert stats.fisher_exact(10, 10, 0, 10)[1] < 1e-4


def test_sign_test_excludes_ties_and_undefined_pairs():
    assert stats.sign_test(np.zeros(20)) == (0, 0, 1.0)  # all ties: no evidence at all
    assert stats.sign_test(np.array([np.nan] * 5 + [1.0])) == (1, 1, 0.5)
    assert stats.sign_test(np.array([np.inf, -np.inf, np.inf]))[:2] == (2, 3)  # censored on one side: kept
    n_pos, n, p = stats.sign_test(np.ones(10))
    assert (n_pos, n) == (10, 10) and p == pytest.approx(0.5**10)


def test_cmh_stratified_test():
    same = np.array([[[5, 5], [5, 5]], [[2, 8], [2, 8]]])
    odds, p = stats.cochran_mantel_haenszel(same)
    assert odds == pytest.approx(1.0) and p > 0.5
    differ = np.array([[[9, 1], [1, 9]], [[8, 2], [2, 8]]])
    assert stats.cochran_mantel_haenszel(differ)[1] < 0.01


def test_kaplan_meier_median_with_censoring():
    times = np.array([1.0, 2, 3, 4, 5])
    assert stats.kaplan_meier_median(times, np.ones(5, bool))[0] == 3.0
    assert stats.kaplan_meier_median(times, np.zeros(5, bool))[0] == math.inf  # nothing happened
    # Censored runs are not events: with the last three censored, fewer than half die.
    assert stats.kaplan_meier_median(times, np.array([1, 1, 0, 0, 0], bool))[0] == math.inf
    with pytest.raises(ValueError, match="times"):
        stats.kaplan_meier_median([], [])


def test_loglog_slope_of_a_power_law():
    x = np.array([1.0, 2, 4, 8])
    assert stats.loglog_slope(x, 3 * x**2)[0] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="positive"):
        stats.loglog_slope(x, -x)


def test_kaplan_meier_interval_contains_the_median_when_all_events_coincide():
    median, lo, hi = stats.kaplan_meier_median(np.full(6, 32.0), np.ones(6, bool))
    assert (median, lo, hi) == (32.0, 32.0, 32.0)
