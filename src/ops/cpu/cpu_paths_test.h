// The fixture that runs a CPU kernel test on every instruction-set path the
// CPU has (AVX-512, AVX2, portable), forced through override_cpu_features.
// Instantiated once, in kernels_test.cc, for every file that uses it.
#pragma once

#include <gtest/gtest.h>

#include "ops/cpu/kernels.h"

namespace mimo {

enum class CpuPath { Avx512, Avx2, Portable };

inline const char* cpu_path_name(CpuPath p) {
  return p == CpuPath::Avx512 ? "avx512" : p == CpuPath::Avx2 ? "avx2" : "portable";
}

// Forces `p` (skips the test when the CPU lacks it).
inline void use_cpu_path(CpuPath p) {
  cpu::override_cpu_features(nullptr);
  const cpu::CpuFeatures& have = cpu::cpu_features();
  if (p == CpuPath::Avx512 && !have.avx512) GTEST_SKIP() << "no AVX-512 (F, BW, DQ, VL) on this CPU";
  if (p == CpuPath::Avx2 && !have.avx2_fma) GTEST_SKIP() << "no AVX2+FMA+F16C on this CPU";
  cpu::CpuFeatures f;
  f.avx2_fma = p != CpuPath::Portable;
  f.avx512 = p == CpuPath::Avx512;
  cpu::override_cpu_features(&f);
}

class Paths : public ::testing::TestWithParam<CpuPath> {
 protected:
  void SetUp() override { use_cpu_path(GetParam()); }
  void TearDown() override { cpu::override_cpu_features(nullptr); }
};

}  // namespace mimo
