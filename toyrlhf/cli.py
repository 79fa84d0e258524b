"""Command line: ``toyrlhf list | run NAME | reproduce``.

``run`` and ``reproduce`` write each experiment's NAME.npz, NAME.json, NAME.png
and NAME.pdf into ``--out`` (default ``figures/``); ``reproduce`` also writes
REPORT.md with every pre-registered criterion. A criterion that is NOT
SUPPORTED is a finding, not an error: the exit code is 0 unless something broke.
"""

from __future__ import annotations

import argparse
import sys
import time

from toyrlhf import experiments
from toyrlhf.experiments.common import Progress, result_summary, write_report, write_result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="toyrlhf", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the experiments")
    run = sub.add_parser("run", help="run one experiment")
    run.add_argument("name", help="experiment name (see `toyrlhf list`)")
    reproduce = sub.add_parser("reproduce", help="run every experiment and write REPORT.md")
    for p in (run, reproduce):
        p.add_argument("--quick", action="store_true", help="small settings: minutes on a 2-core CPU")
        p.add_argument("--out", default="figures", help="output folder (default: figures/)")
        p.add_argument("--quiet", action="store_true", help="no progress messages")
    run.add_argument("--seeds", type=_positive_int, default=None, help="number of seeds (default: the experiment's)")
    return parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"--seeds must be a positive integer, got {text}")
    return value


def _run_one(module, quick: bool, seeds, out: str, progress: Progress) -> dict:
    start = time.perf_counter()
    result = module.run(quick=quick, seeds=seeds, progress=progress)
    paths = write_result(result, out)
    print(f"{result.name}: wrote {', '.join(str(p) for p in paths)} ({time.perf_counter() - start:.1f}s)")
    for criterion in result.criteria:
        print(f"  {criterion.line()}")
    return result_summary(result)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    registry = experiments.registry()
    if args.command == "list":
        for name, module in registry.items():
            print(f"{name:28s} {module.CLAIM}")
        return 0
    progress = Progress(enabled=not args.quiet)
    if args.command == "run":
        if args.name not in registry:
            print(f"toyrlhf: unknown experiment {args.name!r}; known: {', '.join(registry)}", file=sys.stderr)
            return 2
        _run_one(registry[args.name], args.quick, args.seeds, args.out, progress)
        return 0
    summaries = []
    for i, module in enumerate(registry.values(), start=1):
        progress(f"[{i}/{len(registry)}] {module.NAME}")
        summaries.append(_run_one(module, args.quick, None, args.out, progress))
    report = write_report(summaries, args.out, args.quick)
    n_supported = sum(c["supported"] for s in summaries for c in s["criteria"])
    n_total = sum(len(s["criteria"]) for s in summaries)
    print(f"wrote {report}: {n_supported} of {n_total} criteria SUPPORTED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
