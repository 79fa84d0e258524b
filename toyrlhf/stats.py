"""The statistics every experiment uses, one copy each, built on ``scipy.stats`` where it does the job.

Which interval for which outcome (the evidence rules of ``DESIGN.md``):

- a mean over a few seeds: :func:`mean_and_interval`, Student's t with ``n - 1``
  degrees of freedom (never ``z = 1.96`` on 3–10 seeds);
- any other statistic of the seeds (a slope of the seed-mean curve, a ratio of
  means, a median): :func:`bootstrap_interval`, BCa bootstrap
  (``scipy.stats.bootstrap``) over seeds, *refused* below :data:`MIN_BOOTSTRAP`
  seeds: the interval is then ``(-inf, inf)`` so that a criterion judged on it is
  UNDETERMINED rather than pretending;
- heavy-tailed outcomes (one collapsing seed moves a mean four-fold):
  :func:`iqm`, the interquartile mean of Agarwal et al. (2021), or the median,
  through :func:`bootstrap_interval`;
- counts: :func:`proportion_interval` (Clopper–Pearson), :func:`fisher_exact`,
  :func:`sign_test` (ties excluded), :func:`cochran_mantel_haenszel` (a
  stratified test instead of pooling over learning rates);
- times to an event with censoring: :func:`kaplan_meier_median`.

Every function takes plain arrays and returns floats, so criteria stay readable.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import stats as _stats

MIN_BOOTSTRAP = 8
"""Fewest seeds a bootstrap interval is computed from; below it the interval is ``(-inf, inf)``."""

UNBOUNDED = (-math.inf, math.inf)


def loglog_slope(x, y) -> tuple[float, float]:
    """Least-squares fit of ``log y = slope * log x + intercept``; returns ``(slope, intercept)``.

    ``x`` and ``y`` are 1-D and positive; a power law ``y = c x^k`` gives slope ``k``.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"x and y must be 1-D of equal length, got shapes {x.shape} and {y.shape}")
    if x.size < 2:
        raise ValueError(f"a slope needs at least 2 points, got {x.size}")
    if np.any(x <= 0) or np.any(y <= 0):
        raise ValueError("log-log fit needs positive x and y")
    slope, intercept = np.polyfit(np.log(x), np.log(y), 1)
    return float(slope), float(intercept)


def mean_and_interval(samples, axis: int = 0, level: float = 0.95):
    """Mean and Student-t interval ``mean ± t_{n-1} · SE`` over ``axis``: ``(mean, lo, hi)``.

    With one sample the interval is ``(-inf, inf)``: one seed cannot say how far
    its mean is from the truth. Zero spread gives a zero-width interval.
    """
    samples = np.asarray(samples, dtype=np.float64)
    n = samples.shape[axis]
    mean = samples.mean(axis=axis)
    if n < 2:
        return mean, np.full_like(mean, -np.inf), np.full_like(mean, np.inf)
    se = samples.std(axis=axis, ddof=1) / np.sqrt(n)
    half = _stats.t.ppf(0.5 + level / 2, df=n - 1) * se
    return mean, mean - half, mean + half


