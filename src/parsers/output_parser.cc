#include "parsers/output_parser.h"

namespace mimo {

void ChatResult::apply(const ChatDelta& d) {
  reasoning += d.reasoning;
  ToolParseResult t;
  t.content = std::move(content);
  t.calls = std::move(tool_calls);
  t.apply(ToolStreamDelta{d.content, d.tool_calls});
  content = std::move(t.content);
  tool_calls = std::move(t.calls);
}

ChatOutputParser::ChatOutputParser(std::unique_ptr<ReasoningParser> reasoning, std::unique_ptr<ToolCallParser> tools)
    : reasoning_(std::move(reasoning)), tools_(std::move(tools)) {}

ChatDelta ChatOutputParser::route(ReasoningDelta r, bool finishing) {
  ChatDelta d;
  d.reasoning = std::move(r.reasoning);
  if (!tools_) {
    d.content = std::move(r.content);
    return d;
  }
  ToolStreamDelta t = r.content.empty() ? ToolStreamDelta{} : tools_->push(r.content);
  if (finishing) t.append(tools_->finish());
  d.content = std::move(t.content);
  d.tool_calls = std::move(t.calls);
  return d;
}

ChatDelta ChatOutputParser::push(std::string_view text) {
  ReasoningDelta r;
  if (reasoning_) r = reasoning_->push(text);
  else r.content = std::string(text);
  return route(std::move(r), false);
}

ChatDelta ChatOutputParser::finish() {
  ReasoningDelta r;
  if (reasoning_) r = reasoning_->finish();
  return route(std::move(r), true);
}

void ChatOutputParser::reset() {
  if (reasoning_) reasoning_->reset();
  if (tools_) tools_->reset();
}

ChatResult ChatOutputParser::parse(std::string_view text) {
  reset();
  ChatResult res;
  res.apply(push(text));
  res.apply(finish());
  reset();
  return res;
}

}  // namespace mimo
