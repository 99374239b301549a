#include "loader/load_model.h"

#include <filesystem>

#include "core/error.h"

namespace mimo {

LoadedModel load_model(const std::string& path, Backend& backend, const ModelLoadOptions& opt) {
  namespace fs = std::filesystem;
  if (!fs::exists(path)) fail("model path '{}' does not exist", path);
  std::string dir = fs::is_directory(path) ? path : fs::path(path).parent_path().string();
  ModelSpec spec = load_model_config(dir);
  apply_overrides(spec, opt.overrides);
  Checkpoint ckpt = Checkpoint::open(path);
  spec.num_mtp_layers = count_mtp_layers(ckpt);
  LoadOptions lo;
  lo.dtype = resolve_weight_dtype(opt.dtype, ckpt);
  // FP8 checkpoints keep their FP8 matrices unless a dtype is asked for.
  const bool fp8 = has_fp8_weights(ckpt);
  if (opt.quantization == "fp8" && !fp8)
    fail("--quantization fp8: '{}' stores no FP8 weights (online quantisation is not supported; use an FP8 "
         "checkpoint)", path);
  if (opt.dtype == "auto" && fp8) lo.native_fp8 = true;
  lo.load_mtp = opt.load_mtp;
  lo.num_threads = opt.num_threads;
  ModelWeights w = load_weights(ckpt, spec, backend, lo);
  LoadedModel out;
  out.weight_dtype = lo.dtype;
  out.path = path;
  out.model = std::make_unique<Model>(std::move(spec), std::move(w), backend);
  return out;
}

}  // namespace mimo
