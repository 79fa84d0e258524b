"""Deep Q-Networks (Mnih et al. 2015), with the double-Q option (van Hasselt et al. 2016).

One training run is one pure function of a PRNG key, as for PPO::

    train = make_train(DQNConfig(...), env, env_params)
    state, metrics = jax.jit(train)(key)                                  # one seed
    state, metrics = jax.jit(jax.vmap(train))(keys, hyper)                # seeds x learning rates

``make_dqn`` returns ``init`` and ``update`` too, to train in chunks (evaluating in between).

Pseudocode (each line names the function that does it)::

    buffer ← empty ring of C transitions                       # ReplayBuffer, a fixed-size array
    for update in 1..U:                                        # lax.scan over updates
        ε ← linear schedule(update)                            # epsilon_at
        roll out N envs for T steps, ε-greedy in Q_θ           # rollout.rollout with ε-greedy logits
        add the N T transitions to the buffer                  # buffer_add (overwrites the oldest)
        repeat G times, once the buffer holds ≥ learning_starts:
            sample B transitions uniformly                     # buffer_sample
            y = r + γ (1 − terminated) Q_θ⁻(o', a*)            # q_learning_loss
                a* = argmax_a Q_θ⁻(o', a)   (DQN)   or   argmax_a Q_θ(o', a)   (double DQN)
            θ ← Adam(clip_by_global_norm(∇ ½ (Q_θ(o, a) − y)²))
        every K updates: θ⁻ ← θ                                # target network

``terminated`` stops bootstrapping; ``truncated`` (a time limit) does not, so on
a tabular MDP whose observations do not show the time, DQN estimates the
*infinite-horizon* discounted ``Q*``. :mod:`toyrlhf.tabular` solves the
finite-horizon problem (``Q*_t``, time-indexed); with a long horizon ``H`` its
first step ``Q*_0`` is within ``γ^H max|R| / (1 − γ)`` of the infinite-horizon
``Q*`` (see :func:`discounted_q_star`).

The replay ratio (gradient samples per environment step) is ``G B / (N T)``;
off-policy-ness grows with the buffer size ``C``. Numbers in
:class:`DQNHyperparams` are traced: ``train(key, hyper=...)`` under vmap sweeps
them (learning rates, γ, ε) without recompiling.

As in PPO, ``reward_fn(obs, action, next_obs, reward_params) -> []`` (optional)
replaces the environment's reward in what DQN learns from (a learned reward
model plugs in here); the metrics keep reporting the environment's own return.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from toyrlhf import tabular
from toyrlhf.diagnostics import all_finite
from toyrlhf.envs.functional import Environment
from toyrlhf.nets import MLP, Network
from toyrlhf.rollout import rollout, start
from toyrlhf.types import EnvCarry, Transition
from toyrlhf.validation import boolean, instance, non_negative_int, positive_int


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class DQNHyperparams:
    """Traceable numbers: pass ``train(key, hyper=...)`` with stacked values to sweep them in one vmap."""

    learning_rate: float = 2.5e-4
    """Adam step size."""
    gamma: float = 0.99
    """Discount ``γ`` of the return DQN maximises."""
    epsilon_start: float = 1.0
    """Exploration rate at the first update."""
    epsilon_end: float = 0.05
    """Exploration rate after the decay."""
    epsilon_fraction: float = 0.5
    """Fraction of the ``U`` updates over which ε decays linearly from start to end."""
    max_grad_norm: float = 10.0
    """Gradients are rescaled to at most this global norm (``math.inf``: no clipping)."""


@dataclass(frozen=True)
class DQNConfig:
    """What fixes shapes and program structure (static: changing a field recompiles)."""

    n_envs: int = 4
    """Parallel environments ``N``."""
    n_steps: int = 4
    """Steps per environment per update ``T``: each update adds ``N T`` transitions."""
    n_updates: int = 1000
    """Updates ``U`` (``U N T`` environment steps in all)."""
    buffer_size: int = 10_000
    """Replay capacity ``C`` (transitions); the oldest are overwritten."""
    batch_size: int = 64
    """Transitions ``B`` per gradient step."""
    grad_steps_per_update: int = 1
    """Gradient steps ``G`` per update."""
    learning_starts: int = 500
    """No gradient step until the buffer holds this many transitions."""
    target_update_every: int = 50
    """Copy the online parameters into the target network every ``K`` updates."""
    double_q: bool = False
    """Double DQN: choose ``a*`` with the online network, evaluate it with the target network."""
    network: Network = field(default_factory=MLP)
    """Q-network, ``[D] -> [A]``; ``nets.Table()`` with one-hot observations is tabular Q-learning."""
    hyper: DQNHyperparams = field(default_factory=DQNHyperparams)
    """Default traceable numbers, used when ``train`` is called without ``hyper``."""

    def __post_init__(self):
        for name in ("n_envs", "n_steps", "n_updates", "buffer_size", "batch_size", "grad_steps_per_update"):
            positive_int(name, getattr(self, name))
        for name in ("learning_starts", "target_update_every"):
            non_negative_int(name, getattr(self, name))
        boolean("double_q", self.double_q)
        instance("hyper", self.hyper, DQNHyperparams)
        if self.n_envs * self.n_steps > self.buffer_size:
            raise ValueError(
                f"buffer_size = {self.buffer_size} must hold one update's n_envs * n_steps = "
                f"{self.n_envs * self.n_steps} transitions"
            )
        if self.learning_starts > self.buffer_size:
            raise ValueError(
                f"learning_starts = {self.learning_starts} can never be reached with buffer_size = {self.buffer_size}"
            )


# ------------------------------------------------------------------------------------------
# Replay buffer: a fixed-size ring of arrays in the training carry
# ------------------------------------------------------------------------------------------


class ReplayBuffer(NamedTuple):
    """``C`` stored transitions; slot ``i`` is valid for ``i < size``."""

    obs: jax.Array
    """``[C, D]`` float32: ``o_t``."""
    action: jax.Array
    """``[C]`` int32: ``a_t``."""
    reward: jax.Array
    """``[C]`` float32: ``r_t``."""
    next_obs: jax.Array
    """``[C, D]`` float32: ``o_{t+1}`` (the true final observation at an episode end)."""
    terminated: jax.Array
    """``[C]`` bool: ``o_{t+1}`` is terminal (do not bootstrap)."""
    position: jax.Array
    """``[]`` int32: the slot the next transition goes to."""
    size: jax.Array
    """``[]`` int32: how many slots hold data (``<= C``)."""


def buffer_init(capacity: int, obs_shape: tuple[int, ...]) -> ReplayBuffer:
    """An empty buffer of ``capacity`` transitions with observations of shape ``obs_shape``."""
    zeros = lambda *shape, dtype=jnp.float32: jnp.zeros(shape, dtype)  # noqa: E731
    return ReplayBuffer(
        obs=zeros(capacity, *obs_shape),
        action=zeros(capacity, dtype=jnp.int32),
        reward=zeros(capacity),
        next_obs=zeros(capacity, *obs_shape),
        terminated=zeros(capacity, dtype=bool),
        position=jnp.zeros((), jnp.int32),
        size=jnp.zeros((), jnp.int32),
    )


def buffer_add(buffer: ReplayBuffer, batch: Transition) -> ReplayBuffer:
    """Append every transition of ``batch`` (any leading shape, flattened in order), overwriting the oldest.

    ``n <= C`` transitions are added (checked: ``DQNConfig`` keeps ``N T <= C``).
    """
    capacity = buffer.action.shape[0]
    n = batch.action.size
    if n > capacity:
        raise ValueError(f"cannot add {n} transitions at once to a buffer of capacity {capacity}")
    flat = lambda x: x.reshape(n, *x.shape[batch.action.ndim :])  # noqa: E731
    slots = (buffer.position + jnp.arange(n)) % capacity
    return ReplayBuffer(
        obs=buffer.obs.at[slots].set(flat(batch.obs)),
        action=buffer.action.at[slots].set(flat(batch.action)),
        reward=buffer.reward.at[slots].set(flat(batch.reward)),
        next_obs=buffer.next_obs.at[slots].set(flat(batch.next_obs)),
        terminated=buffer.terminated.at[slots].set(flat(batch.terminated)),
        position=(buffer.position + n) % capacity,
        size=jnp.minimum(buffer.size + n, capacity),
    )


def buffer_sample(key: jax.Array, buffer: ReplayBuffer, batch_size: int) -> ReplayBuffer:
    """``batch_size`` transitions drawn uniformly with replacement from the filled slots (fields ``[B, ...]``)."""
    index = jax.random.randint(key, (batch_size,), 0, jnp.maximum(buffer.size, 1))
    return buffer._replace(
        obs=buffer.obs[index],
        action=buffer.action[index],
        reward=buffer.reward[index],
        next_obs=buffer.next_obs[index],
        terminated=buffer.terminated[index],
    )


# ------------------------------------------------------------------------------------------
# Loss and exploration
# ------------------------------------------------------------------------------------------


def q_learning_loss(q_t, a_t, r_t, terminated, q_tp1_target, q_tp1_online, gamma, double_q: bool):
    """Squared one-step Q-learning error ``½ E[(Q(o_t, a_t) − y_t)²]`` with a stopped-gradient target.

    ``y_t = r_t + γ (1 − terminated_t) Q⁻(o_{t+1}, a*)``, ``a* = argmax_a Q⁻(o_{t+1}, a)`` (DQN, Mnih
    et al. 2015) or ``argmax_a Q(o_{t+1}, a)`` with the online net (double DQN, van Hasselt et al.
    2016, which removes the max-of-noisy-estimates upward bias of the first).

    Shapes: ``q_t, q_tp1_target, q_tp1_online [B, A]``; ``a_t [B]`` int; ``r_t, terminated [B]``.
    Returns ``(loss [], q_taken [B], y [B])``. A loss to minimise; gradients flow only through ``q_t``.
    """
    if q_t.shape != q_tp1_target.shape or q_t.shape != q_tp1_online.shape or q_t.ndim != 2:
        raise ValueError(
            f"q_t, q_tp1_target, q_tp1_online must all be [B, A], got {q_t.shape}, "
            f"{q_tp1_target.shape}, {q_tp1_online.shape}"
        )
    if a_t.shape != q_t.shape[:1] or r_t.shape != q_t.shape[:1] or terminated.shape != q_t.shape[:1]:
        raise ValueError(f"a_t, r_t, terminated must be [B] = {q_t.shape[:1]}")
    chooser = q_tp1_online if double_q else q_tp1_target
    a_star = jnp.argmax(chooser, axis=-1)
    v_tp1 = jnp.take_along_axis(q_tp1_target, a_star[:, None], axis=-1)[:, 0]
    y = jax.lax.stop_gradient(r_t + gamma * (1.0 - terminated.astype(q_t.dtype)) * v_tp1)
    q_taken = jnp.take_along_axis(q_t, a_t[:, None].astype(jnp.int32), axis=-1)[:, 0]
    return 0.5 * jnp.mean((q_taken - y) ** 2), q_taken, y


def epsilon_greedy_logits(q: jax.Array, epsilon) -> jax.Array:
    """Logits of the ε-greedy policy of ``q [..., A]``: ``log(ε/A + (1 − ε) 1[a = argmax q])``.

    Sampling ``softmax`` of these is acting ε-greedily, so the shared rollout does the acting.
    """
    n_actions = q.shape[-1]
    greedy = jax.nn.one_hot(jnp.argmax(q, axis=-1), n_actions, dtype=q.dtype)
    return jnp.log(epsilon / n_actions + (1.0 - epsilon) * greedy)


def epsilon_at(update, n_updates: int, hyper: DQNHyperparams) -> jax.Array:
    """Linear decay from ``epsilon_start`` to ``epsilon_end`` over the first ``epsilon_fraction`` of updates."""
    progress = jnp.clip(update / jnp.maximum(hyper.epsilon_fraction * n_updates, 1.0), 0.0, 1.0)
    return hyper.epsilon_start + progress * (hyper.epsilon_end - hyper.epsilon_start)


# ------------------------------------------------------------------------------------------
# Training
# ------------------------------------------------------------------------------------------


class DQNState(NamedTuple):
    """Everything one training run carries from update to update."""

    params: Any
    """Online Q-network parameters ``θ``."""
    target_params: Any
    """Target network parameters ``θ⁻``."""
    opt_state: optax.OptState
    buffer: ReplayBuffer
    envs: EnvCarry
    """The ``N`` environments between rollouts."""
    key: jax.Array
    update: jax.Array
    """``[]`` int32: updates done so far."""
    hyper: DQNHyperparams
    env_params: Any
    reward_params: Any
    """Parameters ``ψ`` of ``reward_fn``, or None."""
    last_return: jax.Array
    """``[]``: mean return of the latest finished episodes (reported while none finishes)."""
    last_length: jax.Array


RewardFn = Callable[[jax.Array, jax.Array, jax.Array, Any], jax.Array]


class DQN(NamedTuple):
    """The pieces of a training run: ``train(key) = scan(update, init(key))`` (as :class:`toyrlhf.algorithms.ppo.PPO`).

    ``init(key, hyper=None, env_params=None, reward_params=None) -> DQNState`` and
    ``update(state) -> (DQNState, DQNMetrics)``: train in chunks (e.g. to evaluate between them)
    by scanning ``update`` yourself.
    """

    init: Callable[..., DQNState]
    update: Callable[[DQNState], tuple[DQNState, DQNMetrics]]
    train: Callable[..., tuple[DQNState, DQNMetrics]]


class DQNMetrics(NamedTuple):
    """Per-update metrics; each field is ``[]`` per update, so ``[U]`` per run and ``[seeds, U]`` vmapped."""

    episode_return: jax.Array
    """Mean env return of ε-greedy episodes that ended during the update (the previous value if none did)."""
    episode_length: jax.Array
    epsilon: jax.Array
    loss: jax.Array
    """Mean TD loss of the update's gradient steps (0 before learning starts)."""
    q_taken: jax.Array
    """Mean ``Q_θ(o, a)`` over the sampled transitions: the estimate that overestimation inflates."""
    target_mean: jax.Array
    """Mean target ``y``."""
    learning: jax.Array
    """bool: gradient steps were taken (the buffer held ``learning_starts`` transitions)."""
    nonfinite: jax.Array
    """bool: the loss or a parameter became NaN/inf; check with ``diagnostics.raise_if_nonfinite``."""


