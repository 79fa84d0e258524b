"""Every learner of ``toyrlhf.algorithms`` at a tiny size, compiled once per test process.

``test_determinism.py`` and ``test_nonfinite.py`` both call these: the same
compiled program runs with good inputs and with poisoned ones (JIT compilation is
the cost, seconds per learner on 2 cores; the runs themselves take milliseconds).
Each ``run_*`` takes what varies as an argument: the key, and the one input a NaN
can be fed through (a traced learning rate, an observation, a label, a feature).
The sizes are the smallest that still use every part of a method: minibatches,
a target-network copy, discriminator steps, bootstrap ensembles.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

import toyrlhf  # noqa: F401  (x64 on)
from toyrlhf import demonstrations as demo_lib
from toyrlhf.algorithms import bc, dagger, dpo, dqn, gail, maxent_irl, ppo
from toyrlhf.algorithms import preferences as pref
from toyrlhf.envs import token_mdp as tm
from toyrlhf.envs import toy_mdps
from toyrlhf.envs.functional import tabular_env
from toyrlhf.nets import MLP, Table

MDP = toy_mdps.reset_cliff(horizon=4, n_good=3)
EXPERT = demo_lib.tabular_expert(MDP)


def float32(hyper):
    """Traced numbers as float32 arrays, so every call (good or NaN) hits one compiled program."""
    return jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), hyper)


def tabular_demos(seed: int) -> demo_lib.Demonstrations:
    """Four expert episodes of :data:`MDP` (state indices ``[4, 4]``)."""
    return demo_lib.sample_demonstrations(jax.random.key(seed), MDP, EXPERT, 4)


# ------------------------------------------------------------------------------------------
# Learners that take a key
# ------------------------------------------------------------------------------------------


@functools.cache
def _ppo():
    env, params = tabular_env(MDP, "one_hot")
    config = ppo.PPOConfig(
        n_envs=2, n_steps=4, n_updates=2, n_epochs=1, n_minibatches=2, actor=MLP((8,)), critic=MLP((8,))
    )
    return jax.jit(ppo.make_train(config, env, params))


def run_ppo(key):
    return _ppo()(key)


@functools.cache
def _dqn():
    env, params = tabular_env(MDP, "one_hot")
    config = dqn.DQNConfig(
        n_envs=2, n_steps=4, n_updates=4, buffer_size=16, batch_size=4, learning_starts=8,
        target_update_every=2, network=MLP((8,)),
    )
    return jax.jit(dqn.make_train(config, env, params))


def run_dqn(key, learning_rate=0.01):
    """DQN's learning rate is traced: a NaN one reaches the same compiled program."""
    return _dqn()(key, float32(dqn.DQNHyperparams(learning_rate=learning_rate)))


@functools.cache
def _gail():
    env, params = tabular_env(MDP, "index")
    policy = ppo.PPOConfig(n_envs=2, n_steps=4, n_updates=2, n_epochs=1, n_minibatches=1, actor=Table(), critic=Table())
    config = gail.GAILConfig(
        ppo=policy, discriminator=Table(), disc_n_steps=4, disc_grad_steps=2, disc_learning_rate=0.1
    )
    return jax.jit(gail.make_train(config, env, params))


def run_gail(key, learning_rate=0.1):
    """GAIL on :func:`tabular_demos` (seed 0); ``learning_rate`` is PPO's (traced)."""
    return _gail()(key, tabular_demos(0), float32(ppo.PPOHyperparams(learning_rate=learning_rate, ent_coef=0.0)))


def continuous_demos(observations=None) -> demo_lib.Demonstrations:
    """Three episodes of five steps with observations ``[3, 5, 4]``, labelled by the sign of the first feature."""
    if observations is None:
        observations = jax.random.normal(jax.random.key(2), (3, 5, 4), jnp.float32)
    actions = (observations[..., 0] > 0).astype(jnp.int32)
    return demo_lib.Demonstrations(observations, actions, jnp.zeros((3, 5)), jnp.ones((3, 5), bool))


@functools.cache
def _mlp_bc():
    return jax.jit(bc.make_train_mlp(bc.MLPBCConfig(network=MLP((8,)), n_steps=5), obs_dim=4, n_actions=2))


def run_mlp_bc(key, observations=None):
    return _mlp_bc()(key, continuous_demos(observations))


@functools.cache
def _dagger():
    return jax.jit(dagger.make_train(dagger.DAggerConfig(n_rounds=2, episodes_per_round=3), MDP, EXPERT))


def run_dagger(key):
    return _dagger()(key)


# Reward models: six pairs of 3-feature items; an MLP ensemble of two on bootstrap resamples,
# so the key sets both the initialisation and the resampling.
REWARD_MODEL = pref.RewardModelConfig(kind="mlp", hidden=(4,), ensemble_size=2, n_steps=5)
FEATURES_FIRST = np.asarray(jax.random.normal(jax.random.key(3), (6, 3)), np.float32)
FEATURES_SECOND = np.asarray(jax.random.normal(jax.random.key(4), (6, 3)), np.float32)
_fit_reward_model = jax.jit(pref.fit_reward_model, static_argnums=1)


def run_reward_model(key, prefer_first=(1.0, 0.0, 1.0, 1.0, 0.0, 1.0)):
    prefer_first = jnp.asarray(prefer_first, jnp.float32)
    return _fit_reward_model(key, REWARD_MODEL, FEATURES_FIRST, FEATURES_SECOND, prefer_first)


# ------------------------------------------------------------------------------------------
# Learners without a key (deterministic given their data)
# ------------------------------------------------------------------------------------------


@functools.cache
def _maxent_irl(nan_feature: bool):
    features = np.eye(MDP.n_states * MDP.n_actions).reshape(MDP.n_states, MDP.n_actions, -1)
    if nan_feature:
        features[0, 0, 0] = np.nan
    return jax.jit(maxent_irl.make_train(maxent_irl.MaxEntIRLConfig(n_steps=5), MDP, features))


def run_maxent_irl(demos, nan_feature: bool = False):
    """MaxEnt IRL with one-hot features; ``nan_feature`` poisons φ(s=0, a=0) (a separate compiled program)."""
    return _maxent_irl(nan_feature)(demos)


DPO_TASK = tm.TokenTask(vocab_size=3, length=2, n_prompts=1)
DPO_TREE = tm.enumerate_tokens(DPO_TASK, tm.ConcaveQuality(jnp.array([[0.0, 1.0, -0.5]]), 1.0, 0.4))


@functools.cache
def _dpo():
    return jax.jit(dpo.make_train(dpo.DPOConfig(n_steps=5), dpo.tree_log_prob_fn(DPO_TASK)))


def run_dpo(prefer_first=(1.0, 0.0, 1.0, 1.0)):
    """DPO from a uniform reference on four labelled pairs of the tree's responses."""
    S, A = DPO_TREE.mdp.R.shape
    first, second = DPO_TREE.responses[jnp.array([0, 1, 2, 3])], DPO_TREE.responses[jnp.array([1, 2, 3, 0])]
    prompt = jnp.zeros(4, jnp.int32)
    return _dpo()(jnp.zeros((S, A), jnp.float32), prompt, first, second, jnp.asarray(prefer_first, jnp.float32))
