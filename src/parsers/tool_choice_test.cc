#include "parsers/tool_choice.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace mimo {
namespace {

using nlohmann::json;

const json kTools = json::parse(R"([{"type": "function", "function": {"name": "a"}},
                                    {"type": "function", "function": {"name": "b"}}])");

TEST(ToolChoice, Parse) {
  EXPECT_EQ(parse_tool_choice(nullptr, kTools).mode, ToolChoiceMode::kAuto);
  EXPECT_EQ(parse_tool_choice(nullptr, json()).mode, ToolChoiceMode::kNone);
  EXPECT_EQ(parse_tool_choice("auto", kTools).mode, ToolChoiceMode::kAuto);
  EXPECT_EQ(parse_tool_choice("auto", json::array()).mode, ToolChoiceMode::kNone);
  EXPECT_EQ(parse_tool_choice("none", kTools).mode, ToolChoiceMode::kNone);
  EXPECT_EQ(parse_tool_choice("required", kTools).mode, ToolChoiceMode::kRequired);
  ToolChoice n = parse_tool_choice({{"type", "function"}, {"function", {{"name", "b"}}}}, kTools);
  EXPECT_EQ(n.mode, ToolChoiceMode::kNamed);
  EXPECT_EQ(n.function_name, "b");
}

TEST(ToolChoice, ParseErrors) {
  EXPECT_THROW(parse_tool_choice("sometimes", kTools), Error);
  EXPECT_THROW(parse_tool_choice("required", json()), Error);
  EXPECT_THROW(parse_tool_choice(5, kTools), Error);
  EXPECT_THROW(parse_tool_choice({{"type", "function"}}, kTools), Error);
  EXPECT_THROW(parse_tool_choice({{"type", "tool"}, {"function", {{"name", "a"}}}}, kTools), Error);
  try {
    parse_tool_choice({{"type", "function"}, {"function", {{"name", "zzz"}}}}, kTools);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("zzz"), std::string::npos);
  }
}

TEST(ToolChoice, ParsingEnabled) {
  EXPECT_TRUE(tool_parsing_enabled(parse_tool_choice("auto", kTools), kTools));
  EXPECT_TRUE(tool_parsing_enabled(parse_tool_choice("required", kTools), kTools));
  EXPECT_FALSE(tool_parsing_enabled(parse_tool_choice("none", kTools), kTools));
  EXPECT_FALSE(tool_parsing_enabled(ToolChoice{}, json()));
}

TEST(ToolChoice, Satisfied) {
  std::vector<ToolCall> none;
  std::vector<ToolCall> to_a = {{0, "call_x", "a", "{}"}};
  std::vector<ToolCall> mixed = {{0, "call_x", "a", "{}"}, {1, "call_y", "b", "{}"}};
  ToolChoice autoc, req{ToolChoiceMode::kRequired, ""}, named{ToolChoiceMode::kNamed, "a"};
  EXPECT_TRUE(satisfies_tool_choice(autoc, none));
  EXPECT_FALSE(satisfies_tool_choice(req, none));
  EXPECT_TRUE(satisfies_tool_choice(req, mixed));
  EXPECT_FALSE(satisfies_tool_choice(named, none));
  EXPECT_TRUE(satisfies_tool_choice(named, to_a));
  EXPECT_FALSE(satisfies_tool_choice(named, mixed));
  EXPECT_NE(tool_choice_violation(named, mixed).find("'b'"), std::string::npos);
}

// "required" and named choices force the output to open a call; the opening
// plus the model's continuation parses as that call in either format.
TEST(ToolChoice, ForcedCallOpening) {
  const json tools = json::parse(R"([{"type": "function", "function": {"name": "get_weather",
      "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}])");
  const ToolChoice none = parse_tool_choice("none", tools), autoc = parse_tool_choice("auto", tools);
  const ToolChoice req = parse_tool_choice("required", tools);
  const ToolChoice named = parse_tool_choice({{"type", "function"}, {"function", {{"name", "get_weather"}}}}, tools);
  EXPECT_EQ(forced_call_opening(none, "mimo", tools), "");
  EXPECT_EQ(forced_call_opening(autoc, "mimo", tools), "");
  EXPECT_EQ(forced_call_opening(req, "mimo", tools), "<tool_call>\n<function=get_weather>\n");  // the only tool
  const json two = json::parse(R"([{"type": "function", "function": {"name": "a"}}, {"type": "function", "function": {"name": "b"}}])");
  EXPECT_EQ(forced_call_opening(parse_tool_choice("required", two), "mimo", two), "<tool_call>\n<function=");
  EXPECT_EQ(forced_call_opening(parse_tool_choice("required", two), "qwen25", two), "<tool_call>\n{\"name\": \"");
  EXPECT_EQ(forced_call_opening(named, "mimo", tools), "<tool_call>\n<function=get_weather>\n");
  EXPECT_EQ(forced_call_opening(named, "qwen25", tools), "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": ");
  struct Case { const char* parser; const ToolChoice* choice; const char* continuation; };
  for (const Case& c : {Case{"mimo", &named, "<parameter=city>\nParis\n</parameter>\n</function>\n</tool_call>"},
                        Case{"mimo", &req, "<parameter=city>\nParis\n</parameter>\n</function>\n</tool_call>"},
                        Case{"qwen25", &named, "{\"city\": \"Paris\"}}\n</tool_call>"},
                        Case{"qwen25", &req, "{\"city\": \"Paris\"}}\n</tool_call>"}}) {
    ToolParseResult r = make_tool_parser(c.parser, tools)->parse(forced_call_opening(*c.choice, c.parser, tools) + c.continuation);
    ASSERT_EQ(r.calls.size(), 1u) << c.parser << ": " << c.continuation;
    EXPECT_EQ(r.calls[0].name, "get_weather");
    EXPECT_EQ(json::parse(r.calls[0].arguments), json({{"city", "Paris"}})) << c.parser;
  }
}

}  // namespace
}  // namespace mimo
