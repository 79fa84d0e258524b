"""Command line: ``toyrlhf list | run NAME | reproduce | plot NAME | report``.

``run`` and ``reproduce`` write each experiment's NAME.npz, NAME.json, NAME.png
and NAME.pdf into ``OUT/quick/`` or ``OUT/full/`` (``--out``, default
``toyrlhf-results/`` in the current folder, so the committed results in
``toyrlhf/results/`` are redrawn only when asked: ``--out toyrlhf/results``), and
``OUT/REPORT.md`` with every criterion, quick and full side by side. A criterion
that is NOT SUPPORTED is a finding, not an error; an experiment that fails is
reported, ``reproduce`` carries on with the others and exits 1 at the end.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
import traceback
from pathlib import Path

from toyrlhf import experiments
from toyrlhf.experiments.common import (
    Progress,
    parse_override,
    replot,
    run_experiment,
    write_report,
    write_result,
)
from toyrlhf.files import atomic_write

DEFAULT_OUT = "toyrlhf-results"


def _parser() -> argparse.ArgumentParser:
    import toyrlhf

    names = ", ".join(experiments.names())
    parser = argparse.ArgumentParser(
        prog="toyrlhf",
        description=__doc__.splitlines()[0],
        epilog=f"experiments: {names}",
    )
    parser.add_argument("--version", action="version", version=f"toyrlhf {toyrlhf.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the experiments and the claim each tests")
    run = sub.add_parser("run", help="run one experiment", epilog=f"experiments: {names}")
    run.add_argument("name", help="experiment name (see `toyrlhf list`)")
    reproduce = sub.add_parser("reproduce", help="run every experiment and write REPORT.md")
    for p in (run, reproduce):
        p.add_argument("--quick", action="store_true", help="small settings: minutes on a 2-core CPU")
        p.add_argument("--out", default=DEFAULT_OUT, help=f"output root (default: {DEFAULT_OUT}/)")
        p.add_argument("--quiet", action="store_true", help="no progress messages")
    run.add_argument("--seeds", type=_positive_int, default=None, help="number of seeds (Config.n_seeds)")
    run.add_argument("--seed", type=int, default=None, help="the base seed (Config.seed)")
    run.add_argument(
        "--set", action="append", default=[], metavar="FIELD=VALUE",
        help="override a Config field, e.g. --set n_demos=50 (repeatable; tuples as 4,8,16)",
    )
    plot = sub.add_parser("plot", help="redraw a figure from saved NAME.npz + NAME.json, without recomputing")
    plot.add_argument("name", help="experiment name")
    plot.add_argument("--from", dest="source", default=None,
                      help="folder holding NAME.json and NAME.npz (default: the committed full result, else quick)")
    plot.add_argument("--out", default=None, help=f"where to write NAME.png/pdf (default: {DEFAULT_OUT}/plots)")
    plot.add_argument("--panels", action="store_true",
                      help="also write each panel to NAME-panel-K.svg and .pdf (for slides)")
    report = sub.add_parser("report", help="rewrite OUT/REPORT.md from OUT/quick and OUT/full")
    report.add_argument("out", nargs="?", default=DEFAULT_OUT)
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seeds must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"--seeds must be a positive integer, got {text}")
    return value


def committed_results() -> Path:
    """The results shipped with the package (``toyrlhf/results/``)."""
    return Path(__file__).resolve().parent / "results"


def build_config(module, quick: bool, seeds=None, seed=None, overrides=()):
    """``module.Config`` (quick or full) with ``--seeds``, ``--seed`` and ``--set`` applied."""
    config = module.Config.quick() if quick else module.Config()
    fields = {f.name for f in dataclasses.fields(config)}
    for flag, field, value in (("--seeds", "n_seeds", seeds), ("--seed", "seed", seed)):
        if value is not None:
            if field not in fields:
                raise ValueError(f"{module.NAME} has no {field} setting, so {flag} does not apply")
            config = dataclasses.replace(config, **{field: value})
    for assignment in overrides:
        config = parse_override(config, assignment)
    return config


def _run_one(module, config, quick: bool, out_root: str, progress: Progress) -> None:
    import matplotlib.pyplot as plt

    start = time.perf_counter()
    result = run_experiment(module, config, progress, quick=quick)
    paths = write_result(result, Path(out_root) / ("quick" if quick else "full"))
    plt.close(result.figure)
    t = result.timings
    print(
        f"{result.name}: wrote {', '.join(str(p) for p in paths)} ({time.perf_counter() - start:.1f}s: "
        f"trace {t['trace_s']:.1f}s, compile {t['compile_s']:.1f}s in {t['n_compiles']} programs, "
        f"run {t['run_s']:.1f}s)"
    )
    for c in result.criteria:
        print(f"  [{c.kind}] {c.line()}")
    for c in result.checks:
        print(f"  [check] {c.line()}")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    known = experiments.names()
    if args.command == "list":
        for name, module in experiments.registry().items():
            print(f"{name:28s} {module.CLAIM}")
        return 0
    if args.command == "report":
        print(f"wrote {write_report(args.out)}")
        return 0
    if args.command in ("run", "plot") and args.name not in known:
        print(f"toyrlhf: unknown experiment {args.name!r}; known: {', '.join(known)}", file=sys.stderr)
        return 2
    if args.command == "plot":
        module = experiments.get(args.name)
        source = args.source
        if source is None:
            full = committed_results() / "full"
            source = full if (full / f"{module.NAME}.json").exists() else committed_results() / "quick"
        try:
            paths = replot(module, source, args.out or Path(DEFAULT_OUT) / "plots", panels=args.panels)
        except (FileNotFoundError, ValueError) as err:
            print(f"toyrlhf: {err}", file=sys.stderr)
            return 2
        print(f"{module.NAME}: redrew {', '.join(str(p) for p in paths)} from {source}")
        return 0
    progress = Progress(enabled=not args.quiet)
    if args.command == "run":
        module = experiments.get(args.name)
        try:
            config = build_config(module, args.quick, args.seeds, args.seed, args.set)
        except (ValueError, TypeError) as err:
            print(f"toyrlhf: {err}", file=sys.stderr)
            return 2
        _run_one(module, config, args.quick, args.out, progress)
        write_report(args.out)
        return 0
    failed = []
    for i, name in enumerate(known, start=1):
        progress(f"[{i}/{len(known)}] {name}")
        try:
            module = experiments.get(name)
            _run_one(module, build_config(module, args.quick), args.quick, args.out, progress)
        except Exception as err:  # noqa: BLE001  carry on: one broken experiment must not hide the others
            failed.append((name, f"{type(err).__name__}: {err}"))
            print(f"{name}: FAILED\n{traceback.format_exc()}", file=sys.stderr)
    report = write_report(args.out)
    if failed:
        text = report.read_text() + "\n## Failed\n\n" + "".join(f"- {n}: FAILED ({e})\n" for n, e in failed)
        atomic_write(report, lambda tmp: Path(tmp).write_text(text))
        print(f"wrote {report}; FAILED: {', '.join(n for n, _ in failed)}", file=sys.stderr)
        return 1
    print(f"wrote {report}; figures in {Path(args.out) / ('quick' if args.quick else 'full')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
