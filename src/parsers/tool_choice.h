// The request's "tool_choice" and what it means for output parsing.
//
//   "none"      the server does not parse tool calls (markup stays content)
//   "auto"      parse; any number of calls (the default when tools exist)
//   "required"  parse; at least one call must come out
//   {"type": "function", "function": {"name": N}}  parse; calls must be to N
//
// "required" and named choices are enforced by forcing the output to start
// with a call (forced_call_opening): the prompt ends with the format's call
// opening, and the response parser reads it back as the output's first text.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "parsers/tool_parser.h"

namespace mimo {

enum class ToolChoiceMode { kAuto, kNone, kRequired, kNamed };

struct ToolChoice {
  ToolChoiceMode mode = ToolChoiceMode::kAuto;
  std::string function_name;  // kNamed only
};

// `tool_choice` as sent (absent/null: "auto" with tools, "none" without).
// Throws mimo::Error for unknown strings, bad shapes, a choice other than
// "none"/"auto" without tools, or a named function that is not in `tools`.
ToolChoice parse_tool_choice(const nlohmann::json& tool_choice, const nlohmann::json& tools);

// Whether the output should go through a tool-call parser at all.
bool tool_parsing_enabled(const ToolChoice& choice, const nlohmann::json& tools);

// The text the output must start with for this choice under tool-call format
// `parser`: "" for none/auto, a call opening for "required" (naming the
// function when `tools` has only one), a call opening naming the function
// for a named choice.
std::string forced_call_opening(const ToolChoice& choice, std::string_view parser, const nlohmann::json& tools);

// Empty when `calls` satisfy the choice, else a sentence saying why not
// ("required": at least one call; named: at least one call, all to that name).
std::string tool_choice_violation(const ToolChoice& choice, const std::vector<ToolCall>& calls);
inline bool satisfies_tool_choice(const ToolChoice& choice, const std::vector<ToolCall>& calls) {
  return tool_choice_violation(choice, calls).empty();
}

}  // namespace mimo
