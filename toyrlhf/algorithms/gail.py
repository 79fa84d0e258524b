"""Generative Adversarial Imitation Learning (Ho & Ermon 2016): PPO on a discriminator's reward.

Usage (tabular; the same call works on CartPole with an MLP discriminator)::

    from toyrlhf import demonstrations, tabular
    from toyrlhf.algorithms import gail
    from toyrlhf.envs import reset_cliff, tabular_env

    mdp = reset_cliff(horizon=10, n_good=5)
    demos = demonstrations.sample_demonstrations(key_demos, mdp, demonstrations.tabular_expert(mdp), 8)
    env, env_params = tabular_env(mdp, "index")
    config = gail.GAILConfig.tabular()                        # Table policy, critic and discriminator
    train = gail.make_train(config, env, env_params)
    result, metrics = jax.jit(jax.vmap(train, in_axes=(0, None)))(keys, demos)   # seeds; in_axes=(0, 0): data sets
    policy = gail.tabular_policy(config, result, env_params)  # [seeds, S, A]
    returns = jax.vmap(lambda p: tabular.evaluate(mdp, p))(policy)
    result.resources                                          # expert labels, env steps, known_dynamics=False

CartPole (observations ``[N, T, 4]`` from ``toyrlhf.algorithms.experts``; the actor reads plain observations)::

    config = gail.GAILConfig.cartpole()
    train = gail.make_train(config, CartPole(), CartPole().default_params())
    result, metrics = jax.jit(jax.vmap(train, in_axes=(0, None)))(keys, demos)
    evaluate_in_gymnasium(config.ppo.actor.apply, result.ppo.params.actor, n_policies=len(keys))

:func:`make_gail` gives the pieces (``init``, ``update``, ``result``) for training in
chunks with evaluations in between (benchmarks/gail_speed.py).

Discriminator and sign convention. ``D_ψ(s, a) = σ(f_ψ(s, a))`` is the probability
that the pair came from the expert; ``f_ψ`` is a logit (a table ``[S, A]`` or an
MLP from observations to one logit per action). It is trained by logistic
regression, expert = 1, learner = 0 (:func:`discriminator_loss`)::

    L(ψ) = − E_{(s,a)~ρ_E}[log D_ψ(s,a)] − E_{(s,a)~ρ_π}[log(1 − D_ψ(s,a))]
         =   E_{ρ_E}[softplus(−f_ψ)] + E_{ρ_π}[softplus(f_ψ)],

whose minimiser over all functions is ``D* = ρ_E / (ρ_E + ρ_π)``, i.e.
``f* = log ρ_E(s,a) − log ρ_π(s,a)``. Three rewards are in use:

- ``−log(1 − D) = softplus(f) > 0``: always positive, so every extra step alive
  earns reward; an episode that can end early is pushed to *survive* whatever
  the expert did (survival bias);
- ``log D = −softplus(−f) < 0``: always negative, so the learner is pushed to
  *end* episodes early (termination bias);
- ``log D − log(1 − D) = f``: either sign. At ``D*`` it is ``log ρ_E/ρ_π``, so
  the RL objective ``E_{ρ_π}[f*] = −KL(ρ_π ‖ ρ_E)`` is occupancy matching
  (reverse KL), the GAIL/AIRL fixed point, with no built-in preference for
  living or dying.

**We use ``r(s, a) = f_ψ(s, a) = log D − log(1 − D)``** (:func:`discriminator_reward`),
and the reward is higher where the discriminator believes "expert". Its sign
alone carries no bias, but termination still would: an episode that ends gets
zero reward afterwards, so a learner facing negative rewards would learn to end
episodes. Absorbing states are therefore handled explicitly (Kostrikov et al.
2019, "Discriminator-Actor-Critic", DESIGN.md pitfall 7):

- **Tabular envs** (:class:`~toyrlhf.envs.functional.TabularEnv`): the MDP's
  terminal flags are dropped (its terminal states are already absorbing with
  zero true reward), so every episode lasts exactly ``T`` steps, like the
  demonstrations (which record the absorbing steps as real data). The learner is
  paid ``f_ψ(s_abs, a)`` on every step it spends in an absorbing state, and the
  discriminator learns that state's logit from data like any other.
- **Other envs** (CartPole) are wrapped by :class:`WithAbsorbing`, which appends
  a flag to the observation: 0 in live states, and ``next_obs = (0, …, 0, 1)``
  on a terminating step. The discriminator has one extra logit ``f_abs`` for the
  absorbing state, and the terminating transition is paid its own reward plus
  the discounted value of staying absorbed forever::

      r_t = f_ψ(s_t, a_t) + 1[s_{t+1} absorbing] · γ/(1 − γ) · f_abs,

  (``Σ_{k≥1} γ^k f_abs``) while PPO treats the step as terminated (no bootstrap),
  which is exactly the return of the infinite absorbing tail. Each terminated
  learner transition is one absorbing sample for the discriminator; on the
  expert side an episode shorter than the demonstrations' ``T`` is taken to have
  terminated (one absorbing sample each). The policy and critic never see the
  flag (:class:`DropFlag`), so the learned actor reads plain observations.

Pseudocode (one ``lax.scan`` over ``U = config.ppo.n_updates`` rounds; the whole
run is ``train(key, demos)``, jit-able, vmapped over keys for seeds)::

    for round in 1..U:
        roll out π for ``disc_n_steps`` steps in N envs  → learner pairs (and absorbing samples)
        ψ ← ``disc_grad_steps`` Adam steps on L(ψ) (+ optional gradient penalty; all expert pairs vs
            these learner pairs; Adam's state carried over from the previous round)
        one PPO update (toyrlhf.algorithms.ppo, its ``reward_fn`` hook) on r = f_ψ

When has it converged? At the fixed point ``ρ_π = ρ_E`` the best discriminator is
``D = 1/2`` and its loss is :data:`CHANCE_LOSS` ``= 2 log 2 ≈ 1.386``; the metrics
report ``disc_loss`` beside it (``chance_loss``) and the balanced accuracy
``disc_accuracy`` (1/2 at chance). A loss far below 2 log 2 means the learner is
still easy to tell apart; a loss at 2 log 2 with a poor true return means the
discriminator has stopped learning (too small a step, too strong a penalty).

Settings that converge (``GAILConfig.tabular()``), measured one change at a time
on compounding-error's Reset Cliff (10 good states, N = 100 demonstrations,
H = 64, 60 rounds; GAIL gap / time-indexed BC gap on interquartile means over
data sets, paired BCa 95% interval; "collapsed" = seeds with gap > 10 of 64).
The defaults were chosen on 48 tuning data sets (``seed_keys(1, 48)``), which
are not the experiment's (``seed_keys(0, ·)``); the experiment's 24 quick data
sets are shown too::

    setting                                    tuning (48)            collapsed  experiment's 24      collapsed
    earlier (anneal, ent 0, Adam restarts)     0.132 [0.110, 0.168]   1          0.119 [0.082, 0.157]  1
    + no annealing                             0.063 [0.046, 0.405]   8          0.046 [0.033, 0.071]  2
    + persistent discriminator Adam            0.117 [0.098, 0.144]   0          0.095 [0.072, 0.131]  0
    + entropy bonus 0.01                       0.175 [0.144, 0.220]   1          0.178 [0.141, 0.223]  0
    + gradient penalty 0.1                     0.115 [0.098, 0.140]   0          0.098 [0.069, 0.152]  1
    no annealing + persistent + entropy 0.01   0.066 [0.050, 0.094]   3          0.056 [0.038, 0.071]  1
      the same, Adam restarted each round      -                      -          0.395 [0.078, 3.337]  7
      the same, annealed                       -                      -          0.131 [0.098, 0.170]  0
    no annealing + persistent (the default)    0.042 [0.034, 0.053]   1          0.033 [0.024, 0.054]  0
      + gradient penalty 0.1                   0.042 [0.035, 0.052]   2          0.047 [0.031, 0.062]  1  (with entropy)
      + absorbing_reward "zero"                0.067 [0.055, 0.081]   0          0.068 [0.052, 0.091]  0  (with entropy)

The table was measured with PPO bootstrapping from ``V(s_T)`` at the horizon. Since PPO treats a
``TabularEnv``'s horizon as part of the task (``PPOConfig.horizon="auto"``: no bootstrap past it),
four rows were measured again on the same 48 tuning data sets: earlier settings
0.150 [0.124, 0.186] (0 collapsed), no annealing + persistent + entropy 0.01
0.057 [0.044, 0.073] (2), the default 0.046 [0.036, 0.061] (1), the default with
``absorbing_reward="zero"`` 0.083 [0.066, 0.103] (0): the same order.

So: annealing PPO's step size to 0 over 60 rounds is what kept GAIL at about
0.12 of BC (it freezes the policy before the discriminator settles); keeping
the discriminator's Adam state steadies it (alone a small gain; with a constant
PPO step size it is what prevents collapses: 8 of 48 and 7 of 24 runs collapse
when Adam restarts every round); an entropy bonus *hurts* on Reset Cliff
(a stochastic policy leaks falls, and every fall costs the rest of the horizon),
so the tabular default is ``ent_coef = 0``; a gradient penalty (an L2 penalty on
a table's logits) changes nothing measurable, so it is off. The known zero
reward on the absorbing fall state removes collapses but raises the typical gap
(the learner is no longer pushed away from the fall state by a negative reward
there); ``"learned"`` stays the default. The discriminator's loss ends near
2 log 2 (1.33-1.39 over the last 10 rounds, mean over data sets) except with
Adam restarted every round under a constant PPO step size (1.15-1.22: the
learner keeps being told apart, and then collapses).

The discriminator's rollout is separate from PPO's own (``ppo.make_ppo``'s
update does not hand back its batch), so it costs ``U N disc_n_steps`` extra
environment steps, counted in the resources.

Resources: the expert labels are the valid demonstration steps; environment
steps are all the learner's rollouts (PPO's and the discriminator's); no
dynamics model is used (``known_dynamics=False``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from toyrlhf import tabular
from toyrlhf.algorithms import ppo
from toyrlhf.algorithms.resources import Resources
from toyrlhf.demonstrations import Demonstrations
from toyrlhf.envs.functional import Environment, Step, TabularEnv, TabularParams
from toyrlhf.nets import MLP, Network, Table
from toyrlhf.rollout import rollout, start
from toyrlhf.validation import boolean, instance, non_negative_float, positive_float, positive_int

# ------------------------------------------------------------------------------------------
# Absorbing state for environments that terminate
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WithAbsorbing:
    """``inner`` with an absorbing flag appended to its flat observation ``[D] -> [D + 1]``.

    Live observations end in 0; the observation after a terminating step is
    ``(0, …, 0, 1)`` (the absorbing state). Rewards, termination and truncation are
    ``inner``'s. Used by GAIL on non-tabular environments (module docstring).
    """

    inner: Any
    """The wrapped functional environment (flat observations ``[D]``)."""

    @property
    def n_actions(self) -> int:
        return self.inner.n_actions

    @property
    def observation_shape(self) -> tuple[int, ...]:
        return (self.inner.observation_shape[0] + 1,)

    def reset(self, key: jax.Array, params: Any) -> tuple[jax.Array, Any]:
        obs, state = self.inner.reset(key, params)
        return live_observation(obs), state

    def step(self, key: jax.Array, state: Any, action: jax.Array, params: Any) -> Step:
        step = self.inner.step(key, state, action, params)
        absorbing = jnp.zeros(self.observation_shape, step.obs.dtype).at[-1].set(1)
        return step._replace(obs=jnp.where(step.terminated, absorbing, live_observation(step.obs)))


def live_observation(obs: jax.Array) -> jax.Array:
    """``[..., D] -> [..., D + 1]``: a live (non-absorbing) observation of :class:`WithAbsorbing`."""
    return jnp.concatenate([obs, jnp.zeros((*obs.shape[:-1], 1), obs.dtype)], axis=-1)


@dataclass(frozen=True)
class DropFlag:
    """A network that ignores the last input feature (the absorbing flag); its params are ``net``'s on ``[D]``."""

    net: Network = field(default_factory=MLP)

    def init(self, key: jax.Array, in_dim: int, out_dim: int, scale: float = 1.0) -> Any:
        return self.net.init(key, in_dim - 1, out_dim, scale)

    def apply(self, params: Any, x: jax.Array) -> jax.Array:
        return self.net.apply(params, x[..., :-1])


