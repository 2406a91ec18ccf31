#!/usr/bin/env bash
# Idempotent set-up: installs what the build and the binaries need into a user cache
# directory keyed by version (shared by every clone, CI's fresh clones included), and
# links it into the checkout under .deps/ (git-ignored) where .cargo/config.toml finds it.
#
#   torch==2.11.0  libtorch for tch 0.24.0 (about 4.6 GB with its CUDA libraries)
#   ale-py 0.12.1  its source distribution: the ALE C++ core (built once) and the Atari ROMs
#   mujoco==3.17.0 libmujoco.so.3.17.0 for mujoco-rs (HumanoidBench tasks), own small venv
#
# Override the cache root with FIRE_RL_CACHE (default: ${XDG_CACHE_HOME:-~/.cache}/fire-rl).
set -euo pipefail

TORCH_VERSION=2.11.0
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
        "torch==$TORCH_VERSION" "cmake==$CMAKE_VERSION" numpy
    touch "$venv/.complete"
fi

torch_lib="$("$venv/bin/python" -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"

# Stable in-checkout names for .cargo/config.toml and the build scripts.
mkdir -p "$here/.deps"
ln -sfn "$venv" "$here/.deps/venv"
ln -sfn "$(dirname "$torch_lib")" "$here/.deps/torch"
say "ready: torch $TORCH_VERSION"

# >>> ALE: the C++ core of ale-py, built from its PyPI source distribution (issue 13) >>>
# envs/build.rs links the static library this installs under $cache/ale-$ALE_VERSION
# (lib/libale.a, include/ale/); the ROMs are the sdist's (src/ale/python/roms/*.bin). The
# sdist comes through pip (a small venv with cmake and scikit-build-core, which pip needs to
# read the sdist's metadata); no SDL, no Python bindings, no downloads at configure time.
ALE_VERSION=0.12.1
ALE_SDIST_SHA256=c503d574c5983e1063b451201ccb779d935919c0f6bf116fb0f4f8aa4c86d249
ale="$cache/ale-$ALE_VERSION"
if [ ! -f "$ale/.complete" ]; then
    say "building ALE $ALE_VERSION (ale-py's C++ core) into $ale (once; 2 to 11 minutes on 2 cores)"
    rm -rf "$ale"
    mkdir -p "$ale"
    "$python" -m venv "$ale/tools"
    "$ale/tools/bin/pip" install --quiet --disable-pip-version-check \
        "cmake==$CMAKE_VERSION" scikit-build-core
    "$ale/tools/bin/pip" download --quiet --disable-pip-version-check --no-cache-dir \
        --no-deps --no-binary ale-py --no-build-isolation "ale-py==$ALE_VERSION" -d "$ale/sdist"
    sdist="$ale/sdist/ale_py-$ALE_VERSION.tar.gz"
    echo "$ALE_SDIST_SHA256  $sdist" | sha256sum --check --quiet
    tar -xzf "$sdist" -C "$ale/sdist"
    src="$ale/sdist/ale_py-$ALE_VERSION"
    # RelWithDebInfo at -O3: ALE's CMakeLists forces LTO in Release, whose GCC LTO objects
    # Rust's linker cannot read. vcpkg only if these are set: unset them.
    ale_logged() {  # ale_logged LOG COMMAND...: quiet unless it fails
        "${@:2}" >"$ale/$1.log" 2>&1 || { tail -n 30 "$ale/$1.log" >&2; say "ALE $1 failed (log: $ale/$1.log)"; exit 1; }
    }
    ale_logged configure env -u VCPKG_ROOT -u VCPKG_INSTALLATION_ROOT -u CMAKE_TOOLCHAIN_FILE \
        "$ale/tools/bin/cmake" -S "$src" -B "$ale/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O3 -DNDEBUG" -DCMAKE_INSTALL_PREFIX="$ale" \
        -DCMAKE_INSTALL_LIBDIR=lib -DBUILD_CPP_LIB=ON -DBUILD_PYTHON_LIB=OFF -DSDL_SUPPORT=OFF \
        -DBUILD_VECTOR_LIB=OFF -DBUILD_VECTOR_XLA_LIB=OFF
    ale_logged build "$ale/tools/bin/cmake" --build "$ale/build" -j "$(nproc)"
    ale_logged install "$ale/tools/bin/cmake" --install "$ale/build"
    mkdir -p "$ale/roms"
    cp "$src"/src/ale/python/roms/*.bin "$ale/roms/"
    rm -rf "$ale/build" "$src"
    touch "$ale/.complete"
fi
mkdir -p "$here/.deps"
ln -sfn "$ale" "$here/.deps/ale"
ln -sfn "$ale/roms" "$here/.deps/roms"
ln -sfn "$ale/roms" "$cache/roms"  # the default ROM directory of the binaries
say "ready: ALE $ALE_VERSION in $ale"
# <<< ALE <<<

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
