#include "loader/load_model.h"

#include <filesystem>

#include "core/error.h"
#include "core/log.h"

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
  // FP8 checkpoints run as FP8 on the CPU unless a dtype is asked for (the
  // CUDA kernels read bf16 weights, so there they are dequantised).
  if (opt.dtype == "auto" && has_fp8_weights(ckpt)) {
    if (backend.device() == Device::CPU) lo.native_fp8 = true;
    else spdlog::info("FP8 weights are dequantised to bf16 on {} (native FP8 kernels are CPU-only)", backend.name());
  }
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
