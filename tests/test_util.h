// Helpers shared by tests: fixture paths, temp dirs, reading safetensors
// into vectors, running the CLI.
#pragma once

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "loader/safetensors.h"

namespace mimo::test {

// The shared fixtures: $MIMOSERVE_FIXTURES_DIR when set (a GPU machine gets
// a copy at another path), else ../shared/fixtures as configured.
inline std::string fixture(const std::string& name) {
  const char* env = std::getenv("MIMOSERVE_FIXTURES_DIR");
  std::string p = std::string(env && *env ? env : MIMOSERVE_FIXTURES_DIR) + "/" + name;
  if (!std::filesystem::exists(p)) ADD_FAILURE() << "fixture not found: " << p << " (set MIMOSERVE_FIXTURES_DIR)";
  return p;
}
inline std::string source_dir() { return MIMOSERVE_SOURCE_DIR; }
inline std::string binary() { return std::string(MIMOSERVE_BINARY_DIR) + "/mimoserve"; }

// A fresh directory under the build tree, removed at destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    static int counter = 0;
    path_ = std::string(MIMOSERVE_BINARY_DIR) + "/test-tmp/" + tag + "-" + std::to_string(::getpid()) + "-" +
            std::to_string(counter++);
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& f) const { return path_ + "/" + f; }

 private:
  std::string path_;
};

template <typename T>
std::vector<T> read_vector(const Checkpoint& c, const std::string& name) {
  Tensor t = c.view(name);
  std::vector<T> out(size_t(t.numel()));
  if (t.dtype() == DType::I64 && sizeof(T) == 4) {
    for (size_t i = 0; i < out.size(); i++) out[i] = T(t.ptr<int64_t>()[i]);
  } else {
    EXPECT_EQ(dtype_size(t.dtype()), sizeof(T)) << name;
    std::memcpy(out.data(), t.data(), t.nbytes());
  }
  return out;
}

inline float max_abs_diff(const float* a, const float* b, size_t n) {
  float m = 0;
  for (size_t i = 0; i < n; i++) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

// Runs a shell command; returns its exit status and fills `out` with stdout+stderr.
inline int run_command(const std::string& cmd, std::string* out = nullptr) {
  std::string full = cmd + " 2>&1";
  FILE* p = ::popen(full.c_str(), "r");
  if (!p) return -1;
  char buf[4096];
  std::string s;
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) s.append(buf, n);
  int st = ::pclose(p);
  if (out) *out = s;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

}  // namespace mimo::test
