#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <deque>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>

#include "core/error.h"
#include "tokenizer/added_tokens.h"
#include "tokenizer/bpe.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/utf8.h"

namespace mimo {

struct Tokenizer::Impl {
  std::unique_ptr<BpeModel> bpe;
  Normalizer normalizer;
  PreTokenizer pre_tokenizer;
  std::vector<AddedToken> added;
  std::unordered_map<int32_t, int32_t> added_by_id;         // id -> index in `added`
  struct SvHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  // content -> index in `added`
  std::unordered_map<std::string, int32_t, SvHash, std::equal_to<>> added_by_content;
  AddedTokenMatcher raw_matcher;   // tokens with normalized == false: matched in the input
  AddedTokenMatcher norm_matcher;  // tokens with normalized == true: matched after normalisation

  int32_t vocab_size = 0;
  std::string bytes_blob;            // decoded bytes of every id, back to back
  std::vector<uint32_t> bytes_off;   // vocab_size + 1 offsets into bytes_blob
  std::vector<uint8_t> special;      // per id

  std::optional<int32_t> bos, eos, pad;
  std::vector<int32_t> generation_eos;

  void encode_normalized(std::string_view text, std::vector<int32_t>* ids) const;
  void encode_plain(std::string_view text, bool parse_special, std::vector<int32_t>* ids) const;
};

namespace {

namespace fs = std::filesystem;

std::optional<std::string> read_optional(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return std::nullopt;
  std::ifstream f(path, std::ios::binary);
  MIMO_CHECK(f.good(), "cannot open {}", path.string());
  std::ostringstream ss;
  ss << f.rdbuf();
  MIMO_CHECK(!f.bad(), "error reading {}", path.string());
  return ss.str();
}

nlohmann::json parse_json(const std::string& text, const fs::path& path) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail("{}: malformed JSON: {}", path.string(), e.what());
  }
}

// The ByteLevel decoder turns each mapped character back into its byte (an
// added token such as "<|im_end|>" is printable ASCII, which maps to itself);
// a token with any other character, e.g. an added "中", keeps its raw UTF-8.
// Hugging Face runs added tokens through the decoder the same way.
std::string decode_token_bytes(std::string_view token) {
  std::string out;
  out.reserve(token.size());
  size_t i = 0;
  while (i < token.size()) {
    size_t len;
    const int b = byte_level::char_to_byte(utf8::decode_at(token, i, &len));
    if (b < 0) return std::string(token);
    out.push_back(char(b));
    i += len;
  }
  return out;
}

void check_decoder(const nlohmann::json& d) {
  MIMO_CHECK(d.is_object() && d.contains("type"),
             "tokenizer.json: decoder must be ByteLevel (byte-level BPE), got {}", d.dump());
  if (d["type"] == "Sequence") {
    MIMO_CHECK(d.contains("decoders") && d["decoders"].is_array() && d["decoders"].size() == 1,
               "tokenizer.json: only a Sequence of one ByteLevel decoder is supported");
    check_decoder(d["decoders"][0]);
    return;
  }
  MIMO_CHECK(d["type"] == "ByteLevel", "tokenizer.json: unsupported decoder type {}", d["type"].dump());
}

AddedToken parse_added_token(const nlohmann::json& j) {
  MIMO_CHECK(j.is_object() && j.contains("id") && j["id"].is_number_integer() && j.contains("content") &&
                 j["content"].is_string(),
             "tokenizer.json: added_tokens entries need an integer \"id\" and a string \"content\": {}", j.dump());
  AddedToken t;
  t.content = j["content"].get<std::string>();
  const int64_t id = j["id"].get<int64_t>();
  MIMO_CHECK(id >= 0 && id < (int64_t(1) << 24), "tokenizer.json: added token \"{}\" has id {} out of range",
             t.content, id);
  MIMO_CHECK(utf8::find_invalid(t.content) == utf8::npos, "tokenizer.json: added token {} is not valid UTF-8", id);
  t.id = int32_t(id);
  // Defaults are Hugging Face's AddedToken defaults.
  t.special = j.value("special", false);
  t.lstrip = j.value("lstrip", false);
  t.rstrip = j.value("rstrip", false);
  t.single_word = j.value("single_word", false);
  t.normalized = j.value("normalized", true);
  return t;
}

// tokenizer_config.json writes special tokens as "text", null, or an
// AddedToken object {"content": "text", ...}.
std::optional<std::string> config_token(const nlohmann::json& cfg, const char* key, const fs::path& path) {
  if (!cfg.contains(key) || cfg[key].is_null()) return std::nullopt;
  const auto& v = cfg[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  fail("{}: {} must be a string or an object with \"content\", got {}", path.string(), key, v.dump());
}

}  // namespace

