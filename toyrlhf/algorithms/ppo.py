"""Proximal Policy Optimization (Schulman et al. 2017), with the two hooks RLHF needs.

One training run is one pure function of a PRNG key::

    train = make_train(PPOConfig(...), env, env_params)
    state, metrics = jax.jit(train)(key)                       # one seed
    state, metrics = jax.jit(jax.vmap(train))(keys)            # many seeds, one compiled call

Pseudocode (each line names the function that does it)::

    for update in 1..U:                                        # lax.scan over updates
        roll out N envs for T steps with π_old                 # rollout.rollout
        r_t ← reward_fn(o_t, a_t, o_{t+1}; ψ) if given, else the env's reward
        r_t ← r_t − β [log π_old(a_t|o_t) − log π_ref(a_t|o_t)]  # losses.kl_penalty_per_step
        A_t, G_t ← GAE(r, V(o_t), V(o_{t+1}); γ, λ)            # losses.gae
        for epoch in 1..E, for each of M shuffled minibatches:
            L(θ, φ) = L^CLIP(θ) + c_V L^V(φ) − c_H H[π_θ]     # losses.clipped_surrogate_loss, value_loss
            (θ, φ) ← Adam(clip_by_global_norm(∇L))

The hooks. ``reward_fn(obs, action, next_obs, reward_params) -> []`` replaces the
environment's reward (a learned reward model or a GAIL discriminator plugs in
here; the metrics keep reporting the environment's true return). A frozen
reference policy ``π_ref`` (same network as the actor, passed as
``train(key, reference=params)``) adds the KL leash of RLHF: the per-step
penalty ``β k_t`` with ``k_t = log π_old(a_t|o_t) − log π_ref(a_t|o_t)``, whose
expectation summed over an episode is the trajectory KL ``KL(P_π ‖ P_ref)``
(see :func:`toyrlhf.losses.kl_penalty_per_step`). The actor starts at ``π_ref``
unless ``config.start_from_reference`` is False. The leash holds only as well as
the optimiser lets it: Adam moves every parameter by about the learning rate
whenever noisy samples reach it, so with a tabular policy and a high learning
rate the logits of rarely visited states random-walk away from ``π_ref``
whatever β (notebooks/ppo_from_scratch.ipynb, section 4, measures it exactly).

Whose horizon? A truncated step (a time limit) bootstraps from ``V(o_T)``; a
terminated one does not. When the horizon is part of the task, as a
:class:`~toyrlhf.envs.functional.TabularEnv`'s is (``tabular.evaluate`` sums ``T``
rewards), bootstrapping past it optimises another task: with ``γ = 1`` every
policy that eventually reaches the goal then has the same value, and PPO stops
caring how fast. ``PPOConfig.horizon`` says what a truncation means (Pardo et
al. 2018): ``"auto"`` (default) follows the environment's ``horizon_is_task``
(True for a TabularEnv, absent, so a time limit, for CartPole), ``"task"``
treats every truncation as termination, ``"time_limit"`` bootstraps from it.

Ablations are config values, not copies: ``clip_eps=inf`` is PPO without
clipping; ``clip_eps=inf, n_epochs=1, n_minibatches=1`` is the vanilla policy
gradient (one gradient step per batch, at ``θ = θ_old``, where the surrogate's
gradient is exactly ``E[∇log π A]``). Numbers in :class:`PPOHyperparams` are
traced: ``train(key, hyper=...)`` under vmap sweeps them without recompiling.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from toyrlhf import losses
from toyrlhf.diagnostics import all_finite, explained_variance
from toyrlhf.envs.functional import Environment, TabularEnv, TabularParams, all_observations
from toyrlhf.nets import MLP, Network, Table
from toyrlhf.rollout import rollout, start
from toyrlhf.types import EnvCarry, Transition
from toyrlhf.validation import positive_int

HORIZON_MEANINGS = ("auto", "task", "time_limit")
"""The values of ``PPOConfig.horizon``."""


def horizon_is_task(config: PPOConfig, env: Environment) -> bool:
    """Whether PPO treats ``env``'s truncations as the end of the task (no bootstrap): ``config.horizon``
    resolved against the environment's ``horizon_is_task`` attribute (absent: a time limit)."""
    if config.horizon == "auto":
        return bool(getattr(env, "horizon_is_task", False))
    return config.horizon == "task"


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class PPOHyperparams:
    """Traceable numbers: pass ``train(key, hyper=...)`` with stacked values to sweep them in one vmap."""

    learning_rate: float = 2.5e-4
    """Adam step size (linearly annealed to 0 over training if ``config.anneal_lr``)."""
    gamma: float = 0.99
    """Discount ``γ`` of the return PPO maximises."""
    gae_lambda: float = 0.95
    """GAE's ``λ``: 0 is one-step TD, 1 Monte Carlo."""
    clip_eps: float = 0.2
    """Clip range ``ε`` of the ratio; ``math.inf`` disables clipping."""
    vf_coef: float = 0.5
    """Weight ``c_V`` of the value loss."""
    ent_coef: float = 0.01
    """Weight ``c_H`` of the entropy bonus."""
    max_grad_norm: float = 0.5
    """Gradients are rescaled to at most this global norm (``math.inf``: no clipping)."""
    kl_coef: float = 0.0
    """``β`` of the KL penalty to the reference policy (needs ``train(key, reference=...)``)."""


