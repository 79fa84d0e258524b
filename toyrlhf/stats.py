"""Small statistics used by every experiment: slopes on log-log axes, standard errors, bootstrap."""

from __future__ import annotations

import numpy as np


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


def mean_and_interval(samples, axis: int = 0, z: float = 1.96):
    """Mean and a normal-approximation interval ``mean ± z·SE`` over ``axis``: ``(mean, lo, hi)``."""
    samples = np.asarray(samples, dtype=np.float64)
    n = samples.shape[axis]
    mean = samples.mean(axis=axis)
    se = samples.std(axis=axis, ddof=1) / np.sqrt(n) if n > 1 else np.zeros_like(mean)
    return mean, mean - z * se, mean + z * se


def bootstrap_interval(samples, statistic, n_boot: int = 2000, seed: int = 0, level: float = 0.95):
    """Percentile bootstrap interval of ``statistic(resample)`` over resamples of the first axis.

    ``statistic`` maps an array shaped like ``samples`` to a float (e.g. the slope of
    the seed-mean curve). Returns ``(estimate, lo, hi)``.
    """
    samples = np.asarray(samples)
    rng = np.random.default_rng(seed)
    n = samples.shape[0]
    stats = np.array([statistic(samples[rng.integers(0, n, n)]) for _ in range(n_boot)])
    alpha = (1 - level) / 2
    lo, hi = np.quantile(stats, [alpha, 1 - alpha])
    return float(statistic(samples)), float(lo), float(hi)
