// The fixture that runs a CPU kernel test on the AVX2 path (when the CPU has
// it) and on the portable one, through override_cpu_features. Instantiated
// once, in kernels_test.cc, for every file that uses it.
#pragma once

#include <gtest/gtest.h>

#include "ops/cpu/kernels.h"

namespace mimo {

class Paths : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (GetParam() && !cpu::cpu_features().avx2_fma) GTEST_SKIP() << "no AVX2+FMA+F16C on this CPU";
    cpu::CpuFeatures f;
    f.avx2_fma = GetParam();
    cpu::override_cpu_features(&f);
  }
  void TearDown() override { cpu::override_cpu_features(nullptr); }
};

}  // namespace mimo