Tokenizer Tokenizer::load(const std::string& model_dir) {
  const fs::path dir(model_dir);
  const fs::path tok_path = dir / "tokenizer.json";
  auto impl = std::make_shared<Impl>();
  Impl& m = *impl;

  const auto tok_text = read_optional(tok_path);
  MIMO_CHECK(tok_text.has_value(), "tokenizer.json not found in {}", model_dir);
  {
    const nlohmann::json j = parse_json(*tok_text, tok_path);
    try {
      MIMO_CHECK(j.is_object() && j.contains("model"), "tokenizer.json: no \"model\"");
      m.bpe = BpeModel::from_json(j["model"]);
      m.normalizer = Normalizer::from_json(j.value("normalizer", nlohmann::json()));
      MIMO_CHECK(j.contains("pre_tokenizer"), "tokenizer.json: no \"pre_tokenizer\"");
      m.pre_tokenizer = PreTokenizer::from_json(j["pre_tokenizer"]);
      check_decoder(j.value("decoder", nlohmann::json()));
      if (j.contains("added_tokens") && !j["added_tokens"].is_null()) {
        MIMO_CHECK(j["added_tokens"].is_array(), "tokenizer.json: \"added_tokens\" must be an array");
        for (const auto& a : j["added_tokens"]) m.added.push_back(parse_added_token(a));
      }
    } catch (const nlohmann::json::exception& e) {
      // Wrong JSON types (a string where a bool belongs, ...) surface here.
      fail("{}: unexpected structure: {}", tok_path.string(), e.what());
    } catch (const Error& e) {
      std::string_view msg = e.what();
      if (msg.starts_with("tokenizer.json: ")) msg.remove_prefix(16);
      fail("{}: {}", tok_path.string(), msg);
    }
  }

  m.vocab_size = m.bpe->id_limit();
  for (int32_t i = 0; i < int32_t(m.added.size()); ++i) {
    const AddedToken& t = m.added[i];
    MIMO_CHECK(!m.added_by_id.count(t.id), "{}: added token id {} appears twice", tok_path.string(), t.id);
    m.added_by_id[t.id] = i;
    m.added_by_content.emplace(t.content, i);
    m.vocab_size = std::max(m.vocab_size, t.id + 1);
    if (t.normalized) {
      std::string storage;
      m.norm_matcher.add(std::string(m.normalizer.apply(t.content, &storage)), i);
    } else {
      m.raw_matcher.add(t.content, i);
    }
  }

  m.bytes_off.assign(size_t(m.vocab_size) + 1, 0);
  m.special.assign(size_t(m.vocab_size), 0);
  for (int32_t id = 0; id < m.vocab_size; ++id) {
    m.bytes_off[id] = uint32_t(m.bytes_blob.size());
    auto it = m.added_by_id.find(id);
    if (it != m.added_by_id.end()) {
      const AddedToken& t = m.added[it->second];
      m.bytes_blob += decode_token_bytes(t.content);
      m.special[id] = t.special;
    } else if (auto tok = m.bpe->id_to_token(id)) {
      m.bytes_blob += decode_token_bytes(*tok);
    }
  }
  m.bytes_off[m.vocab_size] = uint32_t(m.bytes_blob.size());

  Tokenizer tok(impl);
  auto lookup = [&](const std::string& s, const char* key, const fs::path& path) {
    auto id = tok.token_to_id(s);
    MIMO_CHECK(id.has_value(), "{}: {} \"{}\" is not in the vocabulary", path.string(), key, s);
    return *id;
  };

  const fs::path cfg_path = dir / "tokenizer_config.json";
  if (auto text = read_optional(cfg_path)) {
    const nlohmann::json cfg = parse_json(*text, cfg_path);
    MIMO_CHECK(cfg.is_object(), "{}: expected a JSON object", cfg_path.string());
    if (auto s = config_token(cfg, "bos_token", cfg_path)) m.bos = lookup(*s, "bos_token", cfg_path);
    if (auto s = config_token(cfg, "eos_token", cfg_path)) m.eos = lookup(*s, "eos_token", cfg_path);
    if (auto s = config_token(cfg, "pad_token", cfg_path)) m.pad = lookup(*s, "pad_token", cfg_path);
  }

  const fs::path gen_path = dir / "generation_config.json";
  if (auto text = read_optional(gen_path)) {
    const nlohmann::json gen = parse_json(*text, gen_path);
    MIMO_CHECK(gen.is_object(), "{}: expected a JSON object", gen_path.string());
    if (gen.contains("eos_token_id") && !gen["eos_token_id"].is_null()) {
      const auto& v = gen["eos_token_id"];
      std::vector<nlohmann::json> items = v.is_array() ? v.get<std::vector<nlohmann::json>>() : std::vector<nlohmann::json>{v};
      for (const auto& x : items) {
        MIMO_CHECK(x.is_number_integer() && x.get<int64_t>() >= 0 && x.get<int64_t>() < m.vocab_size,
                   "{}: eos_token_id must be an id below {} or a list of them, got {}", gen_path.string(),
                   m.vocab_size, v.dump());
        m.generation_eos.push_back(x.get<int32_t>());
      }
    }
  }
  return tok;
}

// ---------------------------------------------------------------- encode

