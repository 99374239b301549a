// Reads checkpoint tensors into host buffers of the compute dtype: converts
// F32/BF16/F16, and dequantises FP8 E4M3 with its 128x128 `weight_scale_inv`
// blocks (including the per-KV-head scale grid of MiMo's full-attention k/v
// projections). Reads can take a row/column window so tensor-parallel ranks
// load only their shard.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "loader/safetensors.h"

namespace mimo {

struct Slice2D {
  int64_t r0 = 0, r1 = -1;  // rows [r0, r1); -1 = to the end
  int64_t c0 = 0, c1 = -1;  // columns
};

struct ReadOptions {
  int fp8_block_rows = 128, fp8_block_cols = 128;
  // For the per-head scale grid: the head size of the rows (0 = plain grid).
  int rows_per_head = 0;
};

class TensorReader {
 public:
  explicit TensorReader(const Checkpoint& ckpt) : ckpt_(ckpt) {}

  // Checks that `name` exists with exactly `shape` (and, for FP8, a scale of
  // a valid shape); mimo::Error otherwise.
  void expect(const std::string& name, const std::vector<int64_t>& shape, const ReadOptions& o = {}) const;
  bool has(const std::string& name) const { return ckpt_.has(name); }

  // Writes the (sliced) tensor as `dst` elements into out (row-major, the
  // slice's own row stride). 1-D tensors use only the column window.
  void read(const std::string& name, DType dst, void* out, const Slice2D& s = {}, const ReadOptions& o = {}) const;

  // For native FP8: copies the (sliced) E4M3 bytes into q and writes one row
  // of block scales per row into s ([rows, ceil(cols / block)], the
  // checkpoint's row grid expanded; the column window must start on a
  // block). Fails naming the tensor if it is not FP8 or a scale is not finite.
  void read_fp8(const std::string& name, uint8_t* q, float* s, const Slice2D& sl = {}, const ReadOptions& o = {}) const;
  // Whether read_fp8 can take this tensor with this column window.
  bool fp8_native_ok(const std::string& name, const Slice2D& sl, const ReadOptions& o) const;

  // Bytes of the stored tensor (and its scale), for progress reporting.
  uint64_t stored_bytes(const std::string& name) const;

 private:
  const float* scale_for(const std::string& name, const TensorInfo& w, const ReadOptions& o, int64_t* srows,
                         int64_t* scols, bool* per_head) const;
  const Checkpoint& ckpt_;
};

// Block-dequantises FP8 rows [r0, r1) x cols [c0, c1) of a [rows, cols]
// matrix into fp32. scale is [srows, scols]; with per_head the row block of
// row r is (r / rows_per_head) * ceil(rows_per_head / br) + (r % rows_per_head) / br.
void dequant_fp8(const uint8_t* w, int64_t cols, const float* scale, int64_t scols, int br, int bc,
                 int rows_per_head, bool per_head, int64_t r0, int64_t r1, int64_t c0, int64_t c1, float* out);

}  // namespace mimo