@dataclass(frozen=True)
class PPOConfig:
    """What fixes shapes and program structure (static: changing a field recompiles)."""

    n_envs: int = 16
    """Parallel environments ``N``."""
    n_steps: int = 128
    """Steps per environment per update ``T``: each update uses ``N T`` transitions."""
    n_updates: int = 100
    """Updates ``U`` (``U N T`` environment steps in all)."""
    n_epochs: int = 4
    """Passes ``E`` over each batch."""
    n_minibatches: int = 4
    """Minibatches ``M`` per pass (``N T`` must be divisible by ``M``)."""
    actor: Network = field(default_factory=MLP)
    """Policy network (logits); ``nets.Table()`` with one-hot observations is a tabular policy."""
    critic: Network = field(default_factory=MLP)
    """Value network (one output)."""
    normalize_advantages: bool = True
    """Standardise advantages within each minibatch."""
    anneal_lr: bool = True
    """Decay the learning rate linearly to 0 over the ``U E M`` gradient steps."""
    start_from_reference: bool = True
    """With a reference policy, initialise the actor at it (RLHF starts from the SFT policy)."""
    hyper: PPOHyperparams = field(default_factory=PPOHyperparams)
    """Default traceable numbers, used when ``train`` is called without ``hyper``."""
    horizon: str = "auto"
    """What a truncated step means to the value targets. ``"task"``: the horizon is part of the task, no
    bootstrap past it (as after a terminal state); ``"time_limit"``: a limit outside the task, bootstrap from
    ``V(o_T)``; ``"auto"``: ``"task"`` if the environment's ``horizon_is_task`` is True (a ``TabularEnv`` by
    default), else ``"time_limit"`` (CartPole's 500 steps). See the module docstring."""

    def __post_init__(self):
        for name in ("n_envs", "n_steps", "n_updates", "n_epochs", "n_minibatches"):
            positive_int(name, getattr(self, name))
        if self.horizon not in HORIZON_MEANINGS:
            raise ValueError(f"horizon must be one of {HORIZON_MEANINGS}, got {self.horizon!r}")
        if (self.n_envs * self.n_steps) % self.n_minibatches:
            raise ValueError(
                f"n_envs * n_steps = {self.n_envs * self.n_steps} must be divisible by "
                f"n_minibatches = {self.n_minibatches}"
            )


class ActorCritic(NamedTuple):
    actor: Any
    """Actor parameters (``config.actor``)."""
    critic: Any
    """Critic parameters (``config.critic``)."""


class PPOState(NamedTuple):
    """Everything one training run carries from update to update."""

    params: ActorCritic
    opt_state: optax.OptState
    envs: EnvCarry
    """The ``N`` environments between rollouts."""
    key: jax.Array
    hyper: PPOHyperparams
    env_params: Any
    reference: Any
    """Frozen actor parameters of ``π_ref``, or None."""
    reward_params: Any
    """Parameters ``ψ`` of ``reward_fn``, or None."""
    last_return: jax.Array
    """``[]``: mean return of the latest finished episodes (reported while none finishes)."""
    last_length: jax.Array
    """``[]``: their mean length."""


