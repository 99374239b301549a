// Token logprobs in the three wire shapes: OpenAI chat
// ({"content": [{"token", "logprob", "bytes", "top_logprobs"}]}), OpenAI
// completions ({"tokens", "token_logprobs", "top_logprobs", "text_offset"})
// and SGLang's /generate meta_info ([logprob, id, text] triples).
#pragma once

#include <nlohmann/json.hpp>

#include <vector>

#include "engine/sampler.h"
#include "tokenizer/tokenizer.h"

namespace mimo::server {

using ojson = nlohmann::ordered_json;

// One token's text (lossy where a token holds part of a UTF-8 character;
// the bytes are exact) given an optional tokenizer.
std::string token_text(const Tokenizer* tok, int32_t id);
ojson token_bytes(const Tokenizer* tok, int32_t id);

// Chat: one element of logprobs.content per token.
ojson chat_logprobs_content(const std::vector<TokenLogprob>& lps, const Tokenizer* tok, int top_n);

// Completions: appends the tokens to `lp` (created when null); text_offset
// counts bytes of the completion text so far.
void append_completion_logprobs(ojson& lp, const std::vector<TokenLogprob>& lps, const Tokenizer* tok, int top_n,
                                size_t* text_offset);

// /generate: meta_info.output_token_logprobs and output_top_logprobs entries.
void append_native_logprobs(ojson& token_lps, ojson& top_lps, const std::vector<TokenLogprob>& lps,
                            const Tokenizer* tok, int top_n);

}  // namespace mimo::server
