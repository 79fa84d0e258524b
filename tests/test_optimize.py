"""The shared full-batch loop: plain gradient descent on a quadratic has a closed form."""

import jax.numpy as jnp
import numpy as np
import optax

from toyrlhf.optimize import minimize


def test_gradient_descent_on_a_quadratic_matches_the_closed_form():
    # L(x) = 0.5 * a * (x - c)^2; SGD with step η: x_k - c = (1 - η a)^k (x_0 - c).
    a, c, eta, x0, n = 2.0, 3.0, 0.1, 0.0, 10
    params, losses = minimize(lambda x: 0.5 * a * (x - c) ** 2, jnp.asarray(x0), optax.sgd(eta), n)
    k = np.arange(n)
    expected_losses = 0.5 * a * ((1 - eta * a) ** k * (x0 - c)) ** 2
    np.testing.assert_allclose(losses, expected_losses, rtol=1e-12)
    np.testing.assert_allclose(params, c + (1 - eta * a) ** n * (x0 - c), rtol=1e-12)


def test_works_on_pytrees():
    params = {"w": jnp.ones(3), "b": jnp.asarray(5.0)}
    fitted, losses = minimize(lambda p: jnp.sum(p["w"] ** 2) + p["b"] ** 2, params, optax.adam(0.5), 200)
    assert losses[0] == 28.0
    assert float(losses[-1]) < 1e-2 and abs(float(fitted["b"])) < 0.1
