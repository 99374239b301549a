// Portable kernels, CPU feature detection (AVX2, AVX-512, AMX) and run-time
// dispatch to the AVX2 and AVX-512 kernels (AMX weights are dispatched by
// their layout, in matmul.cc).
#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include <algorithm>
#include <cstdlib>
#include <string>

#include "core/dtype.h"
#include "core/error.h"
#include "ops/cpu/kernels.h"

namespace mimo::cpu {

namespace {
CpuFeatures detect() {
  CpuFeatures c;
#if defined(__x86_64__)
  __builtin_cpu_init();
  // F16C comes with every AVX2 CPU; the FP8 kernels use it.
  c.avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  c.avx512 = c.avx2_fma && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
  // GCC 12 cannot ask __builtin_cpu_supports about AMX: CPUID leaf 7 EDX
  // bits 22 (AMX-BF16) and 24 (AMX-TILE), leaf 7.1 EAX bit 5 (AVX512-BF16,
  // which packs x), then the kernel's permission.
  unsigned a = 0, b = 0, cx = 0, d = 0, a1 = 0, b1 = 0, c1 = 0, d1 = 0;
  if (c.avx512 && __get_cpuid_count(7, 0, &a, &b, &cx, &d) && (d >> 22 & 1) && (d >> 24 & 1) &&
      __get_cpuid_count(7, 1, &a1, &b1, &c1, &d1) && (a1 >> 5 & 1))
    c.amx = amx::enable();
#endif
  return c;
}
const CpuFeatures g_detected = detect();
const CpuFeatures* g_active = &g_detected;
}  // namespace

const CpuFeatures& cpu_features() { return *g_active; }

void override_cpu_features(const CpuFeatures* f) {
  static CpuFeatures held;
  if (!f) {
    g_active = &g_detected;
    return;
  }
  held = *f;
  held.avx2_fma = held.avx2_fma && g_detected.avx2_fma;  // never claim what the CPU lacks
  held.avx512 = held.avx512 && held.avx2_fma && g_detected.avx512;
  held.amx = held.amx && held.avx512 && g_detected.amx;
  g_active = &held;
}

void apply_cpu_isa_env() {
  const char* v = std::getenv("MIMOSERVE_CPU_ISA");
  if (!v || !*v) return;
  const std::string isa(v);
  CpuFeatures f = g_detected;
  if (isa == "portable") f = CpuFeatures{};
  else if (isa == "avx2") f.avx512 = f.amx = false;
  else if (isa == "avx512") f.amx = false;
  else if (isa != "amx")
    fail("MIMOSERVE_CPU_ISA={}: expected amx, avx512, avx2 or portable (the widest instruction set to use)", isa);
  override_cpu_features(&f);
}

const char* cpu_isa_name() {
  const CpuFeatures& f = cpu_features();
  return f.amx ? "amx" : f.avx512 ? "avx512" : f.avx2_fma ? "avx2+fma" : "portable";
}

namespace {
// Row n of a weight matrix as the portable kernel reads it: fp32 or bf16,
// rows ld elements apart or in row tiles (ld == kRowTiles, kernels.h).
inline float widen(float v) { return v; }
inline float widen(uint16_t v) { return bf16_to_f32(v); }
template <typename W, bool kTiled>
struct RowsRef {
  const W* w;
  int64_t ld, K;
  float operator()(int64_t n, int64_t k) const {
    if constexpr (kTiled) return widen(w[tiled_row_offset(n, K) + k / 8 * kTiledRunStep + k % 8]);
    else return widen(w[n * ld + k]);
  }
};
struct Fp8RowsRef {
  const Fp8Matrix& m;
  const float* lut = fp8e4m3_table();
  float operator()(int64_t n, int64_t k) const { return lut[m.q[n * m.ld + k]] * m.s[n * m.lds + k / m.block]; }
};

template <typename Rows>
void linear_ref(const float* x, int64_t ldx, const Rows& w, float* out, int64_t ldo, int64_t M, int64_t n0, int64_t n1,
                int64_t K) {
  // Four independent partial sums keep the portable build from being bound
  // by add latency; the compiler vectorises them with SSE2.
  for (int64_t n = n0; n < n1; n++)
    for (int64_t m = 0; m < M; m++) {
      const float* xr = x + m * ldx;
      float a[4] = {0, 0, 0, 0};
      int64_t k = 0;
      for (; k + 4 <= K; k += 4)
        for (int j = 0; j < 4; j++) a[j] += xr[k + j] * w(n, k + j);
      float acc = (a[0] + a[1]) + (a[2] + a[3]);
      for (; k < K; k++) acc += xr[k] * w(n, k);
      out[m * ldo + n] = acc;
    }
}
template <typename W>
void linear_ref_rows(const float* x, int64_t ldx, const W* w, int64_t ldw, float* out, int64_t ldo, int64_t M,
                     int64_t n0, int64_t n1, int64_t K) {
  if (ldw == kRowTiles) linear_ref(x, ldx, RowsRef<W, true>{w, ldw, K}, out, ldo, M, n0, n1, K);
  else linear_ref(x, ldx, RowsRef<W, false>{w, ldw, K}, out, ldo, M, n0, n1, K);
}
}  // namespace

void linear_f32(const float* x, int64_t ldx, const float* w, int64_t ldw, float* out, int64_t ldo, int64_t M,
                int64_t n0, int64_t n1, int64_t K) {
  if (cpu_features().avx512) return avx512::linear_f32(x, ldx, w, ldw, out, ldo, M, n0, n1, K);
  if (cpu_features().avx2_fma) return avx2::linear_f32(x, ldx, w, ldw, out, ldo, M, n0, n1, K);
  linear_ref_rows(x, ldx, w, ldw, out, ldo, M, n0, n1, K);
}

void linear_bf16(const float* x, int64_t ldx, const uint16_t* w, int64_t ldw, float* out, int64_t ldo, int64_t M,
                 int64_t n0, int64_t n1, int64_t K) {
  if (cpu_features().avx512) return avx512::linear_bf16(x, ldx, w, ldw, out, ldo, M, n0, n1, K);
  if (cpu_features().avx2_fma) return avx2::linear_bf16(x, ldx, w, ldw, out, ldo, M, n0, n1, K);
  linear_ref_rows(x, ldx, w, ldw, out, ldo, M, n0, n1, K);
}

void linear_fp8(const float* x, int64_t ldx, const Fp8Matrix& w, float* out, int64_t ldo, int64_t M, int64_t n0,
                int64_t n1, int64_t K) {
  if (cpu_features().avx512) return avx512::linear_fp8(x, ldx, w, out, ldo, M, n0, n1, K);
  if (cpu_features().avx2_fma) return avx2::linear_fp8(x, ldx, w, out, ldo, M, n0, n1, K);
  linear_ref(x, ldx, Fp8RowsRef{w}, out, ldo, M, n0, n1, K);
}

void dequant_fp8_row(const Fp8Matrix& w, int64_t n, int64_t K, float* dst) {
  if (cpu_features().avx2_fma) return avx2::dequant_fp8_row(w, n, K, dst);
  Fp8RowsRef r{w};
  for (int64_t k = 0; k < K; k++) dst[k] = r(n, k);
}

float dot(const float* a, const float* b, int64_t n) {
  if (cpu_features().avx2_fma) return avx2::dot_f32(a, b, n);
  float s = 0;
  for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}
float dot(const float* a, const uint16_t* b, int64_t n) {
  if (cpu_features().avx2_fma) return avx2::dot_bf16(a, b, n);
  float s = 0;
  for (int64_t i = 0; i < n; i++) s += a[i] * bf16_to_f32(b[i]);
  return s;
}
// FP8 KV rows reach these only on the portable attention path.
float dot(const float* a, const uint8_t* b, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; i++) s += a[i] * fp8e4m3_to_f32(b[i]);
  return s;
}
void axpy(float a, const uint8_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] += a * fp8e4m3_to_f32(x[i]);
}
void axpy(float a, const float* x, float* y, int64_t n) {
  if (cpu_features().avx2_fma) return avx2::axpy_f32(a, x, y, n);
  for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}
void axpy(float a, const uint16_t* x, float* y, int64_t n) {
  if (cpu_features().avx2_fma) return avx2::axpy_bf16(a, x, y, n);
  for (int64_t i = 0; i < n; i++) y[i] += a * bf16_to_f32(x[i]);
}

}  // namespace mimo::cpu
