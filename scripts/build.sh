#!/usr/bin/env bash
# Configures (once) and builds build/mimoserve and the tests with Ninja and
# ccache. Extra arguments go to cmake's configure step.
set -euo pipefail
cd "$(dirname "$0")/.."
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/mimoserve-ccache}"
if [ ! -f build/build.ninja ] || [ $# -gt 0 ]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
fi
cmake --build build -j "$(nproc)"
