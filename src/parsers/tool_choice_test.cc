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

}  // namespace
}  // namespace mimo
