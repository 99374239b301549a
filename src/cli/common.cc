#include "cli/common.h"

#include "core/error.h"
#ifdef MIMOSERVE_HAS_SERVER
#include "server/default_model.h"
#endif

namespace mimo::cli {

std::unique_ptr<Backend> make_backend(const std::string& device) {
  if (device == "cpu") return make_cpu_backend();
  if (device == "cuda" || device == "auto") {
    auto b = make_cuda_backend();
    if (b) return b;
    if (device == "cuda") fail("--device cuda: this build has no CUDA backend or no GPU is present");
    return make_cpu_backend();
  }
  fail("--device must be cpu, cuda or auto, got '{}'", device);
}

std::string resolve_model_path(const std::string& path) {
  if (!path.empty()) return path;
#ifdef MIMOSERVE_HAS_SERVER
  return server::default_model_path();
#else
  fail("no --model-path given, and this build has no default model (it comes with the server)");
#endif
}

}  // namespace mimo::cli
