"""Bad settings fail where they are given, naming the setting and what it should be; good ones pass.

Every public config of the algorithm layer is checked in ``__post_init__`` with the
helpers of :mod:`toyrlhf.validation`, and the functions that take counts or configs
check them on entry. Each case below would construct silently (or fail later, far
from the mistake) without its check.
"""

import math
import re

import jax
import numpy as np
import pytest

import toyrlhf  # noqa: F401  (x64 on)
from toyrlhf import validation
from toyrlhf.algorithms import bc, dagger, dpo, dqn, experts, gail, maxent_irl, ppo
from toyrlhf.algorithms import preferences as pref
from toyrlhf.envs import toy_mdps

NAN, INF = math.nan, math.inf
POSITIVE_INT = "a positive int"
NON_NEGATIVE_INT = "a non-negative int"
POSITIVE = "a finite number > 0"
NON_NEGATIVE = "a finite number >= 0"
PROBABILITY = "a probability in [0, 1]"

# (config class, field, bad value, error, what the message must say is expected)
BAD_SETTINGS = [
    (ppo.PPOConfig, "n_envs", 0, ValueError, POSITIVE_INT),
    (ppo.PPOConfig, "n_steps", 2.0, TypeError, POSITIVE_INT),
    (gail.GAILConfig, "ppo", dqn.DQNConfig(), TypeError, "a PPOConfig"),
    (gail.GAILConfig, "disc_n_steps", 0, ValueError, POSITIVE_INT),
    (gail.GAILConfig, "disc_n_steps", 16.0, TypeError, POSITIVE_INT),
    (gail.GAILConfig, "disc_grad_steps", -1, ValueError, POSITIVE_INT),
    (gail.GAILConfig, "disc_grad_steps", True, TypeError, POSITIVE_INT),
    (gail.GAILConfig, "disc_learning_rate", -3e-3, ValueError, POSITIVE),
    (gail.GAILConfig, "disc_learning_rate", NAN, ValueError, POSITIVE),
    (gail.GAILConfig, "disc_learning_rate", "3e-3", TypeError, POSITIVE),
    (maxent_irl.MaxEntIRLConfig, "n_steps", 0, ValueError, POSITIVE_INT),
    (maxent_irl.MaxEntIRLConfig, "n_steps", 1.5, TypeError, POSITIVE_INT),
    (maxent_irl.MaxEntIRLConfig, "learning_rate", -0.1, ValueError, POSITIVE),
    (maxent_irl.MaxEntIRLConfig, "learning_rate", INF, ValueError, POSITIVE),
    (maxent_irl.MaxEntIRLConfig, "temperature", 0.0, ValueError, POSITIVE),
    (maxent_irl.MaxEntIRLConfig, "l2", -1e-3, ValueError, NON_NEGATIVE),
    (maxent_irl.MaxEntIRLConfig, "l2", NAN, ValueError, NON_NEGATIVE),
    (bc.MLPBCConfig, "n_steps", 0, ValueError, POSITIVE_INT),
    (bc.MLPBCConfig, "n_steps", 500.0, TypeError, POSITIVE_INT),
    (bc.MLPBCConfig, "learning_rate", -3e-3, ValueError, POSITIVE),
    (bc.MLPBCConfig, "learning_rate", NAN, ValueError, POSITIVE),
    (dpo.DPOConfig, "beta", -0.1, ValueError, POSITIVE),
    (dpo.DPOConfig, "beta", INF, ValueError, POSITIVE),
    (dpo.DPOConfig, "n_steps", 0, ValueError, POSITIVE_INT),
    (dpo.DPOConfig, "learning_rate", 0.0, ValueError, POSITIVE),
    (dpo.DPOConfig, "learning_rate", None, TypeError, POSITIVE),
    (dqn.DQNConfig, "n_envs", 0, ValueError, POSITIVE_INT),
    (dqn.DQNConfig, "batch_size", 64.0, TypeError, POSITIVE_INT),
    (dqn.DQNConfig, "grad_steps_per_update", -2, ValueError, POSITIVE_INT),
    (dqn.DQNConfig, "learning_starts", -1, ValueError, NON_NEGATIVE_INT),
    (dqn.DQNConfig, "target_update_every", 0.5, TypeError, NON_NEGATIVE_INT),
    (dqn.DQNConfig, "double_q", "yes", TypeError, "a bool"),
    (dqn.DQNConfig, "hyper", ppo.PPOHyperparams(), TypeError, "a DQNHyperparams"),
    (dagger.DAggerConfig, "n_rounds", 0, ValueError, POSITIVE_INT),
    (dagger.DAggerConfig, "episodes_per_round", 2.5, TypeError, POSITIVE_INT),
    (dagger.DAggerConfig, "beta_decay", 1.5, ValueError, PROBABILITY),
    (dagger.DAggerConfig, "beta_decay", -0.1, ValueError, PROBABILITY),
    (dagger.DAggerConfig, "beta_decay", NAN, ValueError, PROBABILITY),
    (dagger.DAggerConfig, "time_indexed", "False", TypeError, "a bool"),
    (dagger.DAggerConfig, "default_action", -1, ValueError, NON_NEGATIVE_INT),
    (dagger.DAggerConfig, "default_action", 1.0, TypeError, NON_NEGATIVE_INT),
    (experts.CartPoleExpertConfig, "ppo", gail.GAILConfig(), TypeError, "a PPOConfig"),
    (experts.CartPoleExpertConfig, "min_gymnasium_return", NAN, ValueError, "a finite number"),
    (experts.CartPoleExpertConfig, "min_gymnasium_return", "475", TypeError, "a finite number"),
    (experts.CartPoleExpertConfig, "eval_episodes", 0, ValueError, POSITIVE_INT),
    (experts.CartPoleExpertConfig, "max_attempts", 4.0, TypeError, POSITIVE_INT),
    (pref.RewardModelConfig, "ensemble_size", 0, ValueError, POSITIVE_INT),
    (pref.RewardModelConfig, "n_steps", True, TypeError, POSITIVE_INT),
    (pref.RewardModelConfig, "learning_rate", -0.05, ValueError, POSITIVE),
    (pref.RewardModelConfig, "l2", -1.0, ValueError, NON_NEGATIVE),
]


