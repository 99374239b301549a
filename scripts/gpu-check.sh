#!/usr/bin/env bash
# GPU check for the CUDA backend: op-parity tests against the CPU backend,
# the golden test on the shared tiny-a fixture, and a compute-sanitizer pass
# over the small cases. Two halves:
#
#   scripts/gpu-check.sh prepare   (here, on a build machine with the
#                                   project's dev packages and CUDA 13)
#     builds cuda_ops_test and cuda_golden_test (-DMIMOSERVE_CUDA=ON, sm_90a)
#     in build-gpucheck/ and stages what the GPU machine needs in
#     build-gpucheck/carry/: the two binaries, the non-system shared libraries
#     they use (fmt, spdlog; libstdc++ as a fallback), and a copy of the
#     fixture. build-gpucheck/ is ignored by git (/build*/), so the device
#     tool's `carry` argument must name build-gpucheck/carry.
#
#   scripts/gpu-check.sh           (on the GPU machine, from the repo root)
#     runs the staged binaries and prints one summary. That machine has
#     nvcc, CMake and the CUDA libraries but none of the project's Debian
#     dev packages (fmt, spdlog, gtest, nlohmann-json, CLI11) and no network,
#     which is why the binaries are built here and carried. If nothing was
#     staged, it tries a CMake build there and says what is missing.
#
# Logs go to $OUT (when set) as well as to the terminal; the last lines are
# the summary. Budget: well under 8 minutes on an H100 (each step has its
# own timeout).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
STAGE=build-gpucheck/carry

prepare() {
  set -e
  # Folders the CUDA tests do not need (and that other work may have broken).
  local skip="${MIMOSERVE_SKIP_DIRS:-chat;parsers;server}"
  if ! command -v nvcc >/dev/null && [ ! -x /usr/local/cuda/bin/nvcc ]; then
    echo "gpu-check prepare: nvcc not found (CUDA 13 toolkit expected at /usr/local/cuda)" >&2
    exit 1
  fi
  # scripts/install-deps.sh installs the dev packages if configure fails.
  cmake -S . -B build-gpucheck -G Ninja -DCMAKE_BUILD_TYPE=Release -DMIMOSERVE_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES=90a "-DMIMOSERVE_SKIP_DIRS=$skip" >/dev/null
  cmake --build build-gpucheck -j "$(nproc)" --target cuda_ops_test cuda_golden_test mimoserve
  rm -rf "$STAGE"
  mkdir -p "$STAGE/bin" "$STAGE/lib" "$STAGE/lib-compat" "$STAGE/fixtures"
  cp build-gpucheck/src/ops/cuda/cuda_ops_test build-gpucheck/src/ops/cuda/cuda_golden_test build-gpucheck/mimoserve \
    "$STAGE/bin/"
  # Shared libraries the GPU image lacks: everything ldd resolves outside the
  # C runtime and CUDA (the GPU machine brings its own libcublas and driver).
  for lib in $(ldd "$STAGE"/bin/* | awk '/=> \// {print $3}' | sort -u); do
    case "$(basename "$lib")" in
      libc.so*|libm.so*|libdl.so*|librt.so*|libpthread.so*|ld-linux*|libgcc_s.so*) ;;
      libcublas*|libcudart*|libcuda.so*) ;;
      libstdc++.so*) cp -L "$lib" "$STAGE/lib-compat/" ;;  # used only if the image's is older
      *) cp -L "$lib" "$STAGE/lib/" ;;
    esac
  done
  local fx="${MIMOSERVE_FIXTURES_DIR:-$ROOT/../shared/fixtures}/mimo-tiny-a"
  cp -rL "$fx" "$STAGE/fixtures/"
  chmod -R u+w "$STAGE"
  du -sh "$STAGE"
  echo "staged in $STAGE; on the GPU machine run: bash scripts/gpu-check.sh (carry: $STAGE)"
}

if [ "${1:-}" = "prepare" ]; then
  prepare
  exit $?
fi

# ---- on the GPU machine ----------------------------------------------------
LOGDIR="${OUT:-$ROOT/build-gpucheck/logs}"
mkdir -p "$LOGDIR"
SUMMARY=()
FAILED=0
note() { SUMMARY+=("$1"); }
START=$(date +%s)

echo "== gpu-check on $(hostname) at $(date -u +%FT%TZ)"
if command -v nvidia-smi >/dev/null; then
  GPU=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -1)
else
  GPU="nvidia-smi not found"
fi
echo "GPU: $GPU"
note "gpu: $GPU"

BIN="$ROOT/$STAGE/bin"
if [ ! -x "$BIN/cuda_ops_test" ]; then
  echo "no staged binaries in $STAGE (run 'scripts/gpu-check.sh prepare' on the build machine and carry $STAGE);"
  echo "trying a CMake build here instead"
  if timeout 300 cmake -S . -B build-gpu-local -G Ninja -DMIMOSERVE_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a \
      "-DMIMOSERVE_SKIP_DIRS=tokenizer;chat;parsers;server" >"$LOGDIR/build.log" 2>&1 &&
     timeout 300 cmake --build build-gpu-local -j 16 --target cuda_ops_test cuda_golden_test >>"$LOGDIR/build.log" 2>&1; then
    BIN="$ROOT/build-gpu-local/src/ops/cuda"
    note "build: built on the GPU machine"
  else
    tail -20 "$LOGDIR/build.log"
    echo "SUMMARY"; echo "  build: FAILED (see build.log; the GPU image lacks the dev packages: stage with 'prepare')"
    exit 1
  fi
fi
export MIMOSERVE_FIXTURES_DIR="$ROOT/$STAGE/fixtures"
# Synchronise and check after every op, so a faulting kernel is named in the
# log instead of surfacing at the next copy.
export MIMOSERVE_CUDA_SYNC=1

# Resolve shared libraries: staged ones first, then wherever this image keeps
# CUDA's libcublas (toolkit or the PyTorch wheels).
LIBS="$ROOT/$STAGE/lib"
missing() { LD_LIBRARY_PATH="$LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ldd "$BIN/cuda_golden_test" "$BIN/cuda_ops_test" | grep "not found" | awk '{print $1}' | sort -u; }
if [ -n "$(missing)" ]; then
  for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda-13*/lib64 \
           $(python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null | tr ' ' '\n' | sed 's|$|/nvidia/cu13/lib|') \
           $(python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null | tr ' ' '\n' | sed 's|$|/nvidia/cublas/lib|'); do
    for lib in $(missing); do
      [ -e "$d/$lib" ] && case ":$LIBS:" in *":$d:"*) ;; *) LIBS="$LIBS:$d" ;; esac
    done
  done
