#include "server/completion_response.h"

#include "server/logprobs_json.h"

namespace mimo::server {

CompletionResponseBuilder::CompletionResponseBuilder(CompletionResponseOptions o)
    : o_(std::move(o)), choices_(size_t(o_.prompts * o_.n)) {}

ojson CompletionResponseBuilder::chunk(ojson choices) const {
  return {{"id", o_.id}, {"object", "text_completion"}, {"created", o_.created}, {"model", o_.model},
          {"choices", std::move(choices)}};
}

std::vector<ojson> CompletionResponseBuilder::push(int index, const EngineOutput& out) {
  Choice& c = choices_.at(size_t(index));
  std::vector<ojson> chunks;
  if (c.progress.finished) return chunks;
  c.progress.add(out);
  if (auto e = output_error(c.progress)) {
    chunks.push_back(e->body());
    return chunks;
  }
  std::string text;
  ojson lp;
  if (o_.echo && !c.echoed) echo(index, c, out, &text, &lp);
  text += out.text;
  c.text += text;
  if (o_.logprobs >= 0 && !out.logprobs.empty()) {
    append_completion_logprobs(lp, out.logprobs, o_.tokenizer, o_.logprobs, &c.text_offset);
  }
  if (!lp.is_null()) {
    if (c.logprobs.is_null()) {
      c.logprobs = lp;
    } else {
      for (auto& k : {"tokens", "token_logprobs", "top_logprobs", "text_offset"})
        for (auto& x : lp[k]) c.logprobs[k].push_back(x);
    }
  }
  if (!text.empty() || !lp.is_null() || out.finished) {
    ojson ch = {{"index", index},
                {"text", text},
                {"logprobs", lp},
                {"finish_reason", out.finished ? ojson(c.progress.finish_reason) : ojson()}};
    if (out.finished) ch["matched_stop"] = matched_stop_json(c.progress, o_.stop);
    chunks.push_back(chunk(ojson::array({ch})));
  }
  return chunks;
}

void CompletionResponseBuilder::echo(int index, Choice& c, const EngineOutput& out, std::string* text, ojson* lp) {
  c.echoed = true;
  const size_t prompt = size_t(index / o_.n);
  *text = o_.prompt_texts.at(prompt);
  if (o_.logprobs < 0) return;
  // Position 0 has no logprob: null, as OpenAI's echo gives it.
  const int32_t first = o_.prompt_first_ids.at(prompt);
  const std::string s = token_text(o_.tokenizer, first);
  *lp = {{"tokens", ojson::array({s})}, {"token_logprobs", ojson::array({nullptr})},
         {"top_logprobs", ojson::array({nullptr})}, {"text_offset", ojson::array({0})}};
  c.text_offset = s.size();
  append_completion_logprobs(*lp, out.prompt_logprobs, o_.tokenizer, o_.logprobs, &c.text_offset);
}

bool CompletionResponseBuilder::finished() const {
  for (auto& c : choices_)
    if (!c.progress.finished) return false;
  return true;
}

std::optional<ApiError> CompletionResponseBuilder::error() const {
  for (auto& c : choices_)
    if (auto e = output_error(c.progress)) return e;
  return std::nullopt;
}

ojson CompletionResponseBuilder::usage() const {
  int prompt = 0, completion = 0, cached = 0;
  for (size_t i = 0; i < choices_.size(); i++) {
    const ChoiceProgress& p = choices_[i].progress;
    completion += p.completion_tokens;
    if (i % size_t(o_.n) == 0) {  // each prompt once, whatever n
      prompt += p.prompt_tokens;
      cached += p.cached_tokens;
    }
  }
  return {{"prompt_tokens", prompt},
          {"completion_tokens", completion},
          {"total_tokens", prompt + completion},
          {"prompt_tokens_details", {{"cached_tokens", cached}}}};
}

std::vector<ojson> CompletionResponseBuilder::finish() {
  if (!o_.include_usage) return {};
  ojson u = chunk(ojson::array());
  u["usage"] = usage();
  return {u};
}

ojson CompletionResponseBuilder::response() const {
  ojson choices = ojson::array();
  for (size_t i = 0; i < choices_.size(); i++) {
    const Choice& c = choices_[i];
    choices.push_back({{"index", i},
                       {"text", c.text},
                       {"logprobs", o_.logprobs >= 0 ? c.logprobs : ojson()},
                       {"finish_reason", c.progress.finish_reason},
                       {"matched_stop", matched_stop_json(c.progress, o_.stop)}});
  }
  return {{"id", o_.id}, {"object", "text_completion"}, {"created", o_.created}, {"model", o_.model},
          {"choices", choices}, {"usage", usage()}};
}

}  // namespace mimo::server