@pytest.mark.parametrize(
    "cls, field, value, error, expected",
    BAD_SETTINGS,
    ids=[f"{c.__name__}.{f}={v!r}" for c, f, v, _, _ in BAD_SETTINGS],
)
def test_bad_setting_is_refused_by_name(cls, field, value, error, expected):
    with pytest.raises(error, match=rf"^{field} must be {re.escape(expected)}, got ") as caught:
        cls(**{field: value})
    assert repr(value) in str(caught.value) or type(value).__name__ in str(caught.value)  # and says what it got


def test_defaults_named_settings_and_boundary_values_are_accepted():
    """The checks are not stricter than the methods: every edge value here is meaningful."""
    gail.GAILConfig()
    gail.GAILConfig.tabular()
    gail.GAILConfig.cartpole()
    experts.CartPoleExpertConfig(min_gymnasium_return=-1.0)
    maxent_irl.MaxEntIRLConfig(l2=0.0, n_steps=np.int64(3))
    bc.MLPBCConfig(n_steps=1)
    dpo.DPOConfig(beta=1e-6, n_steps=1)
    dqn.DQNConfig(learning_starts=0, target_update_every=0)  # 0: the target network follows every update
    dqn.DQNConfig(hyper=dqn.DQNHyperparams(learning_rate=0.0))  # traced numbers are not checked (zero-lr controls)
    for beta_decay in (0.0, 1.0, 0):
        dagger.DAggerConfig(beta_decay=beta_decay, default_action=None)
    dagger.DAggerConfig(time_indexed=np.bool_(False), default_action=np.int32(1))
    pref.RewardModelConfig(kind="mlp", hidden=(4,), l2=0.0)


def test_reward_model_mlp_widths_are_checked_at_construction():
    with pytest.raises(ValueError, match="hidden"):
        pref.RewardModelConfig(kind="mlp", hidden=(8, 0))
    pref.RewardModelConfig(kind="linear", hidden=(8, 0))  # unused by a linear model


@pytest.fixture(scope="module")
def cliff():
    return toy_mdps.reset_cliff(horizon=3, n_good=2)


