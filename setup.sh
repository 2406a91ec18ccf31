#!/usr/bin/env bash
# Idempotent set-up: installs what the build and the binaries need into a user cache
# directory keyed by version (shared by every clone, CI's fresh clones included), and
# links it into the checkout under .deps/ (git-ignored) where .cargo/config.toml finds it.
#
#   torch==2.11.0  libtorch for tch 0.24.0 (about 4.6 GB with its CUDA libraries)
#   cmake          builds the Arcade Learning Environment bundled in ale-sys
#   ale-py         ships the Atari ROMs (ale_py/roms/*.bin)
#   mujoco==3.17.0 libmujoco.so.3.17.0 for mujoco-rs (HumanoidBench tasks), own small venv
#
# Override the cache root with FIRE_RL_CACHE (default: ${XDG_CACHE_HOME:-~/.cache}/fire-rl).
set -euo pipefail

TORCH_VERSION=2.11.0
ALE_PY_VERSION=0.11.2
CMAKE_VERSION=3.31.6

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${FIRE_RL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fire-rl}"
venv="$cache/torch-$TORCH_VERSION"
python="${PYTHON:-python3}"

say() { printf 'setup: %s\n' "$*" >&2; }

if [ ! -f "$venv/.complete" ]; then
    say "installing torch==$TORCH_VERSION into $venv (once; several GB)"
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        "torch==$TORCH_VERSION" "cmake==$CMAKE_VERSION" "ale-py==$ALE_PY_VERSION" numpy
    touch "$venv/.complete"
fi

torch_lib="$("$venv/bin/python" -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"
# Find ale_py without importing it (its __init__ wants gymnasium, which we do not need).
roms="$("$venv/bin/python" -c 'import importlib.util as u, os; print(os.path.join(u.find_spec("ale_py").submodule_search_locations[0], "roms"))')"

# Stable in-checkout names for .cargo/config.toml and the build scripts.
mkdir -p "$here/.deps"
ln -sfn "$venv" "$here/.deps/venv"
ln -sfn "$(dirname "$torch_lib")" "$here/.deps/torch"
ln -sfn "$roms" "$here/.deps/roms"
ln -sfn "$roms" "$cache/roms"  # the default ROM directory of the binaries
say "ready: torch $TORCH_VERSION, ROMs in $roms"

# --- MuJoCo (HumanoidBench H1 tasks) -------------------------------------------------------
# mujoco-rs 7.0.0 loads exactly libmujoco.so.3.17.0, the library in PyPI's mujoco==3.17.0
# wheel; the same venv runs envs/tests/data/record_humanoid.py (the Python fixture generator).
# The crate wants a folder holding a file named exactly libmujoco.so: .deps/mujoco.
MUJOCO_VERSION=3.17.0
mj_venv="$cache/mujoco-$MUJOCO_VERSION"
if [ ! -f "$mj_venv/.complete" ]; then
    say "installing mujoco==$MUJOCO_VERSION into $mj_venv (once; about 30 MB)"
    rm -rf "$mj_venv"
    "$python" -m venv "$mj_venv"
    "$mj_venv/bin/pip" install --quiet --disable-pip-version-check "mujoco==$MUJOCO_VERSION" numpy
    touch "$mj_venv/.complete"
fi
mj_pkg="$("$mj_venv/bin/python" -c 'import importlib.util as u; print(u.find_spec("mujoco").submodule_search_locations[0])')"
mkdir -p "$mj_venv/mujoco-lib"
ln -sfn "$mj_pkg/libmujoco.so.$MUJOCO_VERSION" "$mj_venv/mujoco-lib/libmujoco.so"
ln -sfn "$mj_pkg/libmujoco.so.$MUJOCO_VERSION" "$mj_venv/mujoco-lib/libmujoco.so.$MUJOCO_VERSION"
ln -sfn "$mj_venv/mujoco-lib" "$here/.deps/mujoco"
ln -sfn "$mj_venv" "$here/.deps/mujoco-venv"
say "ready: mujoco $MUJOCO_VERSION in $mj_venv/mujoco-lib"
# --- end MuJoCo ------------------------------------------------------------------------------