fi
export LD_LIBRARY_PATH="$LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if [ -n "$(missing)" ]; then
  echo "unresolved libraries: $(missing | tr '\n' ' ')"
  note "libs: UNRESOLVED $(missing | tr '\n' ' ')"
fi
# An image with an older libstdc++ than the build machine's: use the staged one.
if "$BIN/cuda_ops_test" --gtest_list_tests 2>&1 | grep -q "GLIBCXX\|CXXABI"; then
  export LD_LIBRARY_PATH="$ROOT/$STAGE/lib-compat:$LD_LIBRARY_PATH"
  note "libs: using the staged libstdc++"
fi

# run NAME TIMEOUT BINARY ARGS...: runs one gtest binary, logs, summarises.
run() {
  local name=$1 limit=$2 bin=$3
  shift 3
  local log="$LOGDIR/$name.log" t0 rc
  t0=$(date +%s)
  echo "== $name (limit ${limit}s)"
  timeout "$limit" "$bin" --gtest_color=no "$@" >"$log" 2>&1
  rc=$?
  # Per-test lines, gtest's failure messages and the golden diffs (the
  # end-of-run lists repeat the names; leave them out).
  grep -E "^\[  (FAILED|     OK|SKIPPED) \] [A-Za-z]|max abs diff|backend:|Failure|rror|Expected|Which is|Value of" "$log" |
    grep -v " listed below" | awk '!seen[$0]++' | head -150
  local passed failed skipped
  passed=$(grep -c "^\[       OK \]" "$log")
  failed=$(grep "^\[  FAILED  \] [A-Za-z]" "$log" | grep -v "listed below" | sort -u | wc -l)
  skipped=$(grep "^\[  SKIPPED \] [A-Za-z]" "$log" | awk '{print $4}' | sort -u | wc -l)
  local verdict=PASS
  if [ $rc -eq 124 ]; then verdict="TIMEOUT after ${limit}s"; FAILED=1
  elif [ $rc -ne 0 ]; then verdict="FAIL (exit $rc)"; FAILED=1
  elif [ "$skipped" -gt 0 ]; then verdict="SKIPPED ($skipped skipped: no device?)"; FAILED=1
  fi
  note "$name: $verdict; $passed passed, $failed failed, $skipped skipped, $(( $(date +%s) - t0 ))s"
  if [ "$failed" -gt 0 ]; then
    note "  failed: $(grep "^\[  FAILED  \] [A-Za-z]" "$log" | grep -v "listed below" | awk '{print $4}' | sort -u | tr '\n' ' ')"
  fi
  [ $rc -ne 0 ] && tail -5 "$log"
  return 0
}

