"""Exact finite-horizon tabular MDPs: the ground truth every experiment checks against.

Notation (used in every docstring below): ``S`` states, ``A`` actions, horizon
``T``, discount ``γ``. Transitions ``P[s, a, s']``, expected reward ``R[s, a]``,
initial distribution ``init[s]``. The return of a policy π is::

    J(π) = E[ Σ_{t=0}^{T-1} γ^t R(s_t, a_t) ],   s_0 ~ init,  a_t ~ π_t(·|s_t).

A policy is an array of action probabilities, either stationary ``[S, A]`` or
time-indexed ``[T, S, A]`` (``π[t]`` is used at step ``t``). Every function here
is a pure function of arrays, so it runs under ``jax.jit`` and ``jax.vmap``
(vmap over policies, over MDPs that share a shape, over keys).

Transitions are stored sparsely, as up to ``K`` successors per (s, a):
``next_states[s, a, k]`` with probability ``next_probs[s, a, k]``. A 50x50
gridworld then needs 2,500 x 4 x 5 numbers instead of 2,500 x 4 x 2,500, and a
Bellman backup is a gather, not a dense matrix product. ``mdp.P`` rebuilds the
dense tensor when one is wanted.

Terminal states are absorbing with zero reward, so the finite-horizon return
above is exactly the episodic return; ``terminal`` only tells an environment
wrapper when to report ``terminated``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

PROB_ATOL = 1e-6
"""Rows of ``P``, ``init`` and policies must sum to one within this tolerance."""


def _is_concrete(*arrays) -> bool:
    return not any(isinstance(x, jax.core.Tracer) for x in arrays)


def _check_finite(name: str, x) -> None:
    if not np.all(np.isfinite(np.asarray(x))):
        raise ValueError(f"{name} contains NaN or inf values")


def _check_distribution(name: str, p, axis: int = -1) -> None:
    p = np.asarray(p)
    _check_finite(name, p)
    if np.any(p < -PROB_ATOL):
        where = np.argwhere(p < -PROB_ATOL)[0].tolist()
        raise ValueError(f"{name} has a negative probability {p[tuple(where)]:.3g} at index {where}")
    sums = p.sum(axis=axis)
    bad = np.abs(sums - 1.0) > PROB_ATOL
    if np.any(bad):
        where = np.argwhere(np.atleast_1d(bad))[0].tolist()
        value = np.atleast_1d(sums)[tuple(where)]
        raise ValueError(
            f"{name} must sum to one along its last axis (tolerance {PROB_ATOL}); "
            f"the row at index {where} sums to {value:.9g}"
        )


def _dense_to_successors(P: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Turn a dense ``P[s, a, s']`` into ``K`` successor indices and probabilities per (s, a)."""
    nonzero = P > 0
    K = max(int(nonzero.sum(-1).max()), 1)
    # A stable argsort of ~nonzero lists the successors first, in state order.
    order = np.argsort(~nonzero, axis=-1, kind="stable")[..., :K]
    return order.astype(np.int32), np.take_along_axis(P, order, axis=-1)


