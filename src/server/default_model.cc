#include "server/default_model.h"

#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "core/error.h"
#include "core/log.h"
#include "loader/checkpoint_maker.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/utf8.h"

namespace mimo::server {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace {

// Bump when the generated files change, so old caches are not reused.
constexpr const char* kCacheName = "default-model-v1-mtp3";
constexpr int kVocab = 512;
constexpr int kContext = 8192;

const char* const kSpecial[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>",
                                "</think>",      "<tool_call>",  "</tool_call>"};
constexpr int kNumSpecial = 7;

// Text the merges are learnt from: any English prose gives a vocabulary whose
// tokens look like words, which makes the random model's output readable
// enough to eyeball streaming in the web page.
constexpr const char* kCorpus =
    "The server reads a request, turns the messages into a prompt with the chat template, and hands the tokens "
    "to the engine. The engine runs the model one step at a time for every request in the batch, and each new "
    "token goes back to the client as soon as it is sampled. When the answer is done, the server counts the "
    "tokens of the prompt and of the completion and returns them with the text. If the model thinks before it "
    "answers, the reasoning is kept apart from the content, and when it calls a tool the call is returned as a "
    "function name with its arguments. You can ask the assistant a question and it will answer you. The user "
    "writes a message; the assistant writes the reply. Thinking is what the model does first: it plans the "
    "answer, checks the facts, and then writes the final text. A tool call asks the client to run a function, "
    "such as the weather in a city or the time in a country, and to send the result back in the next message. "
    "There are many requests at the same time on a busy server, so the scheduler shares the memory of the cache "
    "between them and reuses the prefix that two prompts have in common. Sliding window layers only keep the "
    "last few tokens, while full attention layers keep all of them. This is a small model with random weights: "
    "its words do not mean anything, but every part of the serving stack runs on it, from the tokenizer to the "
    "parsers of the output. Please check the output, stream the answer, and stop when the length is reached or "
    "when the model writes the end of its turn. Numbers like 1, 2, 3, 10, 42 and 2024 are split into digits. "
    "Hello, world! How are you today? I am fine, thank you. What is the weather like in Paris and in London? "
    "It is sunny and warm, with a light wind from the west. Let me think about that for a moment. First, we "
    "need the data; second, we need a plan; third, we write the code and test it until every test passes. "
    "Good morning, good evening, good night. Here is the result of the function you called. Let us continue "
    "with the next step of the task and explain why the answer is correct. The quick brown fox jumps over the "
    "lazy dog, and the dog does not wake up. Which one do you prefer: tea or coffee, water or juice, rain or "
    "sun? In the morning people read the news, in the afternoon they work, and in the evening they rest. ";

std::string byte_char(unsigned char b) {
  std::string s;
  utf8::append(&s, byte_level::kByteToChar[b]);
  return s;
}

// Splits text roughly as the Qwen2 pre-tokenizer does (an optional leading
// space or mark glued to a run of letters; digits alone; punctuation runs;
// whitespace), each piece as its byte-level symbols.
std::vector<std::vector<std::string>> pieces(const std::string& text) {
  std::vector<std::vector<std::string>> out;
  size_t i = 0;
  auto alpha = [&](size_t k) { return k < text.size() && std::isalpha(static_cast<unsigned char>(text[k])); };
  while (i < text.size()) {
    size_t j = i;
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (std::isdigit(c)) {
      j = i + 1;
    } else if (alpha(i) || (!std::isalnum(c) && c != '\n' && alpha(i + 1))) {
      j = i + 1;
      while (alpha(j)) j++;
    } else if (std::isspace(c)) {
      while (j < text.size() && std::isspace(static_cast<unsigned char>(text[j])) && !alpha(j + 1)) j++;
      if (j == i) j = i + 1;
    } else {
      while (j < text.size() && std::ispunct(static_cast<unsigned char>(text[j]))) j++;
      if (j == i) j = i + 1;
    }
    std::vector<std::string> p;
    for (size_t k = i; k < j; k++) p.push_back(byte_char(static_cast<unsigned char>(text[k])));
    out.push_back(std::move(p));
    i = j;
  }
  return out;
}

// Classic BPE training: repeatedly merge the most frequent adjacent pair
// (ties to the smallest pair, so the result is the same everywhere).
std::vector<std::pair<std::string, std::string>> learn_merges(int max_new_tokens) {
  std::map<std::vector<std::string>, int> words;
  for (auto& p : pieces(kCorpus)) words[p]++;
  std::vector<std::pair<std::vector<std::string>, int>> ws(words.begin(), words.end());
  std::vector<std::pair<std::string, std::string>> merges;
  std::set<std::string> made;
  while (int(made.size()) < max_new_tokens) {
    std::map<std::pair<std::string, std::string>, int> counts;
    for (auto& [w, n] : ws)
      for (size_t k = 0; k + 1 < w.size(); k++) counts[{w[k], w[k + 1]}] += n;
    if (counts.empty()) break;
    auto best = counts.begin();
    for (auto it = counts.begin(); it != counts.end(); ++it)
      if (it->second > best->second) best = it;
    auto [a, b] = best->first;
    merges.push_back({a, b});
    made.insert(a + b);
    for (auto& [w, n] : ws) {
      std::vector<std::string> nw;
      for (size_t k = 0; k < w.size(); k++) {
        if (k + 1 < w.size() && w[k] == a && w[k + 1] == b) {
          nw.push_back(a + b);
          k++;
        } else {
          nw.push_back(w[k]);
        }
      }
      w = std::move(nw);
    }
  }
  return merges;
}

void write_file(const fs::path& p, const std::string& text) {
  std::ofstream f(p, std::ios::binary);
  f << text;
  if (!f) fail("cannot write {}", p.string());
}

}  // namespace

const std::string& builtin_chat_template() {
  static const std::string t =
#include "mimo_template.inc"
      ;
  return t;
}

void write_tokenizer_files(const std::string& dir, int vocab, const std::string& chat_template) {
  MIMO_CHECK(vocab >= 256 + kNumSpecial, "a byte-level vocabulary needs at least {} ids, got {}",
             256 + kNumSpecial, vocab);
  const int first_special = vocab - kNumSpecial;
  json v = json::object();
  for (int b = 0; b < 256; b++) v[byte_char(static_cast<unsigned char>(b))] = b;
  int next = 256;
  json jm = json::array();
  for (auto& [a, b] : learn_merges(first_special - 256)) {
    if (!v.contains(a + b)) v[a + b] = next++;
    jm.push_back(a + " " + b);
  }
  // Ids the corpus could not fill (only for very large vocabularies) stay
  // holes: they decode to nothing.
  json added = json::array();
  json decoder = json::object();
  for (int k = 0; k < kNumSpecial; k++) {
    bool special = k < 3;  // like Qwen3: <think> and tool tags are added tokens that decode with skip_special
    json t = {{"id", first_special + k}, {"content", kSpecial[k]}, {"single_word", false}, {"lstrip", false},
              {"rstrip", false}, {"normalized", false}, {"special", special}};
    added.push_back(t);
    json d = t;
    d.erase("id");
    decoder[std::to_string(first_special + k)] = d;
  }
  const json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false},
                           {"use_regex", false}};
  const char* pattern =
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  json tok = {{"version", "1.0"},
              {"truncation", nullptr},
              {"padding", nullptr},
              {"added_tokens", added},
              {"normalizer", {{"type", "NFC"}}},
              {"pre_tokenizer",
               {{"type", "Sequence"},
                {"pretokenizers",
                 {{{"type", "Split"}, {"pattern", {{"Regex", pattern}}}, {"behavior", "Isolated"}, {"invert", false}},
                  byte_level}}}},
              {"post_processor", byte_level},
              {"decoder", byte_level},
              {"model",
               {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", ""},
                {"end_of_word_suffix", ""}, {"fuse_unk", false}, {"byte_fallback", false}, {"ignore_merges", false},
                {"vocab", v}, {"merges", jm}}}};
  json cfg = {{"add_bos_token", false},
              {"add_prefix_space", false},
              {"added_tokens_decoder", decoder},
              {"bos_token", nullptr},
              {"eos_token", "<|im_end|>"},
              {"pad_token", "<|endoftext|>"},
              {"unk_token", nullptr},
              {"model_max_length", kContext},
              {"tokenizer_class", "Qwen2Tokenizer"},
              {"chat_template", chat_template}};
  json gen = {{"eos_token_id", {first_special + 2, first_special}}};
  fs::path d(dir);
  write_file(d / "tokenizer.json", tok.dump(2));
  write_file(d / "tokenizer_config.json", cfg.dump(2));
  write_file(d / "generation_config.json", gen.dump(2));
}

