// Element types and the scalar conversions every backend agrees on.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace mimo {

enum class DType : uint8_t { F32, BF16, F16, F8E4M3, I64, I32, U8, BOOL };

size_t dtype_size(DType t);
std::string_view dtype_name(DType t);          // safetensors spelling: "F32", "BF16", ...
bool dtype_from_name(std::string_view s, DType* out);
// The flags' spelling of a compute dtype (--dtype, --kv-cache-dtype):
// float32 | fp32 | bfloat16 | bf16.
bool compute_dtype_from_flag(std::string_view s, DType* out);
// SGLang's --kv-cache-dtype: auto (`weights`, the model's compute dtype),
// a compute dtype, or fp8_e4m3 (only the CPU backend has an FP8 cache:
// `on_cpu` false refuses it). Returns "" and sets *out, or says what is wrong.
std::string kv_cache_dtype_from_flag(std::string_view s, DType weights, bool on_cpu, DType* out);

inline float bf16_to_f32(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Round to nearest even, as torch does; NaN stays NaN.
inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

// FP8 E4M3 "fn" variant (no infinities; 0x7f/0xff are NaN), as in OCP and torch.float8_e4m3fn.
float fp8e4m3_to_f32(uint8_t v);
uint8_t f32_to_fp8e4m3(float f);  // round to nearest even, saturating at +-448
const float* fp8e4m3_table();      // 256 entries

}  // namespace mimo