def test_functions_check_their_arguments_on_entry(cliff):
    with pytest.raises(TypeError, match="config must be a MLPBCConfig, got DPOConfig"):
        bc.make_train_mlp(dpo.DPOConfig(), 4, 2)
    with pytest.raises(ValueError, match="obs_dim must be a positive int, got 0"):
        bc.make_train_mlp(bc.MLPBCConfig(), 0, 2)
    with pytest.raises(TypeError, match="n_actions must be a positive int, got float 2.0"):
        bc.make_train_mlp(bc.MLPBCConfig(), 4, 2.0)
    counts = np.zeros((3, 2))
    with pytest.raises(TypeError, match="default_action must be a non-negative int"):
        bc.policy_from_counts(counts, True)
    with pytest.raises(ValueError, match=r"default_action must be None or an action in \[0, 2\), got 2"):
        bc.policy_from_counts(counts, 2)
    expert = np.full((cliff.horizon, cliff.n_states, cliff.n_actions), 1.0 / cliff.n_actions)
    with pytest.raises(TypeError, match="config must be a DAggerConfig"):
        dagger.make_train(bc.MLPBCConfig(), cliff, expert)
    with pytest.raises(TypeError, match="config must be a MaxEntIRLConfig"):
        maxent_irl.make_train(dagger.DAggerConfig(), cliff)
    with pytest.raises(TypeError, match="config must be a DPOConfig"):
        dpo.make_train(maxent_irl.MaxEntIRLConfig(), lambda p, x, y: x)
    with pytest.raises(TypeError, match="log_prob_fn must be a function"):
        dpo.make_train(dpo.DPOConfig(), None)
    with pytest.raises(TypeError, match="config must be a GAILConfig"):
        gail.make_gail(ppo.PPOConfig(), None, None)
    ones = np.ones((2, 3), np.float32)
    with pytest.raises(TypeError, match="config must be a RewardModelConfig"):
        pref.fit_reward_model(jax.random.key(0), dpo.DPOConfig(), ones, ones, np.ones(2))


def test_expert_functions_check_their_arguments_before_any_work():
    with pytest.raises(ValueError, match="seed must be a non-negative int, got -1"):
        experts.train_cartpole_expert(seed=-1)
    with pytest.raises(TypeError, match="config must be a CartPoleExpertConfig, got PPOConfig"):
        experts.train_cartpole_expert(seed=0, config=ppo.PPOConfig())
    with pytest.raises(TypeError, match="expert must be a CartPoleExpert"):
        experts.cartpole_demonstrations(None, n_episodes=2)
    policy = lambda params, obs: obs[..., :2]  # noqa: E731
    for name, kwargs in (("n_episodes", {"n_episodes": 0}), ("horizon", {"horizon": 10.0})):
        arguments = {"n_episodes": 2, "horizon": 10, **kwargs}
        with pytest.raises((ValueError, TypeError), match=f"{name} must be a positive int"):
            experts.policy_demonstrations(jax.random.key(0), None, None, policy, None, **arguments)
    with pytest.raises(TypeError, match="deterministic must be a bool"):
        experts.policy_demonstrations(jax.random.key(0), None, None, policy, None, 2, 10, deterministic="no")


def test_validation_helpers_types_and_ranges():
    assert validation.positive_int("n", np.int64(3)) == 3 and type(validation.positive_int("n", np.int64(3))) is int
    assert validation.non_negative_int("n", 0) == 0
    assert validation.probability("p", 1) == 1.0 and validation.probability("p", np.float32(0.25)) == 0.25
    assert validation.positive_float("lr", 1) == 1.0
    for check, value, error in (
        (validation.positive_int, True, TypeError),
        (validation.positive_int, np.bool_(True), TypeError),
        (validation.positive_int, "3", TypeError),
        (validation.non_negative_int, -1, ValueError),
        (validation.positive_float, False, TypeError),
        (validation.positive_float, INF, ValueError),
        (validation.positive_float, 0, ValueError),
        (validation.non_negative_float, -INF, ValueError),
        (validation.probability, NAN, ValueError),
        (validation.probability, 1.0 + 1e-12, ValueError),
        (validation.finite_float, np.array([1.0]), TypeError),
        (validation.boolean, 1, TypeError),
    ):
        with pytest.raises(error, match="^x must be"):
            check("x", value)
