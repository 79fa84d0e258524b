"""NaN is reported, not trained through: every learner flags the update where it first went non-finite.

Inside a jitted run nothing can raise, so each learner returns a per-update flag
(``metrics.nonfinite`` for DQN and GAIL, ``result.nonfinite`` for MaxEnt IRL and
MLP BC, ``~isfinite(losses)`` for the fits that return ``(params, losses)``: DPO
and the reward models) and the host calls ``diagnostics.raise_if_nonfinite``.
Each test feeds a NaN through an input the compiled program takes (a traced
learning rate, an observation, a label, a feature) and checks that the flag is
set from the right update on, that the report names that update, and that the
same program with clean inputs raises no flag. PPO's own test is in test_ppo.py.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import tiny_learners as tiny

from toyrlhf.algorithms import preferences as pref
from toyrlhf.diagnostics import raise_if_nonfinite
from toyrlhf.optimize import minimize


def assert_reported(flags, name: str, first_bad: int):
    """``flags [U]`` are clear before ``first_bad`` and set from it on; the report names that update."""
    flags = np.asarray(flags)
    assert flags.dtype == bool and flags.ndim == 1
    assert not flags[:first_bad].any() and flags[first_bad:].all(), flags
    report = rf"^{name} produced NaN or inf in 1 of 1 runs \(first bad update per run: run 0: update {first_bad}\)"
    with pytest.raises(FloatingPointError, match=report):
        raise_if_nonfinite(flags, name)


def test_dqn_nan_learning_rate_is_flagged_from_the_first_learning_update():
    _, clean = tiny.run_dqn(jax.random.key(0))
    assert not np.asarray(clean.nonfinite).any()
    _, metrics = tiny.run_dqn(jax.random.key(0), learning_rate=math.nan)
    first_learning = int(np.argmax(np.asarray(metrics.learning)))
    assert np.asarray(metrics.learning).any()
    assert_reported(metrics.nonfinite, "DQN", first_learning)


def test_gail_nan_policy_learning_rate_is_flagged_in_the_first_round():
    _, clean = tiny.run_gail(jax.random.key(0))
    assert not np.asarray(clean.nonfinite).any()
    _, metrics = tiny.run_gail(jax.random.key(0), learning_rate=math.nan)
    assert_reported(metrics.nonfinite, "GAIL", 0)


def test_mlp_bc_nan_observation_is_flagged_at_the_first_step():
    assert not np.asarray(tiny.run_mlp_bc(jax.random.key(0)).nonfinite).any()
    observations = np.array(tiny.continuous_demos().observations)
    observations[1, 2, 3] = np.nan
    result = tiny.run_mlp_bc(jax.random.key(0), jnp.asarray(observations))
    assert_reported(result.nonfinite, "MLP BC", 0)


def test_maxent_irl_nan_feature_is_flagged_at_the_first_step():
    demos = tiny.tabular_demos(0)
    assert not np.asarray(tiny.run_maxent_irl(demos).nonfinite).any()
    result = tiny.run_maxent_irl(demos, nan_feature=True)
    assert_reported(result.nonfinite, "MaxEnt IRL", 0)


def test_dpo_nan_label_is_flagged_at_the_first_step():
    _, clean = tiny.run_dpo()
    assert np.isfinite(np.asarray(clean)).all()
    _, losses = tiny.run_dpo((1.0, math.nan, 1.0, 1.0))
    assert_reported(~np.isfinite(np.asarray(losses)), "DPO", 0)


def test_reward_model_nan_label_is_flagged_and_check_finite_losses_raises():
    _, clean = tiny.run_reward_model(jax.random.key(0))
    pref.check_finite_losses(clean)
    _, losses = tiny.run_reward_model(jax.random.key(0), (1.0, 0.0, math.nan, 1.0, 0.0, 1.0))
    assert_reported(~np.isfinite(np.asarray(losses)), "reward model", 0)
    with pytest.raises(FloatingPointError, match="reward model training produced NaN"):
        pref.check_finite_losses(losses)


def test_minimize_marks_the_step_that_breaks_the_parameters_even_the_last():
    """The loss before step ``i`` is finite, but the step makes θ NaN: ``losses[i]`` must say so."""

    def loss(theta):
        return jnp.sum((theta - 1.0) ** 2)

    theta, losses = minimize(loss, jnp.zeros(2), optax.sgd(0.1), 3)
    assert np.isfinite(np.asarray(losses)).all() and np.isfinite(np.asarray(theta)).all()
    theta, losses = minimize(loss, jnp.zeros(2), optax.sgd(math.nan), 1)  # one step: no later loss to show it
    assert not np.isfinite(np.asarray(theta)).any()
    assert_reported(~np.isfinite(np.asarray(losses)), "minimize", 0)
    # a step that overflows the parameters (finite rate, finite loss before it) is caught the same way
    theta, losses = minimize(loss, jnp.array([1.0, 3.0]), optax.sgd(1e308), 2)
    assert_reported(~np.isfinite(np.asarray(losses)), "minimize", 0)
