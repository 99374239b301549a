#include <gtest/gtest.h>

#include "parsers/parsers_test_util.h"

namespace mimo {
namespace {

using nlohmann::json;
using testing::expect_no_markup;
using testing::expect_split_invariant;
using testing::tool_maker;

json tools() {
  return json::parse(R"([
    {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {
      "city": {"type": "string"}}}}},
    {"type": "function", "function": {"name": "ping"}}
  ])");
}

struct Case {
  const char* name;
  std::string text;
  std::string content;
  std::vector<std::pair<std::string, std::string>> calls;  // name, arguments
  bool clean = true;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

const std::string kW = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"n\": [1, 2.5]}}\n</tool_call>";
const char* kWArgs = R"({"city":"Paris","n":[1,2.5]})";

const std::vector<Case> kCases = {
    {"plain", "just text", "just text", {}},
    {"single", kW, "", {{"get_weather", kWArgs}}},
    {"content_then_two", "Sure!\n" + kW + "\n" + kW + "\n", "Sure!\n", {{"get_weather", kWArgs}, {"get_weather", kWArgs}}},
    {"parameters_key", "<tool_call>{\"name\": \"ping\", \"parameters\": {\"b\": 1, \"a\": 2}}</tool_call>", "",
     {{"ping", R"({"b":1,"a":2})"}}},
    {"no_arguments", "<tool_call>{\"name\": \"ping\"}</tool_call>", "", {{"ping", "{}"}}},
    {"string_arguments", "<tool_call>{\"name\": \"ping\", \"arguments\": \"{\\\"x\\\": 1}\"}</tool_call>", "",
     {{"ping", R"({"x":1})"}}},
    {"unicode", "<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"\xE5\x8C\x97\xE4\xBA\xAC\"}}</tool_call>",
     "", {{"get_weather", "{\"city\":\"\xE5\x8C\x97\xE4\xBA\xAC\"}"}}},
    {"unknown_function", "<tool_call>{\"name\": \"nope\", \"arguments\": {}}</tool_call>",
     "<tool_call>{\"name\": \"nope\", \"arguments\": {}}</tool_call>", {}, false},
    {"bad_json", "<tool_call>{\"name\": \"ping\", </tool_call>", "<tool_call>{\"name\": \"ping\", </tool_call>", {}, false},
    {"bad_arguments", "<tool_call>{\"name\": \"ping\", \"arguments\": 5}</tool_call>",
     "<tool_call>{\"name\": \"ping\", \"arguments\": 5}</tool_call>", {}, false},
    {"unclosed", "x <tool_call>{\"name\": \"ping\"}", "x <tool_call>{\"name\": \"ping\"}", {}, false},
    {"partial_open_at_end", "x <tool_ca", "x <tool_ca", {}},
};

class Qwen25Tools : public ::testing::TestWithParam<Case> {};

TEST_P(Qwen25Tools, WholeAndEverySplit) {
  const Case& c = GetParam();
  ToolParseResult whole = expect_split_invariant(tool_maker("qwen25", tools()), c.text);
  EXPECT_EQ(whole.content, c.content);
  ASSERT_EQ(whole.calls.size(), c.calls.size()) << testing::show(whole);
  for (size_t i = 0; i < c.calls.size(); ++i) {
    EXPECT_EQ(whole.calls[i].index, int(i));
    EXPECT_EQ(whole.calls[i].name, c.calls[i].first);
    EXPECT_EQ(whole.calls[i].arguments, c.calls[i].second);
  }
  if (c.clean) expect_no_markup(whole.content, "content");
}

INSTANTIATE_TEST_SUITE_P(Cases, Qwen25Tools, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(Qwen25ToolStream, PythonStyle) {
  ToolParserOptions o;
  o.args_style = ArgsStyle::kPython;
  auto r = tool_maker("qwen25", tools(), o)()->parse(kW);
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(r.calls[0].arguments, R"({"city": "Paris", "n": [1, 2.5]})");
}

}  // namespace
}  // namespace mimo
