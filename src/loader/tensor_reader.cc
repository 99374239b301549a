#include "loader/tensor_reader.h"

#include <cmath>
#include <cstring>

#include "core/error.h"

namespace mimo {

namespace {
int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); i++) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}
}  // namespace

void dequant_fp8(const uint8_t* w, int64_t cols, const float* scale, int64_t scols, int br, int bc,
                 int rows_per_head, bool per_head, int64_t r0, int64_t r1, int64_t c0, int64_t c1, float* out) {
  const float* lut = fp8e4m3_table();
  int64_t blocks_per_head = per_head ? ceil_div(rows_per_head, br) : 0;
  for (int64_t r = r0; r < r1; r++) {
    int64_t sr = per_head ? (r / rows_per_head) * blocks_per_head + (r % rows_per_head) / br : r / br;
    const float* srow = scale + sr * scols;
    const uint8_t* wr = w + r * cols;
    float* o = out + (r - r0) * (c1 - c0);
    for (int64_t c = c0; c < c1; c++) o[c - c0] = lut[wr[c]] * srow[c / bc];
  }
}

const float* TensorReader::scale_for(const std::string& name, const TensorInfo& w, const ReadOptions& o,
                                     int64_t* srows, int64_t* scols, bool* per_head) const {
  std::string sname = name + "_scale_inv";
  if (!ckpt_.has(sname)) fail("FP8 tensor '{}' has no scale tensor '{}'", name, sname);
  const TensorInfo& s = ckpt_.info(sname);
  if (s.dtype != DType::F32) fail("scale tensor '{}' must be F32, is {}", sname, dtype_name(s.dtype));
  int64_t rows = w.shape[0], cols = w.shape.size() > 1 ? w.shape[1] : 1;
  int64_t want_r = ceil_div(rows, o.fp8_block_rows), want_c = ceil_div(cols, o.fp8_block_cols);
  *per_head = false;
  if (s.shape.size() != 2 || s.shape[1] != want_c) goto bad;
  if (s.shape[0] != want_r) {
    // MiMo's full-attention k/v scales follow a per-KV-head grid.
    if (o.rows_per_head > 0 && rows % o.rows_per_head == 0 &&
        s.shape[0] == (rows / o.rows_per_head) * ceil_div(o.rows_per_head, o.fp8_block_rows))
      *per_head = true;
    else
      goto bad;
  }
  *srows = s.shape[0];
  *scols = s.shape[1];
  return reinterpret_cast<const float*>(s.data);
bad:
  fail("scale tensor '{}' has shape {}; expected [{}, {}] for weight {} with {}x{} blocks", sname, shape_str(s.shape),
       want_r, want_c, shape_str(w.shape), o.fp8_block_rows, o.fp8_block_cols);
}

void TensorReader::expect(const std::string& name, const std::vector<int64_t>& shape, const ReadOptions& o) const {
  const TensorInfo& ti = ckpt_.info(name);
  if (ti.shape != shape)
    fail("tensor '{}' in '{}' has shape {}, expected {}", name, ti.file, shape_str(ti.shape), shape_str(shape));
  switch (ti.dtype) {
    case DType::F32: case DType::BF16: case DType::F16: break;
    case DType::F8E4M3: {
      if (shape.size() != 2) fail("FP8 tensor '{}' must be 2-D", name);
      int64_t sr, sc;
      bool ph;
      scale_for(name, ti, o, &sr, &sc, &ph);
      break;
    }
    default: fail("tensor '{}' has dtype {}, which cannot hold weights", name, dtype_name(ti.dtype));
  }
}

bool TensorReader::fp8_native_ok(const std::string& name, const Slice2D& sl, const ReadOptions& o) const {
  const TensorInfo& ti = ckpt_.info(name);
  return ti.dtype == DType::F8E4M3 && ti.shape.size() == 2 && o.fp8_block_cols % 8 == 0 && sl.c0 % o.fp8_block_cols == 0;
}

