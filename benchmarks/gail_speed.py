"""GAIL speed: time to a mean return >= 450 in Gymnasium's CartPole-v1 from 16 expert episodes, toyrlhf vs `imitation`.

One command (after ``bash benchmarks/setup_peers.sh imitation`` for the reference)::

    .venv/bin/python benchmarks/gail_speed.py             # full, ~12 min on 2 cores
    .venv/bin/python benchmarks/gail_speed.py --quick     # 1 seed each, short imitation budget (smoke run)

The expert data are made once, before any timing: the PPO CartPole expert of
``toyrlhf.algorithms.experts`` (checked in Gymnasium), 16 greedy episodes of 500
steps, saved as ``results/gail_cartpole_expert16.npz`` (toyrlhf's format) and as
flat transitions for ``imitation``. Both learners get exactly these 8,000 pairs.

Every run is a fresh subprocess (empty compilation caches). A run trains in
chunks and, after each chunk, scores the greedy policy over 10 episodes of
``gymnasium.make("CartPole-v1")`` (starts seeded 0..9); solved = mean >= 450.
Wall time counts from before the learner is built (imports of the worker
excluded, compilation and the Gymnasium evaluations included); "train wall"
leaves the evaluations out. Env steps are the learner's own (PPO rollouts plus,
for toyrlhf, the discriminator's rollouts).

- **toyrlhf**: ``gail.GAILConfig.cartpole()`` (16 envs x 128 steps per PPO update,
  4 epochs x 4 minibatches, MLP 64x64 actor, critic and discriminator, logit
  reward with the absorbing-state tail; PPO's step size constant, the
  discriminator's Adam state kept across rounds, gradient penalty 10), chunks of
  10 rounds (20,480 PPO steps + 2,560 discriminator steps), at most 150 rounds.
  The committed ``results/gail_speed.*`` were measured with the earlier
  settings (step size annealed, Adam restarted every round, no penalty); rerun
  to compare the current ones.
- **imitation 1.0.1** (PyTorch + Stable-Baselines3 2.2.1, its own venv with
  gymnasium 0.29): the GAIL configuration of imitation's own CartPole example
  (docs, "Generative Adversarial Imitation Learning"): 8 envs of
  ``seals/CartPole-v0`` (fixed 500-step episodes: imitation's answer to the
  absorbing-state bias), SB3 PPO (batch 64, lr 4e-4, γ 0.95, 5 epochs,
  ``ent_coef`` 0), ``BasicRewardNet`` with ``RunningNorm``, demo batch 1024,
  replay 512, 8 discriminator updates per round; one round = 16,384 env steps =
  one chunk. The run stops at the first evaluation >= 450 or after the 800,000
  env steps imitation's documentation gives its example to match the expert
  (a 30-minute wall cap guards against a stuck run). Earlier versions of this
  benchmark stopped imitation after 300 s of wall time instead, which left
  the ratio only bounded.

Results go to ``benchmarks/results/gail_speed.{json,md}``.
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
ROOT = HERE.parent
IMITATION_PYTHON = HERE / ".peers" / "imitation-venv" / "bin" / "python"
RESULTS = HERE / "results"
DEMOS = RESULTS / "gail_cartpole_expert16.npz"
TRANSITIONS = HERE / ".peers" / "gail_cartpole_expert16_transitions.npz"
TARGET = 450.0
# imitation's GAIL example (docs/algorithms/gail.rst) trains 20,000 steps with the comment "Train for
# 800_000 steps to match expert": the budget its own documentation gives for expert level.
IMITATION_DOCUMENTED_STEPS = 800_000
EVAL_EPISODES = 10


# ------------------------------------------------------------------------------------------
# Workers (each runs in its own process and prints one JSON line)
# ------------------------------------------------------------------------------------------


def worker_toyrlhf(seed: int, max_rounds: int, chunk: int) -> dict:
    t0 = time.perf_counter()
    import jax

    from toyrlhf import demonstrations
    from toyrlhf.algorithms import gail
    from toyrlhf.diagnostics import raise_if_nonfinite
    from toyrlhf.envs import CartPole, evaluate_in_gymnasium

    t_start = time.perf_counter()
    demos, _ = demonstrations.load(DEMOS)
    env = CartPole()
    config = gail.GAILConfig.cartpole(n_updates=max_rounds)
    pieces = gail.make_gail(config, env, env.default_params())
    run_chunk = jax.jit(lambda s: jax.lax.scan(lambda s, _: pieces.update(s), s, None, length=chunk))
    state = jax.jit(pieces.init)(jax.random.key(seed), demos)
    t_compile = time.perf_counter()
    run_chunk = run_chunk.lower(state).compile()
    compile_s = time.perf_counter() - t_compile
    eval_s, history, solved = 0.0, [], False
    for _ in range(max_rounds // chunk):
        state, metrics = run_chunk(state)
        jax.block_until_ready(state)
        raise_if_nonfinite(metrics.nonfinite, "toyrlhf GAIL")
        t_eval = time.perf_counter()
        actor = pieces.result(state).ppo.params.actor
        returns = evaluate_in_gymnasium(config.ppo.actor.apply, actor, "CartPole-v1", EVAL_EPISODES, seed=0)
        eval_s += time.perf_counter() - t_eval
        wall = time.perf_counter() - t_start
        env_steps = int(pieces.result(state).resources.env_steps)
        history.append({"env_steps": env_steps, "wall_s": wall, "mean_return": float(returns.mean())})
        if returns.mean() >= TARGET:
            solved = True
            break
    wall = time.perf_counter() - t_start
    return {"library": "toyrlhf", "seed": seed, "solved": solved, "wall_s": wall, "train_wall_s": wall - eval_s,
            "compile_s": compile_s, "env_steps": history[-1]["env_steps"], "import_s": t_start - t0,
            "final_return": history[-1]["mean_return"], "history": history}


def worker_imitation(seed: int, budget_steps: int, cap_s: float) -> dict:
    t0 = time.perf_counter()
    import gymnasium as gym
    import numpy as np
    import torch
    from imitation.algorithms.adversarial.gail import GAIL
    from imitation.data import types
    from imitation.data.wrappers import RolloutInfoWrapper
    from imitation.rewards.reward_nets import BasicRewardNet
    from imitation.util.networks import RunningNorm
    from imitation.util.util import make_vec_env
    from stable_baselines3 import PPO
    from stable_baselines3.ppo import MlpPolicy

    t_start = time.perf_counter()
    with np.load(TRANSITIONS, allow_pickle=False) as data:
        transitions = types.Transitions(
            obs=data["obs"], acts=data["acts"], infos=np.array([{}] * len(data["acts"])),
            next_obs=data["next_obs"], dones=data["dones"],
        )
    rng = np.random.default_rng(seed)
    venv = make_vec_env("seals:seals/CartPole-v0", rng=rng, n_envs=8,
                        post_wrappers=[lambda env, _: RolloutInfoWrapper(env)])
    learner = PPO(env=venv, policy=MlpPolicy, batch_size=64, ent_coef=0.0, learning_rate=0.0004, gamma=0.95,
                  n_epochs=5, seed=seed)
    reward_net = BasicRewardNet(observation_space=venv.observation_space, action_space=venv.action_space,
                                normalize_input_layer=RunningNorm)
    trainer = GAIL(demonstrations=transitions, demo_batch_size=1024, gen_replay_buffer_capacity=512,
                   n_disc_updates_per_round=8, venv=venv, gen_algo=learner, reward_net=reward_net,
                   allow_variable_horizon=True)
    round_steps = learner.n_steps * venv.num_envs

    def evaluate() -> float:
        returns = []
        for i in range(EVAL_EPISODES):
            env = gym.make("CartPole-v1")
            obs, _ = env.reset(seed=i)
            total, done = 0.0, False
            while not done:
                action, _ = learner.predict(obs, deterministic=True)
                obs, r, terminated, truncated, _ = env.step(int(action))
                total += float(r)
                done = terminated or truncated
            env.close()
            returns.append(total)
        return float(np.mean(returns))

    eval_s, history, solved, env_steps = 0.0, [], False, 0
    while env_steps < budget_steps and time.perf_counter() - t_start < cap_s:
        trainer.train(round_steps)
        env_steps += round_steps
        t_eval = time.perf_counter()
        mean_return = evaluate()
        eval_s += time.perf_counter() - t_eval
        history.append({"env_steps": env_steps, "wall_s": time.perf_counter() - t_start, "mean_return": mean_return})
        if mean_return >= TARGET:
            solved = True
            break
    wall = time.perf_counter() - t_start
    return {"library": "imitation", "seed": seed, "solved": solved, "wall_s": wall, "train_wall_s": wall - eval_s,
            "compile_s": 0.0, "env_steps": env_steps, "import_s": t_start - t0,
            "budget_steps": budget_steps, "cap_s": cap_s,
            "final_return": history[-1]["mean_return"] if history else None, "history": history,
            "versions": {"torch": torch.__version__, "gymnasium": gym.__version__}}


# ------------------------------------------------------------------------------------------
# Driver
# ------------------------------------------------------------------------------------------


def run_worker(name: str, python: str, **kwargs) -> dict:
    code = f"import sys, json; sys.path.insert(0, {str(HERE)!r}); import gail_speed as g; " \
           f"print('RESULT' + json.dumps(g.worker_{name}(**{kwargs!r})))"
    # TOYRLHF_CACHE=0: else toyrlhf's persistent compilation cache would hand later seeds their program
    env = {**os.environ, "TOYRLHF_CACHE": "0"}
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT"):
            return json.loads(line[len("RESULT"):])
    return {"library": name, "error": (out.stderr or out.stdout)[-3000:], **kwargs}


def make_demonstrations() -> dict:
    """The 16 expert episodes, in toyrlhf's format and as flat transitions for imitation."""
    import numpy as np

    from toyrlhf import demonstrations
    from toyrlhf.algorithms import experts
    from toyrlhf.files import atomic_write

    expert = experts.train_cartpole_expert(seed=1)
    demos, source = experts.cartpole_demonstrations(expert, n_episodes=16, seed=1)
    demonstrations.save(DEMOS, demos, source)
    obs, acts, valid = (np.asarray(x) for x in (demos.observations, demos.actions, demos.valid))
    next_obs = np.concatenate([obs[:, 1:], obs[:, -1:]], axis=1)  # the reward nets read (obs, act) only
    dones = np.zeros_like(valid)
    dones[np.arange(len(valid)), valid.sum(1) - 1] = True
    TRANSITIONS.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(TRANSITIONS, lambda tmp: np.savez(tmp, obs=obs[valid], acts=acts[valid], next_obs=next_obs[valid],
                                                   dones=dones[valid]))
    return {"expert_seed": expert.seed, "expert_gymnasium_return": expert.gymnasium_return,
            "demo_returns": np.asarray(demos.returns()).tolist(), "n_pairs": int(valid.sum()),
            "source": source.note}


