// Loads a checkpoint's tensors into ModelWeights on a backend: validates
// every name and shape first (so a bad checkpoint fails fast with the
// tensor's name), then converts/dequantises with all threads, showing a
// progress bar on a terminal.
#pragma once

#include <string>

#include "loader/safetensors.h"
#include "model/spec.h"
#include "model/weights.h"
#include "ops/backend.h"

namespace mimo {

struct LoadOptions {
  DType dtype = DType::BF16;  // of weight matrices
  int num_threads = 0;        // 0 = the global pool's size
  bool load_mtp = true;
  // Keep FP8 matrices of the checkpoint as FP8 with per-row block scales
  // (CPU kernels read them natively) instead of dequantising to `dtype`.
  bool native_fp8 = false;
};

// Whether the checkpoint stores any FP8 tensor.
bool has_fp8_weights(const Checkpoint& ckpt);

// The weight dtype for --dtype auto|float32|bfloat16: auto keeps F32
// checkpoints in fp32 and runs bf16/F16/FP8 ones in bf16.
DType resolve_weight_dtype(const std::string& flag, const Checkpoint& ckpt);

// Counts model.mtp.layers.N.* groups (N = 0, 1, ... without gaps).
int count_mtp_layers(const Checkpoint& ckpt);

ModelWeights load_weights(const Checkpoint& ckpt, const ModelSpec& spec, Backend& backend, const LoadOptions& opt);

}  // namespace mimo
