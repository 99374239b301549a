// The two parsers chained the way SGLang's chat serving runs them: reasoning
// first, then the tool-call parser on what is left as content.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "parsers/reasoning_parser.h"
#include "parsers/tool_parser.h"

namespace mimo {

struct ChatDelta {
  std::string reasoning;
  std::string content;
  std::vector<ToolCallDelta> tool_calls;
  bool empty() const { return reasoning.empty() && content.empty() && tool_calls.empty(); }
};

struct ChatResult {
  std::string reasoning;
  std::string content;
  std::vector<ToolCall> tool_calls;
  void apply(const ChatDelta& d);
};

class ChatOutputParser {
 public:
  // Either parser may be null: no reasoning split / no tool parsing (e.g.
  // tool_choice "none" or no tools in the request).
  ChatOutputParser(std::unique_ptr<ReasoningParser> reasoning, std::unique_ptr<ToolCallParser> tools);

  ChatDelta push(std::string_view text);
  ChatDelta finish();
  void reset();
  // One-shot on a fresh state; leaves the parser reset.
  ChatResult parse(std::string_view text);

  ReasoningParser* reasoning_parser() { return reasoning_.get(); }
  ToolCallParser* tool_parser() { return tools_.get(); }

 private:
  ChatDelta route(ReasoningDelta r, bool finishing);
  std::unique_ptr<ReasoningParser> reasoning_;
  std::unique_ptr<ToolCallParser> tools_;
};

}  // namespace mimo
