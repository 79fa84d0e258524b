"""The experiment contract, the verdict rule, and the one runner every experiment goes through.

An experiment is a module in ``toyrlhf.experiments`` that defines

- ``NAME``: the id used by ``toyrlhf run NAME``;
- ``CLAIM``: one line saying which of the paper's claims it tests;
- ``Config``: a frozen dataclass, its seed a field, ``Config.quick()`` for the quick
  settings and ``Config()`` for the full ones; an exercise changes a field, never a
  module constant;
- ``Output``: a NamedTuple of arrays (fields may themselves be NamedTuples of arrays);
- ``compute(config, clock=None) -> Output``: pure; compiles through ``clock`` so that
  compile and run time and the number of compiled programs are reported;
- ``criteria(config, output) -> list[Criterion]``: the pre-registered findings and
  controls, each decided on its interval (:func:`decide`);
- ``checks(config, output) -> list[Criterion]``: identities and code invariants
  (``kind="check"``), reported apart and never counted as findings;
- ``plot(config, output) -> Figure``;
- optionally ``measurements(config, output) -> dict`` (further numbers worth
  reporting, JSON-serialisable) and ``NONFINITE_OK`` (fields of ``Output`` that may
  hold NaN/inf by design, e.g. censored times).

:func:`run_experiment` runs one, :func:`write_result` writes ``NAME.npz`` (the
``Output``), ``NAME.json`` (config, criteria, checks, measurements, timings,
provenance), ``NAME.png`` and ``NAME.pdf`` as one unit, and :func:`replot` redraws
the figure from those two files alone. :func:`write_report` gathers the quick and
the full results into ``REPORT.md``.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import types
import typing
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType

import numpy as np

from toyrlhf.files import atomic_write

SUPPORTED, NOT_SUPPORTED, UNDETERMINED = "SUPPORTED", "NOT SUPPORTED", "UNDETERMINED"
KINDS = ("finding", "control", "check")


def decide(interval: tuple[float, float], region: tuple[float, float]) -> str:
    """The verdict rule: SUPPORTED when the whole ``interval`` lies in the closed ``region``,
    NOT SUPPORTED when the whole interval lies outside it, UNDETERMINED otherwise.

    A NaN bound makes the verdict UNDETERMINED (nothing was measured).
    """
    lo, hi = (float(v) for v in interval)
    r_lo, r_hi = (float(v) for v in region)
    if math.isnan(lo) or math.isnan(hi):
        return UNDETERMINED
    if lo > hi or r_lo > r_hi:
        raise ValueError(f"interval {interval} and region {region} must be (low, high) with low <= high")
    if r_lo <= lo and hi <= r_hi:
        return SUPPORTED
    if hi < r_lo or lo > r_hi:
        return NOT_SUPPORTED
    return UNDETERMINED


def _fmt(x: float) -> str:
    if math.isnan(x):
        return "nan"
    return f"{x:.4g}" if math.isfinite(x) else ("∞" if x > 0 else "−∞")


@dataclasses.dataclass(frozen=True)
class Criterion:
    """One pre-registered criterion, what was measured for it, and its verdict."""

    statement: str
    """The criterion as registered, e.g. ``"BC slope on Reset Cliff in [1.7, 2.1]"``."""
    measured: float
    """The point estimate (reported, never decided on alone)."""
    interval: tuple[float, float] | None
    """95% interval of ``measured``; ``None`` when it is computed exactly (no sampling)."""
    region: tuple[float, float]
    """The claimed region ``[low, high]`` (closed; ``±inf`` for one-sided claims)."""
    kind: str = "finding"
    """``finding`` (tests a claim where it could fail), ``control`` (a setting where it should
    not hold, or every method should tie) or ``check`` (an identity or a code invariant)."""
    detail: str = ""
    """How it was measured, in a sentence (the statistic and its interval)."""
    to_decide: str = ""
    """What would decide it when UNDETERMINED: more seeds, a longer budget."""
    disclosure: str = ""
    """A setting changed after seeing a result, and the earlier setting's verdict."""
    interval_name: str = "95% CI"
    """What ``interval`` is, as printed: a sampling interval by default; say so when it is something else
    (the range of local exponents over an exact grid, say)."""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if len(self.region) != 2 or not self.region[0] <= self.region[1]:
            raise ValueError(f"region must be (low, high) with low <= high, got {self.region}")
        if self.interval is not None and len(self.interval) != 2:
            raise ValueError(f"interval must be (low, high) or None, got {self.interval}")

    @property
    def verdict(self) -> str:
        interval = (self.measured, self.measured) if self.interval is None else self.interval
        return decide(interval, self.region)

    @property
    def supported(self) -> bool:
        return self.verdict == SUPPORTED

    def line(self) -> str:
        if self.interval is None:
            spread = "exact"
        else:
            spread = f"{self.interval_name} [{_fmt(self.interval[0])}, {_fmt(self.interval[1])}]"
        text = f"{self.verdict}: {self.statement} — measured {_fmt(self.measured)} ({spread})"
        if self.verdict == UNDETERMINED and self.to_decide:
            text += f"; to decide: {self.to_decide}"
        return text

    def to_json(self) -> dict:
        return {**dataclasses.asdict(self), "verdict": self.verdict, "line": self.line()}


