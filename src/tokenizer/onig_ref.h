// Test-only wrapper around Oniguruma, kept in its own file because
// oniguruma.h and glibc's <regex.h> (pulled in by GTest) both define
// struct re_registers.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace mimo {

class OnigReference {
 public:
  // Compiles `pattern` as the onig crate's Regex::new does (ONIG_SYNTAX_DEFAULT,
  // no options, UTF-8). Throws std::runtime_error if it does not compile.
  explicit OnigReference(const std::string& pattern);
  ~OnigReference();
  OnigReference(const OnigReference&) = delete;
  OnigReference& operator=(const OnigReference&) = delete;

  // Non-empty matches as [begin, end) byte offsets, iterating like the onig
  // crate's find_iter (an empty match steps over one character).
  std::vector<std::pair<size_t, size_t>> find_all(const std::string& text) const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace mimo
