#!/usr/bin/env bash
# Create benchmarks/.peers/venv: toyrlhf plus the peer libraries the speed benchmark compares against.
# The peers (rejax 0.1.3 with gymnax < 1) are never dependencies of toyrlhf; they live only here.
# Usage: bash benchmarks/setup_peers.sh   (then: benchmarks/.peers/venv/bin/python benchmarks/ppo_speed.py)
#        bash benchmarks/setup_peers.sh imitation   (only benchmarks/.peers/imitation-venv, for gail_speed.py)
# The imitation library 1.0.1 (GAIL reference of benchmarks/gail_speed.py) pins gymnasium ~= 0.29 and
# stable-baselines3 ~= 2.2.1, which conflict with toyrlhf's gymnasium 1.x, so it gets a venv of its own
# and gail_speed.py runs it in a subprocess; toyrlhf is not installed there.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
venv="$here/.peers/venv"
python="${PYTHON:-python3}"
if [ -x "$root/.venv/bin/python" ] && [ -z "${PYTHON:-}" ]; then
    python="$root/.venv/bin/python"  # same interpreter as the project
fi
imitation_venv="$here/.peers/imitation-venv"
setup_imitation() {
    "$python" -m venv "$imitation_venv"
    "$imitation_venv/bin/python" -m pip install --quiet --upgrade pip
    # torch from the default package index only (no second index: not every machine reaches one).
    # On Linux x86_64 plain "torch" is a CUDA build of several GB; it runs on the CPU all the same.
    # TORCH_REQUIREMENT picks another (a CPU wheel a machine already holds, say "torch==2.13.0").
    "$imitation_venv/bin/python" -m pip install --quiet "${TORCH_REQUIREMENT:-torch}"
    "$imitation_venv/bin/python" -m pip install --quiet "imitation==1.0.1"
    "$imitation_venv/bin/python" -c 'import imitation, stable_baselines3, gymnasium, torch; print("imitation venv ready:",
        imitation.__version__, "sb3", stable_baselines3.__version__, "gymnasium", gymnasium.__version__, "torch", torch.__version__)'
}
if [ "${1:-}" = "imitation" ]; then setup_imitation; exit 0; fi
# The same jax as the project's environment, so both libraries run on one XLA version side by side.
jax_version="$("$python" -c 'import jax; print(jax.__version__)' 2>/dev/null || echo "")"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
pins=()
if [ -n "$jax_version" ]; then pins+=("jax==$jax_version" "jaxlib==$jax_version"); fi
"$venv/bin/python" -m pip install --quiet "rejax==0.1.3" "gymnax<1" "${pins[@]}"
"$venv/bin/python" -m pip install --quiet -e "$root"
"$venv/bin/python" -c 'import jax, rejax, gymnax, toyrlhf; print("peers venv ready: jax", jax.__version__)'
setup_imitation
