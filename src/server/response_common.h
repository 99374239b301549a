// What the response builders track per choice, and the pieces of a response
// both OpenAI endpoints share.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "server/api_error.h"

namespace mimo::server {

using ojson = nlohmann::ordered_json;

struct ChoiceProgress {
  std::vector<int32_t> ids;
  int prompt_tokens = 0, completion_tokens = 0, cached_tokens = 0;
  double spec_accept_length = 0;  // 0 without speculative decoding
  bool finished = false;
  std::string finish_reason, matched, error;
  EngineError::Kind error_kind = EngineError::Internal;

  void add(const EngineOutput& o) {
    ids.insert(ids.end(), o.token_ids.begin(), o.token_ids.end());
    prompt_tokens = o.prompt_tokens;
    completion_tokens = o.completion_tokens;
    cached_tokens = o.cached_tokens;
    spec_accept_length = o.spec_accept_length;
    if (o.finished) {
      finished = true;
      finish_reason = o.finish_reason;
      matched = o.matched_stop;
      error = o.error;
      error_kind = o.error_kind;
    }
  }
};

// SGLang's matched_stop: the stop string, the token id that stopped
// generation (an integer), or null.
inline ojson matched_stop_json(const ChoiceProgress& c, const std::vector<std::string>& stops) {
  if (c.finish_reason != "stop" || c.matched.empty()) return nullptr;
  for (auto& s : stops)
    if (s == c.matched) return c.matched;
  try {
    size_t pos = 0;
    long long id = std::stoll(c.matched, &pos);
    if (pos == c.matched.size()) return id;
  } catch (...) {
  }
  return c.matched;
}

// A request that ended with an error (the engine reports these as a finish
// with a message): what the client gets instead of a completion.
inline std::optional<ApiError> output_error(const ChoiceProgress& c) {
  if (!c.finished) return std::nullopt;
  // A request aborted by /abort_request is no error: its client gets what
  // was generated, with finish_reason "abort", as from SGLang. One the
  // server aborts while shutting down carries that error.
  if (c.error.empty()) return std::nullopt;
  if (c.error_kind == EngineError::Internal) return ApiError(500, c.error, "server_error");
  return from_engine_error(c.error_kind, c.error);
}

}  // namespace mimo::server