def make_dqn(config: DQNConfig, env: Environment, env_params: Any, reward_fn: RewardFn | None = None) -> DQN:
    """Build ``init``, ``update`` and ``train`` (use :func:`make_train` unless training in chunks)."""
    if len(env.observation_shape) != 1:
        raise ValueError(f"DQN's networks take flat observations [D], got shape {env.observation_shape}")
    obs_dim, n_actions = env.observation_shape[0], env.n_actions
    net = config.network

    def optimizer(hyper: DQNHyperparams) -> optax.GradientTransformation:
        return optax.chain(optax.clip_by_global_norm(hyper.max_grad_norm), optax.adam(hyper.learning_rate))

    def init(key, hyper=None, env_params_=None, reward_params=None) -> DQNState:
        hyper = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), config.hyper if hyper is None else hyper)
        env_params_ = env_params if env_params_ is None else env_params_
        key, key_net, key_env = jax.random.split(key, 3)
        params = net.init(key_net, obs_dim, n_actions)
        zero = jnp.zeros((), jnp.float32)
        return DQNState(
            params=params,
            target_params=params,
            opt_state=optimizer(hyper).init(params),
            buffer=buffer_init(config.buffer_size, env.observation_shape),
            envs=start(key_env, env, env_params_, config.n_envs),
            key=key,
            update=jnp.zeros((), jnp.int32),
            hyper=hyper,
            env_params=env_params_,
            reward_params=reward_params,
            last_return=zero,
            last_length=zero,
        )

    def loss_fn(params, target_params, batch: ReplayBuffer, gamma):
        q_t = net.apply(params, batch.obs)
        q_tp1_target = net.apply(target_params, batch.next_obs)
        q_tp1_online = net.apply(params, batch.next_obs)
        loss, q_taken, y = q_learning_loss(
            q_t, batch.action, batch.reward, batch.terminated, q_tp1_target, q_tp1_online, gamma, config.double_q
        )
        return loss, (q_taken.mean(), y.mean())

    def update(state: DQNState) -> tuple[DQNState, DQNMetrics]:
        hyper, tx = state.hyper, optimizer(state.hyper)
        key, key_rollout, key_sample = jax.random.split(state.key, 3)
        epsilon = epsilon_at(state.update, config.n_updates, hyper)
        act = lambda params, obs: epsilon_greedy_logits(net.apply(params, obs), epsilon)  # noqa: E731
        envs, batch = rollout(key_rollout, env, state.env_params, state.envs, act, state.params, config.n_steps)
        if reward_fn is not None:
            per_step = jax.vmap(jax.vmap(reward_fn, in_axes=(0, 0, 0, None)), in_axes=(0, 0, 0, None))
            learned = per_step(batch.obs, batch.action, batch.next_obs, state.reward_params).astype(jnp.float32)
            if learned.shape != batch.reward.shape:
                raise ValueError(f"reward_fn must return a scalar per transition, got shape {learned.shape[2:]}")
            buffer = buffer_add(state.buffer, batch._replace(reward=learned))
        else:
            buffer = buffer_add(state.buffer, batch)
        learning = buffer.size >= max(config.learning_starts, 1)

        def grad_step(carry, key):
            params, opt_state = carry
            sample = buffer_sample(key, buffer, config.batch_size)
            (loss, info), grads = jax.value_and_grad(loss_fn, has_aux=True)(
                params, state.target_params, sample, hyper.gamma
            )
            updates, new_opt_state = tx.update(grads, opt_state, params)
            new = (optax.apply_updates(params, updates), new_opt_state)
            new = jax.tree.map(lambda n, o: jnp.where(learning, n, o), new, carry)  # no step before learning starts
            return new, (loss, *info)

        (params, opt_state), (loss, q_taken, target_mean) = jax.lax.scan(
            grad_step,
            (state.params, state.opt_state),
            jax.random.split(key_sample, config.grad_steps_per_update),
        )
        n_done = state.update + 1
        copy = (n_done % max(config.target_update_every, 1)) == 0
        target_params = jax.tree.map(lambda p, t: jnp.where(copy, p, t), params, state.target_params)

        done = batch.done
        n_finished = done.sum()
        mean_over_done = lambda x, last: jnp.where(  # noqa: E731
            n_finished > 0, jnp.sum(x * done) / jnp.maximum(n_finished, 1), last
        )
        episode_return = mean_over_done(batch.episode_return, state.last_return)
        episode_length = mean_over_done(batch.episode_length.astype(jnp.float32), state.last_length)
        zero = jnp.zeros((), jnp.float32)
        metrics = DQNMetrics(
            episode_return=episode_return,
            episode_length=episode_length,
            epsilon=epsilon,
            loss=jnp.where(learning, loss.mean(), zero),
            q_taken=jnp.where(learning, q_taken.mean(), zero),
            target_mean=jnp.where(learning, target_mean.mean(), zero),
            learning=learning,
            nonfinite=~all_finite(loss, params),
        )
        new_state = state._replace(
            params=params,
            target_params=target_params,
            opt_state=opt_state,
            buffer=buffer,
            envs=envs,
            key=key,
            update=n_done,
            last_return=episode_return,
            last_length=episode_length,
        )
        return new_state, metrics

    def train(key, hyper=None, env_params=None, reward_params=None):
        """One run: ``(final DQNState, DQNMetrics with [n_updates] fields)``. Arguments override defaults."""
        state = init(key, hyper, env_params, reward_params)
        return jax.lax.scan(lambda s, _: update(s), state, None, length=config.n_updates)

    return DQN(init, update, train)


