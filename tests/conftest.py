"""Shared test setup.

The suite gets its own JAX compilation cache in a fresh temporary folder, so it
measures the cold path once (nothing from a user's ~/.cache), while every program
compiled in one test process is loaded, not recompiled, by the notebook kernels,
the pytest-xdist workers and later tests that build the same program: they all
inherit ``TOYRLHF_CACHE_DIR`` from the first process that imported this file.
"""

import os
import tempfile

if "TOYRLHF_TEST_CACHE_DIR" not in os.environ:
    os.environ["TOYRLHF_TEST_CACHE_DIR"] = tempfile.mkdtemp(prefix="toyrlhf-test-jax-cache-")
os.environ["TOYRLHF_CACHE_DIR"] = os.environ["TOYRLHF_TEST_CACHE_DIR"]
os.environ.setdefault("MPLBACKEND", "Agg")
