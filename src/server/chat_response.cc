#include "server/chat_response.h"

#include "core/log.h"
#include "server/logprobs_json.h"

namespace mimo::server {

struct ChatResponseBuilder::Choice {
  ChoiceProgress progress;
  std::unique_ptr<ChatOutputParser> parser;
  ChatResult result;
  ojson logprobs = ojson::array();
  int reasoning_tokens = 0;
  bool opened = false;  // the forced opening went through the parser
};

ChatResponseBuilder::ChatResponseBuilder(ChatResponseOptions o) : o_(std::move(o)) {
  for (int i = 0; i < o_.n; i++) {
    auto c = std::make_unique<Choice>();
    std::unique_ptr<ReasoningParser> rp;
    std::unique_ptr<ToolCallParser> tp;
    if (!o_.reasoning_parser.empty()) rp = make_reasoning_parser(o_.reasoning_parser, o_.reasoning);
    if (!o_.tool_parser.empty()) {
      ToolParserOptions to;
      to.id_generator = o_.call_ids;
      tp = make_tool_parser(o_.tool_parser, o_.tools, to);
    }
    c->parser = std::make_unique<ChatOutputParser>(std::move(rp), std::move(tp));
    choices_.push_back(std::move(c));
  }
}

ChatResponseBuilder::~ChatResponseBuilder() = default;

ojson ChatResponseBuilder::chunk(ojson choices) const {
  return {{"id", o_.id}, {"object", "chat.completion.chunk"}, {"created", o_.created}, {"model", o_.model},
          {"choices", std::move(choices)}};
}

std::vector<ojson> ChatResponseBuilder::start() {
  std::vector<ojson> out;
  for (int i = 0; i < o_.n; i++)
    out.push_back(chunk(ojson::array({{{"index", i},
                                       {"delta", {{"role", "assistant"}, {"content", ""}}},
                                       {"logprobs", nullptr},
                                       {"finish_reason", nullptr}}})));
  return out;
}

std::string ChatResponseBuilder::finish_reason(const Choice& c) const {
  const std::string& r = c.progress.finish_reason;
  // OpenAI reports a turn that ended in tool calls as "tool_calls"; a
  // truncated or aborted one keeps its reason.
  if (!c.result.tool_calls.empty() && r == "stop") return "tool_calls";
  return r;
}

std::vector<ojson> ChatResponseBuilder::push(int index, const EngineOutput& out) {
  Choice& c = *choices_.at(size_t(index));
  std::vector<ojson> chunks;
  if (c.progress.finished) return chunks;
  c.progress.add(out);
  if (output_error(c.progress)) {
    chunks.push_back(output_error(c.progress)->body());
    return chunks;
  }
  ChatDelta d = c.parser->push(c.opened ? out.text : o_.forced_opening + out.text);
  c.opened = true;
  if (out.finished) {
    ChatDelta rest = c.parser->finish();
    d.reasoning += rest.reasoning;
    d.content += rest.content;
    for (auto& t : rest.tool_calls) d.tool_calls.push_back(t);
  }
  if (!o_.parallel_tool_calls)
    std::erase_if(d.tool_calls, [](const ToolCallDelta& t) { return t.index > 0; });  // one call at most
  c.result.apply(d);
  ojson lps;
  if (o_.logprobs && !out.logprobs.empty()) {
    lps = chat_logprobs_content(out.logprobs, o_.tokenizer, o_.top_logprobs);
    for (auto& e : lps) c.logprobs.push_back(e);
  }
  if (!d.empty() || !lps.is_null()) {
    ojson delta = ojson::object();
    if (!d.reasoning.empty()) delta["reasoning_content"] = d.reasoning;
    if (!d.content.empty()) delta["content"] = d.content;
    if (!d.tool_calls.empty()) {
      ojson calls = ojson::array();
      for (auto& t : d.tool_calls) calls.push_back(ojson::parse(t.to_json().dump()));
      delta["tool_calls"] = calls;
    }
    chunks.push_back(chunk(ojson::array({{{"index", index},
                                          {"delta", delta},
                                          {"logprobs", lps.is_null() ? ojson() : ojson{{"content", lps}}},
                                          {"finish_reason", nullptr}}})));
  }
  if (out.finished) {
    if (o_.tokenizer && !c.result.reasoning.empty())
      c.reasoning_tokens = int(o_.tokenizer->encode(c.result.reasoning, false).size());
    if (o_.tool_choice.mode == ToolChoiceMode::kRequired || o_.tool_choice.mode == ToolChoiceMode::kNamed) {
      // The output was forced to open a call, but the model may still name
      // a function that is not a tool ("required") or break the format; the
      // client gets what it produced.
      std::string why = tool_choice_violation(o_.tool_choice, c.result.tool_calls);
      if (!why.empty()) spdlog::info("{}: tool_choice not satisfied: {}", o_.id, why);
    }
    chunks.push_back(chunk(ojson::array({{{"index", index},
                                          {"delta", ojson::object()},
                                          {"logprobs", nullptr},
                                          {"finish_reason", finish_reason(c)},
                                          {"matched_stop", matched_stop_json(c.progress, o_.stop)}}})));
  }
  return chunks;
}

bool ChatResponseBuilder::finished() const {
  for (auto& c : choices_)
    if (!c->progress.finished) return false;
  return true;
}

std::optional<ApiError> ChatResponseBuilder::error() const {
  for (auto& c : choices_)
    if (auto e = output_error(c->progress)) return e;
  return std::nullopt;
}

ojson ChatResponseBuilder::usage() const {
  int completion = 0, reasoning = 0;
  for (auto& c : choices_) {
    completion += c->progress.completion_tokens;
    reasoning += c->reasoning_tokens;
  }
  // n samples share one prompt: it is counted once, as OpenAI does.
  const ChoiceProgress& first = choices_.front()->progress;
  ojson u = {{"prompt_tokens", first.prompt_tokens},
             {"completion_tokens", completion},
             {"total_tokens", first.prompt_tokens + completion},
             {"prompt_tokens_details", {{"cached_tokens", first.cached_tokens}}},
             {"completion_tokens_details", {{"reasoning_tokens", reasoning}}}};
  // Extension field (as SGLang's meta_info): speculative accept length.
  if (first.spec_accept_length > 0) u["spec_accept_length"] = first.spec_accept_length;
  return u;
}

std::vector<ojson> ChatResponseBuilder::finish() {
  if (!o_.include_usage) return {};
  ojson u = chunk(ojson::array());
  u["usage"] = usage();
  return {u};
}

ojson ChatResponseBuilder::message(const Choice& c) const {
  ojson m = {{"role", "assistant"}};
  const ChatResult& r = c.result;
  m["content"] = r.content.empty() && !r.tool_calls.empty() ? ojson() : ojson(r.content);
  if (!o_.reasoning_parser.empty()) m["reasoning_content"] = r.reasoning.empty() ? ojson() : ojson(r.reasoning);
  if (!r.tool_calls.empty()) {
    ojson calls = ojson::array();
    for (auto& t : r.tool_calls) calls.push_back(ojson::parse(t.to_json().dump()));
    m["tool_calls"] = calls;
  }
  return m;
}

ojson ChatResponseBuilder::response() const {
  ojson choices = ojson::array();
  for (size_t i = 0; i < choices_.size(); i++) {
    const Choice& c = *choices_[i];
    choices.push_back({{"index", i},
                       {"message", message(c)},
                       {"logprobs", o_.logprobs ? ojson{{"content", c.logprobs}} : ojson()},
                       {"finish_reason", finish_reason(c)},
                       {"matched_stop", matched_stop_json(c.progress, o_.stop)}});
  }
  return {{"id", o_.id}, {"object", "chat.completion"}, {"created", o_.created}, {"model", o_.model},
          {"choices", choices}, {"usage", usage()}};
}

const ChatResult& ChatResponseBuilder::result(int index) const { return choices_.at(size_t(index))->result; }

}  // namespace mimo::server