# ------------------------------------------------------------------------------------------
# Discriminator
# ------------------------------------------------------------------------------------------


class DiscriminatorParams(NamedTuple):
    net: Any
    """Parameters of ``config.discriminator``: observations ``[D]`` (or a state index) -> ``[A]`` logits."""
    absorbing: jax.Array
    """``[]`` float32: the logit ``f_abs`` of the absorbing state (unused on tabular envs)."""


def discriminator_loss(expert_logits, learner_logits, expert_weights, learner_weights) -> jax.Array:
    """Logistic loss of the discriminator, expert = 1, learner = 0 (Ho & Ermon 2016, eq. 17 with D for "expert").

    ``L = Σ_i w^E_i softplus(−f^E_i) / Σ_i w^E_i + Σ_j w^π_j softplus(f^π_j) / Σ_j w^π_j``
    ``  = −E_E[log D] − E_π[log(1 − D)]`` with ``D = σ(f)``.

    Args: logits ``f`` and non-negative weights (e.g. a valid mask, or counts), ``[n_E]`` and ``[n_π]``.
    Returns ``[]``. Lower when expert logits are high and learner logits low.
    """
    if expert_logits.shape != expert_weights.shape or learner_logits.shape != learner_weights.shape:
        raise ValueError(
            f"logits and weights must match: expert {expert_logits.shape} vs {expert_weights.shape}, "
            f"learner {learner_logits.shape} vs {learner_weights.shape}"
        )
    expert = jnp.sum(expert_weights * jax.nn.softplus(-expert_logits)) / jnp.maximum(expert_weights.sum(), 1e-12)
    learner = jnp.sum(learner_weights * jax.nn.softplus(learner_logits)) / jnp.maximum(learner_weights.sum(), 1e-12)
    return expert + learner


