// Cross-checks the PCRE2 pre-tokenizer regexes against Oniguruma, the engine
// Hugging Face tokenizers compiles tokenizer.json patterns with (onig crate,
// ONIG_SYNTAX_DEFAULT, no options; Debian's 6.9.8 is the version onig_sys
// 69.8 bundles). Any difference here (character classes, case folding,
// Unicode tables) would change pieces and so ids, on inputs the JavaScript
// reference in tokenizer_hf_test cannot judge: it gets \s and (?i) wrong.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <random>
#include <string>
#include <vector>

#include "tokenizer/onig_ref.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/utf8.h"

namespace mimo {
namespace {

using Spans = std::vector<std::pair<size_t, size_t>>;

constexpr const char* kQwen2 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kGpt2 = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
constexpr const char* kLlama3 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// Exercise every escape onig_to_pcre2 rewrites, in and out of classes.
constexpr const char* kEscapes = R"(\w+|\W|[\s\d]+|\h+|[^\w\s]+|\S)";

std::string show(const std::string& text, const Spans& spans) {
  std::string out;
  for (auto [b, e] : spans) {
    out += "[";
    for (unsigned char c : text.substr(b, e - b)) {
      if (c >= 0x20 && c < 0x7F) out += char(c);
      else out += fmt::format("\\x{:02X}", c);
    }
    out += "]";
  }
  return out;
}

void expect_same(const char* pattern, const std::vector<std::string>& texts, int* checked) {
  const Regex ours(pattern);
  const OnigReference ref(pattern);
  int failures = 0;
  for (const std::string& t : texts) {
    Spans got;
    ours.find_all(t, &got);
    const Spans want = ref.find_all(t);
    if (got != want && ++failures <= 10) {
      ADD_FAILURE() << "pattern " << pattern << "\n  pcre2: " << show(t, got) << "\n  onig:  " << show(t, want);
    }
    ++*checked;
  }
  EXPECT_EQ(failures, 0) << "of " << texts.size() << " texts";
}

std::string cp_str(uint32_t cp) {
  std::string s;
  utf8::append(&s, cp);
  return s;
}

// One string per code point, putting it where each class matters: next to
// letters, digits, apostrophes (case folding), spaces and newlines.
std::vector<std::string> every_code_point() {
  std::vector<std::string> out;
  for (uint32_t cp = 0; cp <= 0x10FFFF; ++cp) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    const std::string c = cp_str(cp);
    out.push_back("a" + c + c + "1 " + c + "'" + c + "x " + c + "\n" + c + "!" + c + " ");
  }
  return out;
}

// Random strings weighted towards the characters where engines disagree.
std::vector<std::string> random_texts(int n, uint32_t seed) {
  std::mt19937 rng(seed);
  const std::vector<uint32_t> hot = {' ', '\t', '\n', '\r', 0x0B, 0x0C, 0x85, 0xA0, 0x1680, 0x180E, 0x2000, 0x2007,
                                     0x200B, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000, 0xFEFF, '\'', 0x2019, 's', 'S',
                                     0x17F, 'T', 't', 'l', 'L', 'd', 'm', 'r', 'e', 'v', 0x212A, 0x130, 0x131, '1',
                                     0x661, 0x2160, 0xBD, 0x300, 0x5BF, '_', 0x203F, '!', '.', 0x1F600, 0x1F3FB,
                                     0x200D, 0xFE0F, 'A', 0x4E00, 0xAC00, 0x1D400};
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    std::string s;
    const int len = 1 + int(rng() % 24);
    for (int k = 0; k < len; ++k) {
      uint32_t cp;
      const uint32_t r = rng() % 10;
      if (r < 6) cp = hot[rng() % hot.size()];
      else if (r < 8) cp = 0x20 + rng() % 0x5F;
      else do cp = rng() % 0x110000; while (cp >= 0xD800 && cp <= 0xDFFF);
      utf8::append(&s, cp);
    }
    out.push_back(std::move(s));
  }
  return out;
}

TEST(TokenizerRegexOnig, EveryCodePointQwen2) {
  int checked = 0;
  expect_same(kQwen2, every_code_point(), &checked);
  EXPECT_GT(checked, 1100000);
}

TEST(TokenizerRegexOnig, RandomTextsAllPatterns) {
  const std::vector<std::string> texts = random_texts(20000, 7);
  int checked = 0;
  for (const char* p : {kQwen2, kGpt2, kLlama3, kEscapes}) expect_same(p, texts, &checked);
  EXPECT_EQ(checked, 4 * 20000);
}

TEST(TokenizerRegexOnig, EveryCodePointEscapes) {
  int checked = 0;
  expect_same(kEscapes, every_code_point(), &checked);
}

}  // namespace
}  // namespace mimo
