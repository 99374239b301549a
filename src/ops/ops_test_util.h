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
// t itself for F32, else its bf16 rounding.
inline Tensor as(const Tensor& t, DType dt) {
  if (dt == DType::F32) return t;
  Tensor o = Tensor::empty(t.shape(), DType::BF16);
  for (int64_t i = 0; i < t.numel(); i++) o.ptr<uint16_t>()[i] = f32_to_bf16(t.ptr<float>()[i]);
  return o;
}
inline double at(const Tensor& t, int64_t i) {
  return t.dtype() == DType::BF16 ? bf16_to_f32(t.ptr<uint16_t>()[i]) : t.ptr<float>()[i];
}

}  // namespace mimo::test
