// UTF-8 helpers shared by the tokenizer: strict validation (encode rejects bad
// input instead of feeding garbage to PCRE2, which would be undefined with
// PCRE2_NO_UTF_CHECK) and the lossy decoding that Hugging Face's decode does
// with Rust's String::from_utf8_lossy. Both the one-shot decode and the
// incremental detokenizer go through decode_lossy, so they agree byte for byte.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace mimo::utf8 {

inline constexpr size_t npos = std::string_view::npos;

// Result of looking at the sequence that starts at one byte.
struct Step {
  enum Kind : uint8_t { kValid, kInvalid, kIncomplete } kind;
  uint8_t len;  // kValid: sequence length; kInvalid: bytes to replace by one U+FFFD;
                // kIncomplete: bytes present (a valid prefix cut by the end of input)
  uint32_t cp;  // kValid only
};

// Classifies the sequence at s[i] (i < s.size()) following Unicode's table of
// well-formed byte sequences: no overlongs, no surrogates, nothing above U+10FFFF.
// kInvalid covers the "maximal subpart" rule (Unicode 3.9, WHATWG, Rust).
Step step(std::string_view s, size_t i);

// Offset of the first byte that is not part of a well-formed sequence, or npos.
size_t find_invalid(std::string_view s);

// Appends the decoding of `in` to *out, one U+FFFD per ill-formed subpart.
// With final == false a valid-but-incomplete sequence at the end is left
// unconsumed (it may be completed by later bytes). Returns the bytes consumed.
size_t decode_lossy(std::string_view in, bool final, std::string* out);

void append(std::string* out, uint32_t cp);

// Decodes the code point at s[i]; s must be valid UTF-8 there.
inline uint32_t decode_at(std::string_view s, size_t i, size_t* len) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data()) + i;
  if (p[0] < 0x80) { *len = 1; return p[0]; }
  if (p[0] < 0xE0) { *len = 2; return (uint32_t(p[0] & 0x1F) << 6) | (p[1] & 0x3F); }
  if (p[0] < 0xF0) {
    *len = 3;
    return (uint32_t(p[0] & 0x0F) << 12) | (uint32_t(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
  }
  *len = 4;
  return (uint32_t(p[0] & 0x07) << 18) | (uint32_t(p[1] & 0x3F) << 12) | (uint32_t(p[2] & 0x3F) << 6) |
         (p[3] & 0x3F);
}

// Start of the code point that ends at s[end) (s valid UTF-8, end > 0).
inline size_t prev_start(std::string_view s, size_t end) {
  size_t i = end - 1;
  while (i > 0 && (uint8_t(s[i]) & 0xC0) == 0x80) --i;
  return i;
}

// Unicode White_Space (what Rust's char::is_whitespace and regex \s use).
bool is_white_space(uint32_t cp);

// Rust regex's Unicode \w: letters, marks, decimal digits, connector
// punctuation, Join_Control (Hugging Face uses it for single_word tokens).
bool is_word_char(uint32_t cp);

}  // namespace mimo::utf8
