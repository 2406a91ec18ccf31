#!/usr/bin/env bash
# Idempotent set-up: installs what the build and the binaries need into a user cache
# directory keyed by version (shared by every clone, CI's fresh clones included), and
# links it into the checkout under .deps/ (git-ignored) where .cargo/config.toml finds it.
#
#   torch==2.11.0  libtorch for tch 0.24.0 (about 4.6 GB with its CUDA libraries)
#   cmake          builds the Arcade Learning Environment bundled in ale-sys
#   ale-py         ships the Atari ROMs (ale_py/roms/*.bin)
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
