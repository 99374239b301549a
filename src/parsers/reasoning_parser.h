// Reasoning parsers: split model output into reasoning_content (the
// <think>...</think> part) and content, in one go or while streaming.
//
// "qwen3" (SGLang --reasoning-parser qwen3, Qwen3Detector):
//  * enable_thinking = false: everything is content.
//  * thinking_started_in_prompt = true (the prompt ended with "<think>\n"):
//    output starts inside the reasoning. Otherwise reasoning starts only when
//    the output begins (after optional whitespace) with "<think>"; output that
//    does not is all content and later tags in it are plain text.
//  * Reasoning ends at "</think>" (dropped) or at "<tool_call>" (kept, it
//    starts the content so the tool parser sees it); at the end of output
//    when neither came (truncated: all reasoning). Repeated "<think>" tags at
//    its start are dropped.
//  * Reasoning is trimmed of whitespace at both ends; content after
//    "</think>" loses its leading whitespace.
//  * Streaming: push() any split of the text (even inside a UTF-8 character),
//    then finish(). Partial tags and whitespace that may still be trimmed are
//    held back; the concatenated deltas equal parse() of the whole text.
// "qwen3-thinking": qwen3 with thinking_started_in_prompt forced on (models
// that always think and whose template opens the <think> block).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace mimo {

struct ReasoningDelta {
  std::string reasoning;
  std::string content;
  bool empty() const { return reasoning.empty() && content.empty(); }
  void append(const ReasoningDelta& d) {
    reasoning += d.reasoning;
    content += d.content;
  }
};

struct ReasoningOptions {
  bool enable_thinking = true;             // chat_template_kwargs.enable_thinking
  bool thinking_started_in_prompt = false;  // the rendered prompt ends inside <think>
};

class ReasoningParser {
 public:
  virtual ~ReasoningParser() = default;
  virtual std::string_view name() const = 0;
  virtual ReasoningDelta push(std::string_view text) = 0;
  virtual ReasoningDelta finish() = 0;
  virtual void reset() = 0;
  // One-shot: reset(), push(text), finish(); leaves the parser reset.
  ReasoningDelta parse(std::string_view text);
};

// True when a rendered prompt leaves the model inside a <think> block: it
// ends with "<think>" plus optional whitespace. Use it for
// ReasoningOptions::thinking_started_in_prompt.
bool prompt_opens_thinking(std::string_view prompt);

// Throws mimo::Error for an unknown name, listing the known ones.
std::unique_ptr<ReasoningParser> make_reasoning_parser(std::string_view name, ReasoningOptions opts = {});
std::vector<std::string> reasoning_parser_names();

}  // namespace mimo