def discriminator_reward(logits: jax.Array) -> jax.Array:
    """GAIL's reward from discriminator logits: ``r = log D − log(1 − D) = f`` (sign: module docstring)."""
    return logits


# ------------------------------------------------------------------------------------------
# Configuration, outputs
# ------------------------------------------------------------------------------------------


TABULAR_ENT_COEF = 0.0
"""``GAILConfig.tabular()``'s PPO entropy bonus: none (on Reset Cliff a bonus of 0.01 raised GAIL's gap, the
module docstring's table)."""
CARTPOLE_GRAD_PENALTY = 10.0
"""``GAILConfig.cartpole()``'s gradient penalty weight (its docstring says why)."""
ABSORBING_REWARDS = ("learned", "zero")
"""Values of ``GAILConfig.absorbing_reward``."""

CHANCE_LOSS = 2.0 * math.log(2.0)
"""``2 log 2 ≈ 1.386``: the discriminator loss of ``D = 1/2`` everywhere, where it tells expert from learner
no better than a coin (at the GAIL fixed point ``ρ_π = ρ_E`` the optimal discriminator's loss is exactly this)."""


@dataclass(frozen=True)
class GAILConfig:
    """Settings of GAIL (static: they fix shapes and program structure)."""

    ppo: ppo.PPOConfig = field(default_factory=ppo.PPOConfig)
    """The policy learner; its ``n_updates`` is the number of GAIL rounds, its ``hyper`` the PPO numbers."""
    discriminator: Network = field(default_factory=lambda: MLP((64, 64)))
    """Network of ``f_ψ``: observation -> one logit per action (``Table()`` for index observations)."""
    disc_n_steps: int = 16
    """Steps per env of the learner rollout that feeds the discriminator each round."""
    disc_grad_steps: int = 4
    """Full-batch Adam steps on the discriminator each round."""
    disc_learning_rate: float = 3e-3
    """Adam step size of the discriminator."""
    disc_persistent_optimizer: bool = True
    """Keep the discriminator's Adam state (moments, step count) from round to round. ``False`` restarts Adam
    every round: its bias-corrected first step moves every logit that has data by about the learning rate,
    whatever the gradient's size, so a table discriminator never settles."""
    disc_grad_penalty: float = 0.0
    """Weight ``λ`` of a zero-centred gradient penalty ``λ/2 (E_E + E_π)[‖∇_x f_ψ(x, a)‖²]`` on the expert's and
    the learner's inputs (Mescheder et al. 2018's R1 + R2). Index observations are differentiated as one-hot
    vectors, so for a ``Table`` it is ``λ/2`` times the squared norm of the table's column ``f_ψ(·, a)``
    (an L2 penalty on the logits). 0: none."""
    absorbing_reward: str = "learned"
    """The learner's reward in absorbing (terminal) states. ``"learned"``: the discriminator's logit, learned
    from data like any other state (tabular: every step spent there; other envs: ``f_abs`` of the absorbing
    tail). ``"zero"``: the MDP's known reward there, 0; those pairs (tabular) or absorbing samples (other
    envs) are left out of the discriminator's data."""

    def __post_init__(self):
        instance("ppo", self.ppo, ppo.PPOConfig)
        positive_int("disc_n_steps", self.disc_n_steps)
        positive_int("disc_grad_steps", self.disc_grad_steps)
        positive_float("disc_learning_rate", self.disc_learning_rate)
        boolean("disc_persistent_optimizer", self.disc_persistent_optimizer)
        non_negative_float("disc_grad_penalty", self.disc_grad_penalty)
        if self.absorbing_reward not in ABSORBING_REWARDS:
            raise ValueError(f"absorbing_reward must be one of {ABSORBING_REWARDS}, got {self.absorbing_reward!r}")

    @classmethod
    def tabular(
        cls, n_updates: int = 60, learning_rate: float = 0.1, ent_coef: float = TABULAR_ENT_COEF,
        anneal_lr: bool = False, **kwargs,
    ) -> GAILConfig:
        """Tables for policy, critic and discriminator (index observations): the settings of the imitation sweeps.

        PPO: 16 envs x 32 steps per round, Adam step size ``learning_rate`` held constant (``anneal_lr=False``:
        annealing to 0 over 60 rounds freezes the policy before the discriminator has settled), entropy bonus
        ``ent_coef`` (0: a bonus made the stochastic policy fall more often on Reset Cliff); discriminator: a
        table, 16 x 16 learner steps and 4 Adam steps of 0.1 per round, Adam state kept across rounds, no
        gradient penalty, learned reward on absorbing states. Each change was measured on its own against the
        earlier settings (annealing, Adam restarted every round) on compounding-error's Reset Cliff (N = 100,
        H = 64) on tuning data sets: the module docstring's table.
        """
        ppo_config = ppo.PPOConfig(
            n_envs=16, n_steps=32, n_updates=n_updates, actor=Table(), critic=Table(), anneal_lr=anneal_lr,
            hyper=ppo.PPOHyperparams(learning_rate=learning_rate, ent_coef=ent_coef),
        )
        defaults = dict(discriminator=Table(), disc_n_steps=16, disc_grad_steps=4, disc_learning_rate=0.1)
        return cls(ppo=ppo_config, **{**defaults, **kwargs})

    @classmethod
    def cartpole(cls, n_updates: int = 100, anneal_lr: bool = False, disc_grad_penalty: float = CARTPOLE_GRAD_PENALTY,
                 **kwargs) -> GAILConfig:
        """MLP 64x64 policy, critic and discriminator; PPO as the CartPole expert's (lr 1e-3, entropy 0.01),
        held constant (``anneal_lr=False``); the discriminator's Adam state kept across rounds; a gradient
        penalty of 10 (Kostrikov et al. 2019's weight); absorbing state with a learned reward (module docstring).

        Why the penalty: from one expert episode (500 pairs), with a constant step size and a persistent Adam,
        the unpenalised MLP discriminator wins the game (its loss fell to about 0.2, far below 2 log 2) and the
        learner's Gymnasium return decayed to about 70 over 100 rounds; with the penalty the loss stays near
        2 log 2 and the return climbs (last 5 of 10 checkpoints: about 420 with weight 10, 360 with weight 1).
        Measured on 4 tuning seeds (``bc-vs-irl-data``'s CartPole part at ``seed=100``), not the experiment's.
        """
        ppo_config = ppo.PPOConfig(
            n_envs=16, n_steps=128, n_updates=n_updates, anneal_lr=anneal_lr,
            hyper=ppo.PPOHyperparams(learning_rate=1e-3),
        )
        return cls(ppo=ppo_config, disc_grad_penalty=disc_grad_penalty, **kwargs)


