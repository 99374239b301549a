// Cost of one sampled token on the host (ops/sampling.h), per vocabulary
// size and parameter mix: build/src/ops/sampling_bench.
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "ops/sampling.h"

namespace {

void BM_SampleRow(benchmark::State& st) {
  const int64_t V = st.range(0);
  mimo::SampleParams p;
  p.temperature = 1.0f;
  if (st.range(1) == 1) p.top_p = 0.95f;
  if (st.range(1) == 2) p.top_k = 50, p.top_p = 0.9f;
  std::mt19937 g(3);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  std::vector<float> logits(static_cast<size_t>(V));
  for (auto& x : logits) x = nd(g);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  for (auto _ : st) benchmark::DoNotOptimize(mimo::sample_row(logits.data(), V, p, u(g)));
  st.SetLabel(st.range(1) == 0 ? "temperature 1" : st.range(1) == 1 ? "top_p 0.95" : "top_k 50, top_p 0.9");
}
BENCHMARK(BM_SampleRow)->ArgsProduct({{32000, 152576}, {0, 1, 2}})->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
