"""What every experiment returns, and how it is written to disk.

An experiment is a module in ``toyrlhf.experiments`` with

- ``NAME``: the id used by ``toyrlhf run NAME``;
- ``CLAIM``: one line saying which of the paper's claims it tests;
- ``run(quick: bool, seeds: int | None, progress: Progress) -> ExperimentResult``.

``run`` builds its configuration (quick or full), computes, checks its
pre-registered criteria and draws one figure. The CLI writes the result with
:func:`write_result`: ``NAME.npz`` (arrays), ``NAME.json`` (configuration,
criteria, timings), ``NAME.png`` and ``NAME.pdf``. Criteria are fixed in the
experiment's source before it is run; each is reported SUPPORTED or NOT
SUPPORTED with the measured value and its interval, whatever it finds.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from toyrlhf.files import atomic_write


@dataclasses.dataclass(frozen=True)
class Criterion:
    """One pre-registered criterion and what was measured for it."""

    statement: str
    """The criterion as registered, e.g. ``"BC-like slope on Trap in [1.8, 2.05]"``."""
    measured: float
    """The measured value the criterion is decided on."""
    interval: tuple[float, float] | None
    """A 95% interval for ``measured``; ``None`` when it is computed exactly (no sampling)."""
    supported: bool
    """Whether the measurement satisfies the criterion."""
    detail: str = ""
    """How it was measured, in a sentence."""

    @property
    def verdict(self) -> str:
        return "SUPPORTED" if self.supported else "NOT SUPPORTED"

    def line(self) -> str:
        interval = "exact" if self.interval is None else f"95% CI [{self.interval[0]:.4g}, {self.interval[1]:.4g}]"
        return f"{self.verdict}: {self.statement} — measured {self.measured:.4g} ({interval})"


@dataclasses.dataclass
class ExperimentResult:
    """Everything one run of an experiment produced."""

    name: str
    claim: str
    config: dict
    """JSON-serialisable settings, including ``quick`` and the number of seeds."""
    arrays: dict[str, np.ndarray]
    criteria: list[Criterion]
    figure: object
    """A matplotlib Figure."""
    timings: dict[str, float]
    """Seconds, e.g. ``{"compile_s": ..., "run_s": ...}``."""
    measurements: dict = dataclasses.field(default_factory=dict)
    """Further measured numbers worth reporting that are not criteria (JSON-serialisable)."""


class Progress:
    """Progress messages on stderr: stages with elapsed time, and a text bar for host loops."""

    def __init__(self, stream=None, enabled: bool = True):
        self.stream = sys.stderr if stream is None else stream
        self.enabled = enabled
        self.start = time.perf_counter()

    def __call__(self, message: str) -> None:
        if self.enabled:
            print(f"[{time.perf_counter() - self.start:7.1f}s] {message}", file=self.stream, flush=True)

    def bar(self, items: Iterable, total: int, label: str) -> Iterator:
        """Yield from ``items``, redrawing ``label [####....] i/total`` as it goes."""
        for i, item in enumerate(items):
            self._draw(label, i, total)
            yield item
        self._draw(label, total, total)
        if self.enabled:
            print(file=self.stream, flush=True)

    def _draw(self, label: str, done: int, total: int) -> None:
        if self.enabled:
            width = 30
            filled = int(width * done / max(total, 1))
            bar = "#" * filled + "." * (width - filled)
            elapsed = time.perf_counter() - self.start
            print(f"\r[{elapsed:7.1f}s] {label} [{bar}] {done}/{total}", end="", file=self.stream, flush=True)


def timed(fn, *args):
    """Run ``fn(*args)`` and wait for its arrays: returns ``(result, seconds)``."""
    import jax

    start = time.perf_counter()
    out = jax.block_until_ready(fn(*args))
    return out, time.perf_counter() - start


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, (np.floating, float)):
        return float(x) if math.isfinite(x) else str(float(x))
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


def result_summary(result: ExperimentResult) -> dict:
    """The JSON document written as ``NAME.json``."""
    return _jsonable(
        {
            "name": result.name,
            "claim": result.claim,
            "config": result.config,
            "criteria": [
                {**dataclasses.asdict(c), "verdict": c.verdict, "line": c.line()} for c in result.criteria
            ],
            "measurements": result.measurements,
            "timings": result.timings,
        }
    )


def write_result(result: ExperimentResult, out_dir) -> list[Path]:
    """Write NAME.npz, NAME.json, NAME.png and NAME.pdf into ``out_dir`` (atomically); return the paths."""
    out = Path(out_dir)
    paths = [out / f"{result.name}.{ext}" for ext in ("npz", "json", "png", "pdf")]
    arrays = {k: np.asarray(v) for k, v in result.arrays.items()}
    for key, value in arrays.items():
        if value.dtype == object:
            raise TypeError(f"array {key!r} has dtype object; only numeric arrays are saved (no pickle)")

    def save_npz(tmp):
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)

    atomic_write(paths[0], save_npz)
    text = json.dumps(result_summary(result), indent=2)
    atomic_write(paths[1], lambda tmp: Path(tmp).write_text(text + "\n"))
    atomic_write(paths[2], lambda tmp: result.figure.savefig(tmp, format="png", dpi=150))
    atomic_write(paths[3], lambda tmp: result.figure.savefig(tmp, format="pdf"))
    return paths


def load_arrays(path) -> dict[str, np.ndarray]:
    """Load an experiment's NAME.npz (never with pickle)."""
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def write_report(summaries: list[dict], out_dir, quick: bool) -> Path:
    """Write ``REPORT.md``: every criterion of every experiment, one line each."""
    lines = [
        "# toyrlhf report",
        "",
        f"Settings: {'quick' if quick else 'full'}. Regenerate with "
        f"`toyrlhf reproduce{' --quick' if quick else ''}`.",
        "",
    ]
    n_supported = sum(c["supported"] for s in summaries for c in s["criteria"])
    n_total = sum(len(s["criteria"]) for s in summaries)
    lines += [f"{n_supported} of {n_total} pre-registered criteria SUPPORTED.", ""]
    for s in summaries:
        lines += [f"## {s['name']}", "", f"Claim: {s['claim']}", "", f"![{s['name']}]({s['name']}.png)", ""]
        lines += [f"- {c['line']}" for c in s["criteria"]]
        timings = ", ".join(f"{k} {v:.1f}" for k, v in s["timings"].items())
        lines += ["", f"Timings (s): {timings}", ""]
    path = Path(out_dir) / "REPORT.md"
    text = "\n".join(lines)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))
    return path