def iqm(samples, axis: int = 0):
    """Interquartile mean: the mean of the middle 50% (``scipy.stats.trim_mean`` at 25%, which cuts
    ``int(n / 4)`` samples from each end).

    A 1-D sample is done in NumPy: a bootstrap calls this thousands of times and
    scipy's wrapper costs about 0.4 ms a call.
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim == 1:
        x = np.sort(x)
        cut = int(0.25 * x.size)
        return float(x[cut : x.size - cut].mean())
    return _stats.trim_mean(x, 0.25, axis=axis)


def bootstrap_interval(samples, statistic, n_boot: int = 2000, seed: int = 0, level: float = 0.95):
    """BCa bootstrap interval of ``statistic`` over resamples of the first axis (seeds): ``(estimate, lo, hi)``.

    ``samples`` is ``[n_seeds, ...]``; rows are resampled together, so paired
    quantities (two methods on one seed's data) stay paired. ``statistic`` maps an
    array shaped like ``samples`` to a float (the slope of the seed-mean curve, a
    ratio of means). Below :data:`MIN_BOOTSTRAP` seeds the interval is
    ``(-inf, inf)``. A statistic that is the same on every resample gives a
    zero-width interval; one that is NaN on more than 5% of resamples gives
    ``(-inf, inf)`` (it cannot be pinned down); otherwise NaN resamples are dropped
    and the interval is the percentile one of the rest.
    """
    samples = np.asarray(samples)
    n = samples.shape[0]
    estimate = float(statistic(samples))
    if n < MIN_BOOTSTRAP:
        return estimate, *UNBOUNDED
    rng = np.random.default_rng(seed)
    index = rng.integers(0, n, size=(n_boot, n))
    boot = np.array([statistic(samples[i]) for i in index], dtype=np.float64)
    finite = boot[np.isfinite(boot)]
    if finite.size < 0.95 * n_boot or not np.isfinite(estimate):
        return estimate, *UNBOUNDED
    if np.ptp(finite) == 0.0:
        return estimate, float(finite[0]), float(finite[0])
    if finite.size == n_boot:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scipy warns on degenerate jackknives; NaN is handled below
            result = _stats.bootstrap(
                (np.arange(n),),
                lambda i: statistic(samples[i.astype(int)]),
                vectorized=False,
                n_resamples=n_boot,
                confidence_level=level,
                method="BCa",
                random_state=np.random.default_rng(seed),
            )
        lo, hi = result.confidence_interval
        if np.isfinite(lo) and np.isfinite(hi):
            return estimate, float(lo), float(hi)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(finite, [alpha, 1 - alpha])
    return estimate, float(lo), float(hi)


def proportion_interval(successes: int, trials: int, level: float = 0.95) -> tuple[float, float, float]:
    """Proportion and its exact Clopper–Pearson interval: ``(p, lo, hi)``; ``(nan, 0, 1)`` for no trials."""
    if trials == 0:
        return math.nan, 0.0, 1.0
    ci = _stats.binomtest(int(successes), int(trials)).proportion_ci(confidence_level=level, method="exact")
    return successes / trials, float(ci.low), float(ci.high)


def fisher_exact(a_events: int, a_trials: int, b_events: int, b_trials: int, alternative: str = "two-sided"):
    """Fisher's exact test of event rates ``a`` vs ``b``: ``(odds_ratio, p_value)``."""
    table = [[a_events, a_trials - a_events], [b_events, b_trials - b_events]]
    result = _stats.fisher_exact(table, alternative=alternative)
    return float(result.statistic), float(result.pvalue)


def cochran_mantel_haenszel(tables) -> tuple[float, float]:
    """Stratified test of a common odds ratio over ``[K, 2, 2]`` tables (one per learning rate).

    Returns ``(pooled odds ratio, two-sided p value)`` (``scipy.stats.contingency.odds_ratio``
    per stratum is not enough: strata are combined by Mantel–Haenszel). Strata with
    an empty row or column carry no information and are skipped.
    """
    tables = np.asarray(tables, dtype=np.float64)
    keep = [t for t in tables if t.sum(0).min() > 0 and t.sum(1).min() > 0]
    if not keep:
        return math.nan, 1.0
    t = np.stack(keep)
    n = t.sum((1, 2))
    a, b, c, d = t[:, 0, 0], t[:, 0, 1], t[:, 1, 0], t[:, 1, 1]
    expected = (a + b) * (a + c) / n
    var = (a + b) * (c + d) * (a + c) * (b + d) / (n**2 * (n - 1))
    num, den = (a * d / n).sum(), (b * c / n).sum()
    odds = num / den if den > 0 else math.inf
    if var.sum() == 0:
        return float(odds), 1.0
    chi2 = (abs((a - expected).sum()) - 0.5) ** 2 / var.sum()
    return float(odds), float(_stats.chi2.sf(max(chi2, 0.0), df=1))


def sign_test(differences, alternative: str = "greater") -> tuple[int, int, float]:
    """Paired sign test with ties excluded: ``(n_positive, n_untied, p_value)``.

    A tie (difference 0, or NaN for a pair with nothing to compare) carries no
    evidence either way: it is dropped, not counted as a success. An infinite
    difference (one side censored) keeps its sign.
    """
    d = np.asarray(differences, dtype=np.float64).ravel()
    d = d[~np.isnan(d) & (d != 0)]
    n_pos = int((d > 0).sum())
    if d.size == 0:
        return 0, 0, 1.0
    return n_pos, int(d.size), float(_stats.binomtest(n_pos, d.size, 0.5, alternative=alternative).pvalue)


def kaplan_meier_median(times, observed, level: float = 0.95) -> tuple[float, float, float]:
    """Median time to an event with right-censoring (``observed`` False: censored at ``times``).

    Kaplan–Meier via ``scipy.stats.ecdf``; the interval is where the pointwise
    log-log confidence band of the survival function crosses 1/2. Returns
    ``(median, lo, hi)``; a median never reached (more than half censored) is ``inf``.
    """
    times = np.asarray(times, dtype=np.float64).ravel()
    observed = np.asarray(observed, dtype=bool).ravel()
    if times.shape != observed.shape or times.size == 0:
        raise ValueError(f"times and observed must be non-empty and of one shape, got {times.shape}, {observed.shape}")
    if not observed.any():
        return math.inf, math.inf, math.inf
    data = _stats.CensoredData(uncensored=times[observed], right=times[~observed])
    sf = _stats.ecdf(data).sf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the band is undefined where S(t) is 0 or 1: not an error
        band = sf.confidence_interval(confidence_level=level, method="log-log")

    def crossing(values) -> float:
        # The band is undefined (NaN) where S(t) is 0 or 1; there it collapses onto S(t) itself.
        q = np.where(np.isnan(values), sf.probabilities, values)
        below = np.nonzero(q <= 0.5)[0]
        return float(sf.quantiles[below[0]]) if below.size else math.inf

    return crossing(sf.probabilities), crossing(band.low.probabilities), crossing(band.high.probabilities)
