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

Starting from BC's data. ``train(key, demos)`` makes round 0 the given
demonstrations (the very episodes BC learns from, any number of them) instead of
``episodes_per_round`` fresh expert roll-outs; rounds ``1 .. n_rounds - 1`` then
query the expert on the learner's own states. DAgger then knows everything BC
knows, and what it adds is exactly its queried labels: the comparison on an equal
footing.

Resources. Labels: one per visited step, the demonstrations' valid steps plus
``(n_rounds - 1) x episodes_per_round x T`` queried ones. Not every label is
information: a label on a state where every action has the same reward and the
same next-state distribution (an absorbing fall state, lava) cannot change
anything. :func:`informative_states` marks the states where it can, and
:class:`LabelCounts` counts the queried labels on each kind, per step.
Environment steps: the learner's rollouts in rounds ``i >= 1`` (round 0 is the
expert's). No dynamics model. The learner must be able to query the expert
interactively: that is the resource BC does not need.
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
    """``[n_rounds, episodes_per_round, T]`` int: the states visited in each round (rounds ``1 ..`` only
    when round 0 was given as demonstrations)."""
    labels: jax.Array
    """The expert's action in each of those states (same shape)."""


class LabelCounts(NamedTuple):
    """Labels of one run, per step ``t`` (sum over ``t < h`` for the first ``h`` steps)."""

    demonstrated: jax.Array
    """``[T]``: labels in round 0 (the demonstrations, or the expert's own roll-outs)."""
    queried_informative: jax.Array
    """``[T]``: queried labels (rounds ``>= 1``) on states where a label can change something."""
    queried_uninformative: jax.Array
    """``[T]``: queried labels on states where every action is equivalent (absorbing states)."""


def informative_states(mdp: tabular.TabularMDP) -> jax.Array:
    """``[S]`` bool: states where some two actions differ in reward or next-state distribution.

    On the others (an absorbing fall state, lava, an exit) the expert's label is
    information about nothing: every action does the same.
    """
    S, A = mdp.n_states, mdp.n_actions
    rows = jnp.broadcast_to(jnp.arange(S)[:, None, None], mdp.next_states.shape)
    cols = jnp.broadcast_to(jnp.arange(A)[None, :, None], mdp.next_states.shape)
    P = jnp.zeros((S, A, S)).at[rows, cols, mdp.next_states].add(mdp.next_probs)
    differs = jnp.any(jnp.abs(P - P[:, :1]) > 1e-12, axis=(1, 2)) | jnp.any(mdp.R != mdp.R[:, :1], axis=1)
    return differs


class DAggerResult(NamedTuple):
    """Output of one DAgger run."""

    policy: jax.Array
    """``[T, S, A]`` (time-indexed) or ``[S, A]``: BC on all the aggregated data."""
    data: DAggerData
    """The aggregated (state, expert label) pairs."""
    returns: jax.Array
    """``[n_rounds]`` (``[n_rounds - 1]`` after given demonstrations): exact return of each rolled-out policy."""
    resources: Resources
    """Expert labels, learner env steps, no dynamics model."""
    labels_per_step: LabelCounts
    """Labels by step and kind (demonstrated, queried on informative states, queried on the others)."""


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

    def train(key: jax.Array, demos=None) -> DAggerResult:
        """DAgger from fresh expert roll-outs (``demos=None``) or with round 0 = ``demos`` (a
        ``Demonstrations`` of ``T`` steps; its valid steps are the labels, states in its observations)."""
        keys = jax.random.split(key, config.n_rounds)
        if demos is None:
            counts, (states, labels, returns) = jax.lax.scan(
                one_round, jnp.zeros(count_shape), (keys, config.betas())
            )
            first = jnp.full(T, n, dtype=jnp.int32)
            queried_states = states[1:]
            n_demonstrated = n * T
        else:
            if demos.horizon != T:
                raise ValueError(f"demos have {demos.horizon} steps, the MDP's horizon is {T}")
            counts0 = bc.action_counts(demos.observations, demos.actions, S, A, config.time_indexed, demos.valid)
            counts, (queried_states, labels, returns) = jax.lax.scan(
                one_round, counts0, (keys[1:], config.betas()[1:])
            )
            states = queried_states
            first = jnp.sum(demos.valid, axis=0).astype(jnp.int32)
            n_demonstrated = jnp.sum(demos.valid)
        policy = bc.policy_from_counts(counts, config.default_action)
        on_informative = informative_states(mdp)[queried_states]  # [n_rounds - 1, n, T]
        per_step = LabelCounts(
            demonstrated=first,
            queried_informative=jnp.sum(on_informative, axis=(0, 1)).astype(jnp.int32),
            queried_uninformative=jnp.sum(~on_informative, axis=(0, 1)).astype(jnp.int32),
        )
        resources = Resources(
            expert_labels=n_demonstrated + (config.n_rounds - 1) * n * T,
            env_steps=(config.n_rounds - 1) * n * T,
            known_dynamics=False,
        )
        return DAggerResult(policy, DAggerData(states, labels), returns, resources, per_step)

    return train
