"""Learned experts and their demonstrations: a PPO-trained CartPole expert, and episodes of any policy.

Tabular experts are exact (``toyrlhf.demonstrations.tabular_expert``). On CartPole
the expert is a PPO policy (``toyrlhf.algorithms.ppo``), checked in Gymnasium's
own ``CartPole-v1`` before it is trusted, and its greedy episodes in the JAX
port become a :class:`~toyrlhf.demonstrations.Demonstrations` set with its
:class:`~toyrlhf.demonstrations.Source` recorded::

    expert = experts.train_cartpole_expert(seed=0)              # PPO, ~2 x 10^5 env steps
    demos, source = experts.cartpole_demonstrations(expert, n_episodes=16, seed=1)
    demonstrations.save("cartpole16.npz", demos, source)

A PPO expert retrained on another machine is another expert (XLA's CPU code
differs, and PPO amplifies the difference), so experiments that need the *same*
demonstrations everywhere read the committed ones instead:
:func:`committed_cartpole_demonstrations` loads the package file
``toyrlhf/data/cartpole_expert.npz`` (:data:`COMMITTED_CARTPOLE_EPISODES` greedy
500-step episodes of the PPO expert of ``benchmarks/gail_speed.py``, the file
``benchmarks/results/gail_cartpole_expert16.npz``), never unpickling.

:func:`policy_demonstrations` rolls out any policy of a functional environment
for ``n_episodes`` episodes of at most ``horizon`` steps (one episode per
environment, no reset: steps after an episode's end are marked invalid).
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from toyrlhf import demonstrations
from toyrlhf.algorithms import ppo
from toyrlhf.demonstrations import Demonstrations, Source
from toyrlhf.diagnostics import raise_if_nonfinite
from toyrlhf.envs.cartpole import CartPole
from toyrlhf.envs.in_gymnasium import evaluate_in_gymnasium
from toyrlhf.validation import boolean, finite_float, instance, non_negative_int, positive_int


def policy_demonstrations(
    key: jax.Array,
    env: Any,
    env_params: Any,
    policy_apply,
    params: Any,
    n_episodes: int,
    horizon: int,
    deterministic: bool = True,
) -> Demonstrations:
    """``n_episodes`` episodes of ``policy_apply(params, obs) -> logits``, each padded to ``horizon`` steps.

    Actions are ``argmax`` of the logits (``deterministic``) or sampled. ``valid[n, t]``
    is False after episode ``n`` ended (terminated or truncated). Jit-able with
    ``n_episodes``, ``horizon`` and ``deterministic`` static.
    """
    positive_int("n_episodes", n_episodes)
    positive_int("horizon", horizon)
    boolean("deterministic", deterministic)
    key_reset, key_steps = jax.random.split(key)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key_reset, n_episodes), env_params)
    step_envs = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def one_step(carry, key_t):
        obs, state, running = carry
        key_act, key_env = jax.random.split(key_t)
        logits = policy_apply(params, obs)
        if deterministic:
            action = jnp.argmax(logits, axis=-1)
        else:
            action = jax.random.categorical(key_act, logits)
        action = action.astype(jnp.int32)
        step = step_envs(jax.random.split(key_env, n_episodes), state, action, env_params)
        record = (obs, action, jnp.where(running, step.reward, 0.0), running)
        running = running & ~(step.terminated | step.truncated)
        return (step.obs, step.state, running), record

    running = jnp.ones(n_episodes, dtype=bool)
    _, (obs, actions, rewards, valid) = jax.lax.scan(
        one_step, (obs, state, running), jax.random.split(key_steps, horizon)
    )
    time_major_to_episode_major = lambda x: jnp.swapaxes(x, 0, 1)  # noqa: E731 [T, N, ...] -> [N, T, ...]
    return Demonstrations(*(time_major_to_episode_major(x) for x in (obs, actions, rewards, valid)))


@dataclass(frozen=True)
class CartPoleExpertConfig:
    """How the CartPole expert is trained (PPO's own settings; the learning rate of benchmarks/ppo_speed.py)."""

    ppo: ppo.PPOConfig = field(
        default_factory=lambda: ppo.PPOConfig(
            n_envs=16, n_steps=128, n_updates=100, hyper=ppo.PPOHyperparams(learning_rate=1e-3)
        )
    )
    """The PPO run (100 updates x 2,048 env steps)."""
    min_gymnasium_return: float = 475.0
    """The greedy policy's mean return over ``eval_episodes`` in Gymnasium's ``CartPole-v1`` must reach this."""
    eval_episodes: int = 10
    """Episodes of the Gymnasium check."""
    max_attempts: int = 4
    """Seeds ``seed, seed + 1, ...`` tried until one passes the check; RuntimeError if none does."""

    def __post_init__(self):
        instance("ppo", self.ppo, ppo.PPOConfig)
        finite_float("min_gymnasium_return", self.min_gymnasium_return)
        positive_int("eval_episodes", self.eval_episodes)
        positive_int("max_attempts", self.max_attempts)


class CartPoleExpert(NamedTuple):
    """A checked CartPole expert."""

    actor: Any
    """Actor parameters of ``config.ppo.actor`` (reads plain CartPole observations ``[4]``)."""
    seed: int
    """The PPO seed that produced it."""
    gymnasium_return: float
    """Mean greedy return over the check's episodes in Gymnasium's ``CartPole-v1``."""
    config: CartPoleExpertConfig


def train_cartpole_expert(seed: int = 0, config: CartPoleExpertConfig | None = None) -> CartPoleExpert:
    """Train PPO on the JAX CartPole until its greedy policy passes the Gymnasium check (host function)."""
    non_negative_int("seed", seed)
    config = CartPoleExpertConfig() if config is None else instance("config", config, CartPoleExpertConfig)
    env = CartPole()
    train = jax.jit(ppo.make_train(config.ppo, env, env.default_params()))
    best = None
    for attempt in range(config.max_attempts):
        state, metrics = train(jax.random.key(seed + attempt))
        raise_if_nonfinite(metrics.nonfinite, "CartPole expert PPO")
        returns = evaluate_in_gymnasium(
            config.ppo.actor.apply, state.params.actor, "CartPole-v1", config.eval_episodes, seed=10_000
        )
        best = max(best or -np.inf, float(returns.mean()))
        if returns.mean() >= config.min_gymnasium_return:
            return CartPoleExpert(state.params.actor, seed + attempt, float(returns.mean()), config)
    raise RuntimeError(
        f"no PPO seed in {seed}..{seed + config.max_attempts - 1} reached a mean Gymnasium return of "
        f"{config.min_gymnasium_return} (best {best:.1f})"
    )


def cartpole_demonstrations(
    expert: CartPoleExpert, n_episodes: int, seed: int = 0, horizon: int = 500
) -> tuple[Demonstrations, Source]:
    """``n_episodes`` greedy JAX CartPole episodes of ``expert`` (observations ``[N, T, 4]``), and their source."""
    instance("expert", expert, CartPoleExpert)
    non_negative_int("seed", seed)
    env = CartPole()
    demos = policy_demonstrations(
        jax.random.key(seed), env, env.default_params(), expert.config.ppo.actor.apply, expert.actor,
        n_episodes, horizon,
    )
    source = Source(
        expert="ppo",
        env="CartPole-v1",
        seed=seed,
        note=(
            f"greedy PPO actor (PPO seed {expert.seed}, {expert.config.ppo.n_updates} updates x "
            f"{expert.config.ppo.n_envs * expert.config.ppo.n_steps} env steps), mean Gymnasium return "
            f"{expert.gymnasium_return:.1f}; episodes from toyrlhf's JAX CartPole"
        ),
    )
    return demos, source


COMMITTED_CARTPOLE_EPISODES = 16
"""Episodes in ``toyrlhf/data/cartpole_expert.npz``."""


def committed_cartpole_demonstrations() -> tuple[Demonstrations, Source]:
    """The committed PPO expert's greedy CartPole episodes (``[16, 500, 4]`` observations) and their source.

    Read from the package data ``toyrlhf/data/cartpole_expert.npz`` with
    :func:`toyrlhf.demonstrations.load` (``allow_pickle=False``): the same
    demonstrations on every machine, where a retrained expert would differ.
    """
    resource = importlib.resources.files("toyrlhf") / "data" / "cartpole_expert.npz"
    with importlib.resources.as_file(resource) as path:
        return demonstrations.load(path)
