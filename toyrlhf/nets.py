"""Policy and value networks as plain parameter pytrees (float32), with no framework.

A network is a frozen dataclass describing its shape (hashable, so it can sit in
a static config) with two pure functions:

    params = net.init(key, in_dim, out_dim, scale)   # a pytree of float32 arrays
    y = net.apply(params, x)                         # x [..., in_dim] -> y [..., out_dim]

- :class:`Table`: a logits (or value) table ``W[in_dim, out_dim]`` applied as
  ``x @ W``. With one-hot observations this is exactly a lookup ``W[s]``: the
  tabular policy ``π(a|s) = softmax(W[s])_a`` of the exact-evaluation world.
  Initialised to zeros (the uniform policy, a zero value).
- :class:`MLP`: dense layers with tanh (default) activations, weights drawn
  ``N(0, gain² / fan_in)`` with gain √2 in hidden layers and ``scale`` on the
  output layer (0.01 for a policy head, 1 for a value head, the gains of PPO's
  reference code). PPO's reference code uses orthogonal matrices of the same
  gains; their rows have the same expected norm, and a Gaussian needs no QR
  decomposition, which roughly halves the compile time of a small training run.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from toyrlhf.validation import positive_int

ACTIVATIONS = {"tanh": jnp.tanh, "relu": jax.nn.relu}


def _check_dims(in_dim: int, out_dim: int) -> None:
    positive_int("in_dim", in_dim)
    positive_int("out_dim", out_dim)


@dataclass(frozen=True)
class Table:
    """A table ``W[in_dim, out_dim]``, zero-initialised; ``apply(W, x) = x @ W``, or the row ``W[x]`` for int ``x``.

    Integer inputs are state indices (``tabular_env(mdp, "index")``): the same
    function as one-hot inputs, without the ``in_dim``-wide vectors.
    """

    def init(self, key: jax.Array, in_dim: int, out_dim: int, scale: float = 1.0) -> jax.Array:
        del key, scale  # zeros: the uniform policy and a zero value, whatever the seed
        _check_dims(in_dim, out_dim)
        return jnp.zeros((in_dim, out_dim), jnp.float32)

    def apply(self, params: jax.Array, x: jax.Array) -> jax.Array:
        if jnp.issubdtype(x.dtype, jnp.integer):
            return params[x]
        return x @ params


@dataclass(frozen=True)
class MLP:
    """A multilayer perceptron; params are a tuple of ``{"w": [in, out], "b": [out]}`` layers."""

    hidden: tuple[int, ...] = (64, 64)
    """Widths of the hidden layers."""
    activation: str = "tanh"
    """``"tanh"`` or ``"relu"``."""

    def __post_init__(self):
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")
        if not all(isinstance(h, int) and h > 0 for h in self.hidden):
            raise ValueError(f"hidden must be a tuple of positive ints, got {self.hidden!r}")

    def init(self, key: jax.Array, in_dim: int, out_dim: int, scale: float = 1.0) -> tuple[dict, ...]:
        _check_dims(in_dim, out_dim)
        sizes = (in_dim, *self.hidden, out_dim)
        gains = [jnp.sqrt(2.0)] * len(self.hidden) + [scale]
        # One Gaussian draw for all layers, cut into weight matrices (each PRNG call costs compile time).
        noise = jax.random.normal(key, (sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True)),), jnp.float32)
        layers, offset = [], 0
        for n_in, n_out, gain in zip(sizes[:-1], sizes[1:], gains, strict=True):
            w = noise[offset : offset + n_in * n_out].reshape(n_in, n_out)
            layers.append({"w": gain / jnp.sqrt(n_in) * w, "b": jnp.zeros((n_out,), jnp.float32)})
            offset += n_in * n_out
        return tuple(layers)

    def apply(self, params: tuple[dict, ...], x: jax.Array) -> jax.Array:
        activation = ACTIVATIONS[self.activation]
        for layer in params[:-1]:
            x = activation(x @ layer["w"] + layer["b"])
        return x @ params[-1]["w"] + params[-1]["b"]


Network = Table | MLP
"""Either kind of network; both have ``init`` and ``apply``."""
