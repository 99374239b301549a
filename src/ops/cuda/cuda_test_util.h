// Helpers for the CUDA parity tests: one GPU and one CPU backend shared by a
// test suite, fast random host tensors, poisoned device outputs (so an
// element a kernel forgot to write shows up as NaN), and comparison with a
// tolerance of the form atol + rtol * |reference|.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "ops/backend.h"
#include "ops/cpu/kernels.h"

namespace mimo::cudatest {

// splitmix64: far faster than std::normal_distribution for the 10^8-element
// weights of the model-width cases, and good enough for test data.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t next() {
    uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  float uniform() { return float(next() >> 40) * (1.0f / float(1 << 24)); }  // [0, 1)
  // Zero mean, standard deviation `std` (uniform on [-sqrt(3) std, sqrt(3) std]).
  float sym(float std = 1.0f) { return (uniform() * 2.0f - 1.0f) * 1.7320508f * std; }
  int below(int n) { return int(next() % uint64_t(n)); }

 private:
  uint64_t s_;
};

inline Tensor rand_host(std::vector<int64_t> shape, Rng& r, float std = 1.0f, DType dt = DType::F32) {
  Tensor t = Tensor::empty(std::move(shape), dt);
  if (dt == DType::BF16)
    for (int64_t i = 0; i < t.numel(); i++) t.ptr<uint16_t>()[i] = f32_to_bf16(r.sym(std));
  else
    for (int64_t i = 0; i < t.numel(); i++) t.ptr<float>()[i] = r.sym(std);
  return t;
}

// FP8 E4M3 weights [.., rows, K] of about `std` with per-row block scales
// attached (blocks of `block` columns): random codes (no NaN codes), scales
// around std / 64 so the values span the format.
inline Tensor rand_fp8_host(std::vector<int64_t> shape, Rng& r, float std, int block) {
  Tensor q = Tensor::empty(shape, DType::F8E4M3);
  std::vector<int64_t> sshape = shape;
  sshape.back() = (shape.back() + block - 1) / block;
  Tensor s = Tensor::empty(sshape, DType::F32);
  for (int64_t i = 0; i < q.numel(); i++) {
    uint8_t c;
    do c = uint8_t(r.next()); while ((c & 0x7f) == 0x7f);
    q.ptr<uint8_t>()[i] = c;
  }
  for (int64_t i = 0; i < s.numel(); i++) s.ptr<float>()[i] = std / 64.0f * (0.5f + r.uniform());
  return q.with_scales(s, block);
}

// FP8 weights as the tensor-core paths stage them: fp8 * scale (the CPU's
// fp32 weight) rounded to bf16.
inline Tensor fp8_as_bf16(const Tensor& w) {
  const int64_t K = w.dim(-1), rows = w.numel() / K;
  Tensor f = Tensor::empty(w.shape(), DType::F32), b = Tensor::empty(w.shape(), DType::BF16);
  cpu::Fp8Matrix m{w.ptr<uint8_t>(), K, w.scales()->ptr<float>(), w.scales()->dim(-1), w.scale_block()};
  for (int64_t n = 0; n < rows; n++) cpu::dequant_fp8_row(m, n, K, f.ptr<float>() + n * K);
  for (int64_t i = 0; i < w.numel(); i++) b.ptr<uint16_t>()[i] = f32_to_bf16(f.ptr<float>()[i]);
  return b;
}

inline Tensor i32_host(const std::vector<int32_t>& v) {
  Tensor t = Tensor::empty({int64_t(v.size())}, DType::I32);
  if (!v.empty()) std::memcpy(t.data(), v.data(), v.size() * 4);
  return t;
}

inline float value(const Tensor& t, int64_t i) {
  switch (t.dtype()) {
    case DType::BF16: return bf16_to_f32(t.ptr<uint16_t>()[i]);
    case DType::I32: return float(t.ptr<int32_t>()[i]);
    default: return t.ptr<float>()[i];
  }
}

class CudaParity : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!gpu()) gpu() = make_cuda_backend();
    if (!cpu()) cpu() = make_cpu_backend();
  }
  void SetUp() override {
    if (!gpu()) GTEST_SKIP() << "no CUDA device: the CUDA parity tests need a GPU (make_cuda_backend() returned null)";
  }
  static std::unique_ptr<Backend>& gpu() {
    static std::unique_ptr<Backend> b;
    return b;
  }
  static std::unique_ptr<Backend>& cpu() {
    static std::unique_ptr<Backend> b;
    return b;
  }
  Backend& G() { return *gpu(); }
  Backend& C() { return *cpu(); }

  Tensor up(const Tensor& host) { return G().upload(host); }
  Tensor down(const Tensor& dev) {
    Tensor h = Tensor::empty(dev.shape(), dev.dtype());
    G().copy_to_host(h.data(), dev);
    return h;
  }
  // A device tensor full of 0xff bytes: NaN for floats, -1 for ints.
  Tensor poisoned(std::vector<int64_t> shape, DType dt) {
    Tensor h = Tensor::empty(std::move(shape), dt);
    std::memset(h.data(), 0xff, h.nbytes());
    return up(h);
  }
  Tensor host_out(std::vector<int64_t> shape, DType dt) {
    Tensor h = Tensor::empty(std::move(shape), dt);
    std::memset(h.data(), 0xff, h.nbytes());
    return h;
  }

  // Every element within atol + rtol * |want|; NaN never passes.
  static void expect_close(const Tensor& got, const Tensor& want, double atol, double rtol, const std::string& what) {
    ASSERT_EQ(got.numel(), want.numel()) << what;
    int64_t bad = 0, first = -1;
    double worst = 0;
    for (int64_t i = 0; i < want.numel(); i++) {
      double g = value(got, i), w = value(want, i), d = std::fabs(g - w);
      bool ok = std::isfinite(g) == std::isfinite(w) && (!std::isfinite(w) ? g == w : d <= atol + rtol * std::fabs(w));
      if (std::isnan(g) || std::isnan(w)) ok = false;
      if (!ok && first < 0) first = i;
      bad += !ok;
      if (std::isfinite(d)) worst = std::max(worst, d);
    }
    EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << want.numel() << " elements off; first at " << first
                      << " (gpu " << (first >= 0 ? value(got, first) : 0) << ", cpu "
                      << (first >= 0 ? value(want, first) : 0) << "); max abs diff " << worst;
  }
  static void expect_bits_equal(const Tensor& got, const Tensor& want, const std::string& what) {
    ASSERT_EQ(got.nbytes(), want.nbytes()) << what;
    EXPECT_EQ(std::memcmp(got.data(), want.data(), got.nbytes()), 0) << what;
  }
};

}  // namespace mimo::cudatest
