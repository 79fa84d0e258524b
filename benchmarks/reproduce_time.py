"""The wait a user sees: ``toyrlhf reproduce --quick`` cold (empty compilation cache) and warm (second run).

Each run is a fresh process with its own output folder; both share one new
compilation cache folder, so the first pays every compilation and the second
loads what the first stored. Per experiment, the JSON each run wrote gives
tracing, compile and run seconds of its compiled programs, the time its
``compute`` spent outside them (eager analysis, NumPy), the statistics of the
criteria, the figure, and the number of compiled programs. Earlier
measurements below the line "## Earlier measurements" of the results file are
kept.

    .venv/bin/python benchmarks/reproduce_time.py            # writes benchmarks/results/reproduce_time.{json,md}
    .venv/bin/python benchmarks/reproduce_time.py --only compounding-error-exact
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
KEYS = ("trace_s", "compile_s", "run_s", "host_s", "compute_s", "judge_s", "plot_s", "wall_s", "n_compiles")
EARLIER = "## Earlier measurements"


def _row(name: str, t: dict) -> str:
    def f(key):
        v = t.get(key)
        return "–" if v is None else f"{v:.1f}"

    outside = None
    if t.get("compute_s") is not None:
        outside = t["compute_s"] - sum(t.get(k) or 0.0 for k in ("trace_s", "compile_s", "run_s", "host_s"))
    return (f"| {name} | {f('trace_s')} | {f('compile_s')} | {f('run_s')} | {f('host_s')} | "
            f"{'–' if outside is None else f'{outside:.1f}'} | {f('judge_s')} | {f('plot_s')} | {f('wall_s')} | "
            f"{t.get('n_compiles', '–')} |")


def run_once(out: Path, cache: Path, only: list[str]) -> dict:
    env = {**os.environ, "TOYRLHF_CACHE_DIR": str(cache), "MPLBACKEND": "Agg"}
    if only:
        commands = [[sys.executable, "-m", "toyrlhf", "run", name, "--quick", "--out", str(out), "--quiet"]
                    for name in only]
    else:
        commands = [[sys.executable, "-m", "toyrlhf", "reproduce", "--quick", "--out", str(out), "--quiet"]]
    start = time.perf_counter()
    codes = [subprocess.run(c, env=env, stdout=subprocess.DEVNULL).returncode for c in commands]
    wall = time.perf_counter() - start
    experiments = {}
    for path in sorted((out / "quick").glob("*.json")):
        data = json.loads(path.read_text())
        t = data["timings"]
        experiments[data["name"]] = {k: t.get(k) for k in KEYS}
    return {"wall_s": wall, "exit_codes": codes, "experiments": experiments}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=[], help="experiment names (default: reproduce, all)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cold = run_once(tmp / "cold", tmp / "cache", args.only)
        warm = run_once(tmp / "warm", tmp / "cache", args.only)
    result = {"cold": cold, "warm": warm, "cpus": os.cpu_count(), "load_average": os.getloadavg()}
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "reproduce_time.json").write_text(json.dumps(result, indent=2) + "\n")
    md = HERE / "results" / "reproduce_time.md"
    earlier = md.read_text().split(EARLIER, 1)[1] if md.exists() and EARLIER in md.read_text() else ""
    columns = ("experiment", "trace s", "compile s", "run s", "host s", "outside s", "judge s", "plot s", "wall s",
               "programs")
    header = "| " + " | ".join(columns) + " |\n" + "|---" * len(columns) + "|"
    lines = [
        "# `toyrlhf reproduce --quick`: cold and warm",
        "",
        f"Measured by `benchmarks/reproduce_time.py` on {os.cpu_count()} CPUs "
        f"(load average {os.getloadavg()[0]:.1f} at the end), {time.strftime('%Y-%m-%d')}.",
        "",
        f"- cold (empty compilation cache): {cold['wall_s']:.0f} s wall",
        f"- warm (second run, cache filled by the first): {warm['wall_s']:.0f} s wall",
        "",
        "\"outside\" is what an experiment's `compute` spent outside its compiled programs (eager analysis,",
        "NumPy); \"judge\" the statistics of its criteria; \"plot\" its figure.",
        "",
        "Cold:",
        "",
        header,
        *[_row(name, t) for name, t in cold["experiments"].items()],
        "",
        "Warm:",
        "",
        header,
        *[_row(name, t) for name, t in warm["experiments"].items()],
    ]
    text = "\n".join(lines) + "\n"
    md.write_text(text + (f"\n{EARLIER}{earlier}" if earlier else ""))
    print(text)


if __name__ == "__main__":
    main()