class PPOMetrics(NamedTuple):
    """Per-update metrics; each field is ``[]`` per update, so ``[U]`` per run and ``[seeds, U]`` vmapped."""

    episode_return: jax.Array
    """Mean env return of episodes that ended during the update (the previous value if none did)."""
    episode_length: jax.Array
    """Mean length of those episodes."""
    train_reward: jax.Array
    """Mean per-step reward PPO trained on (after ``reward_fn`` and the KL penalty)."""
    kl_to_reference: jax.Array
    """Mean over the rollout's states of the exact ``KL(π_old(·|o) ‖ π_ref(·|o))`` (0 without a reference)."""
    clip_fraction: jax.Array
    """Fraction of samples whose ratio left ``[1 − ε, 1 + ε]``, over all minibatch steps."""
    entropy: jax.Array
    """Mean policy entropy (nats) over all minibatch steps."""
    explained_variance: jax.Array
    """``1 − Var(G − V)/Var(G)`` of the value predictions before the update."""
    policy_loss: jax.Array
    value_loss: jax.Array
    approx_kl: jax.Array
    """``≈ KL(π_old ‖ π_new)``: how far the update moved the policy."""
    nonfinite: jax.Array
    """bool: a loss or a parameter became NaN/inf; check with ``diagnostics.raise_if_nonfinite``."""
    episodes: jax.Array
    """int32: episodes that ended during the update, over all ``N`` envs (e.g. responses a human would judge)."""


class Minibatch(NamedTuple):
    obs: jax.Array  # [B, D]
    action: jax.Array  # [B]
    old_log_prob: jax.Array  # [B]
    advantage: jax.Array  # [B]
    target: jax.Array  # [B]: the λ-return G_t


RewardFn = Callable[[jax.Array, jax.Array, jax.Array, Any], jax.Array]


class PPO(NamedTuple):
    """The pieces of a training run: ``train(key) = scan(update, init(key))``."""

    init: Callable[..., PPOState]
    update: Callable[[PPOState], tuple[PPOState, PPOMetrics]]
    train: Callable[..., tuple[PPOState, PPOMetrics]]


def random_permutations(key: jax.Array, n: int, size: int) -> jax.Array:
    """``[n, size]`` int32: ``n`` independent uniformly random orderings of ``range(size)`` (one per epoch).

    Sorts one word per item: random bits above, the item's index in the low ``k = bit_length(size - 1)``
    bits, so the sorted words' low bits are the permutation. A single-operand sort is about 4x faster
    on CPU than ``argsort`` (which sorts key-index pairs). Items whose random parts tie keep their order;
    with 64-bit words (x64 on, as under toyrlhf) ties have probability ``< size² 2^(k-65)``: none in practice.
    """
    dtype = jnp.uint64 if jax.config.jax_enable_x64 else jnp.uint32
    k = max(size - 1, 1).bit_length()
    low = dtype((1 << k) - 1)
    words = (jax.random.bits(key, (n, size), dtype) & ~low) | jnp.arange(size, dtype=dtype)
    return (jnp.sort(words, axis=-1) & low).astype(jnp.int32)


