// Tokenizer end to end on small hand-made tokenizer.json files written to a
// temporary directory: merge syntaxes and priorities, added tokens, NFC,
// decoding, streaming, config files, and the errors bad files must give.
#include "tokenizer/tokenizer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "core/error.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/utf8.h"

namespace mimo {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Ids = std::vector<int32_t>;

constexpr const char* kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

std::string mapped(uint8_t b) {
  std::string s;
  utf8::append(&s, byte_level::kByteToChar[b]);
  return s;
}

using Merges = std::vector<std::pair<std::string, std::string>>;

// A Qwen2-style tokenizer.json: ids 0..255 are the bytes in order, merged
// tokens follow in merge order.
json make_tokenizer(const Merges& merges, bool pair_syntax = false) {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[mapped(uint8_t(b))] = b;
  int next = 256;
  json jm = json::array();
  for (const auto& [a, b] : merges) {
    if (!vocab.contains(a + b)) vocab[a + b] = next++;
    jm.push_back(pair_syntax ? json::array({a, b}) : json(a + " " + b));
  }
  const json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false},
                           {"use_regex", false}};
  return {{"version", "1.0"},
          {"added_tokens", json::array()},
          {"normalizer", {{"type", "NFC"}}},
          {"pre_tokenizer",
           {{"type", "Sequence"},
            {"pretokenizers",
             {{{"type", "Split"}, {"pattern", {{"Regex", kQwen2Pattern}}}, {"behavior", "Isolated"}, {"invert", false}},
              byte_level}}}},
          {"post_processor", byte_level},
          {"decoder", byte_level},
          {"model",
           {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", ""},
            {"end_of_word_suffix", ""}, {"fuse_unk", false}, {"byte_fallback", false}, {"ignore_merges", false},
            {"vocab", vocab}, {"merges", jm}}}};
}

const Merges kHelloMerges = {{"h", "e"},   {"l", "l"},   {"he", "ll"},     {"hell", "o"}, {"Ġ", "w"},
                             {"o", "r"},   {"Ġw", "or"}, {"l", "d"},       {"Ġwor", "ld"}, {"Ã", "©"}};

// A fresh directory per call holding the given files.
fs::path write_dir(const std::map<std::string, std::string>& files) {
  static std::atomic<int> counter{0};
  const fs::path dir =
      fs::temp_directory_path() / ("mimo_tok_test_" + std::to_string(getpid()) + "_" + std::to_string(counter++));
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (const auto& [name, text] : files) std::ofstream(dir / name, std::ios::binary) << text;
  return dir;
}

// Loads from a temporary directory, removed again: load() reads everything up front.
Tokenizer load_json(const json& tok, std::map<std::string, std::string> extra = {}) {
  extra["tokenizer.json"] = tok.dump();
  const fs::path dir = write_dir(extra);
  Tokenizer t = Tokenizer::load(dir.string());
  fs::remove_all(dir);
  return t;
}

int32_t id_of(const Tokenizer& t, std::string_view s) {
  auto id = t.token_to_id(s);
  EXPECT_TRUE(id.has_value()) << s;
  return id.value_or(-1);
}

