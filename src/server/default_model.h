// The model `mimoserve serve` runs when no --model-path is given: a small
// random MiMo-V2-Flash checkpoint with a real tokenizer and chat template, so
// the whole stack (template, tokenizer, engine, detokenizer, parsers) runs on
// a fresh machine without downloads. It is generated once into a cache
// folder. (When a trained tiny model is committed under models/,
// default_model_path() returns that instead.)
#pragma once

#include <string>

namespace mimo::server {

// The default model's folder, generating it on first use:
// $XDG_CACHE_HOME/mimoserve/default-model-v1 (or ~/.cache/..., or /tmp/...).
// Safe when several processes start at once (written aside, then renamed).
std::string default_model_path();

// Writes the default model (config.json, model.safetensors, tokenizer files)
// into `dir`, which must exist.
void write_default_model(const std::string& dir);

// Writes tokenizer.json, tokenizer_config.json (with `chat_template`) and
// generation_config.json for a byte-level BPE vocabulary of exactly `vocab`
// ids: the 256 bytes, merges learnt from a built-in English text, and the
// special tokens <|endoftext|> <|im_start|> <|im_end|> <think> </think>
// <tool_call> </tool_call> as the last seven ids. `vocab` >= 263.
void write_tokenizer_files(const std::string& dir, int vocab, const std::string& chat_template);

// The MiMo-style chat template compiled into the binary (src/chat/templates/mimo.jinja).
const std::string& builtin_chat_template();

}  // namespace mimo::server
