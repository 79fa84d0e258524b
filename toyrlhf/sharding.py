"""Spread the seeds axis of a vmapped sweep over every local device.

A sweep is ``jit(vmap(train))(keys)``: the seeds are independent, so placing
``keys`` split along its first axis over a one-dimensional device mesh lets XLA
run each device's share of the seeds there (GSPMD propagates the split through
the vmapped program; nothing crosses devices until the results are gathered).
With one device, or a seed count the devices do not divide, arrays are left as
they are and the program is the same as before.

``XLA_FLAGS=--xla_force_host_platform_device_count=2`` gives a CPU two host
devices, which is how the tests check that a sharded sweep is bit-identical to
the unsharded one.
"""

from __future__ import annotations

import os

import jax
import numpy as np


def enabled() -> bool:
    """Sharding is on unless ``TOYRLHF_SHARD=0`` (and only matters with more than one device)."""
    return os.environ.get("TOYRLHF_SHARD", "1").lower() not in ("0", "false", "no", "off")


def seed_sharding(n_seeds: int):
    """A ``NamedSharding`` splitting a leading axis of ``n_seeds`` over the local devices, or None.

    None when there is one device, sharding is turned off, or ``n_seeds`` is not a
    multiple of the device count (an uneven split would pad and change the program).
    """
    devices = jax.local_devices()
    if len(devices) < 2 or not enabled() or n_seeds % len(devices):
        return None
    mesh = jax.sharding.Mesh(np.array(devices), ("seeds",))
    return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("seeds"))


def is_seed_keys(x) -> bool:
    """A batch of PRNG keys: a typed key array (or raw ``uint32 [n, 2]`` keys) with a leading seeds axis."""
    if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        return x.ndim >= 1
    return False


def shard_seeds(x):
    """``x`` placed with its leading axis split over the devices when it is a batch of keys; else ``x``."""
    if not is_seed_keys(x):
        return x
    sharding = seed_sharding(x.shape[0])
    return x if sharding is None else jax.device_put(x, sharding)