void Tokenizer::Impl::encode_normalized(std::string_view text, std::vector<int32_t>* ids) const {
  std::vector<std::string_view> pieces;
  std::deque<std::string> arena;
  pre_tokenizer.split(text, &pieces, &arena);
  for (std::string_view p : pieces) bpe->encode(p, ids);
}

void Tokenizer::Impl::encode_plain(std::string_view text, bool parse_special, std::vector<int32_t>* ids) const {
  std::string storage;
  const std::string_view norm = normalizer.apply(text, &storage);
  if (norm_matcher.empty()) {
    encode_normalized(norm, ids);
    return;
  }
  std::vector<AddedTokenMatcher::Segment> segs;
  norm_matcher.split(norm, added, parse_special, &segs);
  for (const auto& s : segs) {
    if (s.token >= 0) ids->push_back(added[s.token].id);
    else encode_normalized(norm.substr(s.begin, s.end - s.begin), ids);
  }
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool parse_special) const {
  const Impl& m = *impl_;
  if (const size_t bad = utf8::find_invalid(text); bad != utf8::npos) {
    fail("tokenizer: input is not valid UTF-8 (byte 0x{:02X} at offset {} of {})", uint8_t(text[bad]), bad,
         text.size());
  }
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  if (m.raw_matcher.empty()) {
    m.encode_plain(text, parse_special, &ids);
    return ids;
  }
  std::vector<AddedTokenMatcher::Segment> segs;
  m.raw_matcher.split(text, m.added, parse_special, &segs);
  for (const auto& s : segs) {
    if (s.token >= 0) ids.push_back(m.added[s.token].id);
    else m.encode_plain(text.substr(s.begin, s.end - s.begin), parse_special, &ids);
  }
  return ids;
}

// ---------------------------------------------------------------- decode and lookups

std::string_view Tokenizer::token_bytes(int32_t id) const {
  const Impl& m = *impl_;
  if (id < 0 || id >= m.vocab_size) return {};
  return std::string_view(m.bytes_blob).substr(m.bytes_off[id], m.bytes_off[id + 1] - m.bytes_off[id]);
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  const Impl& m = *impl_;
  std::string bytes;
  bytes.reserve(ids.size() * 4);
  for (int32_t id : ids) {
    if (id < 0 || id >= m.vocab_size || (skip_special && m.special[id])) continue;
    bytes += token_bytes(id);
  }
  std::string out;
  out.reserve(bytes.size());
  utf8::decode_lossy(bytes, /*final=*/true, &out);
  return out;
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  const Impl& m = *impl_;
  // Added tokens win over the vocab, as in Hugging Face's AddedVocabulary.
  if (!m.added.empty()) {
    auto it = m.added_by_content.find(token);
    if (it != m.added_by_content.end()) return m.added[it->second].id;
  }
  return m.bpe->token_to_id(token);
}

std::string Tokenizer::id_to_token(int32_t id) const {
  const Impl& m = *impl_;
  auto it = m.added_by_id.find(id);
  if (it != m.added_by_id.end()) return m.added[it->second].content;
  auto tok = m.bpe->id_to_token(id);
  MIMO_CHECK(tok.has_value(), "tokenizer: no token has id {} (vocab size {})", id, m.vocab_size);
  return std::string(*tok);
}

int32_t Tokenizer::vocab_size() const { return impl_->vocab_size; }

bool Tokenizer::is_special(int32_t id) const { return id >= 0 && id < impl_->vocab_size && impl_->special[id]; }

std::optional<int32_t> Tokenizer::bos_id() const { return impl_->bos; }
std::optional<int32_t> Tokenizer::pad_id() const { return impl_->pad; }

std::optional<int32_t> Tokenizer::eos_id() const {
  if (impl_->eos) return impl_->eos;
  if (!impl_->generation_eos.empty()) return impl_->generation_eos.front();
  return std::nullopt;
}

std::vector<int32_t> Tokenizer::eos_ids() const {
  std::vector<int32_t> out;
  if (impl_->eos) out.push_back(*impl_->eos);
  for (int32_t id : impl_->generation_eos) {
    if (std::find(out.begin(), out.end(), id) == out.end()) out.push_back(id);
  }
  return out;
}

void Tokenizer::clear_cache() const { impl_->bpe->clear_cache(); }

// ---------------------------------------------------------------- streaming

IncrementalDetokenizer::IncrementalDetokenizer(const Tokenizer& tokenizer, bool skip_special)
    : tokenizer_(tokenizer), skip_special_(skip_special) {}

std::string IncrementalDetokenizer::push(int32_t id) {
  if (skip_special_ && tokenizer_.is_special(id)) return {};
  pending_ += tokenizer_.token_bytes(id);
  std::string out;
  // Same decoder as Tokenizer::decode, stopping before an unfinished
  // character: the held bytes are re-read with whatever comes next.
  const size_t used = utf8::decode_lossy(pending_, /*final=*/false, &out);
  pending_.erase(0, used);
  return out;
}

std::string IncrementalDetokenizer::flush() {
  std::string out;
  utf8::decode_lossy(pending_, /*final=*/true, &out);
  pending_.clear();
  return out;
}

}  // namespace mimo
