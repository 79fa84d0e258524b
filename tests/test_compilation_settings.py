"""What importing toyrlhf asks of XLA and of JAX's compilation cache (each in a fresh interpreter)."""

import json
import os
import subprocess
import sys

SHOW = ("import json, os, jax, toyrlhf; print(json.dumps({'flags': os.environ.get('XLA_FLAGS', ''), "
        "'min_s': jax.config.jax_persistent_cache_min_compile_time_secs, "
        "'cache': jax.config.jax_compilation_cache_dir}))")


def _settings(**env) -> dict:
    full = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"} | env
    out = subprocess.run([sys.executable, "-c", SHOW], env=full, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_cpu_install_compiles_at_llvm_level_1_and_caches_every_program(tmp_path):
    settings = _settings(TOYRLHF_CACHE_DIR=str(tmp_path))
    assert "--xla_backend_optimization_level=1" in settings["flags"].split()
    assert settings["min_s"] == 0.0
    assert settings["cache"] == str(tmp_path)


def test_a_users_own_flags_are_kept(tmp_path):
    flags = "--xla_force_host_platform_device_count=2 --xla_backend_optimization_level=3"
    settings = _settings(XLA_FLAGS=flags, TOYRLHF_CACHE_DIR=str(tmp_path))
    assert settings["flags"] == flags
    assert _settings(XLA_FLAGS="--xla_force_host_platform_device_count=2", TOYRLHF_CACHE="0")["flags"].split() == [
        "--xla_force_host_platform_device_count=2", "--xla_backend_optimization_level=1"]
    assert _settings(TOYRLHF_CACHE="0")["cache"] in (None, "")
