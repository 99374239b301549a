#include "tokenizer/added_tokens.h"

#include <algorithm>
#include <cstring>

#include "tokenizer/utf8.h"

namespace mimo {
namespace {

bool ends_with_word(std::string_view s) {
  if (s.empty()) return false;
  size_t len;
  return utf8::is_word_char(utf8::decode_at(s, utf8::prev_start(s, s.size()), &len));
}

bool starts_with_word(std::string_view s) {
  if (s.empty()) return false;
  size_t len;
  return utf8::is_word_char(utf8::decode_at(s, 0, &len));
}

// Start of the whitespace run that ends `s`.
size_t trailing_space_start(std::string_view s) {
  size_t end = s.size();
  while (end > 0) {
    const size_t b = utf8::prev_start(s, end);
    size_t len;
    if (!utf8::is_white_space(utf8::decode_at(s, b, &len))) break;
    end = b;
  }
  return end;
}

// Length of the whitespace run that starts `s`.
size_t leading_space_len(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    size_t len;
    if (!utf8::is_white_space(utf8::decode_at(s, i, &len))) break;
    i += len;
  }
  return i;
}

}  // namespace

void AddedTokenMatcher::add(std::string pattern, int32_t token) {
  if (pattern.empty()) return;  // Hugging Face ignores empty added tokens
  const auto idx = int32_t(patterns_.size());
  is_first_byte_[uint8_t(pattern[0])] = true;
  auto& bucket = by_first_byte_[uint8_t(pattern[0])];
  patterns_.push_back({std::move(pattern), token});
  bucket.push_back(idx);
  std::stable_sort(bucket.begin(), bucket.end(),
                   [&](int32_t a, int32_t b) { return patterns_[a].text.size() > patterns_[b].text.size(); });
}

int32_t AddedTokenMatcher::longest_at(std::string_view text, size_t pos) const {
  for (int32_t idx : by_first_byte_[uint8_t(text[pos])]) {
    const std::string& p = patterns_[idx].text;
    if (p.size() <= text.size() - pos && std::memcmp(text.data() + pos, p.data(), p.size()) == 0) return idx;
  }
  return -1;
}

void AddedTokenMatcher::split(std::string_view text, const std::vector<AddedToken>& tokens, bool parse_special,
                              std::vector<Segment>* out) const {
  out->clear();
  size_t start_offset = 0;  // end of the last emitted segment
  size_t pos = 0;           // where the leftmost-longest search resumes
  const size_t n = text.size();
  while (pos < n) {
    if (!is_first_byte_[uint8_t(text[pos])]) { ++pos; continue; }
    const int32_t idx = longest_at(text, pos);
    if (idx < 0) { ++pos; continue; }
    size_t start = pos;
    size_t stop = pos + patterns_[idx].text.size();
    // Like Hugging Face's find_iter, the search resumes after a match even
    // when the rules below discard it.
    pos = stop;
    const AddedToken& tok = tokens[patterns_[idx].token];
    if (tok.special && !parse_special) continue;
    if (tok.single_word) {
      const bool space_before = start == 0 || !ends_with_word(text.substr(0, start));
      const bool space_after = stop == n || !starts_with_word(text.substr(stop));
      if (!space_before || !space_after) continue;
    }
    if (tok.lstrip) start = std::max(trailing_space_start(text.substr(0, start)), start_offset);
    if (tok.rstrip) {
      stop += leading_space_len(text.substr(stop));
      // Resume after the swallowed whitespace so segments never overlap (Hugging
      // Face would emit overlapping ones if a token began with whitespace there).
      pos = stop;
    }
    if (start_offset < start) out->push_back({start_offset, start, -1});
    out->push_back({start, stop, patterns_[idx].token});
    start_offset = stop;
  }
  if (start_offset < n) out->push_back({start_offset, n, -1});
}

}  // namespace mimo
