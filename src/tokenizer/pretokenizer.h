// The tokenizer.json "pre_tokenizer": regex Split steps followed by ByteLevel.
// Pieces stay raw UTF-8 bytes; the byte-to-unicode mapping of ByteLevel is
// folded into the BPE model's byte table, so no mapped strings are built.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace mimo {

// Rewrites the escapes whose meaning differs between Oniguruma (the engine
// Hugging Face tokenizers runs tokenizer.json patterns with) and PCRE2 in UCP
// mode: \s (PCRE2 adds U+180E), \w (PCRE2 lacks marks and has all numbers),
// \h (a hex digit in Oniguruma, horizontal space in PCRE2), and their negations.
std::string onig_to_pcre2(std::string_view pattern);

// The pre-tokenizer pattern of Qwen2, Qwen3 and MiMo tokenizer.json files.
inline constexpr std::string_view kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// A PCRE2 pattern compiled with UTF|UCP (JIT when available). Matching is
// thread-safe: match state lives in thread-local scratch.
class Regex {
 public:
  // `pattern` uses Oniguruma syntax; throws mimo::Error if it does not compile.
  // kQwen2Pattern is matched by hand-written code wherever a match involves
  // only ASCII (several times faster than PCRE2's Unicode property lookups;
  // tests check both agree) unless `allow_fast_path` is false.
  explicit Regex(std::string_view pattern, bool allow_fast_path = true);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Appends the non-empty matches of `text` (valid UTF-8), left to right and
  // non-overlapping, as [begin, end) byte offsets.
  void find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>* out) const;

 private:
  void* code_ = nullptr;  // pcre2_code_8
  bool jit_ = false;
  bool qwen2_ascii_ = false;
};

class PreTokenizer {
 public:
  // `j` is the "pre_tokenizer" value. Requires a ByteLevel step, last.
  static PreTokenizer from_json(const nlohmann::json& j);
  PreTokenizer();
  ~PreTokenizer();
  PreTokenizer(PreTokenizer&&) noexcept;
  PreTokenizer& operator=(PreTokenizer&&) noexcept;

  // Splits `text` into the pieces BPE sees. Pieces view `text` or strings
  // kept in *arena (only when a step adds a prefix space).
  void split(std::string_view text, std::vector<std::string_view>* pieces, std::deque<std::string>* arena) const;

 private:
  struct Step;
  std::vector<Step> steps_;
};

}  // namespace mimo
