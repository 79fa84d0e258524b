"""The small MDPs of the imitation-learning literature, as exact :class:`TabularMDP` objects.

Each constructor documents its designated expert, which is also the MDP's
optimal policy (``solve(mdp).policy``), and the quantity the MDP is known for.

- :func:`trap` (Ross & Bagnell 2010): one mistake costs every remaining step.
- :func:`lane`: a recoverable chain; mistakes can be walked back.
- :func:`reset_cliff` (Rajaraman et al. 2020): states drawn afresh from ρ each
  step; any non-expert action falls off the cliff.
- :func:`standard_imitation`: transitions ignore the action, so errors never compound.
- :func:`baird_counterexample` (Baird 1995): off-policy TD with linear features diverges.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from toyrlhf.tabular import TabularMDP


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return int(value)


def _check_probability(name: str, value) -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {value}")
    return value


def trap(horizon: int, n_actions: int = 2) -> TabularMDP:
    """Trap MDP: state 0 is good, state 1 an absorbing zero-reward trap the expert never visits.

    In state 0 the expert's action 0 stays there and earns reward 1 (reward is paid
    for arriving in the good state); every other action falls into the trap. A
    learner that errs with probability ε in state 0 earns ``(1-ε)^{t+1}`` at step
    ``t``, so its gap is exactly ``T - (1-ε)(1-(1-ε)^T)/ε ≈ εT(T+1)/2`` while εT ≪ 1.
    """
    n_actions = _check_int("n_actions", n_actions, 2)
    P = np.zeros((2, n_actions, 2))
    P[0, 0, 0] = 1.0
    P[0, 1:, 1] = 1.0
    P[1, :, 1] = 1.0
    R = np.zeros((2, n_actions))
    R[0, 0] = 1.0
    return TabularMDP(P, R, np.array([1.0, 0.0]), horizon)


LANE_ACTIONS = ("stay", "left", "right")


def lane(horizon: int, half_width: int = 5, slip: float = 0.0) -> TabularMDP:
    """Lane (recoverable chain): positions ``-K..K`` (state ``s`` is position ``s - K``), start at 0.

    Actions 0 = stay, 1 = left, 2 = right (moves are clipped at the ends); with
    probability ``slip`` the action is replaced by a uniformly random one. Reward
    is paid for arriving at position 0. The expert stays at 0 and walks back to 0
    from anywhere else. A learner that errs at 0 and then keeps following the
    expert loses about one step per mistake (gap ≈ εT); one that does not know
    what to do off the expert's path loses every remaining step (gap ≈ εT²/2).
    """
    K = _check_int("half_width", half_width, 1)
    slip = _check_probability("slip", slip)
    S, A = 2 * K + 1, len(LANE_ACTIONS)
    moves = np.array([0, -1, 1])
    P_intended = np.zeros((S, A, S))
    for s in range(S):
        for a in range(A):
            P_intended[s, a, np.clip(s + moves[a], 0, S - 1)] = 1.0
    P = (1 - slip) * P_intended + slip * P_intended.mean(axis=1, keepdims=True)
    R = P[:, :, K]
    init = np.zeros(S)
    init[K] = 1.0
    return TabularMDP(P, R, init, horizon)


def reset_cliff(
    horizon: int,
    n_good: int = 10,
    n_actions: int = 2,
    rho=None,
    expert_actions=None,
    n_safe: int = 0,
) -> TabularMDP:
    """Reset Cliff (Rajaraman et al. 2020): ``n_good`` good states and one absorbing bad state.

    In good state ``s`` the expert's action ``expert_actions[s]`` earns reward 1 and
    draws the next state afresh from ``ρ`` (also the initial distribution); any
    other action falls into the bad state (index ``n_good``, zero reward forever).
    Defaults: ``ρ(s) ∝ 1/(s+1)`` (non-uniform, so rare states go unseen in small
    demonstration sets) and ``expert_actions[s] = 1 + s mod (A-1)``, so that a
    learner defaulting to action 0 on unseen states always falls.

    ``n_safe`` *safe but unrewarded* actions: in good state ``s`` the ``n_safe``
    actions just below the expert's (``e - 1, ..., e - n_safe``; they must be
    ``>= 1``, so action 0 still falls) also draw the next state from ``ρ`` but earn
    nothing. With ``n_safe >= 1`` the dynamics alone no longer reveal the expert's
    action (every non-falling action leads to the same next-state distribution):
    the instance on which planning in known dynamics is not given the answer.
    """
    n_good = _check_int("n_good", n_good, 1)
    n_actions = _check_int("n_actions", n_actions, 2)
    if rho is None:
        rho = 1.0 / np.arange(1, n_good + 1)
        rho /= rho.sum()
    rho = np.asarray(rho, dtype=np.float64)
    if rho.shape != (n_good,):
        raise ValueError(f"rho must have shape [n_good] = {(n_good,)}, got {rho.shape}")
    if expert_actions is None:
        expert_actions = 1 + np.arange(n_good) % (n_actions - 1)
    expert_actions = np.asarray(expert_actions)
    if expert_actions.shape != (n_good,) or np.any((expert_actions < 0) | (expert_actions >= n_actions)):
        raise ValueError(f"expert_actions must be {n_good} actions in [0, {n_actions}), got {expert_actions}")
    n_safe = _check_int("n_safe", n_safe, 0)
    if n_safe and np.any(expert_actions - n_safe < 1):
        raise ValueError(f"n_safe ({n_safe}) safe actions below the expert's must all be >= 1 (action 0 falls), "
                         f"got expert_actions {expert_actions}")
    bad = n_good
    P = np.zeros((n_good + 1, n_actions, n_good + 1))
    P[:n_good, :, bad] = 1.0
    for a in [expert_actions - k for k in range(n_safe + 1)]:
        P[np.arange(n_good), a, :] = 0.0
        P[np.arange(n_good), a, :n_good] = rho
    P[bad, :, bad] = 1.0
    R = np.zeros((n_good + 1, n_actions))
    R[np.arange(n_good), expert_actions] = 1.0
    terminal = np.zeros(n_good + 1, dtype=bool)
    terminal[bad] = True
    return TabularMDP(P, R, np.append(rho, 0.0), horizon, terminal=terminal)


def standard_imitation(horizon: int, n_states: int = 8, n_actions: int = 3, seed: int = 0) -> TabularMDP:
    """Standard imitation: the next state ignores the action, so errors never compound.

    Transitions are a fixed random row-stochastic matrix (from ``seed``), the same
    for every action; the start is uniform; the expert's action in ``s`` is
    ``s mod A`` and earns reward 1, any other action 0. Any learner's gap is
    exactly ``Σ_t ε_t``: linear in the horizon. The control every compounding
    plot needs.
    """
    n_states = _check_int("n_states", n_states, 1)
    n_actions = _check_int("n_actions", n_actions, 2)
    rng = np.random.default_rng(seed)
    M = rng.dirichlet(np.ones(n_states), size=n_states)
    P = np.repeat(M[:, None, :], n_actions, axis=1)
    R = np.zeros((n_states, n_actions))
    R[np.arange(n_states), np.arange(n_states) % n_actions] = 1.0
    return TabularMDP(P, R, np.full(n_states, 1.0 / n_states), horizon)


class Baird(NamedTuple):
    """Baird's counterexample with its linear features and the two policies."""

    mdp: TabularMDP
    features: np.ndarray
    """``[7, 8]``: upper state i has ``2 e_i + e_8``, the lower state ``e_7 + 2 e_8``."""
    initial_weights: np.ndarray
    """``[8]``: ``(1, 1, 1, 1, 1, 1, 10, 1)``, as in Sutton & Barto (2018), Fig. 11.1."""
    behavior: np.ndarray
    """``[7, 2]``: dashed with probability 6/7, solid with 1/7."""
    target: np.ndarray
    """``[7, 2]``: always solid."""