# Separate processes, so that a kernel fault (which aborts the process and
# poisons the CUDA context) costs one group of results, not all of them.
run cuda_ops 120 "$BIN/cuda_ops_test" "--gtest_filter=CudaOps.*"
run cuda_attention 60 "$BIN/cuda_ops_test" "--gtest_filter=CudaAttention.*"
run cuda_fp8 60 "$BIN/cuda_ops_test" "--gtest_filter=CudaFp8.*"
run cuda_golden 60 "$BIN/cuda_golden_test"

# step NAME LIMIT CMD...: one command of the engine-level checks, logged,
# summarised by its exit status; prints the log's last lines.
step() {
  local name=$1 limit=$2
  shift 2
  local log="$LOGDIR/$name.log" t0 rc
  t0=$(date +%s)
  echo "== $name (limit ${limit}s)"
  timeout "$limit" "$@" >"$log" 2>&1
  rc=$?
  tail -25 "$log"
  if [ $rc -eq 0 ]; then note "$name: PASS, $(( $(date +%s) - t0 ))s"
  elif [ $rc -eq 124 ]; then note "$name: TIMEOUT after ${limit}s"; FAILED=1
  else note "$name: FAIL (exit $rc), $(( $(date +%s) - t0 ))s"; FAILED=1
  fi
  return $rc
}

MS="$BIN/mimoserve"
if [ -x "$MS" ]; then
  # The whole engine on the GPU: greedy generation of the trained default
  # model on CPU and on CUDA (same prompt), then speculative decoding on the
  # GPU, whose greedy outputs bench-spec checks against plain decoding.
  TINY="$ROOT/models/mimo-tiny"
  IDS="1,520,33,415,1002,77,9,1500,260,31,808,64,12,1999,5,400"
  # Engine-level runs measure speed: no synchronisation after every op.
  unset MIMOSERVE_CUDA_SYNC
  GEN=("$MS" generate --model-path "$TINY" --input-ids "$IDS" --max-new-tokens 48 --ignore-eos --device)
  if step generate_cuda 60 "${GEN[@]}" cuda && step generate_cpu 60 "${GEN[@]}" cpu; then
    a=$(grep output_ids "$LOGDIR/generate_cuda.log"); b=$(grep output_ids "$LOGDIR/generate_cpu.log")
    if [ "$a" = "$b" ]; then note "engine greedy CPU = CUDA (48 tokens, trained model): yes"
    else note "engine greedy CPU = CUDA: NO"; echo "cuda: $a"; echo "cpu:  $b"; FAILED=1; fi
  fi
  step bench_spec_cuda 120 "$MS" bench-spec --device cuda --model-path "$TINY" --batch-sizes 1,16 \
    --depths 0,1,3,auto --output-len 64 --json "$LOGDIR/bench_spec_cuda.json"
  # The CUDA issue's MiMo-shaped model with the real widths (about 6.0B
  # parameters, bf16): decode against the copy bandwidth measured in the
  # same process.
  B6="${TMPDIR:-/tmp}/mimo-bench-6b"
  if [ $(( $(date +%s) - START )) -lt 260 ] &&
     step make_bench_6b 120 "$MS" make-checkpoint --preset bench-6b --out "$B6"; then
    step bench_one_batch_6b 150 "$MS" bench-one-batch --device cuda --model-path "$B6" --batch-size 1,16 \
      --input-len 1024 --output-len 24 --gemm-n 4096 --json "$LOGDIR/bench_one_batch_6b.json"
    # The SWA prefill figure on the GPU: hybrid against all-full attention.
    step bench_prefill_6b 120 "$MS" bench-prefill --device cuda --model-path "$B6" --input-lens 1024,4096,8192 \
      --json "$LOGDIR/bench_prefill_6b.json"
    step bench_decode_6b 120 "$MS" bench-decode --device cuda --model-path "$B6" --batch-sizes 1,4,16,32 \
      --input-lens 1024,4096 --output-len 16 --json "$LOGDIR/bench_decode_6b.json"
    # Where a step's time goes, op family by op family (op by op and
    # synchronising after every op, so the totals are slower than the
    # graph-replayed run above).
    MIMOSERVE_CUDA_SYNC=1 step profile_6b 90 "$MS" bench-one-batch --device cuda --model-path "$B6" \
      --batch-size 1,16 --input-len 1024 --output-len 8 --skip-machine --disable-cuda-graph
    rm -rf "$B6"
    # The same model in FP8 with 128x128 block scales (the published
    # format), kept as FP8 on the device: half the weight bytes per step.
    B6F="${TMPDIR:-/tmp}/mimo-bench-6b-fp8"
    if [ $(( $(date +%s) - START )) -lt 330 ] &&
       step make_bench_6b_fp8 90 "$MS" make-checkpoint --preset bench-6b --dtype fp8 --out "$B6F"; then
      step bench_one_batch_6b_fp8 90 "$MS" bench-one-batch --device cuda --model-path "$B6F" --batch-size 1,16 \
        --input-len 1024 --output-len 24 --skip-machine --json "$LOGDIR/bench_one_batch_6b_fp8.json"
      rm -rf "$B6F"
    else
      note "bench_6b_fp8: skipped (no time left or no checkpoint)"
    fi
  else
    note "bench_6b: skipped (no time left or no checkpoint)"
  fi
