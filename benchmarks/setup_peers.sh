#!/usr/bin/env bash
# Create benchmarks/.peers/venv: toyrlhf plus the peer libraries the speed benchmark compares against.
# The peers (rejax 0.1.3 with gymnax < 1) are never dependencies of toyrlhf; they live only here.
# Usage: bash benchmarks/setup_peers.sh   (then: benchmarks/.peers/venv/bin/python benchmarks/ppo_speed.py)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
venv="$here/.peers/venv"
python="${PYTHON:-python3}"
if [ -x "$root/.venv/bin/python" ] && [ -z "${PYTHON:-}" ]; then
    python="$root/.venv/bin/python"  # same interpreter as the project
fi
# The same jax as the project's environment, so both libraries run on one XLA version side by side.
jax_version="$("$python" -c 'import jax; print(jax.__version__)' 2>/dev/null || echo "")"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
pins=()
if [ -n "$jax_version" ]; then pins+=("jax==$jax_version" "jaxlib==$jax_version"); fi
"$venv/bin/python" -m pip install --quiet "rejax==0.1.3" "gymnax<1" "${pins[@]}"
"$venv/bin/python" -m pip install --quiet -e "$root"
"$venv/bin/python" -c 'import jax, rejax, gymnax, toyrlhf; print("peers venv ready: jax", jax.__version__)'