@jax.tree_util.register_pytree_node_class
class TabularMDP:
    """A finite-horizon MDP with exact transition and reward tables.

    Args:
        P: transitions ``[S, A, S]``; each row ``P[s, a]`` sums to one.
        R: expected reward ``[S, A]`` for taking ``a`` in ``s``.
        init: initial state distribution ``[S]``.
        horizon: number of decisions ``T >= 1`` (a Python int: it sets array shapes).
        discount: ``γ`` in ``(0, 1]``; may be a traced value.
        terminal: optional ``[S]`` booleans marking terminal states, which must be
            absorbing with zero reward (checked).

    Values are checked when they are concrete arrays; under ``jit`` only shapes
    are checked. Use :meth:`from_successors` to build a sparse MDP directly.
    """

    def __init__(self, P, R, init, horizon, discount=1.0, terminal=None):
        P = jnp.asarray(P, dtype=jnp.float64)
        if P.ndim != 3 or P.shape[0] != P.shape[2]:
            raise ValueError(f"P must have shape [S, A, S], got {P.shape}")
        S, A = P.shape[:2]
        if _is_concrete(P):
            _check_distribution("P", P)
            next_states, next_probs = _dense_to_successors(np.asarray(P))
        else:  # structure unknown under tracing: keep every state as a successor
            next_states = jnp.broadcast_to(jnp.arange(S, dtype=jnp.int32), (S, A, S))
            next_probs = P
        self._set(next_states, next_probs, R, init, horizon, discount, terminal)

    @classmethod
    def from_successors(cls, next_states, next_probs, R, init, horizon, discount=1.0, terminal=None):
        """Build from sparse transitions: ``next_states[s, a, k]`` (int) with ``next_probs[s, a, k]``."""
        mdp = object.__new__(cls)
        mdp._set(next_states, next_probs, R, init, horizon, discount, terminal)
        return mdp

    def _set(self, next_states, next_probs, R, init, horizon, discount, terminal):
        next_states = jnp.asarray(next_states)
        next_probs = jnp.asarray(next_probs, dtype=jnp.float64)
        R = jnp.asarray(R, dtype=jnp.float64)
        init = jnp.asarray(init, dtype=jnp.float64)
        discount = jnp.asarray(discount, dtype=jnp.float64)
        if not jnp.issubdtype(next_states.dtype, jnp.integer):
            raise TypeError(f"next_states must hold integer state indices, got dtype {next_states.dtype}")
        next_states = next_states.astype(jnp.int32)
        if next_states.ndim != 3 or next_states.shape != next_probs.shape:
            raise ValueError(
                f"next_states and next_probs must both have shape [S, A, K], got "
                f"{next_states.shape} and {next_probs.shape}"
            )
        S, A, _ = next_states.shape
        if R.shape != (S, A):
            raise ValueError(f"R must have shape [S, A] = {(S, A)}, got {R.shape}")
        if init.shape != (S,):
            raise ValueError(f"init must have shape [S] = {(S,)}, got {init.shape}")
        if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)):
            raise TypeError(f"horizon must be a Python int (it sets array shapes), got {type(horizon).__name__}")
        if horizon < 1:
            raise ValueError(f"horizon must be at least 1, got {horizon}")
        if discount.shape != ():
            raise ValueError(f"discount must be a scalar, got shape {discount.shape}")
        terminal = jnp.zeros(S, dtype=bool) if terminal is None else jnp.asarray(terminal, dtype=bool)
        if terminal.shape != (S,):
            raise ValueError(f"terminal must have shape [S] = {(S,)}, got {terminal.shape}")
        if _is_concrete(next_states, next_probs, R, init, discount, terminal):
            ns = np.asarray(next_states)
            if ns.size and (ns.min() < 0 or ns.max() >= S):
                raise ValueError(f"next_states must lie in [0, {S}), found values in [{ns.min()}, {ns.max()}]")
            _check_distribution("P", next_probs)
            _check_distribution("init", init)
            _check_finite("R", R)
            d = float(discount)
            if not 0.0 < d <= 1.0:
                raise ValueError(f"discount must lie in (0, 1], got {d}")
            self._check_terminal(np.asarray(terminal), ns, np.asarray(next_probs), np.asarray(R))
        self.next_states, self.next_probs = next_states, next_probs
        self.R, self.init, self.discount, self.terminal = R, init, discount, terminal
        self.horizon = int(horizon)

    @staticmethod
    def _check_terminal(terminal, next_states, next_probs, R):
        for s in np.flatnonzero(terminal):
            stay = (next_probs[s] * (next_states[s] == s)).sum(-1)
            if np.any(np.abs(stay - 1.0) > PROB_ATOL) or np.any(R[s] != 0):
                raise ValueError(
                    f"terminal state {s} must be absorbing (P[{s}, a, {s}] = 1 for every a) with zero reward"
                )

    # -- pytree protocol: horizon is static, everything else may be traced ----------------
    def tree_flatten(self):
        children = (self.next_states, self.next_probs, self.R, self.init, self.discount, self.terminal)
        return children, self.horizon

    @classmethod
    def tree_unflatten(cls, horizon, children):
        mdp = object.__new__(cls)  # no validation: children may be tracers or placeholders
        (mdp.next_states, mdp.next_probs, mdp.R, mdp.init, mdp.discount, mdp.terminal) = children
        mdp.horizon = horizon
        return mdp

    # -- conveniences ---------------------------------------------------------------------
    @property
    def n_states(self) -> int:
        return self.R.shape[0]

    @property
    def n_actions(self) -> int:
        return self.R.shape[1]

    @property
    def P(self) -> jax.Array:
        """The dense transition tensor ``[S, A, S]``."""
        S, A, K = self.next_states.shape
        s = jnp.arange(S)[:, None, None]
        a = jnp.arange(A)[None, :, None]
        return jnp.zeros((S, A, S)).at[s, a, self.next_states].add(self.next_probs)

    def with_horizon(self, horizon: int) -> TabularMDP:
        """The same MDP with another horizon."""
        return TabularMDP.from_successors(
            self.next_states, self.next_probs, self.R, self.init, horizon, self.discount, self.terminal
        )

    def expected_next(self, v: jax.Array) -> jax.Array:
        """``Σ_{s'} P[s, a, s'] v[s']`` for every (s, a): shape ``[S, A]`` from ``v`` of shape ``[S]``."""
        return jnp.sum(self.next_probs * v[self.next_states], axis=-1)

    def push_forward(self, weights: jax.Array) -> jax.Array:
        """Next-state distribution ``Σ_{s, a} weights[s, a] P[s, a, s']`` from ``weights`` ``[S, A]``."""
        mass = weights[..., None] * self.next_probs
        return jnp.zeros(self.n_states).at[self.next_states.ravel()].add(mass.ravel())

    def __repr__(self) -> str:
        K = self.next_states.shape[-1]
        return (
            f"TabularMDP(S={self.n_states}, A={self.n_actions}, horizon={self.horizon}, "
            f"successors per (s, a) <= {K})"
        )

    @classmethod
    def from_gymnasium(cls, env, horizon: int, init=None, discount: float = 1.0) -> TabularMDP:
        """Exact conversion of a Gymnasium environment that exposes ``env.unwrapped.P``.

        ``P[s][a]`` is a list of ``(probability, next_state, reward, terminated)``
        (FrozenLake, CliffWalking and Taxi provide it). Every transition with
        ``terminated=True`` leads to one extra absorbing, zero-reward state with
        index ``S`` (marked terminal), so a terminating step keeps its reward and
        the episode's return is unchanged. The initial distribution is taken from
        ``env.unwrapped.initial_state_distrib`` unless ``init`` is given.
        """
        table = getattr(env.unwrapped, "P", None)
        if not isinstance(table, dict):
            raise TypeError(
                f"env must expose its transition table as env.unwrapped.P (a dict), "
                f"{type(env.unwrapped).__name__} does not"
            )
        S, A = env.observation_space.n, env.action_space.n
        absorbing = S
        outcomes = [[table[s][a] for a in range(A)] for s in range(S)]
        K = max(len(o) for row in outcomes for o in row)
        next_states = np.full((S + 1, A, K), absorbing, dtype=np.int32)
        next_probs = np.zeros((S + 1, A, K))
        next_probs[absorbing, :, 0] = 1.0
        R = np.zeros((S + 1, A))
        for s in range(S):
            for a in range(A):
                for k, (p, s_next, r, terminated) in enumerate(outcomes[s][a]):
                    next_states[s, a, k] = absorbing if terminated else s_next
                    next_probs[s, a, k] = p
                    R[s, a] += p * r
        if init is None:
            init = getattr(env.unwrapped, "initial_state_distrib", None)
            if init is None:
                raise ValueError("env has no initial_state_distrib: pass init=[S] explicitly")
        init = np.append(np.asarray(init, dtype=np.float64), 0.0)
        terminal = np.zeros(S + 1, dtype=bool)
        terminal[absorbing] = True
        return cls.from_successors(next_states, next_probs, R, init, horizon, discount, terminal)