void write_default_model(const std::string& dir) {
  MakerOptions o = MakerOptions::preset("tiny");
  o.vocab = kVocab;
  o.seed = 20240607;
  o.eos_token_id = kVocab - kNumSpecial + 2;  // <|im_end|>
  o.mtp_layers = 3;  // so --enable-mtp works out of the box
  make_checkpoint(o, dir);
  // A context that fits the tiny KV budget the default model gets, and that
  // bounds requests sent without max_tokens.
  fs::path cp = fs::path(dir) / "config.json";
  json c = json::parse(std::ifstream(cp));
  c["max_position_embeddings"] = kContext;
  write_file(cp, c.dump(2));
  write_tokenizer_files(dir, kVocab, builtin_chat_template());
}

std::string default_model_path() {
  // The trained model committed under models/ (see tools/train), found by
  // the path the build saw; when it is not there (an installed binary
  // without the source tree), a random one is generated once.
  // MIMOSERVE_DEFAULT_MODEL=random picks the generated one (the server tests
  // pin it, so their expectations do not depend on trained weights).
#ifdef MIMOSERVE_DEFAULT_MODEL_DIR
  const char* pick = std::getenv("MIMOSERVE_DEFAULT_MODEL");
  bool random = pick && std::string(pick) == "random";
  if (!random && fs::exists(fs::path(MIMOSERVE_DEFAULT_MODEL_DIR) / "config.json")) return MIMOSERVE_DEFAULT_MODEL_DIR;
#endif
  fs::path base;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) base = fs::path(x) / "mimoserve";
  else if (const char* h = std::getenv("HOME"); h && *h) base = fs::path(h) / ".cache" / "mimoserve";
  else base = fs::temp_directory_path() / "mimoserve-cache";
  fs::path dir = base / kCacheName;
  if (fs::exists(dir / "tokenizer_config.json")) return dir.string();
  std::error_code ec;
  fs::create_directories(base, ec);
  if (ec) fail("cannot create the cache folder {} for the default model: {}", base.string(), ec.message());
  // Written aside and renamed, so a half-written model is never used and a
  // concurrent start just finds the other one's result.
  fs::path tmp = base / (std::string(kCacheName) + ".tmp-" + std::to_string(::getpid()) + "-" +
                         std::to_string(std::random_device{}()));
  fs::create_directories(tmp);
  spdlog::info("generating the default model (random weights) into {}", dir.string());
  try {
    write_default_model(tmp.string());
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
  fs::rename(tmp, dir, ec);
  if (ec) {
    fs::remove_all(tmp, ec);
    if (!fs::exists(dir / "tokenizer_config.json")) fail("cannot create the default model in {}", dir.string());
  }
  return dir.string();
}

}  // namespace mimo::server