void TensorReader::read_fp8(const std::string& name, uint8_t* q, float* s, const Slice2D& sl, const ReadOptions& o) const {
  const TensorInfo& ti = ckpt_.info(name);
  if (!fp8_native_ok(name, sl, o)) fail("tensor '{}' cannot be kept as FP8 (dtype {}, column window from {})", name, dtype_name(ti.dtype), sl.c0);
  const int64_t rows = ti.shape[0], cols = ti.shape[1], bc = o.fp8_block_cols;
  const int64_t r0 = sl.r0, r1 = sl.r1 < 0 ? rows : sl.r1, c0 = sl.c0, c1 = sl.c1 < 0 ? cols : sl.c1;
  MIMO_ASSERT(r0 >= 0 && r0 <= r1 && r1 <= rows && c0 <= c1 && c1 <= cols, "slice of {}", name);
  int64_t srows = 0, scols = 0;
  bool per_head = false;
  const float* scale = scale_for(name, ti, o, &srows, &scols, &per_head);
  const int64_t w = c1 - c0, kb = ceil_div(w, bc), blocks_per_head = per_head ? ceil_div(o.rows_per_head, o.fp8_block_rows) : 0;
  for (int64_t r = r0; r < r1; r++) {
    std::memcpy(q + (r - r0) * w, ti.data + r * cols + c0, size_t(w));
    const int64_t sr = per_head ? (r / o.rows_per_head) * blocks_per_head + (r % o.rows_per_head) / o.fp8_block_rows
                                : r / o.fp8_block_rows;
    for (int64_t j = 0; j < kb; j++) {
      const float v = scale[sr * scols + c0 / bc + j];
      if (!std::isfinite(v)) fail("scale tensor '{}_scale_inv' has a non-finite value at [{}, {}]", name, sr, c0 / bc + j);
      s[(r - r0) * kb + j] = v;
    }
  }
}

uint64_t TensorReader::stored_bytes(const std::string& name) const {
  uint64_t n = ckpt_.info(name).nbytes;
  if (ckpt_.has(name + "_scale_inv")) n += ckpt_.info(name + "_scale_inv").nbytes;
  return n;
}

void TensorReader::read(const std::string& name, DType dst, void* out, const Slice2D& sl, const ReadOptions& o) const {
  const TensorInfo& ti = ckpt_.info(name);
  int64_t rows = ti.shape.size() >= 2 ? ti.shape[0] : 1;
  int64_t cols = ti.shape.empty() ? 1 : ti.shape.back();
  for (size_t i = 1; i + 1 < ti.shape.size(); i++) cols *= ti.shape[i];  // >2-D: flatten trailing dims into columns
  if (ti.shape.size() > 2) {
    cols = 1;
    for (size_t i = 1; i < ti.shape.size(); i++) cols *= ti.shape[i];
  }
  int64_t r0 = ti.shape.size() >= 2 ? sl.r0 : 0, r1 = ti.shape.size() >= 2 ? (sl.r1 < 0 ? rows : sl.r1) : 1;
  int64_t c0 = sl.c0, c1 = sl.c1 < 0 ? cols : sl.c1;
  MIMO_ASSERT(r0 >= 0 && r0 <= r1 && r1 <= rows && c0 >= 0 && c0 <= c1 && c1 <= cols, "slice of {}", name);
  int64_t w = c1 - c0;
  std::vector<float> row(static_cast<size_t>(w));
  int64_t srows = 0, scols = 0;
  bool per_head = false;
  const float* scale = ti.dtype == DType::F8E4M3 ? scale_for(name, ti, o, &srows, &scols, &per_head) : nullptr;
  for (int64_t r = r0; r < r1; r++) {
    const uint8_t* src = ti.data + size_t(r * cols + c0) * dtype_size(ti.dtype);
    void* dst_row = static_cast<char*>(out) + size_t((r - r0) * w) * dtype_size(dst);
    if (ti.dtype == dst) {
      std::memcpy(dst_row, src, size_t(w) * dtype_size(dst));
      continue;
    }
    switch (ti.dtype) {
      case DType::F32: std::memcpy(row.data(), src, size_t(w) * 4); break;
      case DType::BF16:
        for (int64_t c = 0; c < w; c++) row[size_t(c)] = bf16_to_f32(reinterpret_cast<const uint16_t*>(src)[c]);
        break;
      case DType::F16:
        for (int64_t c = 0; c < w; c++) row[size_t(c)] = f16_to_f32(reinterpret_cast<const uint16_t*>(src)[c]);
        break;
      case DType::F8E4M3:
        dequant_fp8(ti.data, cols, scale, scols, o.fp8_block_rows, o.fp8_block_cols, o.rows_per_head, per_head, r,
                    r + 1, c0, c1, row.data());
        break;
      default: fail("tensor '{}' has dtype {}, which cannot hold weights", name, dtype_name(ti.dtype));
    }
    if (dst == DType::F32) std::memcpy(dst_row, row.data(), size_t(w) * 4);
    else if (dst == DType::BF16)
      for (int64_t c = 0; c < w; c++) static_cast<uint16_t*>(dst_row)[c] = f32_to_bf16(row[size_t(c)]);
    else MIMO_ASSERT(false, "read into {}", dtype_name(dst));
  }
}

}  // namespace mimo