# ------------------------------------------------------------------------------------------
# Policies
# ------------------------------------------------------------------------------------------


def time_indexed(mdp: TabularMDP, policy) -> jax.Array:
    """A policy as ``[T, S, A]``: a stationary ``[S, A]`` policy is repeated over time."""
    policy = jnp.asarray(policy)
    S, A, T = mdp.n_states, mdp.n_actions, mdp.horizon
    if policy.shape == (S, A):
        return jnp.broadcast_to(policy, (T, S, A))
    if policy.shape == (T, S, A):
        return policy
    raise ValueError(f"policy must have shape [S, A] = {(S, A)} or [T, S, A] = {(T, S, A)}, got {policy.shape}")


def check_policy(mdp: TabularMDP, policy, name: str = "policy") -> jax.Array:
    """Shape check always, probability check when concrete; returns the ``[T, S, A]`` form."""
    policy = time_indexed(mdp, policy)
    if _is_concrete(policy):
        _check_distribution(name, policy)
    return policy


def greedy(q: jax.Array) -> jax.Array:
    """One-hot policy on the first maximising action of ``q[..., A]``."""
    return jax.nn.one_hot(jnp.argmax(q, axis=-1), q.shape[-1], dtype=jnp.float64)


# ------------------------------------------------------------------------------------------
# Solvers
# ------------------------------------------------------------------------------------------


class Solution(NamedTuple):
    """Optimal (or soft-optimal) time-indexed quantities."""

    Q: jax.Array
    """``[T, S, A]``: ``Q_t(s, a) = R(s, a) + γ Σ_{s'} P(s'|s, a) V_{t+1}(s')``, ``V_T = 0``."""
    V: jax.Array
    """``[T, S]``: ``max_a Q_t`` (hard) or ``τ log Σ_a exp(Q_t / τ)`` (soft)."""
    policy: jax.Array
    """``[T, S, A]``: greedy one-hot (hard, ties to the first action) or ``softmax(Q_t / τ)`` (soft)."""


