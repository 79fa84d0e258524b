"""DAgger (Ross, Gordon & Bagnell 2011): the expert labels the states the *learner* visits.

Behavior cloning trains on the expert's state distribution and is tested on its
own, so its per-step error ε on the expert's states can compound to a gap of
order ``ε T²``. DAgger trains on the learner's own states instead::

    D ← ∅
    for i = 0, 1, ..., n_rounds - 1:
        π_i = β_i π* + (1 - β_i) π̂_i              # mixture: the expert acts with probability β_i
        roll out π_i for ``episodes_per_round`` episodes of T steps
        D ← D ∪ {(t, s_t, a* ~ π*_t(·|s_t))}       # the expert labels every visited state
        π̂_{i+1} = BC(D)                            # tabular BC on the aggregate (toyrlhf.algorithms.bc)

Mixing schedule. ``β_i = beta_decay ** i``, so ``β_0 = 1`` always (round 0 is
plain expert demonstrations, ``π̂_0`` is never used) and ``beta_decay = 0`` gives
``β_i = 1[i = 0]``, the schedule Ross et al. report working best in practice.
``π_i`` is executed as one policy: at each step the expert's action is taken with
probability ``β_i`` and the learner's otherwise.

Guarantee and its limit. DAgger bounds the gap by ``u T ε`` where ``ε`` is the
error on the learner's own states and ``u`` is the recoverability constant
(``tabular.recoverability``): how much one wrong action can cost. When a wrong
action can be undone, ``u = O(1)`` and the gap is linear in T. When it cannot
(Trap, Reset Cliff: ``u = T``) DAgger has nothing to recover with and is no
better than BC; with the same label budget it is usually worse, because the
states it queries after falling off the cliff teach it nothing useful.

Resources. Labels: one per visited step, ``n_rounds x episodes_per_round x T``
(with ``episodes_per_round x n_rounds = N`` this is BC's budget from ``N``
demonstrations). Environment steps: the learner's rollouts in rounds ``i >= 1``
(round 0 is the expert's). No dynamics model. The learner must be able to query
the expert interactively: that is the resource BC does not need.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp

from toyrlhf import tabular
from toyrlhf.algorithms import bc
from toyrlhf.algorithms.resources import Resources
from toyrlhf.validation import boolean, instance, non_negative_int, positive_int, probability


@dataclasses.dataclass(frozen=True)
class DAggerConfig:
    """Settings of tabular DAgger (all static: they set array shapes or Python control flow)."""

    n_rounds: int = 4
    """Rounds of roll-out, label, aggregate; round 0 is the expert's own roll-outs (β_0 = 1)."""
    episodes_per_round: int = 16
    """Episodes rolled out (and labelled) per round."""
    beta_decay: float = 0.0
    """``β_i = beta_decay ** i``: probability that the expert acts in round ``i`` (``0 ** 0 = 1``)."""
    time_indexed: bool = True
    """Learner policy class: one policy per step (True) or one for all steps (False)."""
    default_action: int | None = 0
    """BC's action on states with no data (``None``: uniform). See ``toyrlhf.algorithms.bc``."""

    def __post_init__(self):
        positive_int("n_rounds", self.n_rounds)
        positive_int("episodes_per_round", self.episodes_per_round)
        probability("beta_decay", self.beta_decay)
        boolean("time_indexed", self.time_indexed)
        if self.default_action is not None:
            non_negative_int("default_action", self.default_action)

    def betas(self) -> jax.Array:
        """``[n_rounds]``: the mixing schedule ``β_i``."""
        return jnp.asarray([self.beta_decay**i for i in range(self.n_rounds)], dtype=jnp.float64)


class DAggerData(NamedTuple):
    """The aggregated data set, kept by round."""

    states: jax.Array
    """``[n_rounds, episodes_per_round, T]`` int: the states visited in each round."""
    labels: jax.Array
    """``[n_rounds, episodes_per_round, T]`` int: the expert's action in each of those states."""


class DAggerResult(NamedTuple):
    """Output of one DAgger run."""

    policy: jax.Array
    """``[T, S, A]`` (time-indexed) or ``[S, A]``: BC on all the aggregated data."""
    data: DAggerData
    """The aggregated (state, expert label) pairs."""
    returns: jax.Array
    """``[n_rounds]``: exact return of the policy that was rolled out in each round."""
    resources: Resources
    """Expert labels, learner env steps, no dynamics model."""


def make_train(config: DAggerConfig, mdp: tabular.TabularMDP, expert):
    """``train(key) -> DAggerResult``: DAgger against ``expert`` (``[S, A]`` or ``[T, S, A]``) on ``mdp``.

    Rolls out in ``mdp`` by sampling (``tabular.sample_episodes``); ``mdp``'s
    transition table is only the simulator, never given to the learner.
    """
    instance("config", config, DAggerConfig)
    expert = tabular.check_policy(mdp, expert, "expert")
    S, A, T = mdp.n_states, mdp.n_actions, mdp.horizon
    n = config.episodes_per_round
    count_shape = (T, S, A) if config.time_indexed else (S, A)

    def learner_from(counts):
        return tabular.time_indexed(mdp, bc.policy_from_counts(counts, config.default_action))

    def one_round(counts, inputs):
        key, beta = inputs
        key_roll, key_label = jax.random.split(key)
        executed = beta * expert + (1.0 - beta) * learner_from(counts)
        episodes = tabular.sample_episodes(key_roll, mdp, executed, n)
        steps = jnp.broadcast_to(jnp.arange(T), episodes.states.shape)
        label_probs = expert[steps, episodes.states]  # [n, T, A]
        labels = jax.random.categorical(key_label, jnp.log(label_probs))
        counts = counts + bc.action_counts(episodes.states, labels, S, A, config.time_indexed)
        return counts, (episodes.states, labels, tabular.evaluate(mdp, executed))

    def train(key: jax.Array) -> DAggerResult:
        keys = jax.random.split(key, config.n_rounds)
        counts, (states, labels, returns) = jax.lax.scan(
            one_round, jnp.zeros(count_shape), (keys, config.betas())
        )
        policy = bc.policy_from_counts(counts, config.default_action)
        resources = Resources(
            expert_labels=config.n_rounds * n * T,
            env_steps=(config.n_rounds - 1) * n * T,
            known_dynamics=False,
        )
        return DAggerResult(policy, DAggerData(states, labels), returns, resources)

    return train