// Loads and expects a mimo::Error whose message contains `needle`.
void expect_load_error(const std::map<std::string, std::string>& files, const std::string& needle) {
  const fs::path dir = write_dir(files);
  try {
    Tokenizer::load(dir.string());
    ADD_FAILURE() << "no error, expected one containing: " << needle;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

TEST(Tokenizer, BothMergeSyntaxesGiveTheSameIds) {
  const Tokenizer a = load_json(make_tokenizer(kHelloMerges, false));
  const Tokenizer b = load_json(make_tokenizer(kHelloMerges, true));
  const Ids want = {id_of(a, "hello"), id_of(a, "Ġworld")};
  EXPECT_EQ(a.encode("hello world"), want);
  EXPECT_EQ(b.encode("hello world"), want);
  EXPECT_EQ(a.encode("hi"), (Ids{'h', 'i'}));  // byte b has id b in these files
}

TEST(Tokenizer, MergesFollowRankThenPosition) {
  const Tokenizer ab_first = load_json(make_tokenizer({{"a", "b"}, {"b", "c"}}));
  EXPECT_EQ(ab_first.encode("abc"), (Ids{id_of(ab_first, "ab"), id_of(ab_first, "c")}));
  const Tokenizer bc_first = load_json(make_tokenizer({{"b", "c"}, {"a", "b"}}));
  EXPECT_EQ(bc_first.encode("abc"), (Ids{id_of(bc_first, "a"), id_of(bc_first, "bc")}));
  // Equal ranks: the leftmost pair merges first.
  const Tokenizer aa = load_json(make_tokenizer({{"a", "a"}}));
  EXPECT_EQ(aa.encode("aaa"), (Ids{id_of(aa, "aa"), id_of(aa, "a")}));
}

TEST(Tokenizer, LongPieceMergesCompletely) {
  // A 200k-letter word is one piece; with merges up to 16 letters it must
  // become 12500 tokens without quadratic work.
  const Tokenizer t = load_json(make_tokenizer({{"a", "a"}, {"aa", "aa"}, {"aaaa", "aaaa"}, {"aaaaaaaa", "aaaaaaaa"}}));
  const Ids ids = t.encode(std::string(200000, 'a'));
  ASSERT_EQ(ids.size(), 12500u);
  EXPECT_EQ(ids.front(), id_of(t, std::string(16, 'a')));
  EXPECT_EQ(ids.back(), ids.front());
}

TEST(Tokenizer, IgnoreMergesTakesWholeVocabWords) {
  json j = make_tokenizer({{"a", "b"}});
  j["model"]["vocab"]["abc"] = 300;  // reachable by no merge
  j["model"]["ignore_merges"] = true;
  const Tokenizer t = load_json(j);
  EXPECT_EQ(t.encode("abc"), (Ids{300}));
  EXPECT_EQ(t.encode("abd"), (Ids{id_of(t, "ab"), id_of(t, "d")}));
}

json with_added_tokens(json j) {
  j["added_tokens"] = json::array({
      {{"id", 400}, {"content", "<|end|>"}, {"special", true}, {"normalized", false}, {"lstrip", false},
       {"rstrip", false}, {"single_word", false}},
      {{"id", 401}, {"content", "<|end|>!"}, {"special", true}, {"normalized", false}},
      {{"id", 402}, {"content", "<think>"}, {"special", false}, {"normalized", false}},
      {{"id", 403}, {"content", "\xC3\xA9t\xC3\xA9"}, {"special", false}, {"normalized", true}},
  });
  return j;
}

TEST(Tokenizer, AddedTokensSpecialAndNot) {
  const Tokenizer t = load_json(with_added_tokens(make_tokenizer(kHelloMerges)));
  EXPECT_EQ(t.vocab_size(), 404);
  EXPECT_TRUE(t.is_special(400));
  EXPECT_FALSE(t.is_special(402));
  EXPECT_EQ(t.token_to_id("<think>"), 402);
  EXPECT_EQ(t.id_to_token(400), "<|end|>");
  const int32_t hello = id_of(t, "hello");
  EXPECT_EQ(t.encode("hello<|end|>"), (Ids{hello, 400}));
  EXPECT_EQ(t.encode("<|end|>!hello"), (Ids{401, hello}));  // longest match first
  EXPECT_EQ(t.encode("<think>hello</think>").front(), 402);
  // parse_special = false: special tokens become text, <think> is still matched.
  const Ids plain = t.encode("<|end|><think>", false);
  EXPECT_EQ(plain.back(), 402);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 400), 0);
  EXPECT_EQ(t.decode(plain), "<|end|><think>");
  // A normalized token matches after NFC: "e" + U+0301 composes to é.
  EXPECT_EQ(t.encode("e\xCC\x81te\xCC\x81"), (Ids{403}));
}

TEST(Tokenizer, NfcNormalisation) {
  const Tokenizer t = load_json(make_tokenizer(kHelloMerges));
  const Ids composed = t.encode("\xC3\xA9");  // é
  EXPECT_EQ(composed, (Ids{id_of(t, "Ã©")}));
  EXPECT_EQ(t.encode("e\xCC\x81"), composed);
  json raw = make_tokenizer(kHelloMerges);
  raw["normalizer"] = nullptr;
  EXPECT_NE(load_json(raw).encode("e\xCC\x81"), composed);
}