def solve(mdp: TabularMDP, temperature=None) -> Solution:
    """Backward induction for the optimal time-indexed policy.

    ``temperature=None`` gives the ordinary optimum. A temperature ``τ > 0`` gives
    the entropy-regularised (MaxEnt / soft) optimum, which maximises
    ``E[Σ_t γ^t (R(s_t, a_t) + τ H(π_t(·|s_t)))]``; its value is ``V_t = τ logsumexp(Q_t / τ)``
    and its policy ``softmax(Q_t / τ)``. As ``τ → 0`` it tends to the hard optimum.
    """
    if temperature is not None and _is_concrete(temperature) and not float(temperature) > 0:
        raise ValueError(f"temperature must be positive (or None for the hard optimum), got {temperature}")

    def backup(v_next, _):
        q = mdp.R + mdp.discount * mdp.expected_next(v_next)
        if temperature is None:
            pi = greedy(q)
            v = jnp.max(q, axis=-1)
        else:
            pi = jax.nn.softmax(q / temperature, axis=-1)
            v = temperature * jax.nn.logsumexp(q / temperature, axis=-1)
        return v, (q, v, pi)

    _, (Q, V, policy) = jax.lax.scan(backup, jnp.zeros(mdp.n_states), length=mdp.horizon, reverse=True)
    return Solution(Q, V, policy)


def policy_values(mdp: TabularMDP, policy) -> tuple[jax.Array, jax.Array]:
    """Exact ``(Q^π [T, S, A], V^π [T, S])`` of a policy, by backward induction."""
    policy = check_policy(mdp, policy)

    def backup(v_next, pi_t):
        q = mdp.R + mdp.discount * mdp.expected_next(v_next)
        v = jnp.sum(pi_t * q, axis=-1)
        return v, (q, v)

    _, (Q, V) = jax.lax.scan(backup, jnp.zeros(mdp.n_states), policy, reverse=True)
    return Q, V


def evaluate(mdp: TabularMDP, policy) -> jax.Array:
    """Exact expected return ``J(π)`` (a scalar)."""
    _, V = policy_values(mdp, policy)
    return mdp.init @ V[0]


def visitation(mdp: TabularMDP, policy) -> jax.Array:
    """State distributions ``d_t(s) = Pr(s_t = s)``, shape ``[T, S]``, with ``d_0 = init``."""
    policy = check_policy(mdp, policy)

    def step(d_t, pi_t):
        return mdp.push_forward(d_t[:, None] * pi_t), d_t

    _, d = jax.lax.scan(step, mdp.init, policy)
    return d


def occupancy(mdp: TabularMDP, policy) -> jax.Array:
    """Time-indexed state-action occupancy ``ρ_t(s, a) = d_t(s) π_t(a|s)``, shape ``[T, S, A]``.

    Sum over ``t`` (weighted by ``γ^t`` if wanted) for the stationary occupancy measure.
    """
    policy = check_policy(mdp, policy)
    return visitation(mdp, policy)[..., None] * policy


def reward_per_step(mdp: TabularMDP, policy) -> jax.Array:
    """Expected undiscounted reward at each step, ``r̄_t = Σ_{s,a} ρ_t(s, a) R(s, a)``, shape ``[T]``.

    ``J = Σ_t γ^t r̄_t``. When π's behaviour at step ``t`` does not depend on the
    horizon (a stationary policy, or one indexed by time from the start), the
    return for every shorter horizon ``T' <= T`` is the partial sum over ``t < T'``:
    a whole sweep over horizons from one pass.
    """
    return jnp.einsum("tsa,sa->t", occupancy(mdp, policy), mdp.R)


def kl_divergence(mdp: TabularMDP, p, q) -> jax.Array:
    """Trajectory KL ``KL(P_p || P_q) = Σ_t E_{s ~ d^p_t}[ KL(p_t(·|s) || q_t(·|s)) ]`` (a scalar).

    The dynamics cancel, so only the per-state action KLs on p's own states count.
    Infinite if ``q`` gives zero probability to an action ``p`` takes on a visited state.
    """
    p, q = check_policy(mdp, p, "p"), check_policy(mdp, q, "q")
    log_ratio = jnp.where(p > 0, jnp.log(jnp.where(p > 0, p, 1.0)) - jnp.log(q), 0.0)
    per_state = jnp.sum(jnp.where(p > 0, p * log_ratio, 0.0), axis=-1)
    return jnp.sum(visitation(mdp, p) * per_state)


