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
- the exact conditional interval of a common odds ratio over strata:
  :func:`common_odds_ratio_interval`;
- times to an event with censoring: :func:`kaplan_meier_median`, and the
  distribution-free :func:`median_interval` of censored times.

Every function takes plain arrays and returns floats, so criteria stay readable.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import optimize as _optimize
from scipy import special as _special
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
    t = informative_strata(tables).astype(np.float64)
    if t.shape[0] == 0:
        return math.nan, 1.0
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


def informative_strata(tables) -> np.ndarray:
    """The ``[K, 2, 2]`` tables whose rows and columns are all non-empty (the others carry no information)."""
    tables = np.asarray(tables, dtype=np.int64).reshape(-1, 2, 2)
    keep = (tables.sum(1).min(-1) > 0) & (tables.sum(2).min(-1) > 0)
    return tables[keep]


def _conditional_distribution(tables: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Support and log-weights of ``S = Σ_k a_k`` given every table's margins, at odds ratio 1.

    Given its margins, ``a_k`` has weights ``C(n1_k, a) C(n2_k, m1_k − a) ψ^a`` (Fisher's
    noncentral hypergeometric); the strata are independent, so ``S``'s weights are the
    convolution of theirs.
    """
    start, log_w = 0, np.array([0.0])  # S's support is start, start + 1, ..., start + len(log_w) - 1
    for (a, b), (c, d) in tables:
        n1, n2, m1 = a + b, c + d, a + c
        x = np.arange(max(0, m1 - n2), min(n1, m1) + 1)
        lw = (_special.gammaln(n1 + 1) - _special.gammaln(x + 1) - _special.gammaln(n1 - x + 1)
              + _special.gammaln(n2 + 1) - _special.gammaln(m1 - x + 1) - _special.gammaln(n2 - m1 + x + 1))
        conv = np.convolve(np.exp(log_w - log_w.max()), np.exp(lw - lw.max()))
        with np.errstate(divide="ignore"):
            log_w = np.log(conv) + log_w.max() + lw.max()
        start += int(x[0])
    return np.arange(start, start + log_w.size), log_w


def common_odds_ratio_interval(tables, level: float = 0.95) -> tuple[float, float, float]:
    """Exact conditional interval of a common odds ratio over ``[K, 2, 2]`` tables: ``(lo, hi, p_less)``.

    Each table is ``[[a, b], [c, d]]`` (row 1: events, non-events of group 1; row 2 of
    group 2); the odds ratio is ``ad / bc``. The interval inverts the exact test of
    ``S = Σ_k a_k`` given every table's margins (Gart 1970; the interval of R's
    ``mantelhaen.test(exact = TRUE)``; one table gives Fisher's conditional interval):
    ``lo`` solves ``Pr(S ≥ s_obs; ψ) = (1 − level)/2``, ``hi`` solves
    ``Pr(S ≤ s_obs; ψ) = (1 − level)/2``, with ``lo = 0`` (``hi = ∞``) when ``s_obs`` is
    the smallest (largest) possible value. ``p_less = Pr(S ≤ s_obs; ψ = 1)`` is the exact
    one-sided p-value of "group 1's odds are lower". Tables with an empty row or column
    carry no information; with none left every odds ratio fits: ``(0, inf, 1.0)``.
    """
    kept = informative_strata(tables)
    if kept.shape[0] == 0:
        return 0.0, math.inf, 1.0
    support, log_w = _conditional_distribution(kept)
    s_obs = int(kept[:, 0, 0].sum())
    tail = (1.0 - level) / 2

    def log_prob(log_psi: float, upper: bool) -> float:
        z = log_w + support * log_psi
        chosen = support >= s_obs if upper else support <= s_obs
        return float(_special.logsumexp(z[chosen]) - _special.logsumexp(z))

    def solve(upper: bool) -> float:
        f = lambda log_psi: log_prob(log_psi, upper) - math.log(tail)  # noqa: E731
        lo_b, hi_b = -1.0, 1.0
        while f(lo_b) * f(hi_b) > 0 and hi_b < 1e3:
            lo_b, hi_b = 2 * lo_b, 2 * hi_b
        return math.exp(_optimize.brentq(f, lo_b, hi_b, xtol=1e-12))

    lo = 0.0 if s_obs == support[0] else solve(upper=True)
    hi = math.inf if s_obs == support[-1] else solve(upper=False)
    return lo, hi, math.exp(log_prob(0.0, upper=False))


def median_interval(times, level: float = 0.95) -> tuple[float, float]:
    """Distribution-free interval ``[t_(k), t_(n−k+1)]`` of the median of censored ``times [n]`` (``inf``: censored).

    ``k`` is the largest order with ``Pr(Binomial(n, 1/2) ≤ k − 1) ≤ (1 − level)/2``, so the interval covers
    the median with probability at least ``level`` whatever the distribution. With one common censoring
    time the order statistics up to the number of solved runs are observed and the others are beyond the
    budget (``inf``), so the interval stays exact. Fewer than 6 runs cannot give 95%: ``(0, inf)``.
    """
    t = np.sort(np.asarray(times, np.float64).ravel())
    n = t.size
    k = int(_stats.binom.ppf((1 - level) / 2, n, 0.5))  # Pr(B <= k) >= tail: the largest safe order is k
    if _stats.binom.cdf(k, n, 0.5) > (1 - level) / 2:
        k -= 1
    if k < 0:
        return 0.0, math.inf
    return float(t[k]), float(t[n - k - 1])
