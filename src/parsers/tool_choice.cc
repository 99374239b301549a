#include "parsers/tool_choice.h"

#include "core/error.h"
#include "parsers/tool_schema.h"

namespace mimo {

static bool has_tools(const nlohmann::json& tools) { return tools.is_array() && !tools.empty(); }

ToolChoice parse_tool_choice(const nlohmann::json& tc, const nlohmann::json& tools) {
  ToolChoice c;
  bool any = has_tools(tools);
  if (tc.is_null()) {
    c.mode = any ? ToolChoiceMode::kAuto : ToolChoiceMode::kNone;
    return c;
  }
  if (tc.is_string()) {
    const auto& s = tc.get_ref<const std::string&>();
    if (s == "none") c.mode = ToolChoiceMode::kNone;
    else if (s == "auto") c.mode = any ? ToolChoiceMode::kAuto : ToolChoiceMode::kNone;
    else if (s == "required") c.mode = ToolChoiceMode::kRequired;
    else fail("tool_choice must be \"none\", \"auto\", \"required\" or a function object, got \"{}\"", s);
    MIMO_CHECK(c.mode != ToolChoiceMode::kRequired || any, "tool_choice \"required\" needs a non-empty 'tools'");
    return c;
  }
  MIMO_CHECK(tc.is_object(), "tool_choice must be a string or an object, got {}", tc.type_name());
  auto type = tc.find("type");
  MIMO_CHECK(type != tc.end() && *type == "function", "tool_choice.type must be \"function\"");
  auto fn = tc.find("function");
  MIMO_CHECK(fn != tc.end() && fn->is_object(), "tool_choice.function must be an object");
  auto name = fn->find("name");
  MIMO_CHECK(name != fn->end() && name->is_string(), "tool_choice.function.name must be a string");
  c.mode = ToolChoiceMode::kNamed;
  c.function_name = name->get<std::string>();
  MIMO_CHECK(ToolSet(tools).has(c.function_name), "tool_choice names function '{}', which is not in 'tools'",
             c.function_name);
  return c;
}

bool tool_parsing_enabled(const ToolChoice& choice, const nlohmann::json& tools) {
  return choice.mode != ToolChoiceMode::kNone && has_tools(tools);
}

std::string tool_choice_violation(const ToolChoice& choice, const std::vector<ToolCall>& calls) {
  switch (choice.mode) {
    case ToolChoiceMode::kNone:
    case ToolChoiceMode::kAuto:
      return "";
    case ToolChoiceMode::kRequired:
      return calls.empty() ? "tool_choice is \"required\" but the model made no tool call" : "";
    case ToolChoiceMode::kNamed:
      if (calls.empty()) return fmt::format("tool_choice requires a call to '{}' but the model made none",
                                            choice.function_name);
      for (const auto& c : calls)
        if (c.name != choice.function_name)
          return fmt::format("tool_choice requires calls to '{}' but the model called '{}'", choice.function_name,
                             c.name);
      return "";
  }
  return "";
}

std::string forced_call_opening(const ToolChoice& choice, std::string_view parser, const nlohmann::json& tools) {
  if (choice.mode != ToolChoiceMode::kRequired && choice.mode != ToolChoiceMode::kNamed) return "";
  std::string name = choice.function_name;
  if (choice.mode == ToolChoiceMode::kRequired) {
    // "required" with a single tool can only be a call to it: name it too.
    std::vector<std::string> names = ToolSet(tools).names();
    if (names.size() == 1) name = names[0];
  }
  return make_tool_parser(parser, tools)->call_opening(name);
}

}  // namespace mimo
