#!/usr/bin/env bash
# Installs dependencies, builds, and runs every test. This is what CI runs.
# When the CUDA toolkit is present, the CUDA backend and its tests are also
# compiled (they skip at run time without a GPU), so CUDA code never rots.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh
if command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; then
  echo "== CUDA toolkit found: compiling the CUDA backend and its tests"
  export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/mimoserve-ccache}"
  [ -f build-cuda/build.ninja ] || cmake -S . -B build-cuda -G Ninja -DCMAKE_BUILD_TYPE=Release -DMIMOSERVE_CUDA=ON >/dev/null
  cmake --build build-cuda -j "$(nproc)" --target cuda_ops_test cuda_golden_test
fi
ctest --test-dir build --output-on-failure -j "$(nproc)" --timeout 900