def median(rows, key):
    values = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(values) if values else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed each, imitation budget 65,536 env steps")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--imitation-seeds", type=int, default=3)
    parser.add_argument("--imitation-budget", type=int, default=IMITATION_DOCUMENTED_STEPS,
                        help="env steps per imitation run (default: its documentation's 800,000)")
    parser.add_argument("--imitation-cap", type=float, default=1800.0, help="wall seconds per imitation run, at most")
    parser.add_argument("--no-imitation", action="store_true")
    args = parser.parse_args()
    seeds, imitation_seeds, budget = args.seeds, args.imitation_seeds, args.imitation_budget
    if args.quick:
        seeds, imitation_seeds, budget = 1, 1, 4 * 16_384

    data = make_demonstrations()
    ours = [run_worker("toyrlhf", sys.executable, seed=s, max_rounds=150, chunk=10) for s in range(seeds)]
    peer = []
    if not args.no_imitation:
        if IMITATION_PYTHON.exists():
            peer = [run_worker("imitation", str(IMITATION_PYTHON), seed=s, budget_steps=budget,
                               cap_s=args.imitation_cap) for s in range(imitation_seeds)]
        else:
            peer = [{"library": "imitation", "error": f"{IMITATION_PYTHON} missing: bash benchmarks/setup_peers.sh "
                                                         "imitation"}]
    results = {"target_return": TARGET, "eval_episodes": EVAL_EPISODES, "cpu_count": os.cpu_count(),
               "load_average": os.getloadavg(), "quick": args.quick, "data": data, "toyrlhf": ours, "imitation": peer}
    summary = {}
    for name, rows in (("toyrlhf", ours), ("imitation", peer)):
        ok = [r for r in rows if "error" not in r]
        summary[name] = {
            "runs": len(rows), "solved": sum(bool(r["solved"]) for r in ok),
            "median_wall_s": median(ok, "wall_s"), "median_train_wall_s": median(ok, "train_wall_s"),
            "median_compile_s": median(ok, "compile_s"), "median_env_steps": median(ok, "env_steps"),
        }
    if summary["toyrlhf"]["median_wall_s"] and summary["imitation"]["median_wall_s"]:
        summary["speedup_wall"] = summary["imitation"]["median_wall_s"] / summary["toyrlhf"]["median_wall_s"]
        summary["speedup_is_lower_bound"] = summary["imitation"]["solved"] < summary["imitation"]["runs"]
    results["summary"] = summary
    RESULTS.mkdir(exist_ok=True)
    from toyrlhf.files import atomic_write

    atomic_write(RESULTS / "gail_speed.json", lambda tmp: Path(tmp).write_text(json.dumps(results, indent=1)))
    atomic_write(RESULTS / "gail_speed.md", lambda tmp: Path(tmp).write_text(summary_markdown(results)))
    print(summary_markdown(results))


