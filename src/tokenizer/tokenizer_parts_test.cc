// Unit tests of the tokenizer's building blocks: UTF-8 handling, the
// Oniguruma -> PCRE2 pattern rewrite, Split behaviours, added-token matching.
#include <gtest/gtest.h>

#include <utf8proc.h>

#include <atomic>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "core/error.h"
#include "tokenizer/added_tokens.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/piece_cache.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/utf8.h"

namespace mimo {
namespace {

using nlohmann::json;

TEST(TokenizerUtf8, FindsInvalidSequences) {
  EXPECT_EQ(utf8::find_invalid(""), utf8::npos);
  EXPECT_EQ(utf8::find_invalid("plain ascii text, long enough for the 8-byte fast path"), utf8::npos);
  EXPECT_EQ(utf8::find_invalid("é中😀"), utf8::npos);
  EXPECT_EQ(utf8::find_invalid("abc\xC0\x80"), 3u);          // overlong NUL
  EXPECT_EQ(utf8::find_invalid("\xED\xA0\x80"), 0u);         // surrogate U+D800
  EXPECT_EQ(utf8::find_invalid("ok\xF4\x90\x80\x80"), 2u);   // above U+10FFFF
  EXPECT_EQ(utf8::find_invalid("12345678\xE4\xB8"), 8u);     // truncated at the end
  EXPECT_EQ(utf8::find_invalid("\x80"), 0u);                 // lone continuation byte
  EXPECT_EQ(utf8::find_invalid("\xFF"), 0u);
  EXPECT_EQ(utf8::find_invalid(std::string("a\0b", 3)), utf8::npos);  // NUL is valid UTF-8
}

std::string lossy(std::string_view s) {
  std::string out;
  utf8::decode_lossy(s, true, &out);
  return out;
}

TEST(TokenizerUtf8, LossyDecodeReplacesMaximalSubparts) {
  const std::string R = "\xEF\xBF\xBD";
  EXPECT_EQ(lossy("abc"), "abc");
  EXPECT_EQ(lossy("\xF0\x90\x80" "A"), R + "A");   // a valid 3-byte prefix is one U+FFFD
  EXPECT_EQ(lossy("\xE0\x80"), R + R);             // E0 80 is not a prefix of anything
  EXPECT_EQ(lossy("\xED\xA0\x80"), R + R + R);     // surrogates: three separate bytes
  EXPECT_EQ(lossy("\xC3"), R);                     // truncated at the end
  EXPECT_EQ(lossy("a\xFF" "b\xC3\xA9"), "a" + R + "b\xC3\xA9");
}

TEST(TokenizerUtf8, StreamingDecodeHoldsIncompleteTail) {
  std::string out;
  EXPECT_EQ(utf8::decode_lossy("ab\xE4\xB8", false, &out), 2u);
  EXPECT_EQ(out, "ab");
  out.clear();
  EXPECT_EQ(utf8::decode_lossy("\xE4\xB8\xAD", false, &out), 3u);
  EXPECT_EQ(out, "中");
  out.clear();
  // An invalid byte is replaced at once, not held.
  EXPECT_EQ(utf8::decode_lossy("\xE4\x41", false, &out), 2u);
  EXPECT_EQ(out, "\xEF\xBF\xBD" "A");
}

TEST(TokenizerRegex, RewritesOnigurumaEscapes) {
  EXPECT_EQ(onig_to_pcre2("a+"), "a+");
  EXPECT_NE(onig_to_pcre2(R"(\s)").find("\\x{3000}"), std::string::npos);
  EXPECT_EQ(onig_to_pcre2(R"(\s)").find("180E"), std::string::npos);
  // Inside a class the items are spliced in, without nested brackets.
  EXPECT_EQ(onig_to_pcre2(R"([^\s\p{L}])").substr(0, 5), "[^\\t-");
  // An escaped backslash followed by 's' is a literal backslash and 's'.
  EXPECT_EQ(onig_to_pcre2(R"(\\s)"), R"(\\s)");
  EXPECT_EQ(onig_to_pcre2(R"([\]\s])").substr(0, 5), "[\\]\\t");
  EXPECT_EQ(onig_to_pcre2(R"(\h)"), "[0-9a-fA-F]");
}

TEST(TokenizerRegex, MatchesLikeOniguruma) {
  // U+180E is not White_Space (Oniguruma) although PCRE2's \s would take it.
  const Regex re(R"(\s+|\S+)");
  std::vector<std::pair<size_t, size_t>> m;
  re.find_all("a\xE1\xA0\x8E b", &m);  // a U+180E space b
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[0], (std::pair<size_t, size_t>{0, 4}));
}

TEST(TokenizerRegex, AsciiFastPathEqualsPcre2) {
  const Regex fast(kQwen2Pattern), slow(kQwen2Pattern, /*allow_fast_path=*/false);
  // Every string up to length 4 over the characters the pattern treats
  // differently, then random longer ones.
  const std::string alphabet = std::string("'sStTrReEvVmMlLdDxX19 \t\n\r\v\f!._") + '\0';
  // Non-ASCII characters that PCRE2 must judge: a letter, U+017F (folds to s),
  // ideographic space, NEL (a space), U+FEFF (not one), a digit, a mark.
  const std::vector<std::string> wide = {"\xC3\xA9", "\xC5\xBF", "\xE3\x80\x80", "\xC2\x85", "\xEF\xBB\xBF",
                                         "\xD9\xA1", "\xCC\x81", "\xE4\xB8\xAD"};
  std::vector<std::string> texts = {""};
  for (size_t len = 1, from = 0; len <= 4; ++len) {
    const size_t to = texts.size();
    for (size_t k = from; k < to; ++k) {
      for (char c : alphabet) texts.push_back(texts[k] + c);
    }
    from = to;
  }
  std::mt19937 rng(11);
  for (int i = 0; i < 100000; ++i) {
    std::string t(5 + rng() % 40, ' ');
    for (char& c : t) c = alphabet[rng() % alphabet.size()];
    texts.push_back(t);
  }
  for (int i = 0; i < 100000; ++i) {
    std::string t;
    for (int k = 0, len = 1 + int(rng() % 30); k < len; ++k) {
      if (rng() % 4 == 0) t += wide[rng() % wide.size()];
      else t += alphabet[rng() % alphabet.size()];
    }
    texts.push_back(t);
  }
  int failures = 0;
  for (const std::string& t : texts) {
    std::vector<std::pair<size_t, size_t>> a, b;
    fast.find_all(t, &a);
    slow.find_all(t, &b);
    if (a != b && ++failures <= 5) ADD_FAILURE() << json(t).dump();
  }
  EXPECT_EQ(failures, 0) << "of " << texts.size();
}

TEST(TokenizerRegex, BadPatternIsError) {
  EXPECT_THROW(Regex("(unclosed"), Error);
}

TEST(TokenizerRegex, LongInputsDoNotExhaustTheStack) {
  const Regex re(
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)");
  for (const std::string& s : {std::string(2'000'000, ' ') + "x", std::string(2'000'000, 'a'),
                               std::string(1'000'000, '!'), std::string(1'000'000, '\n')}) {
    std::vector<std::pair<size_t, size_t>> m;
    re.find_all(s, &m);
    size_t covered = 0;
    for (auto [b, e] : m) covered += e - b;
    EXPECT_EQ(covered, s.size());
  }
}

std::vector<std::string> split_with(const json& pre, std::string_view text) {
  const PreTokenizer pt = PreTokenizer::from_json(pre);
  std::vector<std::string_view> pieces;
  std::deque<std::string> arena;
  pt.split(text, &pieces, &arena);
  return {pieces.begin(), pieces.end()};
}

json split_then_bytelevel(const std::string& behavior, bool invert = false) {
  return {{"type", "Sequence"},
          {"pretokenizers",
           {{{"type", "Split"}, {"pattern", {{"String", "-"}}}, {"behavior", behavior}, {"invert", invert}},
            {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}};
}

TEST(TokenizerPreTokenizer, SplitBehaviours) {
  // The examples of Hugging Face's SplitDelimiterBehavior documentation.
  using V = std::vector<std::string>;
  const std::string t = "the-final--countdown";
  EXPECT_EQ(split_with(split_then_bytelevel("Removed"), t), (V{"the", "final", "countdown"}));
  EXPECT_EQ(split_with(split_then_bytelevel("Isolated"), t), (V{"the", "-", "final", "-", "-", "countdown"}));
  EXPECT_EQ(split_with(split_then_bytelevel("MergedWithPrevious"), t), (V{"the-", "final-", "-", "countdown"}));
  EXPECT_EQ(split_with(split_then_bytelevel("MergedWithNext"), t), (V{"the", "-final", "-", "-countdown"}));
  EXPECT_EQ(split_with(split_then_bytelevel("Contiguous"), t), (V{"the", "-", "final", "--", "countdown"}));
  // invert: the matches are what is kept.
  EXPECT_EQ(split_with(split_then_bytelevel("Removed", true), t), (V{"-", "-", "-"}));
}

TEST(TokenizerPreTokenizer, ByteLevelRegexAndPrefixSpace) {
  using V = std::vector<std::string>;
  const json gpt2 = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"use_regex", true}};
  EXPECT_EQ(split_with(gpt2, "Hello world's 123!"), (V{" Hello", " world", "'s", " 123", "!"}));
  EXPECT_EQ(split_with(gpt2, " x"), (V{" x"}));  // no second space when one is there
}

TEST(TokenizerPreTokenizer, RejectsUnsupportedSteps) {
  EXPECT_THROW(PreTokenizer::from_json(json(nullptr)), Error);
  EXPECT_THROW(PreTokenizer::from_json({{"type", "Whitespace"}}), Error);
  // Without ByteLevel the BPE would see raw text, which this library does not handle.
  EXPECT_THROW(PreTokenizer::from_json({{"type", "Split"}, {"pattern", {{"Regex", "a"}}}, {"behavior", "Isolated"}}),
               Error);
  const json after = {{"type", "Sequence"},
                      {"pretokenizers",
                       {{{"type", "ByteLevel"}, {"use_regex", false}, {"add_prefix_space", false}},
                        {{"type", "Split"}, {"pattern", {{"Regex", "a"}}}, {"behavior", "Isolated"}}}}};
  EXPECT_THROW(PreTokenizer::from_json(after), Error);
  EXPECT_THROW(PreTokenizer::from_json(split_then_bytelevel("Sideways")), Error);
}

TEST(TokenizerNormalizer, FormsAndSequence) {
  std::string st;
  EXPECT_EQ(Normalizer::from_json({{"type", "NFC"}}).apply("e\xCC\x81", &st), "\xC3\xA9");
  EXPECT_EQ(Normalizer::from_json({{"type", "NFD"}}).apply("\xC3\xA9", &st), "e\xCC\x81");
  EXPECT_EQ(Normalizer::from_json({{"type", "NFKC"}}).apply("\xEF\xBC\xA1", &st), "A");  // fullwidth A
  const Normalizer seq = Normalizer::from_json({{"type", "Sequence"}, {"normalizers", {{{"type", "NFD"}}, {{"type", "NFC"}}}}});
  EXPECT_EQ(seq.apply("A\xCC\x8A", &st), "\xC3\x85");
  EXPECT_TRUE(Normalizer::from_json(json(nullptr)).is_identity());
  EXPECT_THROW(Normalizer::from_json({{"type", "Lowercase"}}), Error);
  // NFC fast path: text below U+0300 comes back as the same view.
  const std::string latin = "caf\xC3\xA9 plain";
  EXPECT_EQ(Normalizer::from_json({{"type", "NFC"}}).apply(latin, &st).data(), latin.data());
}

std::string utf8proc_nfc(const std::string& s) {
  utf8proc_uint8_t* dst = nullptr;
  const utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()), utf8proc_ssize_t(s.size()),
                                          &dst, utf8proc_option_t(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  std::string out(reinterpret_cast<const char*>(dst), size_t(n));
  std::free(dst);
  return out;
}

std::string cp_str(uint32_t cp) {
  std::string s;
  utf8::append(&s, cp);
  return s;
}

// The NFC shortcuts (stable-character table, region by region) must give
// what utf8proc gives on the whole string.
TEST(TokenizerNormalizer, NfcShortcutsEqualFullNfc) {
  const Normalizer nfc = Normalizer::from_json({{"type", "NFC"}});
  int failures = 0;
  auto check = [&](const std::string& s) {
    std::string storage;
    if (std::string(nfc.apply(s, &storage)) != utf8proc_nfc(s) && ++failures <= 10) ADD_FAILURE() << json(s).dump();
  };
  for (uint32_t cp = 0; cp < 0x110000; ++cp) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    const std::string c = cp_str(cp);
    check("a" + c + "b");
    check(c + "\xCC\x81" + c);  // + U+0301
  }
  // Random mixes of starters, marks, jamo, precomposed and Indic characters.
  const std::vector<uint32_t> pool = {'a', 'e', 'A', ' ', 0xE9, 0xC5, 0x300, 0x301, 0x316, 0x323, 0x345, 0x1100, 0x1161,
                                      0x11A8, 0xAC00, 0xAC01, 0x3099, 0x304B, 0x304C, 0x0B47, 0x0B3E, 0x0B4B, 0x0915,
                                      0x093C, 0x094D, 0x212B, 0xF900, 0x1E0A, 0x0F73, 0x0344, 0x4E00, 0x1F600};
  std::mt19937 rng(5);
  for (int i = 0; i < 200000; ++i) {
    std::string s;
    for (int k = 0, len = 1 + int(rng() % 10); k < len; ++k) s += cp_str(pool[rng() % pool.size()]);
    check(s);
  }
  EXPECT_EQ(failures, 0);
}

