"""The wait a user sees: ``toyrlhf reproduce --quick`` cold (empty compilation cache) and warm (second run).

Each run is a fresh process with its own output folder; both share one new
compilation cache folder, so the first pays every compilation and the second
loads what the first stored. Per experiment, compile and run seconds and the
number of compiled programs are read from the JSON each run wrote.

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
        experiments[data["name"]] = {k: t.get(k) for k in ("compile_s", "run_s", "host_s", "wall_s", "n_compiles")}
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
    lines = [
        "# `toyrlhf reproduce --quick`: cold and warm",
        "",
        f"Measured by `benchmarks/reproduce_time.py` on {os.cpu_count()} CPUs "
        f"(load average {os.getloadavg()[0]:.1f} at the end).",
        "",
        f"- cold (empty compilation cache): {cold['wall_s']:.0f} s wall",
        f"- warm (second run, cache filled by the first): {warm['wall_s']:.0f} s wall",
        "",
        "| experiment | cold compile s | cold run s | programs | warm compile s | warm run s |",
        "|---|---|---|---|---|---|",
    ]
    for name, c in cold["experiments"].items():
        w = warm["experiments"].get(name, {})
        lines.append(
            f"| {name} | {c['compile_s']:.1f} | {c['run_s']:.1f} | {c['n_compiles']} | "
            f"{w.get('compile_s', float('nan')):.1f} | {w.get('run_s', float('nan')):.1f} |"
        )
    (HERE / "results" / "reproduce_time.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