# ------------------------------------------------------------------------------------------
# Progress and compile/run timing
# ------------------------------------------------------------------------------------------


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


class Clock:
    """Compiles and runs jitted programs for ``compute``, keeping compile and run time apart.

    ``clock.call(label, jitted_fn, *args)`` traces and lowers, compiles (or loads from
    JAX's persistent cache), runs and waits; ``timings`` holds ``trace_s/label``,
    ``compile_s/label``, ``run_s/label`` and the totals, ``n_compiles`` the number of
    programs. Tracing is timed apart because the cache cannot skip it: a warm run
    still pays ``trace_s`` (Python builds the program again to find its cache key).
    An argument that is a batch of PRNG keys (the seeds of a vmapped sweep) is
    split over every local device first (:mod:`toyrlhf.sharding`; one device: unchanged).
    """

    def __init__(self, progress: Progress | None = None, name: str = ""):
        self.progress = progress or Progress(enabled=False)
        self.name = name
        self.timings: dict[str, float] = {}
        self.n_compiles = 0

    def say(self, message: str) -> None:
        self.progress(f"{self.name}: {message}" if self.name else message)

    def call(self, label: str, fn, *args):
        from toyrlhf.sharding import shard_seeds

        args = tuple(shard_seeds(a) for a in args)
        self.say(f"{label}: tracing")
        lowered, trace_s = timed(fn.lower, *args)
        self.say(f"{label}: traced in {trace_s:.1f}s, compiling")
        compiled, compile_s = timed(lowered.compile)
        self.say(f"{label}: compiled in {compile_s:.1f}s, running")
        out, run_s = timed(compiled, *args)
        self.say(f"{label}: ran in {run_s:.2f}s")
        self.n_compiles += 1
        self._add(f"trace_s/{label}", trace_s)
        self._add(f"compile_s/{label}", compile_s)
        self._add(f"run_s/{label}", run_s)
        return out

    def host(self, label: str, fn, *args):
        """Time host-side work that is not one compiled program (Gymnasium evaluation, loops)."""
        self.say(f"{label}: running")
        out, seconds = timed(fn, *args)
        self._add(f"host_s/{label}", seconds)
        return out

    def _add(self, key: str, seconds: float) -> None:
        self.timings[key] = self.timings.get(key, 0.0) + seconds

    def totals(self) -> dict[str, float]:
        out = dict(self.timings)
        for kind in ("trace_s", "compile_s", "run_s", "host_s"):
            out[kind] = sum(v for k, v in self.timings.items() if k.startswith(kind + "/"))
        out["n_compiles"] = self.n_compiles
        return out


# ------------------------------------------------------------------------------------------
# Configs and outputs to and from files
# ------------------------------------------------------------------------------------------


def config_to_dict(config) -> dict:
    return _jsonable(dataclasses.asdict(config))