// Ids a test stores for a key: derived from the key so readers can check hits.
std::vector<int32_t> ids_for(const std::string& key, size_t n) {
  std::vector<int32_t> ids;
  for (size_t i = 0; i < n; ++i) ids.push_back(int32_t(std::hash<std::string>{}(key) % 1000003 + i));
  return ids;
}

TEST(TokenizerPieceCache, StoresShortAndLongPieces) {
  PieceCache cache;
  std::vector<std::string> keys;
  for (size_t len = 1; len <= 40; ++len) {
    keys.push_back(std::string(len, 'a'));
    keys.push_back(std::string(len, 'a'));
    keys.back().back() = '\0';  // differs only in a NUL: the zero padding must not collide
    keys.push_back(std::string(len, '\xE4'));
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    const auto ids = ids_for(keys[i], 1 + i % 9);  // both within and beyond the 6 ids of a short slot
    cache.insert(keys[i], ids.data(), ids.size());
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    std::vector<int32_t> got;
    ASSERT_TRUE(cache.find(keys[i], &got)) << i;
    EXPECT_EQ(got, ids_for(keys[i], 1 + i % 9)) << i;
  }
  std::vector<int32_t> got;
  EXPECT_FALSE(cache.find("never stored", &got));
  EXPECT_FALSE(cache.find(std::string(300, 'x'), &got));
  cache.clear();
  EXPECT_FALSE(cache.find(keys[0], &got));
  EXPECT_TRUE(got.empty());
}

