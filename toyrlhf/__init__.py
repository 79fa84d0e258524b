"""toyrlhf: small, exact, fast experiments on why RLHF works the way it does.

Importing toyrlhf turns on JAX's float64 support (``jax_enable_x64``): exact
tabular quantities are checked to 1e-9, which float32 cannot hold. Neural
network code in toyrlhf asks for float32 explicitly, so it runs at float32
speed either way. Importing also registers the Gymnasium ids ``toyrlhf/...``.
"""

import jax

jax.config.update("jax_enable_x64", True)

from toyrlhf.tabular import TabularMDP  # noqa: E402  (x64 must be on first)

__version__ = "0.1.0"
__all__ = ["TabularMDP", "__version__"]

from toyrlhf.envs import registration as _registration  # noqa: E402

_registration.register_all()
