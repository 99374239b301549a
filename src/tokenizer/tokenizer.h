// A Hugging Face-compatible tokenizer for byte-level BPE tokenizer.json files
// (Qwen2, Qwen3, MiMo). Encode follows the `tokenizers` pipeline: added
// tokens are cut out of the raw text first, the rest is normalised (NFC),
// split by the pre-tokenizer regex, and merged by BPE. The post_processor is
// not applied: encode never adds BOS/EOS (the chat template writes them).
//
// Every const method is thread-safe: HTTP threads share one Tokenizer.
// Copies are cheap and share the loaded tables.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace mimo {

class Tokenizer {
 public:
  // Reads DIR/tokenizer.json (required) plus DIR/tokenizer_config.json
  // (bos/eos/pad token strings) and DIR/generation_config.json (eos_token_id,
  // an int or a list) when present. Throws mimo::Error naming the file for
  // missing or malformed files and unsupported tokenizer features.
  static Tokenizer load(const std::string& model_dir);

  // Throws mimo::Error if `text` is not valid UTF-8. With parse_special false,
  // special added tokens are encoded as plain text; non-special added tokens
  // (e.g. <think>) are still matched, as with Hugging Face's
  // encode_special_tokens.
  std::vector<int32_t> encode(std::string_view text, bool parse_special = true) const;

  // Ids without a token (negative, out of range, holes) are skipped, as
  // Hugging Face does; bytes that do not form UTF-8 become U+FFFD.
  std::string decode(std::span<const int32_t> ids, bool skip_special = false) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  // The vocab string (byte-level form, e.g. "Ġthe") or added token content.
  // Throws mimo::Error for an id without a token.
  std::string id_to_token(int32_t id) const;
  // The raw bytes a token contributes to decoded text: possibly part of a
  // UTF-8 sequence. Empty for an id without a token.
  std::string_view token_bytes(int32_t id) const;

  // Largest token id + 1, over the BPE vocab and the added tokens (151669 for
  // Qwen3). The model's embedding table may be larger.
  int32_t vocab_size() const;
  bool is_special(int32_t id) const;

  std::optional<int32_t> bos_id() const;
  // eos_token of tokenizer_config.json, else the first eos_token_id of generation_config.json.
  std::optional<int32_t> eos_id() const;
  std::optional<int32_t> pad_id() const;
  // Every id that ends generation: eos_id() then generation_config's eos_token_id list, without repeats.
  std::vector<int32_t> eos_ids() const;

  // Drops the per-piece BPE cache (benchmarks use it to time cold encodes).
  void clear_cache() const;

  struct Impl;

 private:
  explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

// Turns a stream of generated ids into text pieces. push() returns only
// complete UTF-8: bytes of a character split across tokens are held until the
// token that completes it arrives. The concatenation of every push() and the
// final flush() equals tokenizer.decode(all ids, skip_special). One instance
// per stream; not thread-safe.
class IncrementalDetokenizer {
 public:
  explicit IncrementalDetokenizer(const Tokenizer& tokenizer, bool skip_special = false);

  std::string push(int32_t id);
  // Emits what is still held (an unfinished character becomes U+FFFD).
  std::string flush();

 private:
  Tokenizer tokenizer_;  // a cheap copy, so the stream cannot outlive the tables
  bool skip_special_;
  std::string pending_;  // a UTF-8 prefix waiting for its remaining bytes
};

}  // namespace mimo
