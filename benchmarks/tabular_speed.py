"""Exact solve + evaluate on a 50x50 slippery gridworld (2,500 states), horizon 200.

Run: python benchmarks/tabular_speed.py [--size 50] [--horizon 200] [--repeats 7]

Prints compile seconds and the median (and min/max) run seconds over repeats,
for `solve` alone, `evaluate` alone and both in one compiled call. The target
(issue 2) is solve + evaluate well under a second on a 2-core CPU after compile.
"""

import argparse
import statistics
import time

import jax

import toyrlhf  # noqa: F401  (float64 on)
from toyrlhf import tabular
from toyrlhf.envs.gridworld import make_gridworld, open_map


def measure(fn, args, repeats):
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    compile_s = time.perf_counter() - start
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        runs.append(time.perf_counter() - start)
    return compile_s, runs


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=50)
    parser.add_argument("--horizon", type=int, default=200)
    parser.add_argument("--slip", type=float, default=0.2)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    grid = make_gridworld(open_map(args.size, args.size), slip=args.slip, step_cost=0.01, horizon=args.horizon)
    mdp = grid.mdp
    print(f"{mdp} on {jax.devices()[0].platform}, {jax.local_device_count()} device(s)")

    def solve_and_evaluate(mdp):
        sol = tabular.solve(mdp)
        return sol.V, tabular.evaluate(mdp, sol.policy)

    policy = tabular.solve(mdp).policy
    cases = {
        "solve": (lambda m: tabular.solve(m), (mdp,)),
        "evaluate": (tabular.evaluate, (mdp, policy)),
        "solve + evaluate": (solve_and_evaluate, (mdp,)),
    }
    print(f"{'what':18s} {'compile s':>10s} {'median run s':>13s} {'min':>8s} {'max':>8s}")
    for name, (fn, fn_args) in cases.items():
        compile_s, runs = measure(fn, fn_args, args.repeats)
        print(f"{name:18s} {compile_s:10.3f} {statistics.median(runs):13.4f} {min(runs):8.4f} {max(runs):8.4f}")


if __name__ == "__main__":
    main()