TEST(TokenizerPieceCache, ConcurrentReadersNeverSeeTornEntries) {
  PieceCache cache;
  std::vector<std::string> keys;
  for (int i = 0; i < 200000; ++i) keys.push_back(std::to_string(i * 7919));  // many share slots
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      std::vector<int32_t> got;
      for (int it = 0; it < 300000; ++it) {
        const std::string& k = keys[rng() % keys.size()];
        const size_t n = 1 + k.size() % 6;
        got.clear();
        if (cache.find(k, &got)) {
          if (got != ids_for(k, n)) ++bad;
        } else {
          const auto ids = ids_for(k, n);
          cache.insert(k, ids.data(), ids.size());
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
}

TEST(TokenizerAddedTokens, LeftmostLongestAndFlags) {
  std::vector<AddedToken> toks(5);
  toks[0] = {"<a>", 100, true};
  toks[1] = {"<a>b", 101, false};
  toks[2] = {"<l>", 102, false, /*lstrip=*/true, /*rstrip=*/true};
  toks[3] = {"w", 103, false, false, false, /*single_word=*/true};
  toks[4] = {"<s>", 104, true};
  AddedTokenMatcher m;
  for (int i = 0; i < 5; ++i) m.add(toks[i].content, i);
  std::vector<AddedTokenMatcher::Segment> segs;
  auto cut = [&](std::string_view text, bool parse_special = true) {
    m.split(text, toks, parse_special, &segs);
    std::vector<std::string> out;
    for (const auto& s : segs) {
      std::string& piece = out.emplace_back(s.token >= 0 ? "#" : "");
      piece.append(text.substr(s.begin, s.end - s.begin));
    }
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(cut("x<a>by<a>z"), (V{"x", "#<a>b", "y", "#<a>", "z"}));
  EXPECT_EQ(cut("hi  <l>\t there"), (V{"hi", "#  <l>\t ", "there"}));
  EXPECT_EQ(cut("a w b wx w"), (V{"a ", "#w", " b wx ", "#w"}));
  // Special tokens stay text; non-special ones are still cut out.
  EXPECT_EQ(cut("<s><a>b<a>", false), (V{"<s>", "#<a>b", "<a>"}));
}

}  // namespace
}  // namespace mimo