def make_train(config: DQNConfig, env: Environment, env_params: Any, reward_fn: RewardFn | None = None):
    """``train(key, hyper=None, env_params=None, reward_params=None) -> (DQNState, DQNMetrics [n_updates])``.

    Pure and jit-able; ``jax.vmap`` over ``key`` (and ``hyper``) trains many runs at once.
    """
    return make_dqn(config, env, env_params, reward_fn).train



def q_values(config: DQNConfig, params: Any, observations: jax.Array) -> jax.Array:
    """``Q_θ(o, ·)`` for each row of ``observations [S, D]``: ``[S, A]`` float64 (for exact comparisons)."""
    return config.network.apply(params, observations).astype(jnp.float64)


def discounted_q_star(mdp: tabular.TabularMDP, gamma: float, horizon: int = 2000) -> jax.Array:
    """The infinite-horizon discounted ``Q*`` ``[S, A]``, as ``Q*_0`` of a ``horizon``-step solve with discount γ.

    ``toyrlhf.tabular.solve`` is finite-horizon and time-indexed; ``Q*_0`` of horizon ``H``
    differs from the stationary infinite-horizon ``Q*`` by at most ``γ^H max|R| / (1 − γ)``.
    """
    if not 0.0 < gamma < 1.0:
        raise ValueError(f"gamma must lie in (0, 1) for an infinite-horizon Q*, got {gamma}")
    long = tabular.TabularMDP.from_successors(
        mdp.next_states, mdp.next_probs, mdp.R, mdp.init, horizon, gamma, mdp.terminal
    )
    return tabular.solve(long).Q[0]