def make_ppo(config: PPOConfig, env: Environment, env_params: Any, reward_fn: RewardFn | None = None) -> PPO:
    """Build ``init``, ``update`` and ``train`` (use :func:`make_train` unless training in chunks)."""
    if env.observation_shape == ():  # state indices: a Table has one row per state
        if not (isinstance(config.actor, Table) and isinstance(config.critic, Table)):
            raise ValueError("index observations (observation_shape ()) need Table actor and critic networks")
        obs_dim = getattr(env, "n_observations", env.n_states)
    elif len(env.observation_shape) == 1:
        obs_dim = env.observation_shape[0]
    else:
        raise ValueError(f"PPO's networks take flat observations [D] or indices, got shape {env.observation_shape}")
    n_actions, default_env_params = env.n_actions, env_params
    batch_size = config.n_envs * config.n_steps
    n_grad_steps = config.n_updates * config.n_epochs * config.n_minibatches
    actor, critic = config.actor, config.critic
    truncation_ends_task = horizon_is_task(config, env)

    def optimizer(hyper: PPOHyperparams) -> optax.GradientTransformation:
        lr = hyper.learning_rate
        if config.anneal_lr:
            lr = lambda count: hyper.learning_rate * jnp.maximum(1.0 - count / n_grad_steps, 0.0)  # noqa: E731
        return optax.chain(optax.clip_by_global_norm(hyper.max_grad_norm), optax.adam(lr, eps=1e-5))

    def init(key, hyper=None, reference=None, reward_params=None, env_params=None) -> PPOState:
        hyper = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), config.hyper if hyper is None else hyper)
        env_params = default_env_params if env_params is None else env_params
        key, key_actor, key_critic, key_env = jax.random.split(key, 4)
        params = ActorCritic(actor.init(key_actor, obs_dim, n_actions, 0.01), critic.init(key_critic, obs_dim, 1))
        if reference is not None and config.start_from_reference:
            params = params._replace(actor=reference)
        zero = jnp.zeros((), jnp.float32)
        return PPOState(
            params=params,
            opt_state=optimizer(hyper).init(ravel_pytree(params)[0]),
            envs=start(key_env, env, env_params, config.n_envs),
            key=key,
            hyper=hyper,
            env_params=env_params,
            reference=reference,
            reward_params=reward_params,
            last_return=zero,
            last_length=zero,
        )

    def loss_fn(params: ActorCritic, mb: Minibatch, hyper: PPOHyperparams):
        logits = actor.apply(params.actor, mb.obs)
        log_prob = losses.categorical_log_prob(logits, mb.action)
        advantage = losses.normalize(mb.advantage) if config.normalize_advantages else mb.advantage
        policy_loss, clip_fraction = losses.clipped_surrogate_loss(log_prob, mb.old_log_prob, advantage, hyper.clip_eps)
        value_loss = losses.value_loss(critic.apply(params.critic, mb.obs)[..., 0], mb.target)
        entropy = losses.categorical_entropy(logits).mean()
        total = policy_loss + hyper.vf_coef * value_loss - hyper.ent_coef * entropy
        approx_kl = losses.approx_kl(log_prob, mb.old_log_prob)
        return total, (policy_loss, value_loss, entropy, clip_fraction, approx_kl)

    def shaped_rewards(state: PPOState, batch: Transition) -> tuple[jax.Array, jax.Array]:
        """The reward PPO trains on, ``[T, N]``, and the mean exact KL to the reference."""
        reward = batch.reward
        if reward_fn is not None:
            per_step = jax.vmap(jax.vmap(reward_fn, in_axes=(0, 0, 0, None)), in_axes=(0, 0, 0, None))
            reward = per_step(batch.obs, batch.action, batch.next_obs, state.reward_params).astype(jnp.float32)
            if reward.shape != batch.reward.shape:
                raise ValueError(f"reward_fn must return a scalar per transition, got shape {reward.shape[2:]}")
        if state.reference is None:
            return reward, jnp.zeros((), jnp.float32)
        ref_logits = actor.apply(state.reference, batch.obs)
        k = losses.kl_penalty_per_step(batch.log_prob, losses.categorical_log_prob(ref_logits, batch.action))
        kl_exact = losses.categorical_kl(actor.apply(state.params.actor, batch.obs), ref_logits).mean()
        return reward - state.hyper.kl_coef * k, kl_exact

    def update(state: PPOState) -> tuple[PPOState, PPOMetrics]:
        hyper, tx = state.hyper, optimizer(state.hyper)
        key, key_rollout, key_epochs = jax.random.split(state.key, 3)
        envs, batch = rollout(
            key_rollout, env, state.env_params, state.envs, actor.apply, state.params.actor, config.n_steps
        )
        reward, kl_to_reference = shaped_rewards(state, batch)
        values = critic.apply(state.params.critic, batch.obs)[..., 0]
        next_values = critic.apply(state.params.critic, batch.next_obs)[..., 0]
        # The horizon of the task ends the return like a terminal state; a time limit bootstraps.
        terminated = batch.terminated | batch.truncated if truncation_ends_task else batch.terminated
        advantages, targets = losses.gae(
            reward, values, next_values, terminated, batch.truncated, hyper.gamma, hyper.gae_lambda
        )
        samples = Minibatch(batch.obs, batch.action, batch.log_prob, advantages, targets)
        samples = jax.tree.map(lambda x: x.reshape(batch_size, *x.shape[2:]), samples)  # [T, N] -> [T N]

        # Adam works on the parameters as one flat vector: the same arithmetic, far fewer ops to compile.
        flat_params, unravel = ravel_pytree(state.params)

        def grad_step(carry, mb: Minibatch):
            flat, opt_state = carry
            (loss, info), grads = jax.value_and_grad(
                lambda f: loss_fn(unravel(f), mb, hyper), has_aux=True
            )(flat)
            updates, opt_state = tx.update(grads, opt_state, flat)
            return (optax.apply_updates(flat, updates), opt_state), (loss, *info)

        def epoch(carry, order):
            shuffled = jax.tree.map(lambda x: x[order].reshape(config.n_minibatches, -1, *x.shape[1:]), samples)
            return jax.lax.scan(grad_step, carry, shuffled)

        orders = random_permutations(key_epochs, config.n_epochs, batch_size)
        (flat_params, opt_state), (loss, *info) = jax.lax.scan(epoch, (flat_params, state.opt_state), orders)
        params = unravel(flat_params)
        policy_loss, value_loss, entropy, clip_fraction, approx_kl = (x.mean() for x in info)

        done = batch.done
        n_done = done.sum()

        def mean_over_done(x, last):  # over the episodes that ended in this rollout; `last` if none did
            return jnp.where(n_done > 0, jnp.sum(x * done) / jnp.maximum(n_done, 1), last)

        episode_return = mean_over_done(batch.episode_return, state.last_return)
        episode_length = mean_over_done(batch.episode_length.astype(jnp.float32), state.last_length)
        metrics = PPOMetrics(
            episode_return=episode_return,
            episode_length=episode_length,
            train_reward=reward.mean(),
            kl_to_reference=kl_to_reference,
            clip_fraction=clip_fraction,
            entropy=entropy,
            explained_variance=explained_variance(values, targets),
            policy_loss=policy_loss,
            value_loss=value_loss,
            approx_kl=approx_kl,
            nonfinite=~all_finite(loss, params),
            episodes=n_done.astype(jnp.int32),
        )
        new_state = state._replace(
            params=params,
            opt_state=opt_state,
            envs=envs,
            key=key,
            last_return=episode_return,
            last_length=episode_length,
        )
        return new_state, metrics

    def train(key, hyper=None, reference=None, reward_params=None, env_params=None):
        """One run: ``(final PPOState, PPOMetrics with [n_updates] fields)``. Arguments override defaults."""
        state = init(key, hyper, reference, reward_params, env_params)
        return jax.lax.scan(lambda s, _: update(s), state, None, length=config.n_updates)

    return PPO(init, update, train)


def make_train(config: PPOConfig, env: Environment, env_params: Any, reward_fn: RewardFn | None = None):
    """``train(key, hyper=None, reference=None, reward_params=None, env_params=None) -> (PPOState, PPOMetrics)``.

    Pure and jit-able; ``jax.vmap`` over ``key`` (and any of the other arguments) trains many runs at once.
    """
    return make_ppo(config, env, env_params, reward_fn).train


def policy_probabilities(config: PPOConfig, actor_params: Any, observations: jax.Array) -> jax.Array:
    """``π(a|o)`` for each row of ``observations [S, D]``: ``[S, A]`` (for exact tabular evaluation)."""
    return jax.nn.softmax(config.actor.apply(actor_params, observations).astype(jnp.float64), axis=-1)


def tabular_policy(config: PPOConfig, actor_params: Any, env: TabularEnv, env_params: TabularParams) -> jax.Array:
    """The trained actor as an exact policy for ``tabular.evaluate``: ``[S, A]``, or ``[T, S, A]`` when the
    environment puts the time in its observations (``time_in_observation``)."""
    return policy_probabilities(config, actor_params, all_observations(env, env_params))

