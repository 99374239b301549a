// Random tensors for the CPU op tests (ops_test.cc, cpu/kernels_test.cc,
// cpu/amx_test.cc): host fp32 normals, their bf16 rounding, and element
// reads of either dtype.
#pragma once

#include <random>
#include <vector>

#include "core/dtype.h"
#include "core/tensor.h"

namespace mimo::test {

inline Tensor randn(std::vector<int64_t> shape, std::mt19937& g, float std = 1.0f) {
  Tensor t = Tensor::empty(std::move(shape), DType::F32);
  std::normal_distribution<float> d(0, std);
  for (int64_t i = 0; i < t.numel(); i++) t.ptr<float>()[i] = d(g);
  return t;
}
// t itself for F32, else its bf16 (or FP8 E4M3) rounding.
inline Tensor as(const Tensor& t, DType dt) {
  if (dt == DType::F32) return t;
  Tensor o = Tensor::empty(t.shape(), dt);
  for (int64_t i = 0; i < t.numel(); i++)
    if (dt == DType::F8E4M3) o.ptr<uint8_t>()[i] = f32_to_fp8e4m3(t.ptr<float>()[i]);
    else o.ptr<uint16_t>()[i] = f32_to_bf16(t.ptr<float>()[i]);
  return o;
}
inline double at(const Tensor& t, int64_t i) {
  return t.dtype() == DType::BF16     ? bf16_to_f32(t.ptr<uint16_t>()[i])
         : t.dtype() == DType::F8E4M3 ? fp8e4m3_to_f32(t.ptr<uint8_t>()[i])
                                      : t.ptr<float>()[i];
}
// An fp32 tensor holding t's values (any dtype `at` reads).
inline Tensor widened(const Tensor& t) {
  Tensor o = Tensor::empty(t.shape(), DType::F32);
  for (int64_t i = 0; i < t.numel(); i++) o.ptr<float>()[i] = float(at(t, i));
  return o;
}

}  // namespace mimo::test