class GAILResult(NamedTuple):
    """What one GAIL run returns (vmap adds a leading ``[seeds]`` axis to every leaf)."""

    ppo: ppo.PPOState
    """Final PPO state; ``ppo.params.actor`` is the imitation policy (for ``config.ppo.actor`` on plain obs)."""
    discriminator: DiscriminatorParams
    """Final discriminator."""
    resources: Resources
    """Expert labels, environment steps (PPO's and the discriminator's rollouts), ``known_dynamics=False``."""


class ExpertData(NamedTuple):
    """The demonstrations as the discriminator reads them (flattened over episodes and steps)."""

    obs: jax.Array
    """``[B, ...]``: observations as the env gives them (the absorbing flag appended for wrapped envs)."""
    action: jax.Array
    """``[B]`` int32."""
    weight: jax.Array
    """``[B]`` float32: 1 for a valid step, 0 for padding."""
    n_absorbing: jax.Array
    """``[]`` float32: absorbing samples (episodes that ended before the demonstrations' ``T``)."""


class GAILState(NamedTuple):
    """What a run carries from round to round (for training in chunks with :func:`make_gail`)."""

    ppo: ppo.PPOState
    discriminator: DiscriminatorParams
    disc_opt_state: Any
    """The discriminator's Adam state (re-initialised each round unless ``config.disc_persistent_optimizer``)."""
    envs: Any
    """``EnvCarry`` of the discriminator's rollouts (separate from PPO's)."""
    key: jax.Array
    expert: ExpertData
    rounds: jax.Array
    """``[]`` int32: rounds done."""