def summary_markdown(results: dict) -> str:
    lines = [f"# GAIL on CartPole-v1: time to a mean Gymnasium return >= {results['target_return']:.0f}", "",
             f"16 expert episodes ({results['data']['n_pairs']} pairs; {results['data']['source']}). "
             f"{results['cpu_count']} CPU cores, load average at the end {results['load_average'][0]:.1f}.", "",
             "| library | seed | solved | wall (s) | train wall (s) | compile (s) | env steps | last eval |",
             "|---|---|---|---|---|---|---|---|"]
    for name in ("toyrlhf", "imitation"):
        for r in results[name]:
            if "error" in r:
                lines.append(f"| {name} | - | error | {r['error'][-200:]!r} | | | | |")
                continue
            lines.append(f"| {name} | {r['seed']} | {r['solved']} | {r['wall_s']:.1f} | {r['train_wall_s']:.1f} | "
                         f"{r['compile_s']:.1f} | {r['env_steps']:,} | {r['final_return']} |")
    s = results["summary"]
    lines += ["", "| library | solved | median wall (s) | median compile (s) | median env steps |",
              "|---|---|---|---|---|"]
    for name in ("toyrlhf", "imitation"):
        m = s[name]
        fmt = lambda v: "-" if v is None else f"{v:,.1f}"  # noqa: E731
        lines.append(f"| {name} | {m['solved']}/{m['runs']} | {fmt(m['median_wall_s'])} | "
                     f"{fmt(m['median_compile_s'])} | {fmt(m['median_env_steps'])} |")
    if "speedup_wall" in s:
        bound = " (lower bound: imitation did not always reach the target within its budget)" \
            if s["speedup_is_lower_bound"] else ""
        lines += ["", f"Wall-time ratio imitation / toyrlhf: {s['speedup_wall']:.1f}x{bound}; target >= 30x: "
                  f"{'met' if s['speedup_wall'] >= 30 else 'NOT met'}."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