def config_from_dict(cls, data: dict):
    """Rebuild a (possibly nested) frozen dataclass ``cls`` from :func:`config_to_dict`'s output."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"{cls.__qualname__} has no field(s) {sorted(unknown)}")
    return cls(**{k: _from_json(hints[k], v) for k, v in data.items()})


def _from_json(hint, value):
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint) and isinstance(value, dict):
        return config_from_dict(hint, value)
    if origin is tuple and isinstance(value, list):
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_from_json(args[0], v) for v in value)
        return tuple(_from_json(a, v) for a, v in zip(args, value))
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(hint):
            if arg is type(None) and value is None:
                return None
        for arg in typing.get_args(hint):
            if arg is not type(None):
                return _from_json(arg, value)
    if hint is float and isinstance(value, str):
        return float(value)  # "inf", "nan" as written by _jsonable
    return value


def parse_override(config, assignment: str):
    """``config`` with ``field=value`` applied (``--set`` on the command line); the value is
    parsed as the field's type (``1e-3``, ``true``, ``4,8,16`` for a tuple)."""
    if "=" not in assignment:
        raise ValueError(f"--set expects field=value, got {assignment!r}")
    name, text = assignment.split("=", 1)
    hints = typing.get_type_hints(type(config))
    if name not in hints:
        fields = ", ".join(f.name for f in dataclasses.fields(config))
        raise ValueError(f"{type(config).__qualname__} has no field {name!r}; its fields: {fields}")
    current = getattr(config, name)
    try:
        if isinstance(current, bool):
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError("expected true or false")
            value = text.lower() in ("true", "1")
        elif isinstance(current, tuple):
            kind = type(current[0]) if current else float
            value = tuple(kind(v) for v in text.split(",") if v != "")
        elif dataclasses.is_dataclass(current):
            raise ValueError("a nested setting; set its own fields with the experiment's Python API")
        elif current is None:
            value = float(text)
        else:
            value = type(current)(text)
    except ValueError as err:
        raise ValueError(f"--set {name}={text}: {err} (the field holds {current!r})") from None
    return dataclasses.replace(config, **{name: value})


def _flatten(output, prefix: str = "") -> dict[str, np.ndarray]:
    arrays = {}
    for field, value in output._asdict().items():
        key = f"{prefix}{field}"
        if hasattr(value, "_asdict"):
            arrays.update(_flatten(value, key + "/"))
        else:
            arrays[key] = np.asarray(value)
    return arrays


def _unflatten(cls, arrays: dict[str, np.ndarray], prefix: str = ""):
    hints = typing.get_type_hints(cls)
    values = {}
    for field in cls._fields:
        hint = hints.get(field)
        if isinstance(hint, type) and issubclass(hint, tuple) and hasattr(hint, "_fields"):
            values[field] = _unflatten(hint, arrays, f"{prefix}{field}/")
        else:
            key = f"{prefix}{field}"
            if key not in arrays:
                raise ValueError(f"the saved arrays have no {key!r} (were they written by another version?)")
            values[field] = arrays[key]
    return cls(**values)


def _jsonable(x):
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return _jsonable(dataclasses.asdict(x))
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


def load_arrays(path) -> dict[str, np.ndarray]:
    """Load an experiment's NAME.npz, never with pickle: an object array is refused."""
    import zipfile

    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except ValueError as err:
        if "Object arrays" in str(err):
            raise ValueError(f"{path}: holds an object array, which would need pickle to load; refused") from err
        raise ValueError(f"{path} is not a readable .npz file: {err}") from err
    except (OSError, zipfile.BadZipFile, EOFError) as err:
        raise ValueError(f"{path} is not a readable .npz file: {err}") from err


# ------------------------------------------------------------------------------------------
# Running and writing
# ------------------------------------------------------------------------------------------


