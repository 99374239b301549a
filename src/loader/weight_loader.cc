#include "loader/weight_loader.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <regex>
#include <set>

#include "core/error.h"
#include "core/log.h"
#include "core/thread_pool.h"
#include "loader/tensor_reader.h"

namespace mimo {

namespace {

// One destination tensor, filled from one or more checkpoint tensors
// concatenated along dim 0 (fused gate/up, stacked experts).
struct Part {
  std::string name;
  std::vector<int64_t> shape;  // of the stored tensor
  ReadOptions ro;
  Slice2D slice;               // the window of it this part takes
  int64_t elements() const {
    int64_t rows = (slice.r1 < 0 ? shape[0] : slice.r1) - slice.r0;
    int64_t cols = (slice.c1 < 0 ? shape.back() : slice.c1) - slice.c0;
    return shape.size() == 1 ? cols : rows * cols;
  }
};
struct Job {
  Tensor* target;
  std::vector<int64_t> shape;
  DType dtype;
  std::vector<Part> parts;
  bool may_fp8 = false;  // a matrix the kernels may read as FP8 (not the embedding table)
  int fp8_block = 0;     // > 0: kept as FP8 with per-row scales in blocks of this many columns
  bool linear = false;   // read only as a linear's or the experts' weight (Backend::prepare_weight)
};

class Planner {
 public:
  Planner(const Checkpoint& ckpt, const ModelSpec& spec, DType wdtype) : ckpt_(ckpt), spec_(spec), w_(wdtype) {
    base_.fp8_block_rows = spec.quant.block_rows;
    base_.fp8_block_cols = spec.quant.block_cols;
  }

  void add(Tensor* t, std::vector<int64_t> shape, DType dt, std::vector<Part> parts, bool may_fp8 = true) {
    jobs_.push_back({t, std::move(shape), dt, std::move(parts), may_fp8 && dt == w_, 0});
  }
  Part part(const std::string& name, std::vector<int64_t> shape, int rows_per_head = 0) const {
    ReadOptions ro = base_;
    ro.rows_per_head = rows_per_head;
    return {name, std::move(shape), ro, {}};
  }
  void matrix(Tensor* t, const std::string& name, int64_t rows, int64_t cols, int rows_per_head = 0,
              bool may_fp8 = true) {
    add(t, {rows, cols}, w_, {part(name, {rows, cols}, rows_per_head)}, may_fp8);
  }
  void vec(Tensor* t, const std::string& name, int64_t n) { add(t, {n}, DType::F32, {part(name, {n})}); }

  void attention(AttnWeights& a, const std::string& p, const AttnSpec& s) {
    int64_t hid = spec_.hidden_size;
    matrix(&a.q, p + "self_attn.q_proj.weight", int64_t(s.num_heads) * s.head_dim, hid);
    matrix(&a.k, p + "self_attn.k_proj.weight", int64_t(s.num_kv_heads) * s.head_dim, hid, s.head_dim);
    matrix(&a.v, p + "self_attn.v_proj.weight", int64_t(s.num_kv_heads) * s.v_head_dim, hid, s.v_head_dim);
    matrix(&a.o, p + "self_attn.o_proj.weight", hid, int64_t(s.num_heads) * s.v_head_dim);
    if (s.has_sink) {
      // The hub names it attention_sink_bias; transformers' own save uses sinks.
      std::string n = p + "self_attn.attention_sink_bias";
      if (!ckpt_.has(n) && ckpt_.has(p + "self_attn.sinks")) n = p + "self_attn.sinks";
      vec(&a.sinks, n, s.num_heads);
    }
  }
  void dense(DenseMlpWeights& m, const std::string& p, int64_t inter) {
    int64_t hid = spec_.hidden_size;
    add(&m.gate_up, {2 * inter, hid}, w_,
        {part(p + "mlp.gate_proj.weight", {inter, hid}), part(p + "mlp.up_proj.weight", {inter, hid})});
    matrix(&m.down, p + "mlp.down_proj.weight", hid, inter);
  }
  void moe(MoEWeights& m, const std::string& p) {
    int64_t hid = spec_.hidden_size, E = spec_.moe.num_experts, I = spec_.moe.intermediate;
    add(&m.router, {E, hid}, DType::F32, {part(p + "mlp.gate.weight", {E, hid})});
    vec(&m.bias, p + "mlp.gate.e_score_correction_bias", E);
    std::vector<Part> gu, dn;
    for (int64_t e = 0; e < E; e++) {
      std::string ep = p + "mlp.experts." + std::to_string(e) + ".";
      gu.push_back(part(ep + "gate_proj.weight", {I, hid}));
      gu.push_back(part(ep + "up_proj.weight", {I, hid}));
      dn.push_back(part(ep + "down_proj.weight", {hid, I}));
    }
    add(&m.gate_up, {E, 2 * I, hid}, w_, std::move(gu));
    add(&m.down, {E, hid, I}, w_, std::move(dn));
    m.expert_begin = 0;
  }

