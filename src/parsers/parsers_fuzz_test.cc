// Random mixtures of tag fragments and text: no parser may crash or throw,
// every split must give the one-shot result, and arguments must be JSON
// objects. Fixed seeds, so failures reproduce.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "parsers/parsers_test_util.h"

namespace mimo {
namespace {

using nlohmann::json;
using testing::printable;
using testing::show;
using testing::split_at;

const json kTools = json::parse(R"([
  {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {
    "city": {"type": "string"}, "days": {"type": "integer"}, "tags": {"type": "array"},
    "flag": {"type": "boolean"}, "x": {"type": ["number", "string"]}}}}},
  {"type": "function", "function": {"name": "run", "parameters": {"type": "object", "properties": {
    "command": {"type": "string"}}}}}])");

const std::vector<std::string> kFragments = {
    "<tool_call>", "</tool_call>", "<function=", "get_weather", "run", "nope", ">", "</function>", "<parameter=",
    "city", "days", "command", "tags", "flag", "x", "</parameter>", "<think>", "</think>", "\n", "\n", " ", "  ", "<",
    "</", "&lt;", "&amp", "&#x4F60;", "&#", "null", "NULL", "42", "3.5", "true", "{\"a\": 1}", "[1,", "'x'", "{'k': 2}",
    "\xC3\xA9", "\xE4\xBD\xA0", "\xF0\x9F\x98\x80", "\xFF", "\xE4", "<tool_", "</tool", "<func", "<para", "</para",
    "</thi", "<thi", "text", "a < b", "\"", "\\", "{\"name\": \"run\", \"arguments\": {\"command\": \"ls\"}}",
    "{\"name\": \"nope\"}", "\t", "=", "<function=run>", "<parameter=command>", "<function=get_weather>",
};

std::string random_text(std::mt19937& rng) {
  std::uniform_int_distribution<int> n_dist(0, 40), frag(0, int(kFragments.size()) - 1), byte(0, 255), kind(0, 9);
  std::string s;
  int n = n_dist(rng);
  for (int i = 0; i < n; ++i) {
    int k = kind(rng);
    if (k == 0) s += char(byte(rng));
    else s += kFragments[size_t(frag(rng))];
  }
  return s;
}

std::vector<size_t> random_cuts(std::mt19937& rng, size_t len) {
  std::vector<size_t> cuts;
  if (len == 0) return cuts;
  std::uniform_int_distribution<size_t> pos(0, len);
  int n = std::uniform_int_distribution<int>(1, 6)(rng);
  for (int i = 0; i < n; ++i) cuts.push_back(pos(rng));
  std::sort(cuts.begin(), cuts.end());
  return cuts;
}

// Returns the number of calls found, so the tests can check they reach calls.
size_t check_tools(const testing::ToolParserMaker& make, const std::string& text, std::mt19937& rng) {
  ToolParseResult whole = make()->parse(text);
  for (const auto& c : whole.calls) {
    json v = json::parse(c.arguments, nullptr, false);
    EXPECT_TRUE(v.is_object()) << c.arguments << "\ntext: " << printable(text);
  }
  std::vector<std::vector<size_t>> splits;
  std::vector<size_t> bytes;
  for (size_t i = 1; i < text.size(); ++i) bytes.push_back(i);
  splits.push_back(bytes);
  for (int i = 0; i < 3; ++i) splits.push_back(random_cuts(rng, text.size()));
  for (const auto& cuts : splits) {
    auto p = make();
    EXPECT_EQ(show(testing::stream_tools(*p, split_at(text, cuts))), show(whole)) << "text: " << printable(text);
  }
  return whole.calls.size();
}

std::string make_valid_call(std::mt19937& rng) {
  // A well-formed call with random values, so the fuzz also walks the happy path.
  const char* keys[] = {"city", "days", "tags", "flag", "x"};
  std::string s = "<tool_call>\n<function=get_weather>\n";
  int n = std::uniform_int_distribution<int>(0, 4)(rng);
  for (int i = 0; i < n; ++i) {
    std::string v = random_text(rng);
    // Keep the value from closing the call early most of the time.
    if (v.find("</") != std::string::npos && (rng() & 1)) v = "plain";
    s += "<parameter=" + std::string(keys[rng() % 5]) + ">\n" + v + "\n</parameter>\n";
  }
  return s + "</function>\n</tool_call>";
}

TEST(ParsersFuzz, MimoRandomText) {
  std::mt19937 rng(12345);
  int with_calls = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string text = random_text(rng);
    if (i % 3 == 0) text += make_valid_call(rng) + random_text(rng);
    ToolParserOptions o;
    o.args_style = (i & 1) ? ArgsStyle::kPython : ArgsStyle::kCompact;
    o.strip_value_newlines = (i % 5) != 0;
    o.unknown_params_as_json = (i % 7) != 0;
    with_calls += check_tools(testing::tool_maker("mimo", kTools, o), text, rng) > 0;
    if (::testing::Test::HasFailure()) return;
  }
  EXPECT_GT(with_calls, 900);  // the happy path is walked too
}

TEST(ParsersFuzz, Qwen25RandomText) {
  std::mt19937 rng(777);
  int with_calls = 0;
  for (int i = 0; i < 2000; ++i) {
    std::string text = random_text(rng);
    if (i % 3 == 0)
      text += "<tool_call>\n{\"name\": \"run\", \"arguments\": {\"command\": \"" + std::to_string(i) + "\"}}\n</tool_call>" +
              random_text(rng);
    with_calls += check_tools(testing::tool_maker("qwen25", kTools), text, rng) > 0;
    if (::testing::Test::HasFailure()) return;
  }
  EXPECT_GT(with_calls, 500);
}

TEST(ParsersFuzz, ReasoningAndChainRandomText) {
  std::mt19937 rng(4242);
  for (int i = 0; i < 2000; ++i) {
    std::string text = random_text(rng);
    if (i % 4 == 0) text = "<think>" + text + "</think>" + make_valid_call(rng);
    ReasoningOptions ro{(i % 5) != 0, (i % 3) == 0};
    auto make = [&] {
      ToolParserOptions o;
      o.id_generator = seeded_call_id_generator(9);
      return ChatOutputParser(make_reasoning_parser("qwen3", ro), make_tool_parser("mimo", kTools, o));
    };
    ChatResult whole = make().parse(text);
    std::vector<size_t> bytes;
    for (size_t k = 1; k < text.size(); ++k) bytes.push_back(k);
    for (const auto& cuts : {bytes, random_cuts(rng, text.size()), random_cuts(rng, text.size())}) {
      ChatOutputParser p = make();
      EXPECT_EQ(show(testing::stream_chat(p, split_at(text, cuts))), show(whole)) << "text: " << printable(text);
    }
    if (::testing::Test::HasFailure()) return;
  }
}

}  // namespace
}  // namespace mimo
