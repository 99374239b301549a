// Reasoning + tool parsing chained, as the server runs them for
// --reasoning-parser qwen3 --tool-call-parser mimo.
#include "parsers/output_parser.h"

#include <gtest/gtest.h>

#include "parsers/parsers_test_util.h"

namespace mimo {
namespace {

using nlohmann::json;
using testing::expect_no_markup;
using testing::for_each_split;
using testing::show;

const json kTools = json::parse(R"([
  {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {
    "city": {"type": "string"}, "days": {"type": "integer"}}}}}])");

ChatOutputParser make_chat(ReasoningOptions ro, bool tools = true) {
  ToolParserOptions o;
  o.id_generator = seeded_call_id_generator(1);
  return ChatOutputParser(make_reasoning_parser("qwen3", ro), tools ? make_tool_parser("mimo", kTools, o) : nullptr);
}

struct Case {
  const char* name;
  ReasoningOptions ro;
  std::string text;
  std::string reasoning;
  std::string content;
  std::vector<std::string> args;  // one per get_weather call
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

const std::string kCall =
    "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n<parameter=days>\n2\n</parameter>\n"
    "</function>\n</tool_call>";
const std::string kArgs = R"({"city":"Paris","days":2})";

const std::vector<Case> kCases = {
    {"answer_only", {true, false}, "The weather is nice.", "", "The weather is nice.", {}},
    {"think_answer", {true, false}, "<think>\nhmm\n</think>\n\nIt is sunny.", "hmm", "It is sunny.", {}},
    {"think_call", {true, false}, "<think>\nNeed weather.\n</think>\n\n" + kCall, "Need weather.", "", {kArgs}},
    {"think_text_call", {true, false}, "<think>x</think>\n\nLet me look.\n" + kCall + "\n", "x", "Let me look.\n", {kArgs}},
    {"call_inside_think", {true, true}, "I will call it.\n" + kCall, "I will call it.", "", {kArgs}},
    {"two_calls_in_prompt_mode", {true, true}, "plan</think>\n" + kCall + "\n" + kCall, "plan", "", {kArgs, kArgs}},
    {"thinking_off", {false, false}, kCall, "", "", {kArgs}},
    {"truncated_call", {true, false}, "<think>t</think>" + kCall.substr(0, kCall.find("<parameter=days>")), "t", "",
     {R"({"city":"Paris"})"}},
};

class ChatPipeline : public ::testing::TestWithParam<Case> {};

TEST_P(ChatPipeline, WholeAndEverySplit) {
  const Case& c = GetParam();
  ChatResult whole = make_chat(c.ro).parse(c.text);
  EXPECT_EQ(whole.reasoning, c.reasoning);
  EXPECT_EQ(whole.content, c.content);
  ASSERT_EQ(whole.tool_calls.size(), c.args.size()) << show(whole);
  for (size_t i = 0; i < c.args.size(); ++i) {
    EXPECT_EQ(whole.tool_calls[i].name, "get_weather");
    EXPECT_EQ(whole.tool_calls[i].arguments, c.args[i]);
  }
  expect_no_markup(whole.content, "content");
  expect_no_markup(whole.reasoning, "reasoning");
  for_each_split(c.text, [&](const std::string& label, const std::vector<std::string_view>& pieces) {
    ChatOutputParser p = make_chat(c.ro);
    EXPECT_EQ(show(testing::stream_chat(p, pieces)), show(whole)) << label;
  });
}

INSTANTIATE_TEST_SUITE_P(Cases, ChatPipeline, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(ChatPipeline, NoToolParserKeepsMarkup) {
  ChatOutputParser p = make_chat({true, false}, /*tools=*/false);
  ChatResult r = p.parse("<think>a</think>" + kCall);
  EXPECT_EQ(r.reasoning, "a");
  EXPECT_EQ(r.content, kCall);
  EXPECT_TRUE(r.tool_calls.empty());
}

TEST(ChatPipeline, NoReasoningParser) {
  ToolParserOptions o;
  ChatOutputParser p(nullptr, make_tool_parser("mimo", kTools, o));
  ChatResult r = p.parse("<think>a</think>" + kCall);
  EXPECT_EQ(r.reasoning, "");
  EXPECT_EQ(r.content, "<think>a</think>");
  ASSERT_EQ(r.tool_calls.size(), 1u);
}

}  // namespace
}  // namespace mimo
