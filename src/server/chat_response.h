// Builds /v1/chat/completions responses from engine outputs: the reasoning
// split, tool calls, logprobs, finish reasons and usage. The HTTP handler
// feeds it the engine's outputs as they come; tests feed it canned outputs
// through the same calls. Streaming and non-streaming share the
// accumulation: push() returns the chunks to send now, response() the
// whole body once every choice has finished.
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "parsers/output_parser.h"
#include "parsers/tool_choice.h"
#include "server/response_common.h"
#include "tokenizer/tokenizer.h"

namespace mimo::server {

struct ChatResponseOptions {
  std::string id;  // "chatcmpl-..."
  std::string model;
  int64_t created = 0;
  int n = 1;
  bool include_usage = false;      // stream_options.include_usage
  std::string reasoning_parser;    // "" = no reasoning split
  ReasoningOptions reasoning;
  std::string tool_parser;         // "" = no tool-call parsing
  nlohmann::json tools;            // the request's tools, for the parser
  ToolChoice tool_choice;
  std::string forced_opening;      // text the prompt ends with that belongs to the output (a forced tool call)
  bool logprobs = false;
  int top_logprobs = 0;
  std::vector<std::string> stop;   // the request's stop strings (matched_stop typing)
  const Tokenizer* tokenizer = nullptr;  // token strings and the reasoning token count
  IdGenerator call_ids;            // empty: random tool-call ids
  bool parallel_tool_calls = true; // false: only the first tool call is returned (OpenAI's parallel_tool_calls)
};

class ChatResponseBuilder {
 public:
  explicit ChatResponseBuilder(ChatResponseOptions o);
  ~ChatResponseBuilder();

  // The first chunk of each choice: delta {role: assistant, content: ""}.
  std::vector<ojson> start();
  // Chunks carrying what this output adds to choice `index`; the last one of
  // a finished choice has finish_reason.
  std::vector<ojson> push(int index, const EngineOutput& out);
  // After every choice finished: the usage chunk (choices: []) when asked.
  std::vector<ojson> finish();

  bool finished() const;
  // Set when a choice ended with an error: return this instead.
  std::optional<ApiError> error() const;
  // The non-streaming body (call after every choice finished).
  ojson response() const;
  ojson usage() const;

  // The one-shot result of a choice (for tests and logs).
  const ChatResult& result(int index) const;

 private:
  struct Choice;
  ojson chunk(ojson choices) const;
  ojson message(const Choice& c) const;
  std::string finish_reason(const Choice& c) const;

  ChatResponseOptions o_;
  std::vector<std::unique_ptr<Choice>> choices_;
};

}  // namespace mimo::server
