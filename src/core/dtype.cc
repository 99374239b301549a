#include "core/dtype.h"

#include <algorithm>

#include <array>
#include <cmath>
#include <cstring>

namespace mimo {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: case DType::I32: return 4;
    case DType::BF16: case DType::F16: return 2;
    case DType::F8E4M3: case DType::U8: case DType::BOOL: return 1;
    case DType::I64: return 8;
  }
  return 0;
}

namespace {
constexpr std::pair<DType, std::string_view> kNames[] = {
    {DType::F32, "F32"}, {DType::BF16, "BF16"}, {DType::F16, "F16"}, {DType::F8E4M3, "F8_E4M3"},
    {DType::I64, "I64"}, {DType::I32, "I32"},   {DType::U8, "U8"},   {DType::BOOL, "BOOL"},
};
}  // namespace

std::string_view dtype_name(DType t) {
  for (auto& [d, n] : kNames)
    if (d == t) return n;
  return "?";
}

bool compute_dtype_from_flag(std::string_view s, DType* out) {
  if (s == "float32" || s == "fp32") *out = DType::F32;
  else if (s == "bfloat16" || s == "bf16") *out = DType::BF16;
  else return false;
  return true;
}

std::string kv_cache_dtype_from_flag(std::string_view s, DType weights, bool on_cpu, DType* out) {
  if (s == "auto") *out = weights;
  else if (s == "fp8_e4m3" && !on_cpu) return "--kv-cache-dtype fp8_e4m3: an FP8 KV cache is available on the CPU backend only";
  else if (s == "fp8_e4m3") *out = DType::F8E4M3;
  else if (s == "fp8_e5m2") return "--kv-cache-dtype fp8_e5m2: only fp8_e4m3 is available (on the CPU backend)";
  else if (!compute_dtype_from_flag(s, out))
    return "--kv-cache-dtype must be auto, bfloat16, float32 or fp8_e4m3, got '" + std::string(s) + "'";
  return "";
}

bool dtype_from_name(std::string_view s, DType* out) {
  for (auto& [d, n] : kNames)
    if (n == s) {
      *out = d;
      return true;
    }
  return false;
}

float f16_to_f32(uint16_t h) {
  uint32_t sign = (h >> 15) & 1, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  float v;
  if (exp == 0) v = std::ldexp(float(man), -24);
  else if (exp == 31) v = man ? NAN : INFINITY;
  else v = std::ldexp(float(man | 0x400), int(exp) - 25);
  return sign ? -v : v;
}

uint16_t f32_to_f16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  uint32_t sign = (u >> 16) & 0x8000;
  if (std::isnan(f)) return uint16_t(sign | 0x7e00);
  float a = std::fabs(f);
  if (a >= 65520.f) return uint16_t(sign | 0x7c00);
  if (a < std::ldexp(1.f, -25)) return uint16_t(sign);
  int e;
  std::frexp(a, &e);  // a = m * 2^e, m in [0.5, 1)
  int exp = e - 1 + 15;
  if (exp <= 0) {  // subnormal: units of 2^-24
    float q = std::nearbyint(std::ldexp(a, 24));
    return uint16_t(sign | uint32_t(q));
  }
  float q = std::nearbyint(std::ldexp(a, 10 - (e - 1)));  // in [1024, 2048]
  uint32_t m = uint32_t(q);
  if (m == 2048) { m = 1024; exp++; }
  if (exp >= 31) return uint16_t(sign | 0x7c00);
  return uint16_t(sign | (uint32_t(exp) << 10) | (m - 1024));
}

namespace {
float decode_fp8(uint8_t v) {
  uint32_t sign = v >> 7, exp = (v >> 3) & 0xf, man = v & 7;
  if (exp == 15 && man == 7) return NAN;
  float r = exp == 0 ? std::ldexp(float(man), -9) : std::ldexp(float(8 + man), int(exp) - 10);
  return sign ? -r : r;
}
std::array<float, 256> make_table() {
  std::array<float, 256> t{};
  for (int i = 0; i < 256; i++) t[i] = decode_fp8(uint8_t(i));
  return t;
}
const std::array<float, 256> kFp8Table = make_table();
}  // namespace

const float* fp8e4m3_table() { return kFp8Table.data(); }
float fp8e4m3_to_f32(uint8_t v) { return kFp8Table[v]; }

uint8_t f32_to_fp8e4m3(float f) {
  if (std::isnan(f)) return 0x7f;
  const uint8_t sign = std::signbit(f) ? 0x80 : 0;
  const float a = std::fabs(f);
  if (a >= 448.f) return sign | 0x7e;
  // Below 2^-6 the codes are the multiples of 2^-9 (subnormals, and 8 the
  // smallest normal): a * 512 is exact, rounded to nearest even.
  if (a < 0.015625f) return sign | uint8_t(std::nearbyint(a * 512.0f));
  // Normal: round the fp32 mantissa to 3 bits, nearest even (a carry moves
  // into the exponent), and rebias the exponent from 127 to 7.
  uint32_t b;
  std::memcpy(&b, &a, 4);
  b += 0x7FFFFu + ((b >> 20) & 1u);
  return sign | uint8_t(((int(b >> 23) - 120) << 3) | int((b >> 20) & 7u));
}

}  // namespace mimo
