#!/usr/bin/env bash
# Runs the CUDA kernels' own sources on the CPU under a thread-model emulator
# (cuda_emu.h: one std::thread per CUDA thread, barriers for __syncthreads,
# shuffles through shared slots, WMMA as plain 16x16 matrices) and compares
# them with the CPU backend. It checks indexing, tiling, masking, split-KV
# merging and MoE grouping without a GPU; it cannot check timing, occupancy,
# alignment faults or shared-memory limits. Takes about a minute.
#   src/ops/cuda/emu/run.sh [CPU build dir with libmimo_ops.a, default build]
set -euo pipefail
cd "$(dirname "$0")/../../../.."
BUILD=${1:-build}
W=$(mktemp -d /tmp/mimo-cuda-emu.XXXXXX)
trap 'rm -rf "$W"' EXIT
mkdir -p "$W/include" "$W/src/ops/cuda"
cp src/ops/cuda/emu/cuda_emu.h "$W/include/"
for h in cuda_runtime.h cuda_runtime_api.h mma.h; do echo '#include "cuda_emu.h"' >"$W/include/$h"; done
for f in src/ops/cuda/*.cu src/ops/cuda/*.cuh src/ops/cuda/cuda_kernels.h; do
  python3 src/ops/cuda/emu/transform.py "$f" "$W/src/ops/cuda/$(basename "$f")"
done
flags=(-std=c++20 -O1 -w -I"$W/include" -I"$W/src" -Isrc)
pids=()
for f in "$W"/src/ops/cuda/*.cu; do
  g++ "${flags[@]}" -x c++ -c "$f" -o "$W/$(basename "$f" .cu).o" & pids+=($!)
done
g++ "${flags[@]}" -c src/ops/cuda/emu/emu_test.cc -o "$W/emu_test.o" & pids+=($!)
for p in "${pids[@]}"; do wait "$p"; done
g++ -o "$W/emu_test" "$W"/*.o "$BUILD/src/ops/libmimo_ops.a" "$BUILD/src/libmimo_core.a" -lfmt -lspdlog -lpthread
"$W/emu_test"
