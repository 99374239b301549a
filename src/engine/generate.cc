#include "engine/generate.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "core/error.h"

namespace mimo {

GenerateResult generate(Model& model, const std::vector<int32_t>& prompt, const GenerateOptions& opt) {
  const ModelSpec& spec = model.spec();
  Backend& be = model.backend();
  validate(opt.sampling);
  if (prompt.empty()) fail("the prompt is empty");
  if (opt.max_new_tokens < 0) fail("max_new_tokens must be >= 0");
  for (auto t : prompt)
    if (t < 0 || t >= spec.vocab_size) fail("input id {} is outside the vocabulary [0, {})", t, spec.vocab_size);
  const int64_t n = int64_t(prompt.size()), V = spec.vocab_size;
  const int64_t cap = n + opt.max_new_tokens;
  KvCache kv(spec, be, opt.kv_dtype, {cap, cap});
  GenerateResult res;
  if (opt.dump_prompt_logits) res.prompt_logits = Tensor::empty({n, V}, DType::F32);
  Sampler sampler(opt.sampling, opt.sampling.seed.value_or(0));
  std::vector<float> last(static_cast<size_t>(V));
  std::vector<int32_t> stops = spec.eos_token_ids;
  stops.insert(stops.end(), opt.stop_token_ids.begin(), opt.stop_token_ids.end());

  auto t0 = std::chrono::steady_clock::now();
  int64_t chunk = opt.prefill_chunk > 0 ? opt.prefill_chunk : n;
  for (int64_t s = 0; s < n; s += chunk) {
    int64_t e = std::min(n, s + chunk);
    StepBatch b;
    b.add_contiguous(std::vector<int32_t>(prompt.begin() + s, prompt.begin() + e), int32_t(s), opt.dump_prompt_logits);
    const Tensor& lg = model.forward(b, kv);
    if (opt.dump_prompt_logits)
      be.copy_to_host(res.prompt_logits.ptr<float>() + s * V, lg);
    else if (e == n)
      be.copy_to_host(last.data(), lg);
  }
  if (opt.dump_prompt_logits) std::memcpy(last.data(), res.prompt_logits.ptr<float>() + (n - 1) * V, size_t(V) * 4);
  auto t1 = std::chrono::steady_clock::now();
  res.prefill_seconds = std::chrono::duration<double>(t1 - t0).count();
  res.finish_reason = "length";
  for (int i = 0; i < opt.max_new_tokens; i++) {
    int32_t tok = sampler.sample(last.data(), V, prompt, res.output_ids, {});
    res.output_ids.push_back(tok);
    if (!opt.ignore_eos && std::find(stops.begin(), stops.end(), tok) != stops.end()) {
      res.finish_reason = "stop";
      break;
    }
    if (i + 1 == opt.max_new_tokens) break;
    StepBatch b;
    b.add_contiguous({tok}, int32_t(n + i), false);
    const Tensor& lg = model.forward(b, kv);
    be.copy_to_host(last.data(), lg);
    res.decode_steps++;
  }
  res.decode_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  return res;
}

}  // namespace mimo