  std::vector<Job>& jobs() { return jobs_; }

 private:
  const Checkpoint& ckpt_;
  const ModelSpec& spec_;
  DType w_;
  ReadOptions base_;
  std::vector<Job> jobs_;
};

// A host tensor on huge pages (host_alloc.h): decode streams weights.
Tensor weight_tensor(const std::vector<int64_t>& shape, DType dt) { return Tensor::empty(shape, dt, true); }

// A matrix kept as FP8: its bytes as stored (parts concatenated along dim 0)
// and one row of block scales per row.
Tensor read_fp8_job(const TensorReader& reader, const Job& j, ProgressBar& bar) {
  std::vector<int64_t> sshape = j.shape;
  const int64_t cols = j.shape.back(), kb = (cols + j.fp8_block - 1) / j.fp8_block;
  sshape.back() = kb;
  Tensor q = weight_tensor(j.shape, DType::F8E4M3), s = weight_tensor(sshape, DType::F32);
  uint8_t* qd = q.ptr<uint8_t>();
  float* sd = s.ptr<float>();
  for (auto& part : j.parts) {
    reader.read_fp8(part.name, qd, sd, part.slice, part.ro);
    const int64_t n = part.elements();
    qd += n;
    sd += n / cols * kb;
    bar.add(reader.stored_bytes(part.name));
  }
  return q.with_scales(std::move(s), j.fp8_block);
}

}  // namespace

DType resolve_weight_dtype(const std::string& flag, const Checkpoint& ckpt) {
  if (DType d; compute_dtype_from_flag(flag, &d)) return d;
  if (flag != "auto") fail("--dtype must be auto, float32 or bfloat16, got '{}'", flag);
  const std::string probe = "model.embed_tokens.weight";
  if (ckpt.has(probe) && ckpt.info(probe).dtype == DType::F32) return DType::F32;
  return DType::BF16;
}

bool has_fp8_weights(const Checkpoint& ckpt) {
  for (auto& n : ckpt.names())
    if (ckpt.info(n).dtype == DType::F8E4M3) return true;
  return false;
}

int count_mtp_layers(const Checkpoint& ckpt) {
  static const std::regex re(R"(^model\.mtp\.layers\.(\d+)\.)");
  std::set<int> ids;
  for (auto& n : ckpt.names()) {
    std::smatch m;
    if (std::regex_search(n, m, re)) ids.insert(std::stoi(m[1].str()));
  }
  int n = 0;
  while (ids.count(n)) n++;
  if (n != int(ids.size())) fail("checkpoint '{}': MTP layer indices are not 0..N-1 without gaps", ckpt.dir());
  return n;
}

ModelWeights load_weights(const Checkpoint& ckpt, const ModelSpec& spec, Backend& backend, const LoadOptions& opt) {
  ModelWeights w;
  w.dtype = opt.dtype;
  w.layers.resize(size_t(spec.num_layers()));
  Planner pl(ckpt, spec, opt.dtype);
  int64_t V = spec.vocab_size, hid = spec.hidden_size;
  pl.matrix(&w.embed, "model.embed_tokens.weight", V, hid, 0, /*may_fp8=*/false);
  pl.vec(&w.norm, "model.norm.weight", hid);
  bool tied = spec.tie_word_embeddings && !ckpt.has("lm_head.weight");
  if (!tied) pl.matrix(&w.lm_head, "lm_head.weight", V, hid);
  for (int l = 0; l < spec.num_layers(); l++) {
    const LayerSpec& ls = spec.layers[size_t(l)];
    LayerWeights& lw = w.layers[size_t(l)];
    std::string p = "model.layers." + std::to_string(l) + ".";
    pl.vec(&lw.input_norm, p + "input_layernorm.weight", hid);
    pl.vec(&lw.post_norm, p + "post_attention_layernorm.weight", hid);
    pl.attention(lw.attn, p, ls.attn);
    if (ls.ffn == FfnKind::Dense) pl.dense(lw.mlp, p, spec.intermediate_size);
    else pl.moe(lw.moe, p);
  }
  int n_mtp = opt.load_mtp ? spec.num_mtp_layers : 0;
  w.mtp.resize(size_t(n_mtp));
  for (int k = 0; k < n_mtp; k++) {
    MtpLayerWeights& m = w.mtp[size_t(k)];
    std::string p = "model.mtp.layers." + std::to_string(k) + ".";
    pl.vec(&m.enorm, p + "enorm.weight", hid);
    pl.vec(&m.hnorm, p + "hnorm.weight", hid);
    // concat[enorm(e), hnorm(h)] @ eh_proj^T = e-half @ W[:, :hid]^T + h-half @ W[:, hid:]^T
    Part eh_e = pl.part(p + "eh_proj.weight", {hid, 2 * hid}), eh_h = eh_e;
    eh_e.slice = {0, -1, 0, hid};
    eh_h.slice = {0, -1, hid, 2 * hid};
    pl.add(&m.eh_embed, {hid, hid}, opt.dtype, {eh_e});
    pl.add(&m.eh_hidden, {hid, hid}, opt.dtype, {eh_h});
    pl.vec(&m.input_norm, p + "input_layernorm.weight", hid);
    pl.attention(m.attn, p, spec.mtp_attn);
    pl.vec(&m.pre_mlp_norm, p + "pre_mlp_layernorm.weight", hid);
    pl.dense(m.mlp, p, spec.intermediate_size);
    pl.vec(&m.final_norm, p + "final_layernorm.weight", hid);
  }

  // Every matrix but the embedding table (which the embedding op reads by
  // rows, and a tied lm_head shares) is only ever a linear's or the experts'.
  for (auto& j : pl.jobs()) j.linear = j.shape.size() >= 2 && j.target != &w.embed;

  // Validate everything before doing any heavy work.
  TensorReader reader(ckpt);
  uint64_t total = 0;
  int64_t kept_fp8 = 0;
  for (auto& j : pl.jobs()) {
    bool fp8 = opt.native_fp8 && j.may_fp8;
    for (auto& part : j.parts) {
      reader.expect(part.name, part.shape, part.ro);
      total += reader.stored_bytes(part.name);
      fp8 = fp8 && reader.fp8_native_ok(part.name, part.slice, part.ro);
    }
    if (fp8) {
      j.fp8_block = j.parts[0].ro.fp8_block_cols;
      kept_fp8++;
    }
  }

  // Largest first, handed out to all threads.
  auto& jobs = pl.jobs();
  auto job_bytes = [](const Job& j) {
    int64_t n = 1;
    for (auto s : j.shape) n *= s;
    return n;
  };
  std::sort(jobs.begin(), jobs.end(), [&](const Job& a, const Job& b) { return job_bytes(a) > job_bytes(b); });
  ProgressBar bar("loading " + ckpt.dir(), total);
  std::atomic<size_t> next{0};
  std::mutex err_mu;
  std::string first_error;
  std::vector<Tensor> host(jobs.size());
  // A loader thread count of its own (SGLang's num_threads) gets a pool that
  // lives for the load only; the compute pool keeps its size.
  std::unique_ptr<ThreadPool> own_pool;
  if (opt.num_threads > 0) own_pool = std::make_unique<ThreadPool>(opt.num_threads);
  (own_pool ? *own_pool : ThreadPool::global()).run([&](int, int) {
    for (size_t i; (i = next.fetch_add(1)) < jobs.size();) {
      try {
        Job& j = jobs[i];
        if (j.fp8_block > 0) {
          host[i] = read_fp8_job(reader, j, bar);
          continue;
        }
        Tensor t = weight_tensor(j.shape, j.dtype);
        char* dst = static_cast<char*>(t.data());
        for (auto& part : j.parts) {
          reader.read(part.name, j.dtype, dst, part.slice, part.ro);
          dst += size_t(part.elements()) * dtype_size(j.dtype);
          bar.add(reader.stored_bytes(part.name));
        }
        host[i] = j.linear ? backend.prepare_weight(t) : std::move(t);
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lk(err_mu);
        if (first_error.empty()) first_error = e.what();
      }
    }
  });
  bar.finish();
  if (!first_error.empty()) throw Error(first_error);
  for (size_t i = 0; i < jobs.size(); i++)
    *jobs[i].target = backend.device() == Device::CPU ? std::move(host[i]) : backend.upload(host[i]);
  if (tied) w.lm_head = w.embed;
  spdlog::info("loaded {} tensors ({:.1f} MB stored) from {}", jobs.size(), double(total) / 1e6, ckpt.dir());
  if (kept_fp8 > 0)
    spdlog::info("{} FP8 weight matrices kept as FP8 with their block scales (--dtype bfloat16 dequantises them)",
                 kept_fp8);
  w.fp8_matrices = int(kept_fp8);
  return w;
}

}  // namespace mimo