else
  note "engine checks: skipped (no staged mimoserve)"
fi

# Memory checker over the small cases (out-of-bounds and misaligned
# accesses), if this image has it and time is left.
if command -v compute-sanitizer >/dev/null || [ -x /usr/local/cuda/bin/compute-sanitizer ]; then
  CS=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
  left=$(( 450 - ($(date +%s) - START) ))
  if [ $left -gt 60 ]; then
    limit=$(( left < 150 ? left : 150 ))
    filter='CudaOps.MemoryRoundTripZeroAndName:CudaOps.Embedding:CudaOps.StoreKvScatteredSlots:CudaOps.MoeRoute:CudaOps.MoeExpertsManyShapes:CudaOps.GatherRows:CudaOps.ConvertBitExact:CudaAttention.FixtureDimsMixedBatch:CudaAttention.GroupSizesAndHeadDims'
    echo "== compute-sanitizer memcheck (limit ${limit}s)"
    timeout "$limit" "$CS" --tool memcheck --error-exitcode 3 --print-limit 20 "$BIN/cuda_ops_test" \
      --gtest_color=no "--gtest_filter=$filter" >"$LOGDIR/sanitizer.log" 2>&1
    rc=$?
    grep -E "ERROR SUMMARY|Invalid|out of bounds|misaligned|FAILED" "$LOGDIR/sanitizer.log" | head -30
    case $rc in
      0) note "memcheck: clean ($(grep -o 'ERROR SUMMARY: [0-9]* errors' "$LOGDIR/sanitizer.log" | tail -1))" ;;
      124) note "memcheck: not finished in ${limit}s (inconclusive)" ;;
      3) note "memcheck: ERRORS (see sanitizer.log)"; FAILED=1 ;;
      *) note "memcheck: exit $rc (tests failed under the sanitizer or it could not run; see sanitizer.log)"; tail -5 "$LOGDIR/sanitizer.log" ;;
    esac
  else
    note "memcheck: skipped (no time left)"
  fi
else
  note "memcheck: compute-sanitizer not found"
fi

note "total: $(( $(date +%s) - START ))s; logs in $LOGDIR"
echo
echo "SUMMARY"
printf '  %s\n' "${SUMMARY[@]}" | tee "$LOGDIR/summary.txt"
[ $FAILED -eq 0 ] && echo "  RESULT: PASS" || echo "  RESULT: FAIL"
exit $FAILED
