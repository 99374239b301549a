// Errors at module boundaries. Bad input (files, configs, requests) throws
// mimo::Error with a message that names the file, tensor or key; the CLI and
// the server turn it into an exit code or an HTTP error. Broken internal
// invariants use MIMO_ASSERT, which aborts: they are bugs, not input.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace mimo {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> f, Args&&... args) {
  throw Error(fmt::format(f, std::forward<Args>(args)...));
}

[[noreturn]] void assert_fail(const char* expr, const char* file, int line, const std::string& msg);

}  // namespace mimo

// Input check: throws mimo::Error with a formatted message.
#define MIMO_CHECK(cond, ...)            \
  do {                                   \
    if (!(cond)) ::mimo::fail(__VA_ARGS__); \
  } while (0)

// Invariant check: aborts with file:line; never used for user input.
#define MIMO_ASSERT(cond, ...)                                                       \
  do {                                                                               \
    if (!(cond)) ::mimo::assert_fail(#cond, __FILE__, __LINE__, fmt::format("" __VA_ARGS__)); \
  } while (0)
