// Builds /v1/completions responses from engine outputs (streaming chunks or
// the whole body), like ChatResponseBuilder but with plain text choices.
// Choice i is sample i % n of prompt i / n.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "server/response_common.h"
#include "tokenizer/tokenizer.h"

namespace mimo::server {

struct CompletionResponseOptions {
  std::string id;  // "cmpl-..."
  std::string model;
  int64_t created = 0;
  int prompts = 1, n = 1;
  bool include_usage = false;
  int logprobs = -1;  // -1: none
  std::vector<std::string> stop;
  const Tokenizer* tokenizer = nullptr;
  // echo: each prompt's text (and first token id, whose logprob entry is
  // null) goes before its choices' completions.
  bool echo = false;
  std::vector<std::string> prompt_texts;
  std::vector<int32_t> prompt_first_ids;
};

class CompletionResponseBuilder {
 public:
  explicit CompletionResponseBuilder(CompletionResponseOptions o);
  std::vector<ojson> push(int index, const EngineOutput& out);
  std::vector<ojson> finish();
  bool finished() const;
  std::optional<ApiError> error() const;
  ojson response() const;
  ojson usage() const;

 private:
  struct Choice {
    ChoiceProgress progress;
    std::string text;
    ojson logprobs;
    size_t text_offset = 0;
    bool echoed = false;
  };
  // The echoed prompt's text and logprobs, ahead of the choice's first output.
  void echo(int index, Choice& c, const EngineOutput& out, std::string* text, ojson* lp);
  ojson chunk(ojson choices) const;
  CompletionResponseOptions o_;
  std::vector<Choice> choices_;
};

}  // namespace mimo::server
