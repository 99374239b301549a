// Request bodies of the OpenAI-compatible and native endpoints, parsed and
// validated into what the engine and the response builders need. Every bad
// field is an ApiError (400) naming it; fields this build cannot honour are
// refused rather than ignored.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "engine/sampler.h"
#include "parsers/tool_choice.h"
#include "server/api_error.h"

namespace mimo::server {

using ojson = nlohmann::ordered_json;

// A prompt given as text or as token ids.
struct Prompt {
  bool is_text = true;
  std::string text;
  std::vector<int32_t> ids;
};

struct ChatRequest {
  bool parallel_tool_calls = true;  // false: at most one tool call comes back
  std::string model;  // empty when absent
  ojson messages;     // validated array of message objects
  ojson tools;        // null or the request's array (validated)
  ToolChoice tool_choice;
  ojson chat_template_kwargs;  // null or an object
  bool enable_thinking = true; // chat_template_kwargs.enable_thinking
  bool separate_reasoning = true;
  bool add_generation_prompt = true;
  bool continue_final_message = false;
  SamplingParams sampling;
  int n = 1;
  bool stream = false, include_usage = false;
  bool logprobs = false;
  int top_logprobs = 0;
};

struct CompletionRequest {
  std::string model;
  std::vector<Prompt> prompts;
  SamplingParams sampling;
  int n = 1;
  bool stream = false, include_usage = false;
  int logprobs = -1;  // -1: none; else how many alternatives per token
  bool echo = false;  // the prompt comes back before the completion (with its logprobs when asked for)
};

// SGLang's /generate.
struct GenerateRequest {
  std::vector<Prompt> prompts;
  bool batched = false;  // text/input_ids was a list: the response is a list
  SamplingParams sampling;
  int n = 1;
  bool stream = false;
  bool return_logprob = false;
  int top_logprobs_num = 0;
  int logprob_start_len = -1;  // >= 0 with return_logprob: input_token_logprobs from this prompt position
  std::string rid;
};

// Parses a request body; 400 for malformed JSON or a body that is not an object.
ojson parse_body(const std::string& text);

ChatRequest parse_chat_request(const ojson& body);
CompletionRequest parse_completion_request(const ojson& body);
GenerateRequest parse_generate_request(const ojson& body);

// The tools in the form SGLang hands the chat template: the "function"
// objects of the request's tools.
ojson template_tools(const ojson& tools);

}  // namespace mimo::server