class GAIL(NamedTuple):
    """``train(key, demos) = result(scan(update, init(key, demos)))``; use :func:`make_train` unless chunking."""

    init: Any
    """``init(key, demos, hyper=None) -> GAILState``."""
    update: Any
    """``update(state) -> (state, GAILMetrics)``: one round."""
    result: Any
    """``result(state) -> GAILResult``."""
    train: Any
    """``train(key, demos, hyper=None) -> (GAILResult, GAILMetrics)``."""
    reward_fn: Any
    """``reward_fn(obs, action, next_obs, (DiscriminatorParams, γ)) -> []``: the reward PPO trains on."""


class GAILMetrics(NamedTuple):
    """Per-round metrics, each ``[U]`` per run."""

    ppo: ppo.PPOMetrics
    """PPO's metrics (``ppo.episode_return`` is the *true* env return of the learner)."""
    disc_loss: jax.Array
    """Discriminator loss :func:`discriminator_loss` after the round's steps (penalty excluded); compare with
    ``chance_loss``: far below it, the discriminator tells expert from learner apart; at it, it cannot."""
    chance_loss: jax.Array
    """:data:`CHANCE_LOSS` ``= 2 log 2``, the loss of ``D = 1/2`` (beside ``disc_loss`` for plots)."""
    expert_reward: jax.Array
    """Mean learned reward ``f`` on the expert's pairs (absorbing samples included)."""
    learner_reward: jax.Array
    """Mean learned reward ``f`` on the learner's pairs (absorbing samples included)."""
    disc_accuracy: jax.Array
    """Balanced accuracy of ``D > 1/2`` on the round's expert and learner pairs (1/2: a coin)."""
    nonfinite: jax.Array
    """bool: NaN/inf in PPO or in the discriminator this round."""