TEST(Tokenizer, DecodeBytesSpecialsAndBrokenUtf8) {
  const Tokenizer t = load_json(with_added_tokens(make_tokenizer(kHelloMerges)));
  const Ids ids = t.encode("hello world<|end|> é");
  EXPECT_EQ(t.decode(ids), "hello world<|end|> é");
  EXPECT_EQ(t.decode(ids, /*skip_special=*/true), "hello world é");
  EXPECT_EQ(t.decode(Ids{-1, id_of(t, "hello"), 99999}), "hello");  // ids without a token are skipped
  const int32_t c3 = id_of(t, mapped(0xC3));
  EXPECT_EQ(t.decode(Ids{c3, id_of(t, "h")}), "\xEF\xBF\xBDh");
  EXPECT_EQ(t.token_bytes(c3), "\xC3");
  EXPECT_THROW(t.id_to_token(99999), Error);
}

TEST(Tokenizer, IncrementalDetokenizerHoldsPartialCharacters) {
  const Tokenizer t = load_json(with_added_tokens(make_tokenizer(kHelloMerges)));
  auto byte = [&](uint8_t b) { return id_of(t, mapped(b)); };
  IncrementalDetokenizer d(t);
  EXPECT_EQ(d.push(id_of(t, "hello")), "hello");
  EXPECT_EQ(d.push(byte(0xF0)), "");  // 😀 = F0 9F 98 80, one byte per token
  EXPECT_EQ(d.push(byte(0x9F)), "");
  EXPECT_EQ(d.push(byte(0x98)), "");
  EXPECT_EQ(d.push(byte(0x80)), "😀");
  EXPECT_EQ(d.push(byte(0xFF)), "\xEF\xBF\xBD");  // never valid: replaced at once
  EXPECT_EQ(d.push(byte(0xE4)), "");
  EXPECT_EQ(d.flush(), "\xEF\xBF\xBD");  // an unfinished character at the end
  IncrementalDetokenizer skip(t, /*skip_special=*/true);
  EXPECT_EQ(skip.push(400), "");
  EXPECT_EQ(skip.push(402), "<think>");
}

TEST(Tokenizer, IncrementalEqualsDecodeOnRandomIds) {
  const Tokenizer t = load_json(with_added_tokens(make_tokenizer(kHelloMerges)));
  std::mt19937 rng(1);
  for (int round = 0; round < 2000; ++round) {
    Ids ids(1 + rng() % 10);
    for (auto& id : ids) id = int32_t(rng() % uint32_t(t.vocab_size()));
    for (bool skip : {false, true}) {
      IncrementalDetokenizer d(t, skip);
      std::string streamed;
      for (int32_t id : ids) {
        const std::string piece = d.push(id);
        EXPECT_EQ(utf8::find_invalid(piece), utf8::npos);
        streamed += piece;
      }
      streamed += d.flush();
      ASSERT_EQ(streamed, t.decode(ids, skip));
    }
  }
}

TEST(Tokenizer, InvalidUtf8InputIsAnError) {
  const Tokenizer t = load_json(make_tokenizer(kHelloMerges));
  EXPECT_THROW(t.encode("ok\xC3("), Error);
  EXPECT_THROW(t.encode("\xED\xA0\x80"), Error);
  EXPECT_TRUE(t.encode("").empty());
}

TEST(Tokenizer, RandomBytesEncodeOrFailCleanly) {
  const Tokenizer t = load_json(with_added_tokens(make_tokenizer(kHelloMerges)));
  std::mt19937 rng(9);
  const std::string hot = "\xC3\xA9\xCC\x81\xE4\xB8\xAD\xF0\x9F\x98\x80<|end|> \n'sS";
  int valid = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string s(rng() % 40, '\0');
    for (char& c : s) c = rng() % 3 ? hot[rng() % hot.size()] : char(rng());
    if (utf8::find_invalid(s) != utf8::npos) {
      EXPECT_THROW(t.encode(s), Error);
      continue;
    }
    ++valid;
    const Ids ids = t.encode(s);
    // Only the NFC-normalised form comes back; compare after a second pass.
    EXPECT_EQ(t.encode(t.decode(ids)), ids);
  }
  EXPECT_GT(valid, 1000);
}