def baird_counterexample(horizon: int = 1000, discount: float = 0.99) -> Baird:
    """Baird (1995) as in Sutton & Barto (2018, §11.2): seven states, two actions, zero reward.

    Action 0 (dashed) moves to one of the six upper states uniformly; action 1
    (solid) moves to the lower state 6. The true value of every policy is zero,
    yet semi-gradient off-policy TD(0) under the behavior policy diverges.
    """
    S, A = 7, 2
    P = np.zeros((S, A, S))
    P[:, 0, :6] = 1.0 / 6.0
    P[:, 1, 6] = 1.0
    mdp = TabularMDP(P, np.zeros((S, A)), np.full(S, 1.0 / S), horizon, discount)
    features = np.zeros((S, 8))
    features[np.arange(6), np.arange(6)] = 2.0
    features[:6, 7] = 1.0
    features[6, 6], features[6, 7] = 1.0, 2.0
    behavior = np.tile([6.0 / 7.0, 1.0 / 7.0], (S, 1))
    target = np.tile([0.0, 1.0], (S, 1))
    w0 = np.array([1, 1, 1, 1, 1, 1, 10, 1], dtype=np.float64)
    return Baird(mdp, features, w0, behavior, target)


def rajaraman_lower_bound(
    horizon: int, n_states: int, n_demonstrations: int, n_actions: int = 2, pad_states: int = 0
) -> TabularMDP:
    """Rajaraman et al. (2020)'s lower-bound instance for imitation from ``N`` demonstrations.

    A :func:`reset_cliff` with ``|S| = n_states`` states (``|S| - 1`` good ones and the
    absorbing bad state) whose reset distribution is tuned to ``N = n_demonstrations``:
    ``ρ(s) = 1/(N+1)`` on the first ``|S| - 2`` good states (each is missing from ``N``
    expert draws with probability ``(1 - 1/(N+1))^N ≈ 1/e``) and the remaining mass on
    the last good state. The expert's action is 1 in every good state; every other
    action falls. A learner that has seen only ``N`` expert trajectories misses about
    ``(|S|-2)/(eN)`` of ρ's mass at every step, which costs every remaining step:
    time-indexed behavior cloning's expected gap is ``≈ |S| H² / (2eN)`` while
    ``|S| H / N`` is small, their ``|S| H² / N`` lower bound.

    ``pad_states`` appends that many unreachable good states (``ρ = 0``), so that
    instances of different sizes share one array shape (the bad state stays last).
    """
    S = _check_int("n_states", n_states, 2)
    N = _check_int("n_demonstrations", n_demonstrations, 1)
    pad = _check_int("pad_states", pad_states, 0)
    if S - 2 > N + 1:
        raise ValueError(f"n_states - 2 = {S - 2} rare states need n_demonstrations >= {S - 3}, got {N}")
    rho = np.zeros(S - 1 + pad)
    rho[: S - 2] = 1.0 / (N + 1)
    rho[S - 2] = 1.0 - (S - 2) / (N + 1)
    expert_actions = np.ones(S - 1 + pad, dtype=int)
    return reset_cliff(horizon, n_good=S - 1 + pad, n_actions=n_actions, rho=rho, expert_actions=expert_actions)