@dataclasses.dataclass
class ExperimentResult:
    """Everything one run of an experiment produced."""

    name: str
    claim: str
    config: object
    """The experiment's frozen ``Config``."""
    output: tuple
    """The experiment's ``Output`` NamedTuple."""
    criteria: list[Criterion]
    """Findings and controls."""
    checks: list[Criterion]
    figure: object
    """A matplotlib Figure."""
    timings: dict[str, float]
    """Seconds (``compile_s``, ``run_s``, ``host_s``, per-program entries) and ``n_compiles``."""
    measurements: dict = dataclasses.field(default_factory=dict)
    provenance: dict = dataclasses.field(default_factory=dict)
    quick: bool = False

    @property
    def arrays(self) -> dict[str, np.ndarray]:
        return _flatten(self.output)


def provenance(config) -> dict:
    """Where a result came from: versions, commit, backend, date, command line, the full config."""
    import jax
    import jaxlib

    import toyrlhf

    try:
        root = Path(toyrlhf.__file__).resolve().parents[1]
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit, dirty = "", ""
    return {
        "toyrlhf": toyrlhf.__version__,
        "git_commit": (commit + ("-dirty" if dirty else "")) or None,
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "backend": jax.default_backend(),
        "devices": jax.device_count(),
        "python": sys.version.split()[0],
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        "config": config_to_dict(config),
    }


def nonfinite_fields(output, allowed: Iterable[str] = ()) -> list[str]:
    """Names of the floating fields of ``output`` that hold NaN or inf (``allowed`` ones skipped)."""
    allowed = set(allowed)
    return [
        key
        for key, value in _flatten(output).items()
        if key not in allowed and np.issubdtype(value.dtype, np.inexact) and not np.all(np.isfinite(value))
    ]


def run_experiment(module: ModuleType, config=None, progress: Progress | None = None, quick: bool = False):
    """Run ``module``'s contract once: compute, refuse non-finite output, judge, check, plot.

    ``config`` defaults to ``Config.quick()`` if ``quick`` else ``Config()``. Raises
    ``FloatingPointError`` naming the fields if the output holds NaN/inf where the
    module does not allow it (training diverged: report it rather than judge it).
    """
    if config is None:
        config = module.Config.quick() if quick else module.Config()
    if not isinstance(config, module.Config):
        raise TypeError(f"config must be a {module.NAME} Config, got {type(config).__qualname__}")
    clock = Clock(progress, module.NAME)
    start = time.perf_counter()
    output = module.compute(config, clock)
    computed = time.perf_counter()
    bad = nonfinite_fields(output, getattr(module, "NONFINITE_OK", ()))
    if bad:
        raise FloatingPointError(f"{module.NAME}: non-finite values in {', '.join(bad)} (training diverged?)")
    criteria = module.criteria(config, output)
    checks = module.checks(config, output)
    for c in checks:
        if c.kind != "check":
            raise ValueError(f"{module.NAME}: checks() returned a {c.kind} ({c.statement!r})")
    for c in criteria:
        if c.kind == "check":
            raise ValueError(f"{module.NAME}: criteria() returned a check ({c.statement!r}); checks() holds those")
    measure = getattr(module, "measurements", None)
    measurements = measure(config, output) if measure else {}
    judged = time.perf_counter()
    figure = module.plot(config, output)
    timings = clock.totals()
    end = time.perf_counter()
    # compute_s - (trace + compile + run + host) is what compute() does outside the Clock
    # (eager jnp, NumPy); judge_s the statistics of the criteria; plot_s the figure.
    timings.update(compute_s=computed - start, judge_s=judged - computed, plot_s=end - judged, wall_s=end - start)
    return ExperimentResult(
        name=module.NAME,
        claim=module.CLAIM,
        config=config,
        output=output,
        criteria=criteria,
        checks=checks,
        figure=figure,
        timings=timings,
        measurements=measurements,
        provenance=provenance(config),
        quick=quick,
    )


def result_summary(result: ExperimentResult) -> dict:
    """The JSON document written as ``NAME.json``."""
    return _jsonable(
        {
            "name": result.name,
            "claim": result.claim,
            "quick": result.quick,
            "config": config_to_dict(result.config),
            "criteria": [c.to_json() for c in result.criteria],
            "checks": [c.to_json() for c in result.checks],
            "measurements": result.measurements,
            "timings": result.timings,
            "provenance": result.provenance,
        }
    )


