"""How wall time grows with the number of vmapped seeds: one PPO sweep and one GAIL sweep.

For each seed count (default 1, 8, 64, 512) a fresh process with the
compilation cache off builds ``jit(vmap(train))`` over the seeds, compiles it and
runs it; compile and run seconds are reported apart, with env steps per second.

- PPO: CartPole (JAX port), 16 envs x 128 steps x 10 updates per seed.
- GAIL: CartPole from the 16 committed expert episodes, 3 rounds per seed
  (``GAILConfig.cartpole``'s networks and PPO settings).

    .venv/bin/python benchmarks/seed_scaling.py              # writes benchmarks/results/seed_scaling.{json,md,png}
    .venv/bin/python benchmarks/seed_scaling.py --seeds 1 8        # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEMOS = HERE.parent / "toyrlhf" / "data" / "cartpole_expert.npz"  # the committed expert episodes


def worker(method: str, n_seeds: int) -> dict:
    import time

    import jax

    from toyrlhf.algorithms import gail, ppo
    from toyrlhf.envs import CartPole

    env = CartPole()
    keys = jax.random.split(jax.random.key(0), n_seeds)
    if method == "ppo":
        config = ppo.PPOConfig(n_envs=16, n_steps=128, n_updates=10)
        train = jax.jit(jax.vmap(ppo.make_train(config, env, env.default_params())))
        args = (keys,)
        env_steps = n_seeds * config.n_envs * config.n_steps * config.n_updates
    else:
        from toyrlhf import demonstrations

        demos, _ = demonstrations.load(DEMOS)
        config = gail.GAILConfig.cartpole(n_updates=3)
        one = gail.make_train(config, env, env.default_params())
        train = jax.jit(jax.vmap(one, in_axes=(0, None)))
        args = (keys, demos)
        env_steps = n_seeds * config.ppo.n_updates * config.ppo.n_envs * (config.ppo.n_steps + config.disc_n_steps)
    start = time.perf_counter()
    compiled = train.lower(*args).compile()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    jax.block_until_ready(compiled(*args))
    run_s = time.perf_counter() - start
    return {"method": method, "n_seeds": n_seeds, "compile_s": compile_s, "run_s": run_s,
            "env_steps": env_steps, "env_steps_per_s": env_steps / run_s, "backend": jax.default_backend()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="*", default=[1, 8, 64, 512])
    parser.add_argument("--worker", nargs=2, metavar=("METHOD", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], int(args.worker[1]))))
        return
    rows = []
    env = {**os.environ, "TOYRLHF_CACHE": "0"}
    for method in ("ppo", "gail"):
        for n in args.seeds:
            out = subprocess.run([sys.executable, __file__, "--worker", method, str(n)], capture_output=True,
                                 text=True, env=env, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(rows[-1], flush=True)
    result = {"rows": rows, "cpus": os.cpu_count(), "load_average": os.getloadavg()}
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "seed_scaling.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# Wall time against vmapped seeds",
        "",
        f"`benchmarks/seed_scaling.py`, {rows[0]['backend']} backend, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f} at the end; fresh process per row, compilation cache off.",
        "",
        "| method | seeds | compile s | run s | run s per seed | env steps/s |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['method']} | {r['n_seeds']} | {r['compile_s']:.1f} | {r['run_s']:.2f} | "
                     f"{r['run_s'] / r['n_seeds']:.3f} | {r['env_steps_per_s']:,.0f} |")
    (HERE / "results" / "seed_scaling.md").write_text("\n".join(lines) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for method in ("ppo", "gail"):
        rs = [r for r in rows if r["method"] == method]
        ax.loglog([r["n_seeds"] for r in rs], [r["compile_s"] + r["run_s"] for r in rs], "o-", label=f"{method}: total")
        ax.loglog([r["n_seeds"] for r in rs], [r["run_s"] for r in rs], "o--", label=f"{method}: run only")
    ax.set_xlabel("vmapped seeds")
    ax.set_ylabel("seconds")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(HERE / "results" / "seed_scaling.png", dpi=120)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
