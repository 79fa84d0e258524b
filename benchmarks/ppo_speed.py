"""PPO speed: throughput, compile time, time to solve CartPole in Gymnasium, seeds in parallel, and a peer.

One command (after ``bash benchmarks/setup_peers.sh`` for the peer comparison)::

    benchmarks/.peers/venv/bin/python benchmarks/ppo_speed.py            # full, ~10 min on 2 cores
    .venv/bin/python benchmarks/ppo_speed.py --quick --no-peers          # a smoke run, ~2 min

Every measurement runs in a fresh subprocess (empty compilation caches, no
state shared between libraries; each library with its own global JAX settings:
toyrlhf turns on x64, rejax does not), and libraries alternate within each
repeat so that load from other processes hits both alike. Reported numbers are
medians over repeats. What is measured:

1. **Throughput and compile time** on CartPole-v1 at matched settings: 16 envs
   x 128 steps, 4 epochs, 4 minibatches, MLP 64x64 tanh actor and critic, 50
   updates (102,400 env steps per seed), for 1 and 4 vmapped seeds. Compile =
   wall seconds of ``jit(vmap(train)).lower(keys).compile()`` (tracing included);
   run = wall seconds of the compiled call (the second call; the first is a
   warm-up); env steps/s = seeds x steps / run. Peers: rejax 0.1.3 PPO (gymnax
   CartPole) at the same settings, (a) with its in-training evaluator replaced
   by a no-op, so it does the same work as toyrlhf, and (b) as shipped, which
   evaluates 128 episodes every 4,096 steps inside the compiled program.
   The ceiling: "env only", a jitted uniform-random policy stepping the same
   envs for as many steps (no network, no update); PPO's fraction of its env
   steps per second is the headroom left.
2. **Time to solve** CartPole in Gymnasium: train in chunks of updates, and
   after each chunk evaluate the greedy policy in ``gymnasium.make("CartPole-v1")``
   (10 episodes, via :func:`toyrlhf.envs.in_gymnasium.evaluate_in_gymnasium`).
   Solved = mean return >= 475. Wall time counts from before building the
   training function, compile included; "train wall" excludes the time spent
   in evaluation, "total wall" includes it. 5 single-seed runs (target: >= 4
   solved within 60 s) and one run of 64 vmapped seeds (5 episodes each).
3. **Seeds in parallel** on a gridworld (four-rooms, tabular PPO): wall time of
   64 vmapped seeds against 1 seed (target <= 3x).

Results go to ``benchmarks/results/ppo_speed.{json,md,png}``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEERS_PYTHON = HERE / ".peers" / "venv" / "bin" / "python"
MATCHED = dict(n_envs=16, n_steps=128, n_epochs=4, n_minibatches=4, n_updates=50)
CARTPOLE_LR = 1e-3  # picked from {2.5e-4, 1e-3} in one 5-seed trial; everything else PPO's defaults
SOLVED = 475.0
LEVEL_1 = "--xla_backend_optimization_level=1"  # what importing toyrlhf asks of XLA on a CPU-only install
USER_XLA_FLAGS = os.environ.get("XLA_FLAGS")  # before this process imports toyrlhf, which adds LEVEL_1


# ------------------------------------------------------------------------------------------
# Workers (each runs in its own process and prints one JSON line)
# ------------------------------------------------------------------------------------------


def _timed_compile_and_run(fn, args, n_steps_total):
    import jax

    t0, c0 = time.perf_counter(), time.process_time()
    compiled = jax.jit(fn).lower(*args).compile()
    compile_s, compile_cpu_s = time.perf_counter() - t0, time.process_time() - c0
    jax.block_until_ready(compiled(*args))  # warm-up
    t0 = time.perf_counter()
    out = jax.block_until_ready(compiled(*args))
    run_s = time.perf_counter() - t0
    return out, {
        "compile_s": compile_s,
        "compile_cpu_s": compile_cpu_s,
        "run_s": run_s,
        "steps_per_s": n_steps_total / run_s,
    }


def worker_toyrlhf_throughput(seeds: int) -> dict:
    import jax

    import toyrlhf  # noqa: F401
    from toyrlhf.algorithms.ppo import PPOConfig, PPOHyperparams, make_train
    from toyrlhf.diagnostics import raise_if_nonfinite
    from toyrlhf.envs.cartpole import CartPole

    env = CartPole()
    config = PPOConfig(**MATCHED, hyper=PPOHyperparams(learning_rate=2.5e-4, max_grad_norm=0.5))
    train = jax.vmap(make_train(config, env, env.default_params()))
    keys = jax.random.split(jax.random.key(0), seeds)
    steps = seeds * config.n_updates * config.n_envs * config.n_steps
    (_, metrics), result = _timed_compile_and_run(train, (keys,), steps)
    raise_if_nonfinite(metrics.nonfinite)
    return {**result, "final_train_return": float(metrics.episode_return[:, -1].mean())}


def worker_env_limit(seeds: int) -> dict:
    """The ceiling PPO's throughput is measured against: a jitted uniform-random policy stepping the same
    16 CartPole envs for the same number of steps per seed (explicit auto-reset, as PPO's rollout does),
    with no network, no gradients and no minibatches."""
    import jax
    import jax.numpy as jnp

    import toyrlhf  # noqa: F401
    from toyrlhf.envs.cartpole import CartPole
    from toyrlhf.envs.functional import reset_if_done

    env, params = CartPole(), CartPole().default_params()
    n_envs, n_total = MATCHED["n_envs"], MATCHED["n_updates"] * MATCHED["n_steps"]

    def one_seed(key):
        obs, state = jax.vmap(env.reset, (0, None))(jax.random.split(key, n_envs), params)

        def step(carry, key):
            obs, state = carry
            k_act, k_reset = jax.random.split(key)
            action = jax.random.randint(k_act, (n_envs,), 0, env.n_actions)
            out = jax.vmap(env.step, (None, 0, 0, None))(key, state, action, params)
            nxt = jax.vmap(reset_if_done, (None, 0, 0, None))(env, jax.random.split(k_reset, n_envs), out, params)
            # the observation goes into the output so XLA computes it, as it must for a policy that reads it
            # (else it drops the unused observation from the loop and the ceiling is not the same env work)
            return nxt, out.reward.sum() + 0.0 * jnp.sum(obs)

        _, rewards = jax.lax.scan(step, (obs, state), jax.random.split(key, n_total))
        return rewards.sum()

    keys = jax.random.split(jax.random.key(0), seeds)
    _, result = _timed_compile_and_run(jax.vmap(one_seed), (keys,), seeds * n_envs * n_total)
    return result


def worker_rejax_throughput(seeds: int, as_shipped: bool) -> dict:
    import jax
    import jax.numpy as jnp
    from rejax import PPO

    steps_per_seed = MATCHED["n_updates"] * MATCHED["n_envs"] * MATCHED["n_steps"]
    kwargs = dict(
        env="CartPole-v1", num_envs=MATCHED["n_envs"], num_steps=MATCHED["n_steps"],
        num_epochs=MATCHED["n_epochs"], num_minibatches=MATCHED["n_minibatches"],
        total_timesteps=steps_per_seed, learning_rate=2.5e-4, max_grad_norm=0.5,
        agent_kwargs={"activation": "tanh", "hidden_layer_sizes": (64, 64)},
    )
    if not as_shipped:
        kwargs.update(eval_freq=steps_per_seed, skip_initial_evaluation=True)
    algo = PPO.create(**kwargs)
    if not as_shipped:
        algo = algo.replace(eval_callback=lambda algo, ts, rng: jnp.zeros(()))
    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    (_, evaluation), result = _timed_compile_and_run(jax.vmap(algo.train), (keys,), seeds * steps_per_seed)
    if as_shipped:
        result["final_eval_return"] = float(jnp.mean(evaluation[1][:, -1]))
    return result


def worker_time_to_solve(seeds: int, seed: int, budget_s: float, chunk: int, episodes: int) -> dict:
    start = time.perf_counter()
    import jax
    import numpy as np

    import toyrlhf  # noqa: F401
    from toyrlhf.algorithms.ppo import PPOConfig, PPOHyperparams, make_ppo
    from toyrlhf.diagnostics import raise_if_nonfinite
    from toyrlhf.envs.cartpole import CartPole
    from toyrlhf.envs.in_gymnasium import evaluate_in_gymnasium

    env = CartPole()
    config = PPOConfig(n_envs=16, n_steps=128, n_updates=100, hyper=PPOHyperparams(learning_rate=CARTPOLE_LR))
    ppo = make_ppo(config, env, env.default_params())

    def run_chunk(state):
        return jax.lax.scan(lambda s, _: ppo.update(s), state, None, length=chunk)

    keys = jax.random.split(jax.random.key(seed), seeds)
    init = jax.jit(jax.vmap(ppo.init))
    state = init(keys)
    step_chunk = jax.jit(jax.vmap(run_chunk)).lower(state).compile()
    compile_done = time.perf_counter() - start
    eval_s, curve, solved_at = 0.0, [], [None] * seeds
    updates = 0
    while updates < config.n_updates and time.perf_counter() - start < budget_s:
        state, metrics = jax.block_until_ready(step_chunk(state))
        raise_if_nonfinite(metrics.nonfinite)
        updates += chunk
        t_eval = time.perf_counter()
        returns = evaluate_in_gymnasium(
            config.actor.apply, state.params.actor, "CartPole-v1", episodes, seed=1000, n_policies=seeds
        ).mean(1)
        eval_s += time.perf_counter() - t_eval
        total = time.perf_counter() - start
        point = {"updates": updates, "env_steps": updates * 16 * 128, "train_wall_s": total - eval_s,
                 "total_wall_s": total, "eval_returns": returns.tolist()}
        curve.append(point)
        for i, r in enumerate(returns):
            if solved_at[i] is None and r >= SOLVED:
                solved_at[i] = {k: point[k] for k in ("updates", "env_steps", "train_wall_s", "total_wall_s")}
        if all(s is not None for s in solved_at):
            break
    return {"seeds": seeds, "seed": seed, "compile_wall_s": compile_done, "solved_at": solved_at, "curve": curve,
            "final_returns": np.asarray(curve[-1]["eval_returns"]).tolist()}


def worker_gridworld(seeds: int) -> dict:
    import jax

    import toyrlhf  # noqa: F401
    from toyrlhf.algorithms.ppo import PPOConfig, PPOHyperparams, make_train
    from toyrlhf.envs.functional import gridworld_env
    from toyrlhf.envs.gridworld import make_gridworld
    from toyrlhf.nets import Table

    grid = make_gridworld("four-rooms", slip=0.1, step_cost=0.01, horizon=100)
    env, params = gridworld_env(grid, "index")  # state indices: the fast tabular input
    config = PPOConfig(n_envs=16, n_steps=64, n_updates=100, actor=Table(), critic=Table(),
                       hyper=PPOHyperparams(learning_rate=0.1, ent_coef=0.0))
    train = jax.vmap(make_train(config, env, params))
    keys = jax.random.split(jax.random.key(0), seeds)
    steps = seeds * config.n_updates * config.n_envs * config.n_steps
    (_, metrics), result = _timed_compile_and_run(train, (keys,), steps)
    return {**result, "final_train_return": float(metrics.episode_return[:, -1].mean())}


WORKERS = {
    "toyrlhf_throughput": worker_toyrlhf_throughput,
    "rejax_throughput": worker_rejax_throughput,
    "env_limit": worker_env_limit,
    "time_to_solve": worker_time_to_solve,
    "gridworld": worker_gridworld,
}


# ------------------------------------------------------------------------------------------
# Driver
# ------------------------------------------------------------------------------------------


def run_worker(name: str, python: str | None = None, xla_flags: str | None = None, **kwargs) -> dict:
    cmd = [python or sys.executable, str(Path(__file__).resolve()), "--worker", name, "--kwargs", json.dumps(kwargs)]
    # TOYRLHF_CACHE=0: toyrlhf's persistent compilation cache would otherwise serve later repeats their
    # programs from disk, and the compile column would time a file read
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"} | {"TOYRLHF_CACHE": "0"}
    flags = xla_flags if xla_flags is not None else USER_XLA_FLAGS
    if flags is not None:
        env["XLA_FLAGS"] = flags
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE.parent, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"worker {name} {kwargs} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def median(rows: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def peer_python(args) -> str | None:
    if args.no_peers:
        return None
    for candidate in (sys.executable, str(PEERS_PYTHON)):
        if Path(candidate).exists() and subprocess.run(
            [candidate, "-c", "import rejax, gymnax"], capture_output=True
        ).returncode == 0:
            return candidate
    print("rejax not found: run `bash benchmarks/setup_peers.sh` for the peer comparison (skipped)")
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one repeat, fewer seeds: a smoke run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-peers", action="store_true", help="skip rejax")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--report-only", action="store_true", help="redraw .md and .png from an existing .json")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--kwargs", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(WORKERS[args.worker](**json.loads(args.kwargs))))
        return

    if args.report_only:
        results = json.loads((args.out / "ppo_speed.json").read_text())
        write_atomic(args.out / "ppo_speed.md", summary_markdown(results))
        plot(results, args.out / "ppo_speed.png")
        return
    repeats = 1 if args.quick else args.repeats
    peers = peer_python(args)
    results = {"settings": {**MATCHED, "repeats": repeats, "cartpole_lr": CARTPOLE_LR, "cpu_count": os.cpu_count(),
                            "load_average_start": os.getloadavg()}}

    print(f"1. Throughput and compile time, CartPole matched settings, {repeats} repeat(s)", flush=True)
    rows: dict[str, list[dict]] = {}
    for _ in range(repeats):
        for seeds in (1, 4):
            rows.setdefault(f"toyrlhf/{seeds}", []).append(run_worker("toyrlhf_throughput", seeds=seeds))
            rows.setdefault(f"env only (random policy)/{seeds}", []).append(run_worker("env_limit", seeds=seeds))
            if peers:
                rows.setdefault(f"rejax/{seeds}", []).append(
                    run_worker("rejax_throughput", peers, seeds=seeds, as_shipped=False))
                # toyrlhf asks XLA for LLVM level 1 on a CPU; rejax at that level too, so the compile
                # ratio above is not only a flag
                rows.setdefault(f"rejax, LLVM level 1/{seeds}", []).append(run_worker(
                    "rejax_throughput", peers, xla_flags=LEVEL_1, seeds=seeds, as_shipped=False))
        if peers:
            rows.setdefault("rejax as shipped/4", []).append(
                run_worker("rejax_throughput", peers, seeds=4, as_shipped=True))
    throughput = {name: {k: median(r, k) for k in ("compile_s", "compile_cpu_s", "run_s", "steps_per_s")}
                  for name, r in rows.items()}
    results["throughput"] = {"median": throughput, "all": rows}
    results["throughput"]["fraction_of_env_limit"] = {
        f"{seeds} seed(s)": throughput[f"toyrlhf/{seeds}"]["steps_per_s"]
        / throughput[f"env only (random policy)/{seeds}"]["steps_per_s"] for seeds in (1, 4)}
    for name, m in throughput.items():
        print(f"  {name:22s} compile {m['compile_s']:6.2f} s (CPU {m['compile_cpu_s']:5.2f} s)  run {m['run_s']:5.2f} s"
              f"  {m['steps_per_s']:10,.0f} env steps/s", flush=True)
    if peers:
        ratios = {}
        for seeds in (1, 4):
            ours, theirs = throughput[f"toyrlhf/{seeds}"], throughput[f"rejax/{seeds}"]
            ratios[f"{seeds} seed(s)"] = {
                "steps_per_s_ratio": ours["steps_per_s"] / theirs["steps_per_s"],
                "compile_ratio": ours["compile_s"] / theirs["compile_s"],
                "compile_cpu_ratio": ours["compile_cpu_s"] / theirs["compile_cpu_s"],
            }
            level_1 = throughput[f"rejax, LLVM level 1/{seeds}"]
            ratios[f"{seeds} seed(s), rejax at LLVM level 1 too"] = {
                "steps_per_s_ratio": ours["steps_per_s"] / level_1["steps_per_s"],
                "compile_ratio": ours["compile_s"] / level_1["compile_s"],
                "compile_cpu_ratio": ours["compile_cpu_s"] / level_1["compile_cpu_s"],
            }
        ours, shipped = throughput["toyrlhf/4"], throughput["rejax as shipped/4"]
        ratios["4 seeds vs rejax as shipped"] = {
            "compile_ratio": ours["compile_s"] / shipped["compile_s"],
            "compile_cpu_ratio": ours["compile_cpu_s"] / shipped["compile_cpu_s"],
        }
        results["throughput"]["ratios_toyrlhf_over_rejax"] = ratios
        for name, r in ratios.items():
            print(f"  toyrlhf / rejax, {name}: " + ", ".join(f"{k} {v:.2f}" for k, v in r.items()), flush=True)

    print("2. Time to mean Gymnasium CartPole-v1 return >= 475 (greedy policy)", flush=True)
    singles = [run_worker("time_to_solve", seeds=1, seed=s, budget_s=90.0, chunk=5, episodes=10)
               for s in range(2 if args.quick else 5)]
    many_seeds = 8 if args.quick else 64
    many = run_worker("time_to_solve", seeds=many_seeds, seed=0, budget_s=300.0, chunk=10, episodes=5)
    times = [r["solved_at"][0]["total_wall_s"] if r["solved_at"][0] else None for r in singles]
    within_60 = sum(t is not None and t <= 60.0 for t in times)
    solved_many = [s for s in many["solved_at"] if s is not None]

    def quantile_time(q, key):
        k = int(-(-q * many_seeds // 1))  # seeds needed
        ts = sorted(s[key] for s in solved_many)
        return ts[k - 1] if len(ts) >= k else None

    results["time_to_solve"] = {
        "single_seeds": singles, "vmapped": many, "single_total_wall_s": times, "solved_within_60s": within_60,
        "vmapped_total_wall_s_to_50_80_100pct": [quantile_time(q, "total_wall_s") for q in (0.5, 0.8, 1.0)],
        "vmapped_train_wall_s_to_50_80_100pct": [quantile_time(q, "train_wall_s") for q in (0.5, 0.8, 1.0)],
    }
    for s, r, t in zip(range(len(singles)), singles, times, strict=True):
        at = r["solved_at"][0]
        print(f"  seed {s}: " + (f"solved after {at['env_steps']:,} steps, train wall {at['train_wall_s']:.1f} s,"
                                  f" total wall {t:.1f} s (compile {r['compile_wall_s']:.1f} s)" if at else
                                  f"not solved, final return {r['final_returns'][0]:.0f}"), flush=True)
    print(f"  solved within 60 s (incl. compile and evaluation): {within_60} of {len(singles)}")
    print(f"  {many_seeds} vmapped seeds: {len(solved_many)} solved; wall to 50/80/100% solved: total "
          f"{fmt_times(results['time_to_solve']['vmapped_total_wall_s_to_50_80_100pct'])}, without evaluation "
          f"{fmt_times(results['time_to_solve']['vmapped_train_wall_s_to_50_80_100pct'])}", flush=True)

    print("3. Gridworld (four-rooms, tabular PPO): 64 vmapped seeds vs 1", flush=True)
    grid_rows: dict[str, list[dict]] = {}
    for _ in range(repeats):
        for seeds in (1, 64):
            grid_rows.setdefault(str(seeds), []).append(run_worker("gridworld", seeds=seeds))
    grid = {s: {k: median(r, k) for k in ("compile_s", "run_s", "steps_per_s")} for s, r in grid_rows.items()}
    grid["ratio_run_64_over_1"] = grid["64"]["run_s"] / grid["1"]["run_s"]
    grid["ratio_wall_64_over_1"] = (grid["64"]["compile_s"] + grid["64"]["run_s"]) / (
        grid["1"]["compile_s"] + grid["1"]["run_s"])
    results["gridworld"] = {"median": grid, "all": grid_rows}
    for s in ("1", "64"):
        print(f"  {s:>2} seed(s): compile {grid[s]['compile_s']:.2f} s, run {grid[s]['run_s']:.2f} s, "
              f"{grid[s]['steps_per_s']:,.0f} env steps/s", flush=True)
    print(f"  64/1 ratio: run {grid['ratio_run_64_over_1']:.2f}x, compile+run {grid['ratio_wall_64_over_1']:.2f}x")
    results["settings"]["load_average_end"] = os.getloadavg()

    args.out.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out / "ppo_speed.json", json.dumps(results, indent=1))
    write_atomic(args.out / "ppo_speed.md", summary_markdown(results))
    plot(results, args.out / "ppo_speed.png")
    print(f"wrote {args.out}/ppo_speed.json, .md, .png")


def fmt_times(times) -> str:
    return " / ".join("not reached" if t is None else f"{t:.1f} s" for t in times)


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def summary_markdown(results: dict) -> str:
    s = results["settings"]
    lines = [
        "# PPO speed (benchmarks/ppo_speed.py)",
        "",
        f"2-core CPU shared with other processes (load average {s['load_average_start'][0]:.1f} at start,"
        f" {s['load_average_end'][0]:.1f} at end); medians of {s['repeats']} repeat(s), each in a fresh process.",
        "",
        "| CartPole, 16 envs x 128 steps, 4 epochs x 4 minibatches | compile s (wall) | compile s (CPU) | run s"
        " | env steps/s |",
        "|---|---|---|---|---|",
    ]
    for name, m in results["throughput"]["median"].items():
        lines.append(f"| {name} seed(s) | {m['compile_s']:.2f} | {m['compile_cpu_s']:.2f} | {m['run_s']:.2f}"
                     f" | {m['steps_per_s']:,.0f} |")
    for name, r in results["throughput"].get("ratios_toyrlhf_over_rejax", {}).items():
        lines.append(f"\ntoyrlhf / rejax, {name}: " + ", ".join(f"{k} = {v:.2f}" for k, v in r.items()))
    for name, f in results["throughput"].get("fraction_of_env_limit", {}).items():
        lines.append(f"\ntoyrlhf PPO / env only (a jitted random policy stepping the same envs), {name}: "
                     f"{f:.2f} of the env-only steps per second")
    t = results["time_to_solve"]
    lines += ["", "## Time to mean return >= 475 in Gymnasium's CartPole-v1", ""]
    for i, (r, w) in enumerate(zip(t["single_seeds"], t["single_total_wall_s"], strict=True)):
        at = r["solved_at"][0]
        lines.append(f"- seed {i}: " + (f"{at['env_steps']:,} env steps, {w:.1f} s total wall"
                                        f" ({at['train_wall_s']:.1f} s without evaluation; compile"
                                        f" {r['compile_wall_s']:.1f} s)" if at else "not solved"))
    lines.append(f"- solved within 60 s including compile and evaluation: {t['solved_within_60s']} of"
                 f" {len(t['single_seeds'])}")
    v = t["vmapped"]
    lines.append(f"- {v['seeds']} vmapped seeds ({v['curve'][-1]['env_steps']:,} env steps each at most):"
                 f" {sum(x is not None for x in v['solved_at'])} solved; wall until 50% / 80% / 100% of seeds"
                 f" solved: {fmt_times(t['vmapped_total_wall_s_to_50_80_100pct'])} including evaluation,"
                 f" {fmt_times(t['vmapped_train_wall_s_to_50_80_100pct'])} without (compile"
                 f" {v['compile_wall_s']:.1f} s)")
    g = results["gridworld"]["median"]
    lines += ["", "## Seeds in parallel (four-rooms gridworld, tabular PPO, 102,400 steps per seed)", "",
              f"- 1 seed: compile {g['1']['compile_s']:.2f} s, run {g['1']['run_s']:.2f} s",
              f"- 64 seeds: compile {g['64']['compile_s']:.2f} s, run {g['64']['run_s']:.2f} s",
              f"- ratio 64/1: run {g['ratio_run_64_over_1']:.2f}x, compile + run {g['ratio_wall_64_over_1']:.2f}x", ""]
    return "\n".join(lines)


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    v = results["time_to_solve"]["vmapped"]
    for ax, x_key, x_label in ((axes[0], "total_wall_s", "wall seconds (compile and evaluation included)"),
                               (axes[1], "env_steps", "environment steps per seed")):
        for i, r in enumerate(results["time_to_solve"]["single_seeds"]):
            x = [p[x_key] for p in r["curve"]]
            y = [p["eval_returns"][0] for p in r["curve"]]
            label = "1 seed (5 runs, stop when solved)" if i == 0 else None
            ax.plot(x, y, color="C0", alpha=0.7, marker=".", label=label)
        x = [p[x_key] for p in v["curve"]]
        y = np.array([p["eval_returns"] for p in v["curve"]])
        ax.plot(x, np.median(y, 1), color="C1", marker=".", label=f"{v['seeds']} vmapped seeds: median, 10-90%")
        ax.fill_between(x, np.percentile(y, 10, 1), np.percentile(y, 90, 1), color="C1", alpha=0.2)
        ax.axhline(SOLVED, color="gray", ls="--", lw=1)
        ax.set(xlabel=x_label, ylabel="greedy return in Gymnasium CartPole-v1")
    axes[0].axvline(60, color="gray", ls=":", lw=1)
    axes[1].legend(frameon=False, loc="lower right")
    fig.suptitle("PPO (toyrlhf) on CartPole, scored in Gymnasium's own CartPole-v1")
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=150)
    os.replace(tmp, path)
    plt.close(fig)


if __name__ == "__main__":
    main()
