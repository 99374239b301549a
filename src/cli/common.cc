#include "cli/common.h"

#include <sstream>
#include <stdexcept>

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

std::vector<int> parse_ints(const std::string& s, const char* flag, int min_value, bool allow_empty) {
  std::vector<int> v;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t pos = 0;
    int x = 0;
    try {
      x = std::stoi(item, &pos);
    } catch (const std::out_of_range&) {
      fail("{}: '{}' is out of range", flag, item);
    } catch (...) {
      pos = 0;
    }
    if (item.empty() || pos != item.size() || x < min_value)
      fail("{}: '{}' is not an integer >= {}", flag, item, min_value);
    v.push_back(x);
  }
  if (v.empty() && !allow_empty) fail("{} is empty", flag);
  return v;
}

}  // namespace mimo::cli
