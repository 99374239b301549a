// Added tokens (tokenizer.json "added_tokens"): strings cut out of the text
// before normalisation and BPE, matched the way Hugging Face's
// AddedVocabulary does it: leftmost-longest over all tokens, then the
// single_word / lstrip / rstrip rules, and with special tokens ignored (the
// text stays plain) when the caller does not parse special tokens.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mimo {

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = false;
  bool lstrip = false;       // swallow the whitespace on its left
  bool rstrip = false;       // swallow the whitespace on its right
  bool single_word = false;  // only match when not inside a word
  bool normalized = false;   // match in the normalised text instead of the raw text
};

class AddedTokenMatcher {
 public:
  struct Segment {
    size_t begin, end;
    int32_t token;  // index into the token list, or -1 for plain text
  };

  // `pattern` is the text to find (the content, normalised for normalized
  // tokens); `token` indexes `tokens` as passed to split().
  void add(std::string pattern, int32_t token);
  bool empty() const { return patterns_.empty(); }

  // Cuts `text` into plain and token segments that cover it in order (empty
  // plain segments are left out).
  void split(std::string_view text, const std::vector<AddedToken>& tokens, bool parse_special,
             std::vector<Segment>* out) const;

 private:
  struct Pattern {
    std::string text;
    int32_t token;
  };
  // Longest match at `pos`, or -1. Candidates per first byte are kept longest first.
  int32_t longest_at(std::string_view text, size_t pos) const;

  std::vector<Pattern> patterns_;
  std::array<bool, 256> is_first_byte_{};  // the scan's per-byte test, kept small
  std::vector<std::vector<int32_t>> by_first_byte_ = std::vector<std::vector<int32_t>>(256);
};

}  // namespace mimo