# ------------------------------------------------------------------------------------------
# Training
# ------------------------------------------------------------------------------------------


def fixed_horizon(env_params: TabularParams) -> TabularParams:
    """The same tabular env with its terminal flags dropped: episodes last exactly ``T`` steps (absorbing kept)."""
    mdp = env_params.mdp
    return env_params._replace(mdp=tabular.TabularMDP.from_successors(
        mdp.next_states, mdp.next_probs, mdp.R, mdp.init, mdp.horizon, mdp.discount
    ))


def make_gail(config: GAILConfig, env: Environment, env_params: Any) -> GAIL:
    """The pieces of GAIL (see :class:`GAIL`), for training in chunks; :func:`make_train` says what ``demos`` is."""
    instance("config", config, GAILConfig)
    is_tabular = isinstance(env, TabularEnv)
    zero_absorbing = config.absorbing_reward == "zero"
    ppo_config = config.ppo
    if is_tabular:
        terminal = env_params.mdp.terminal  # [S] bool: the MDP's absorbing states (before the flags are dropped)
        env_params = fixed_horizon(env_params)
        index_obs = env.observation_shape == ()
        n_rows = getattr(env, "n_observations", env.n_states)  # S, or S T with the time in the observation
        obs_dim = n_rows if index_obs else env.observation_shape[0]
    else:
        if len(env.observation_shape) != 1:
            raise ValueError(f"GAIL needs flat observations [D] or a TabularEnv, got shape {env.observation_shape}")
        obs_dim = env.observation_shape[0]
        env = WithAbsorbing(env)
        ppo_config = dataclasses.replace(
            ppo_config, actor=DropFlag(ppo_config.actor), critic=DropFlag(ppo_config.critic)
        )
    net, n_actions = config.discriminator, env.n_actions

    def features(obs: jax.Array) -> jax.Array:
        """What ``f_ψ`` reads: a state index (tabular index obs), or floats ``[..., D]`` (flag stripped)."""
        return obs if is_tabular else obs[..., :-1]

    def logits_of(disc: DiscriminatorParams, obs: jax.Array, action: jax.Array) -> jax.Array:
        """``f_ψ(s, a)`` for ``obs [..., D]`` (flag stripped for wrapped envs) and ``action [...]``."""
        return jnp.take_along_axis(net.apply(disc.net, features(obs)), action[..., None], axis=-1)[..., 0]

    def absorbing(obs: jax.Array) -> jax.Array:
        """``[...]`` bool: ``obs`` is an absorbing state of the tabular MDP (all False for other envs)."""
        if not is_tabular:
            return jnp.zeros(obs.shape[:-1], bool)
        if index_obs:  # s, or t S + s with the time in the observation
            return terminal[obs % env.n_states]
        rows = env_params.observations.reshape(env.n_states, -1)
        flat = obs.reshape(*obs.shape[: obs.ndim - len(env.observation_shape)], 1, -1)[..., : rows.shape[-1]]
        return jnp.any(jnp.all(flat == rows, axis=-1) & terminal, axis=-1)

    def reward_fn(obs, action, next_obs, reward_params):
        disc, gamma = reward_params
        reward = discriminator_reward(logits_of(disc, obs, action))
        if zero_absorbing:  # the known zero reward of a terminal state (tabular) / of the absorbing tail
            reward = jnp.where(absorbing(obs), 0.0, reward)
        elif not is_tabular:  # the terminating step also earns the absorbing tail Σ_{k≥1} γ^k f_abs
            reward = reward + next_obs[-1] * gamma / (1.0 - gamma) * discriminator_reward(disc.absorbing)
        return reward

    learner = ppo.make_ppo(ppo_config, env, env_params, reward_fn)
    learner_actor_apply = ppo_config.actor.apply
    optimizer = optax.adam(config.disc_learning_rate)

    def expert_data(demos: Demonstrations):
        """Flat expert pairs ``(obs [B, ...], action [B], weight [B])`` and the absorbing-sample count."""
        if not isinstance(demos, Demonstrations):
            raise TypeError(f"demos must be a Demonstrations, got {type(demos).__name__}")
        obs = demos.observations
        if is_tabular and obs.ndim == 2:
            obs = env_params.observations[obs]
        elif not is_tabular:
            if obs.ndim != 3 or obs.shape[-1] != obs_dim:
                raise ValueError(f"demos.observations must have shape [N, T, {obs_dim}], got {obs.shape}")
            obs = live_observation(obs.astype(jnp.float32))
        n_absorbing = jnp.zeros((), jnp.float32) if is_tabular else jnp.sum(~demos.valid[:, -1]).astype(jnp.float32)
        flat = lambda x: x.reshape(-1, *x.shape[2:])  # noqa: E731
        return ExpertData(
            flat(obs), flat(demos.actions).astype(jnp.int32), flat(demos.valid).astype(jnp.float32), n_absorbing
        )

    def input_gradient_norms(disc: DiscriminatorParams, obs: jax.Array, action: jax.Array) -> jax.Array:
        """``[B]``: ``‖∇_x f_ψ(x, a)‖²`` at each pair, index observations as one-hot vectors."""
        x = features(obs)
        x = jax.nn.one_hot(x, n_rows, dtype=jnp.float32) if is_tabular and index_obs else x

        def f(xi, ai):
            return net.apply(disc.net, xi)[ai]

        grads = jax.vmap(jax.grad(f))(x.reshape(-1, x.shape[-1]), action.reshape(-1))
        return jnp.sum(grads**2, axis=-1).reshape(action.shape)

    def update(state: GAILState) -> tuple[GAILState, GAILMetrics]:
        """One round: discriminator rollout, discriminator steps, one PPO update on ``r = f_ψ``."""
        ppo_state, disc, envs, key = state.ppo, state.discriminator, state.envs, state.key
        expert_obs, expert_action, expert_weight, expert_absorbing = state.expert
        key, key_rollout = jax.random.split(key)
        envs, batch = rollout(
            key_rollout, env, env_params, envs, learner_actor_apply, ppo_state.params.actor, config.disc_n_steps
        )
        learner_obs = batch.obs.reshape(-1, *batch.obs.shape[2:])
        learner_action = batch.action.reshape(-1)
        learner_weight = jnp.ones(learner_action.shape, jnp.float32)
        learner_absorbing = jnp.sum(batch.terminated).astype(jnp.float32)
        if zero_absorbing:  # absorbing pairs carry no information: their reward is known
            expert_weight = expert_weight * ~absorbing(expert_obs)
            learner_weight = learner_weight * ~absorbing(learner_obs)
            expert_absorbing, learner_absorbing = jnp.zeros_like(expert_absorbing), jnp.zeros_like(learner_absorbing)

        def classification_loss(d: DiscriminatorParams):
            e = logits_of(d, expert_obs, expert_action)
            le = logits_of(d, learner_obs, learner_action)
            expert_logits = jnp.append(e, d.absorbing)
            learner_logits = jnp.append(le, d.absorbing)
            expert_weights = jnp.append(expert_weight, expert_absorbing)
            learner_weights = jnp.append(learner_weight, learner_absorbing)
            return discriminator_loss(expert_logits, learner_logits, expert_weights, learner_weights)

        def loss(d: DiscriminatorParams):
            total = classification_loss(d)
            if config.disc_grad_penalty > 0:
                g_e = input_gradient_norms(d, expert_obs, expert_action)
                g_l = input_gradient_norms(d, learner_obs, learner_action)
                mean = lambda g, w: jnp.sum(w * g) / jnp.maximum(w.sum(), 1e-12)  # noqa: E731
                total = total + 0.5 * config.disc_grad_penalty * (mean(g_e, expert_weight) + mean(g_l, learner_weight))
            return total

        opt_state = state.disc_opt_state if config.disc_persistent_optimizer else optimizer.init(disc)

        def disc_step(carry, _):
            d, s = carry
            grads = jax.grad(loss)(d)
            updates, s = optimizer.update(grads, s, d)
            return (optax.apply_updates(d, updates), s), None

        (disc, opt_state), _ = jax.lax.scan(disc_step, (disc, opt_state), None, length=config.disc_grad_steps)
        disc_loss = classification_loss(disc)
        expert_logits = logits_of(disc, expert_obs, expert_action)
        learner_logits = logits_of(disc, learner_obs, learner_action)
        abs_logit = 0.0 if zero_absorbing else disc.absorbing
        expert_reward = (jnp.sum(expert_weight * expert_logits) + expert_absorbing * abs_logit) / jnp.maximum(
            jnp.sum(expert_weight) + expert_absorbing, 1e-12
        )
        learner_reward = (jnp.sum(learner_weight * learner_logits) + learner_absorbing * abs_logit) / jnp.maximum(
            jnp.sum(learner_weight) + learner_absorbing, 1e-12
        )
        hit = lambda right, w: jnp.sum(w * right) / jnp.maximum(w.sum(), 1e-12)  # noqa: E731
        accuracy = 0.5 * (hit(expert_logits > 0, expert_weight) + hit(learner_logits <= 0, learner_weight))
        ppo_state = ppo_state._replace(reward_params=(disc, ppo_state.hyper.gamma))
        ppo_state, ppo_metrics = learner.update(ppo_state)
        nonfinite = ppo_metrics.nonfinite | ~jnp.isfinite(disc_loss)
        metrics = GAILMetrics(
            ppo_metrics, disc_loss, jnp.asarray(CHANCE_LOSS, disc_loss.dtype), expert_reward, learner_reward,
            accuracy, nonfinite,
        )
        new_state = GAILState(ppo_state, disc, opt_state, envs, key, state.expert, state.rounds + 1)
        return new_state, metrics

    def init(key: jax.Array, demos: Demonstrations, hyper: ppo.PPOHyperparams | None = None) -> GAILState:
        """A fresh run on ``demos``; ``hyper`` overrides PPO's numbers."""
        expert = expert_data(demos)
        key, key_ppo, key_disc, key_env = jax.random.split(key, 4)
        disc = DiscriminatorParams(net.init(key_disc, obs_dim, n_actions, 0.01), jnp.zeros((), jnp.float32))
        ppo_state = learner.init(key_ppo, hyper, None, (disc, jnp.float32(0.0)), None)
        envs = start(key_env, env, env_params, ppo_config.n_envs)
        return GAILState(ppo_state, disc, optimizer.init(disc), envs, key, expert, jnp.zeros((), jnp.int32))

    def result(state: GAILState) -> GAILResult:
        """The policy, discriminator and resources consumed so far."""
        steps_per_round = ppo_config.n_envs * (ppo_config.n_steps + config.disc_n_steps)
        resources = Resources(
            expert_labels=jnp.sum(state.expert.weight).astype(jnp.int32),
            env_steps=state.rounds * steps_per_round,
            known_dynamics=False,
        )
        return GAILResult(state.ppo, state.discriminator, resources)

    def train(key: jax.Array, demos: Demonstrations, hyper: ppo.PPOHyperparams | None = None):
        """One run: ``(GAILResult, GAILMetrics with [U] fields)``; ``hyper`` overrides PPO's numbers."""
        state = init(key, demos, hyper)
        state, metrics = jax.lax.scan(lambda s, _: update(s), state, None, length=ppo_config.n_updates)
        return result(state), metrics

    return GAIL(init, update, result, train, reward_fn)


def make_train(config: GAILConfig, env: Environment, env_params: Any):
    """``train(key, demos, hyper=None) -> (GAILResult, GAILMetrics)``, pure and jit-able.

    ``demos`` is a :class:`~toyrlhf.demonstrations.Demonstrations` batch: state indices
    ``[N, T]`` for a tabular env (mapped through ``env_params.observations``), or
    observations ``[N, T, D]`` of ``env``. Its shapes are static; vmap over ``key`` for
    seeds and over ``demos`` too for independent data sets.
    """
    return make_gail(config, env, env_params).train



def tabular_policy(config: GAILConfig, result: GAILResult, env_params: TabularParams) -> jax.Array:
    """``π(a|s)`` of the learned actor on every state of a tabular env: ``[..., S, A]`` (for ``tabular.evaluate``)."""
    apply = jax.vmap if result.ppo.params.actor.ndim > 2 else (lambda f: f)
    return apply(lambda actor: ppo.policy_probabilities(config.ppo, actor, env_params.observations))(
        result.ppo.params.actor
    )