# ------------------------------------------------------------------------------------------
# The compounding-error quantities (Ross & Bagnell 2010; Ross, Gordon & Bagnell 2011)
# ------------------------------------------------------------------------------------------


def disagreement(mdp: TabularMDP, learner, expert, states_of) -> jax.Array:
    """Per-step error ``ε_t = E_{s ~ d^{states_of}_t}[ TV(learner_t(·|s), expert_t(·|s)) ]``, shape ``[T]``.

    With a deterministic expert the total variation is the probability that the
    learner's action differs from the expert's. Pass ``states_of=expert`` for
    behavior cloning's error (on the expert's states) and ``states_of=learner``
    for the error on the learner's own states (what DAgger controls).
    """
    learner, expert = check_policy(mdp, learner, "learner"), check_policy(mdp, expert, "expert")
    tv = 0.5 * jnp.sum(jnp.abs(learner - expert), axis=-1)
    return jnp.sum(visitation(mdp, states_of) * tv, axis=-1)


def performance_difference(mdp: TabularMDP, learner, expert) -> jax.Array:
    """Per-step terms of the performance difference lemma, shape ``[T]``.

    ``J(expert) - J(learner) = Σ_t γ^t E_{s ~ d^learner_t}[ V^E_t(s) - Σ_a learner_t(a|s) Q^E_t(s, a) ]``:
    the expert's disadvantage of the learner's actions, on the learner's own states.
    Entry ``t`` is the ``t``-th term of the sum (γ^t included).
    """
    learner = check_policy(mdp, learner, "learner")
    Q_E, V_E = policy_values(mdp, expert)
    disadvantage = V_E - jnp.sum(learner * Q_E, axis=-1)  # [T, S]
    discounts = mdp.discount ** jnp.arange(mdp.horizon)
    return discounts * jnp.sum(visitation(mdp, learner) * disadvantage, axis=-1)


def recoverability(mdp: TabularMDP, expert=None) -> jax.Array:
    """The recoverability constant ``u = max_{t, s, a} (V_t(s) - Q_t(s, a))``.

    Uses the optimal ``Q*`` by default, or the given expert's ``Q^E``. Ross et al.
    (2011) bound DAgger's gap by ``u T ε``: ``u`` is how much one wrong action can
    cost, at most ``T`` (Trap) and ``O(1)`` when mistakes can be undone (Lane).
    """
    if expert is None:
        sol = solve(mdp)
        Q, V = sol.Q, sol.V
    else:
        Q, V = policy_values(mdp, expert)
    return jnp.max(V[..., None] - Q)


# ------------------------------------------------------------------------------------------
# Sampling
# ------------------------------------------------------------------------------------------


class Episodes(NamedTuple):
    """A batch of sampled episodes of length ``T``."""

    states: jax.Array
    """``[N, T]`` int: ``s_t``."""
    actions: jax.Array
    """``[N, T]`` int: ``a_t``."""
    rewards: jax.Array
    """``[N, T]``: ``R(s_t, a_t)``."""

    def returns(self, discount=1.0) -> jax.Array:
        """``[N]``: ``Σ_t γ^t r_t`` per episode."""
        T = self.rewards.shape[-1]
        return self.rewards @ (jnp.asarray(discount, dtype=self.rewards.dtype) ** jnp.arange(T))


def sample_episodes(key: jax.Array, mdp: TabularMDP, policy, n_episodes: int) -> Episodes:
    """Sample ``n_episodes`` episodes of length ``T`` from ``policy`` (jit-able; ``n_episodes`` static)."""
    policy = check_policy(mdp, policy)
    logits_init = jnp.log(mdp.init)
    log_policy = jnp.log(policy)
    log_next = jnp.log(mdp.next_probs)

    def one_episode(key):
        key_init, key_steps = jax.random.split(key)
        s0 = jax.random.categorical(key_init, logits_init).astype(mdp.next_states.dtype)

        def step(s, inputs):
            key, log_pi_t = inputs
            key_a, key_s = jax.random.split(key)
            a = jax.random.categorical(key_a, log_pi_t[s])
            k = jax.random.categorical(key_s, log_next[s, a])
            return mdp.next_states[s, a, k], (s, a, mdp.R[s, a])

        keys = jax.random.split(key_steps, mdp.horizon)
        _, (s, a, r) = jax.lax.scan(step, s0, (keys, log_policy))
        return Episodes(s, a, r)

    return jax.vmap(one_episode)(jax.random.split(key, n_episodes))