TEST(Tokenizer, ConfigFiles) {
  json j = with_added_tokens(make_tokenizer(kHelloMerges));
  const Tokenizer t = load_json(
      j, {{"tokenizer_config.json",
           R"({"bos_token": null, "eos_token": {"content": "<|end|>", "special": true}, "pad_token": "<think>"})"},
          {"generation_config.json", R"({"eos_token_id": [401, 400], "bos_token_id": 400})"}});
  EXPECT_FALSE(t.bos_id().has_value());
  EXPECT_EQ(t.eos_id(), 400);
  EXPECT_EQ(t.pad_id(), 402);
  EXPECT_EQ(t.eos_ids(), (Ids{400, 401}));
  const Tokenizer g = load_json(j, {{"generation_config.json", R"({"eos_token_id": 401})"}});
  EXPECT_EQ(g.eos_id(), 401);
  EXPECT_EQ(g.eos_ids(), (Ids{401}));
  const Tokenizer none = load_json(j);
  EXPECT_FALSE(none.eos_id().has_value());
  EXPECT_TRUE(none.eos_ids().empty());
}

TEST(Tokenizer, BadFilesAreErrors) {
  const std::string good = with_added_tokens(make_tokenizer(kHelloMerges)).dump();
  expect_load_error({}, "tokenizer.json not found");
  expect_load_error({{"tokenizer.json", "{\"model\": "}}, "tokenizer.json: malformed JSON");
  json wp = make_tokenizer(kHelloMerges);
  wp["model"]["type"] = "WordPiece";
  expect_load_error({{"tokenizer.json", wp.dump()}}, "unsupported model type \"WordPiece\"");
  json missing = make_tokenizer(kHelloMerges);
  missing["model"]["merges"].push_back("x yz");
  expect_load_error({{"tokenizer.json", missing.dump()}}, "missing from the vocab: \"yz\"");
  json wrong_type = make_tokenizer(kHelloMerges);
  wrong_type["model"]["ignore_merges"] = "yes";
  expect_load_error({{"tokenizer.json", wrong_type.dump()}}, "tokenizer.json: unexpected structure");
  json lower = make_tokenizer(kHelloMerges);
  lower["normalizer"] = {{"type", "Lowercase"}};
  expect_load_error({{"tokenizer.json", lower.dump()}}, "unsupported normalizer type \"Lowercase\"");
  json decoder = make_tokenizer(kHelloMerges);
  decoder["decoder"] = {{"type", "WordPiece"}};
  expect_load_error({{"tokenizer.json", decoder.dump()}}, "unsupported decoder");
  json regex = make_tokenizer(kHelloMerges);
  regex["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(oops";
  expect_load_error({{"tokenizer.json", regex.dump()}}, "does not compile");
  expect_load_error({{"tokenizer.json", good}, {"tokenizer_config.json", "{oops"}},
                    "tokenizer_config.json: malformed JSON");
  expect_load_error({{"tokenizer.json", good}, {"tokenizer_config.json", R"({"eos_token": "<nope>"})"}},
                    "eos_token \"<nope>\" is not in the vocabulary");
  expect_load_error({{"tokenizer.json", good}, {"tokenizer_config.json", R"({"eos_token": 5})"}},
                    "eos_token must be a string");
  expect_load_error({{"tokenizer.json", good}, {"generation_config.json", "[1,"}},
                    "generation_config.json: malformed JSON");
  expect_load_error({{"tokenizer.json", good}, {"generation_config.json", R"({"eos_token_id": "x"})"}},
                    "eos_token_id must be");
}

TEST(Tokenizer, ConcurrentEncodeIsConsistent) {
  const Tokenizer t = load_json(with_added_tokens(make_tokenizer(kHelloMerges)));
  std::vector<std::string> texts;
  std::mt19937 rng(3);
  const std::vector<std::string> parts = {"hello", " world", "<|end|>", "é", " ", "\n", "wor", "ld", "😀", "<think>"};
  for (int i = 0; i < 300; ++i) {
    std::string s;
    for (int k = 0; k < 1 + int(rng() % 12); ++k) s += parts[rng() % parts.size()];
    texts.push_back(s);
  }
  std::vector<Ids> want;
  for (const auto& s : texts) want.push_back(t.encode(s));
  t.clear_cache();
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int th = 0; th < 8; ++th) {
    threads.emplace_back([&, th] {
      for (int rep = 0; rep < 20; ++rep) {
        for (size_t i = th % 3; i < texts.size(); ++i) {
          if (t.encode(texts[i]) != want[i]) ++mismatches;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
}  // namespace mimo