def save_figure(figure, stem: Path) -> list[Path]:
    """Write ``stem.png`` (150 dpi) and ``stem.pdf``, each atomically."""
    return [
        atomic_write(stem.with_suffix(".png"), lambda tmp: figure.savefig(tmp, format="png", dpi=150)),
        atomic_write(stem.with_suffix(".pdf"), lambda tmp: figure.savefig(tmp, format="pdf")),
    ]


def write_result(result: ExperimentResult, out_dir) -> list[Path]:
    """Write NAME.npz, NAME.png, NAME.pdf and NAME.json into ``out_dir``; return the paths.

    The four are written to temporary names first and renamed in together, the
    JSON last, so a reader that finds ``NAME.json`` finds the arrays and figures of
    the same run.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    arrays = result.arrays
    for key, value in arrays.items():
        if value.dtype == object:
            raise TypeError(f"array {key!r} has dtype object; only numeric arrays are saved (no pickle)")
    text = json.dumps(result_summary(result), indent=2) + "\n"
    with tempfile.TemporaryDirectory(dir=out, prefix=f".{result.name}.") as tmp:
        staged = Path(tmp) / result.name
        with open(staged.with_suffix(".npz"), "wb") as f:
            np.savez_compressed(f, **arrays)
        result.figure.savefig(staged.with_suffix(".png"), format="png", dpi=150)
        result.figure.savefig(staged.with_suffix(".pdf"), format="pdf")
        staged.with_suffix(".json").write_text(text)
        umask = os.umask(0)
        os.umask(umask)
        paths = []
        for ext in ("npz", "png", "pdf", "json"):
            final = out / f"{result.name}.{ext}"
            os.chmod(staged.with_suffix(f".{ext}"), 0o666 & ~umask)
            os.replace(staged.with_suffix(f".{ext}"), final)
            paths.append(final)
    return paths


def load_result(module: ModuleType, from_dir) -> tuple[object, tuple, dict]:
    """``(config, output, summary)`` of ``module``'s result saved in ``from_dir`` (npz + json alone)."""
    folder = Path(from_dir)
    json_path, npz_path = folder / f"{module.NAME}.json", folder / f"{module.NAME}.npz"
    for path in (json_path, npz_path):
        if not path.exists():
            raise FileNotFoundError(f"{path} not found: run `toyrlhf run {module.NAME} --out ...` first")
    summary = json.loads(json_path.read_text())
    if summary.get("name") != module.NAME:
        raise ValueError(f"{json_path} holds experiment {summary.get('name')!r}, not {module.NAME!r}")
    config = config_from_dict(module.Config, summary["config"])
    output = _unflatten(module.Output, load_arrays(npz_path))
    return config, output, summary


def replot(module: ModuleType, from_dir, out_dir=None, panels: bool = False) -> list[Path]:
    """Redraw ``module``'s figure from its saved npz + json, without recomputing.

    ``panels`` also writes every panel to SVG and PDF files of its own (:func:`toyrlhf.plotting.save_panels`).
    """
    import matplotlib.pyplot as plt

    from toyrlhf.plotting import save_panels

    config, output, _ = load_result(module, from_dir)
    figure = module.plot(config, output)
    try:
        stem = Path(out_dir or from_dir) / module.NAME
        paths = save_figure(figure, stem)
        return paths + (save_panels(figure, stem) if panels else [])
    finally:
        plt.close(figure)


# ------------------------------------------------------------------------------------------
# REPORT.md: findings, controls and checks, quick beside full
# ------------------------------------------------------------------------------------------

SETTINGS = ("quick", "full")


def _cell(c: dict | None) -> str:
    if c is None:
        return "not run"
    lo_hi = "exact" if c["interval"] is None else "[" + ", ".join(_fmt(float(v)) for v in c["interval"]) + "]"
    name = c.get("interval_name", "95% CI")
    if c["interval"] is not None and name != "95% CI":
        lo_hi += f" ({name})"
    return f"**{c['verdict']}** {_fmt(float(c['measured']))} {lo_hi}"


