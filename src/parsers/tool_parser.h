// Tool-call parsers: they split model output text into plain content and
// OpenAI-shaped tool calls, in one go or incrementally while streaming.
//
// Formats (one file each, listed in tool_parser.cc):
//   mimo    <tool_call><function=NAME><parameter=ARG>VALUE</parameter>...</function></tool_call>
//           (SGLang --tool-call-parser mimo; Qwen3-Coder style XML)
//   qwen25  <tool_call>{"name": ..., "arguments": {...}}</tool_call> (Qwen2.5 / Hermes)
//
// Streaming contract, for every format:
//  * push(delta) may be called with any split of the text, even inside a UTF-8
//    character; finish() flushes. Concatenating every content piece and, per
//    call, every arguments piece gives exactly what parse() gives for the whole
//    text (parse() is push(text) + finish() on a fresh state).
//  * No markup reaches content unless it ends up plain text in parse() too
//    (e.g. a call to a function that is not in `tools` stays text).
//  * A call's first delta carries index, id and name (arguments ""); later
//    deltas carry arguments text only, as OpenAI's stream chunks do.
//  * Whitespace-only text between or after calls is dropped (SGLang drops all
//    text after the first call; we keep text that is not just whitespace).
//  * Bad markup never throws: it degrades to plain text, or, inside a call
//    that was already announced, is skipped.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "parsers/tool_schema.h"
#include "parsers/value_convert.h"

namespace mimo {

struct ToolCall {
  int index = 0;
  std::string id;
  std::string name;
  std::string arguments;  // JSON object text
  // {"id", "type": "function", "function": {"name", "arguments"}}
  nlohmann::json to_json() const;
};

// One piece of a streamed call: choices[].delta.tool_calls[] of a chunk.
struct ToolCallDelta {
  int index = 0;
  std::string id;         // only on a call's first delta
  std::string name;       // only on a call's first delta
  std::string arguments;  // the next piece of the arguments text
  bool is_header() const { return !name.empty(); }
  // header: {"index", "id", "type": "function", "function": {"name", "arguments": ""}}
  // others: {"index", "function": {"arguments"}}
  nlohmann::json to_json() const;
};

struct ToolStreamDelta {
  std::string content;
  std::vector<ToolCallDelta> calls;
  bool empty() const { return content.empty() && calls.empty(); }
  void append(ToolStreamDelta&& other);
};

struct ToolParseResult {
  std::string content;
  std::vector<ToolCall> calls;
  void apply(const ToolStreamDelta& d);  // folds a streamed delta in
  nlohmann::json calls_json() const;     // array of ToolCall::to_json()
};

// Makes tool-call ids: "call_" + 24 characters from [A-Za-z0-9].
using IdGenerator = std::function<std::string()>;
IdGenerator random_call_id_generator();              // seeded from std::random_device
IdGenerator seeded_call_id_generator(uint64_t seed);  // deterministic, for tests

struct ToolParserOptions {
  ArgsStyle args_style = ArgsStyle::kCompact;
  // mimo: strip one leading and one trailing '\n' of each value (Qwen3-Coder
  // rule). SGLang's mimo detector keeps values verbatim (false).
  bool strip_value_newlines = true;
  // mimo: parameters missing from the schema are parsed as JSON when they can
  // be (true) or always kept as strings (false, SGLang).
  bool unknown_params_as_json = true;
  IdGenerator id_generator;  // empty: random_call_id_generator()
};

class ToolCallParser {
 public:
  virtual ~ToolCallParser() = default;
  virtual std::string_view name() const = 0;
  // Streaming: feed the next piece of model output (after reasoning removal).
  virtual ToolStreamDelta push(std::string_view text) = 0;
  // End of output: flushes whatever was held back.
  virtual ToolStreamDelta finish() = 0;
  // Back to the initial state (tools and options kept).
  virtual void reset() = 0;
  // The text that opens a call in this format, up to and including the
  // function's name when one is given (then ready for its arguments), else
  // up to where the name goes. Appended to a prompt, it makes the model's
  // output a call: how "required" and named tool_choice are enforced.
  virtual std::string call_opening(std::string_view function) const = 0;
  // One-shot: reset(), push(text), finish(), folded together; leaves the
  // parser reset.
  ToolParseResult parse(std::string_view text);

 protected:
  explicit ToolCallParser(ToolParserOptions opts);
  std::string new_call_id();
  const ToolParserOptions& options() const { return opts_; }

 private:
  ToolParserOptions opts_;
};

// `tools` is the request's "tools" array (null or empty: no tools, so every
// call is plain text). Throws mimo::Error for an unknown name (listing the
// known ones) or malformed tools.
std::unique_ptr<ToolCallParser> make_tool_parser(std::string_view name, const nlohmann::json& tools,
                                                 ToolParserOptions opts = {});
std::vector<std::string> tool_parser_names();

}  // namespace mimo
