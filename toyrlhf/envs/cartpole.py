"""CartPole in JAX, with the dynamics, termination and truncation of Gymnasium's ``CartPole-v1``.

A port of ``gymnasium/envs/classic_control/cartpole.py`` (Barto, Sutton &
Anderson 1983) under the functional API of :mod:`toyrlhf.envs.functional`:

- state ``(x, ẋ, θ, θ̇)``, reset uniformly in ``[-0.05, 0.05]^4``;
- action 0 pushes the cart left, 1 right, with force ``10``;
- explicit Euler integration with ``τ = 0.02`` s, in Gymnasium's order of operations::

      temp = (F + m_p l θ̇² sin θ) / (m_c + m_p)
      θ̈ = (g sin θ − cos θ · temp) / (l (4/3 − m_p cos² θ / (m_c + m_p)))
      ẍ = temp − m_p l θ̈ cos θ / (m_c + m_p)
      x ← x + τ ẋ,  ẋ ← ẋ + τ ẍ,  θ ← θ + τ θ̇,  θ̇ ← θ̇ + τ θ̈

- reward 1 on every step, the terminating one included;
- ``terminated`` when ``|x| > 2.4`` or ``|θ| > 12°``; ``truncated`` when 500 steps
  have been taken (Gymnasium's ``TimeLimit``, which also reports ``truncated``
  when the last step terminates; ``terminated`` then wins: no bootstrapping).

The state is kept in ``CartPole.dtype``: float32 for learning (what Gymnasium
returns as observations), float64 to reproduce Gymnasium's internal float64
state step for step (``tests/test_cartpole.py`` checks agreement to 1e-5 over
whole episodes). Float32 cannot pass that check over long episodes: the
upright pole is unstable, so a rounding difference of 1e-7 grows by about
``e^{4 t}`` over ``t`` seconds, the same reason two float64 runs would drift
apart if their arithmetic were not identical.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp

from toyrlhf.envs.functional import Step


class CartPoleState(NamedTuple):
    """Physical state and step count (each ``[]``)."""

    x: jax.Array
    """Cart position (m)."""
    x_dot: jax.Array
    """Cart velocity (m/s)."""
    theta: jax.Array
    """Pole angle from upright (rad)."""
    theta_dot: jax.Array
    """Pole angular velocity (rad/s)."""
    t: jax.Array
    """int32: steps taken in this episode."""


class CartPoleParams(NamedTuple):
    """Gymnasium's constants (traceable, so a sweep can vary gravity or pole length in one vmap)."""

    gravity: float = 9.8
    masscart: float = 1.0
    masspole: float = 0.1
    length: float = 0.5
    """Half the pole's length."""
    force_mag: float = 10.0
    tau: float = 0.02
    """Seconds per step."""
    theta_threshold: float = 12 * 2 * math.pi / 360
    x_threshold: float = 2.4
    max_steps: int = 500
    """``CartPole-v1``'s time limit."""


@dataclass(frozen=True)
class CartPole:
    """``CartPole-v1`` as a functional environment; ``dtype`` is ``"float32"`` or ``"float64"``."""

    dtype: str = "float32"
    n_actions: int = 2
    observation_shape: tuple[int, ...] = (4,)

    def __post_init__(self):
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")

    def default_params(self) -> CartPoleParams:
        return CartPoleParams()

    def observation(self, state: CartPoleState) -> jax.Array:
        """``[4]``: ``(x, ẋ, θ, θ̇)``."""
        return jnp.stack([state.x, state.x_dot, state.theta, state.theta_dot])

    def state_from_array(self, values) -> CartPoleState:
        """A fresh-episode state from ``[x, ẋ, θ, θ̇]`` (e.g. Gymnasium's ``env.unwrapped.state``)."""
        v = jnp.asarray(values, dtype=self.dtype)
        if v.shape != (4,):
            raise ValueError(f"values must have shape [4] = (x, x_dot, theta, theta_dot), got {v.shape}")
        return CartPoleState(v[0], v[1], v[2], v[3], jnp.zeros((), jnp.int32))

    def reset(self, key: jax.Array, params: CartPoleParams) -> tuple[jax.Array, CartPoleState]:
        state = self.state_from_array(jax.random.uniform(key, (4,), self.dtype, -0.05, 0.05))
        return self.observation(state), state

    def step(self, key: jax.Array, state: CartPoleState, action: jax.Array, params: CartPoleParams) -> Step:
        del key  # deterministic dynamics
        p = jax.tree.map(lambda v: jnp.asarray(v, self.dtype), params._replace(max_steps=0))
        total_mass = p.masspole + p.masscart
        polemass_length = p.masspole * p.length
        force = jnp.where(action == 1, p.force_mag, -p.force_mag)
        costheta, sintheta = jnp.cos(state.theta), jnp.sin(state.theta)
        temp = (force + polemass_length * jnp.square(state.theta_dot) * sintheta) / total_mass
        thetaacc = (p.gravity * sintheta - costheta * temp) / (
            p.length * (4.0 / 3.0 - p.masspole * jnp.square(costheta) / total_mass)
        )
        xacc = temp - polemass_length * thetaacc * costheta / total_mass
        new = CartPoleState(
            x=state.x + p.tau * state.x_dot,
            x_dot=state.x_dot + p.tau * xacc,
            theta=state.theta + p.tau * state.theta_dot,
            theta_dot=state.theta_dot + p.tau * thetaacc,
            t=state.t + 1,
        )
        terminated = (jnp.abs(new.x) > p.x_threshold) | (jnp.abs(new.theta) > p.theta_threshold)
        truncated = new.t >= params.max_steps
        return Step(self.observation(new), new, jnp.ones((), jnp.float32), terminated, truncated)