def write_report(root) -> Path:
    """Write ``root/REPORT.md`` from ``root/quick/*.json`` and ``root/full/*.json``.

    Per experiment: its findings, controls and checks in three tables, the quick and
    the full verdict side by side. Only findings are counted in the summary line;
    controls are labelled as controls; checks are identities and never counted.
    """
    from toyrlhf import experiments

    root = Path(root)
    summaries = {s: {} for s in SETTINGS}
    for setting in SETTINGS:
        for path in sorted((root / setting).glob("*.json")):
            data = json.loads(path.read_text())
            if "criteria" in data and "checks" in data:
                summaries[setting][data["name"]] = data
    names = [n for n in experiments.names() if any(n in summaries[s] for s in SETTINGS)]
    lines = [
        "# toyrlhf report",
        "",
        "Each criterion was registered before the run that judges it and is decided on its 95% interval: "
        "SUPPORTED when the whole interval lies in the claimed region, NOT SUPPORTED when it lies wholly "
        "outside, UNDETERMINED otherwise. *Findings* test one of the paper's claims where it could fail; "
        "*controls* are settings where the claim should not hold; *checks* are identities and code "
        "invariants, never counted as findings. The verdicts that count are the full ones; quick settings "
        "are for teaching and CI. Regenerate with `toyrlhf reproduce --quick` and `toyrlhf reproduce`.",
        "",
    ]
    for setting in SETTINGS:
        found = [c for s in summaries[setting].values() for c in s["criteria"] if c["kind"] == "finding"]
        if found:
            counts = {v: sum(c["verdict"] == v for c in found) for v in (SUPPORTED, NOT_SUPPORTED, UNDETERMINED)}
            lines.append(
                f"- {setting}: {len(summaries[setting])} experiments, {len(found)} findings: "
                + ", ".join(f"{n} {v}" for v, n in counts.items())
            )
    lines.append("")
    for name in names:
        runs = {s: summaries[s].get(name) for s in SETTINGS}
        first = next(r for r in runs.values() if r is not None)
        figure_setting = "full" if runs["full"] else "quick"
        lines += [f"## {name}", "", f"Claim: {first['claim']}", "", f"![{name}]({figure_setting}/{name}.png)", ""]
        for kind, title in (("finding", "Findings"), ("control", "Controls"), ("check", "Checks")):
            source = "checks" if kind == "check" else "criteria"
            statements = []
            for r in runs.values():
                for c in (r or {}).get(source, []):
                    if c["kind"] == kind and c["statement"] not in statements:
                        statements.append(c["statement"])
            if not statements:
                continue
            lines += [f"**{title}**", "", "| criterion | quick | full |", "|---|---|---|"]
            notes = []
            for statement in statements:
                cells = []
                for setting in SETTINGS:
                    match = [c for c in (runs[setting] or {}).get(source, []) if c["statement"] == statement]
                    cells.append(_cell(match[0] if match else None))
                    for c in match:
                        if c.get("disclosure") and c["disclosure"] not in notes:
                            notes.append(c["disclosure"])
                escaped = statement.replace("|", "\\|")  # |S| in a statement must not end the table cell
                lines.append(f"| {escaped} | {cells[0]} | {cells[1]} |")
            lines.append("")
            lines += [f"> Disclosure: {n}" for n in notes]
            if notes:
                lines.append("")
        for setting in SETTINGS:
            r = runs[setting]
            if r:
                t = r["timings"]
                lines.append(
                    f"- {setting}: compile {t.get('compile_s', 0):.1f} s ({int(t.get('n_compiles', 0))} programs), "
                    f"run {t.get('run_s', 0):.1f} s, host {t.get('host_s', 0):.1f} s, wall {t.get('wall_s', 0):.1f} s; "
                    f"{r['provenance'].get('backend')} backend, jax {r['provenance'].get('jax')}, "
                    f"commit {r['provenance'].get('git_commit')}, {r['provenance'].get('date')}"
                )
        lines.append("")
    path = root / "REPORT.md"
    text = "\n".join(lines)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))
    return path
