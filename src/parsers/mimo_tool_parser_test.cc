#include <gtest/gtest.h>

#include "core/error.h"
#include "parsers/parsers_test_util.h"
#include "parsers/text_util.h"

namespace mimo {
namespace {

using nlohmann::json;
using testing::expect_no_markup;
using testing::expect_split_invariant;
using testing::tool_maker;

json test_tools() {
  return json::parse(R"([
    {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {
      "city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}, "days": {"type": "integer"}}}}},
    {"type": "function", "function": {"name": "calc", "parameters": {"type": "object", "properties": {
      "a": {"type": "number"}, "b": {"type": "number"}, "op": {"type": "string"}}}}},
    {"type": "function", "function": {"name": "set_flags", "parameters": {"type": "object", "properties": {
      "enabled": {"type": "boolean"}, "tags": {"type": "array"}, "config": {"type": "object"},
      "maybe": {"type": ["integer", "null"]}, "either": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
      "loose": {"description": "no type"}}}}},
    {"type": "function", "function": {"name": "run", "parameters": {"type": "object", "properties": {
      "command": {"type": "string"}}}}},
    {"type": "function", "function": {"name": "no_params"}}
  ])");
}

struct Call {
  std::string name;
  std::string args;
};

struct Case {
  const char* name;
  std::string text;
  std::string content;
  std::vector<Call> calls;
  bool clean = true;  // content must hold no markup
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

std::string wrap(const std::string& fn, const std::string& params) {
  return "<tool_call>\n<function=" + fn + ">\n" + params + "</function>\n</tool_call>";
}
std::string param(const std::string& k, const std::string& v) {
  return "<parameter=" + k + ">\n" + v + "\n</parameter>\n";
}

const std::string kWeather = wrap("get_weather", param("city", "Paris") + param("days", "3"));
const char* kWeatherArgs = R"({"city":"Paris","days":3})";
const std::string kRun = "<tool_call><function=run><parameter=command>pwd && ls</parameter></function></tool_call>";
const char* kRunArgs = R"({"command":"pwd && ls"})";
const std::string kUnknown = wrap("nope", param("x", "1"));

const std::vector<Case> kCases = {
    {"plain", "Hello, world.", "Hello, world.", {}},
    {"plain_lt", "if a < b and <tool or <tool_ then", "if a < b and <tool or <tool_ then", {}},
    {"plain_trailing_partial", "see <tool_cal", "see <tool_cal", {}},
    {"empty", "", "", {}},
    {"single", kWeather, "", {{"get_weather", kWeatherArgs}}},
    {"single_inline", kRun, "", {{"run", kRunArgs}}},
    {"content_before", "Let me check.\n\n" + kWeather, "Let me check.\n\n", {{"get_weather", kWeatherArgs}}},
    {"two_calls", kWeather + "\n" + kRun, "", {{"get_weather", kWeatherArgs}, {"run", kRunArgs}}},
    {"ws_after_calls_dropped", kWeather + "\n\n" + kRun + "\n \n", "", {{"get_weather", kWeatherArgs}, {"run", kRunArgs}}},
    {"text_between_and_after", "A" + kRun + " and then " + kRun + "\nDone.", "A and then \nDone.",
     {{"run", kRunArgs}, {"run", kRunArgs}}},
    {"entities", wrap("run", param("command", "a &lt; b &amp;&amp; c &gt; d &quot;q&quot; &#39;s&#39; &#x4F60;&#20320;")),
     "", {{"run", R"({"command":"a < b && c > d \"q\" 's' 你你"})"}}},
    {"not_entities", wrap("run", param("command", "R&D && x &amp y &lt")), "", {{"run", R"({"command":"R&D && x &amp y &lt"})"}}},
    {"string_escapes", wrap("run", param("command", "say \"hi\"\tC:\\dir\\n")), "",
     {{"run", R"({"command":"say \"hi\"\tC:\\dir\\n"})"}}},
    {"multiline_value", wrap("run", param("command", "\nline1\nline2\n")), "", {{"run", R"({"command":"\nline1\nline2\n"})"}}},
    {"value_without_newlines", "<tool_call><function=run><parameter=command>x</parameter></function></tool_call>", "",
     {{"run", R"({"command":"x"})"}}},
    {"empty_value", wrap("run", "<parameter=command></parameter>"), "", {{"run", R"({"command":""})"}}},
    {"newline_only_value", wrap("run", "<parameter=command>\n</parameter>"), "", {{"run", R"({"command":""})"}}},
    {"string_null", wrap("run", param("command", "null")), "", {{"run", R"({"command":null})"}}},
    {"string_nullish", wrap("run", param("command", "NULLx") + param("command", "dup")), "",
     {{"run", R"({"command":"NULLx"})"}}},
    {"string_nul", wrap("run", param("command", "nul")), "", {{"run", R"({"command":"nul"})"}}},
    {"types_numbers", wrap("calc", param("a", "3.0") + param("b", "-2.5e1") + param("op", "mul")), "",
     {{"calc", R"({"a":3,"b":-25,"op":"mul"})"}}},
    {"types_bad_numbers", wrap("calc", param("a", "three") + param("b", "1.5")) + wrap("get_weather", param("days", "2.5")),
     "", {{"calc", R"({"a":"three","b":1.5})"}, {"get_weather", R"({"days":"2.5"})"}}},
    {"types_all", wrap("set_flags", param("enabled", "True") + param("tags", "[\"x\", 1]") +
                                        param("config", "{'k': 'v', 'n': None}") + param("maybe", "null") +
                                        param("either", "7") + param("loose", "{\"a\": 1}")),
     "", {{"set_flags", R"({"enabled":true,"tags":["x",1],"config":{"k":"v","n":null},"maybe":null,"either":7,"loose":"{\"a\": 1}"})"}}},
    {"types_fallbacks", wrap("set_flags", param("enabled", "yes") + param("tags", "[1, 2") + param("either", "seven") +
                                              param("maybe", "x")),
     "", {{"set_flags", R"({"enabled":false,"tags":"[1, 2","either":"seven","maybe":"x"})"}}},
    {"object_key_order", wrap("set_flags", param("config", R"({"z": 1, "a": {"y": 2, "b": 3}})")), "",
     {{"set_flags", R"({"config":{"z":1,"a":{"y":2,"b":3}}})"}}},
    {"unknown_param", wrap("run", param("command", "ls") + param("extra", "{\"x\": [1]}") + param("word", "hi")), "",
     {{"run", R"({"command":"ls","extra":{"x":[1]},"word":"hi"})"}}},
    {"no_params_fn", "<tool_call>\n<function=no_params>\n</function>\n</tool_call>", "", {{"no_params", "{}"}}},
    {"no_params_with_param", wrap("no_params", param("q", "5")), "", {{"no_params", R"({"q":5})"}}},
    {"unicode", "\xC3\xA9t\xC3\xA9 " + wrap("run", param("command", "echo \xF0\x9F\x98\x80 \xE4\xBD\xA0")),
     "\xC3\xA9t\xC3\xA9 ", {{"run", "{\"command\":\"echo \xF0\x9F\x98\x80 \xE4\xBD\xA0\"}"}}},
    {"literal_param_tag_in_value", wrap("run", param("command", "echo '<parameter=x>'")), "",
     {{"run", R"({"command":"echo '<parameter=x>'"})"}}},
    {"lt_in_value", wrap("run", param("command", "a </b> <c </param")), "", {{"run", R"({"command":"a </b> <c </param"})"}}},
    {"duplicate_param_first_wins", wrap("get_weather", param("city", "A") + param("city", "B") + param("days", "1")), "",
     {{"get_weather", R"({"city":"A","days":1})"}}},
    {"junk_in_body_ignored", "<tool_call><function=run>junk\n<parameter=command>x</parameter>more</function>tail</tool_call>",
     "", {{"run", R"({"command":"x"})"}}},
    {"spaces_in_tags", "<tool_call>\n  <function= run >\n<parameter= command >x</parameter></function></tool_call>", "",
     {{"run", R"({"command":"x"})"}}},
    {"bad_param_names", wrap("run", "<parameter=>a</parameter>\n<parameter=<x>b</parameter>\n" + param("command", "ok")),
     "", {{"run", R"({"command":"ok"})"}}},
    {"missing_param_close", "<tool_call><function=run><parameter=command>ls -la</function></tool_call>", "",
     {{"run", R"({"command":"ls -la"})"}}},
    {"missing_function_close", "<tool_call><function=run><parameter=command>ls</parameter></tool_call>", "",
     {{"run", R"({"command":"ls"})"}}},
    {"missing_call_close_then_call", "<tool_call><function=run><parameter=command>a</parameter></function>\n" + kRun, "",
     {{"run", R"({"command":"a"})"}, {"run", kRunArgs}}},
    {"truncated_in_value", "Sure. <tool_call>\n<function=run>\n<parameter=command>\nls -la", "Sure. ",
     {{"run", R"({"command":"ls -la"})"}}},
    {"truncated_after_param", "<tool_call>\n<function=get_weather>\n<parameter=days>\n4\n</parameter>\n<param", "",
     {{"get_weather", R"({"days":4})"}}},
    {"truncated_param_tag", "<tool_call>\n<function=run>\n<parameter=comm", "", {{"run", "{}"}}},
    {"truncated_after_function", "<tool_call><function=run></function>\n</tool", "", {{"run", "{}"}}},
    // Everything below degrades to text.
    {"unknown_function", kUnknown, kUnknown, {}, false},
    {"unknown_then_known", kUnknown + "\n" + kRun, kUnknown + "\n", {{"run", kRunArgs}}, false},
    {"known_then_unknown", kRun + "\n" + kUnknown, "\n" + kUnknown, {{"run", kRunArgs}}, false},
    {"open_tag_only", "text <tool_call>", "text <tool_call>", {}, false},
    {"truncated_function_name", "<tool_call>\n<function=get_wea", "<tool_call>\n<function=get_wea", {}, false},
    {"empty_function_name", "<tool_call>\n<function=>\n</function>\n</tool_call>",
     "<tool_call>\n<function=>\n</function>\n</tool_call>", {}, false},
    {"function_name_with_lt", "<tool_call><function=ru<n></function></tool_call>x",
     "<tool_call><function=ru<n></function></tool_call>x", {}, false},
    {"no_function", "<tool_call>hello</tool_call> world", "<tool_call>hello</tool_call> world", {}, false},
    {"json_inside", "<tool_call>\n{\"name\": \"run\"}\n</tool_call>", "<tool_call>\n{\"name\": \"run\"}\n</tool_call>", {},
     false},
    {"stray_close", "done </tool_call> ok", "done </tool_call> ok", {}, false},
    {"double_open", "<tool_call><tool_call><function=run><parameter=command>x</parameter></function></tool_call>",
     "<tool_call>", {{"run", R"({"command":"x"})"}}, false},
    {"long_name", "<tool_call><function=" + std::string(300, 'a') + ">", "<tool_call><function=" + std::string(300, 'a') + ">",
     {}, false},
};

class MimoTools : public ::testing::TestWithParam<Case> {};

TEST_P(MimoTools, WholeAndEverySplit) {
  const Case& c = GetParam();
  ToolParseResult whole = expect_split_invariant(tool_maker("mimo", test_tools()), c.text);
  EXPECT_EQ(whole.content, c.content);
  ASSERT_EQ(whole.calls.size(), c.calls.size()) << testing::show(whole);
  for (size_t i = 0; i < c.calls.size(); ++i) {
    EXPECT_EQ(whole.calls[i].index, int(i));
    EXPECT_EQ(whole.calls[i].name, c.calls[i].name);
    EXPECT_EQ(whole.calls[i].arguments, c.calls[i].args);
    EXPECT_EQ(whole.calls[i].id.size(), 29u);
    EXPECT_EQ(whole.calls[i].id.rfind("call_", 0), 0u);
  }
  if (c.clean) expect_no_markup(whole.content, "content");
}

INSTANTIATE_TEST_SUITE_P(Cases, MimoTools, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(MimoToolStream, DeltasAreOpenAiShaped) {
  auto p = tool_maker("mimo", test_tools())();
  std::vector<ToolCallDelta> deltas;
  std::string content;
  for (std::string_view piece : {std::string_view("Checking.<tool_"), std::string_view("call>\n<function=get_weather>\n"),
                                 std::string_view("<parameter=city>\nPar"), std::string_view("is\n</parameter>\n"),
                                 std::string_view("<parameter=days>\n3\n</parameter>\n</function>\n</tool_call>")}) {
    auto d = p->push(piece);
    content += d.content;
    for (auto& c : d.calls) deltas.push_back(c);
    if (piece.substr(0, 5) == "Check") {
      EXPECT_EQ(d.content, "Checking.");  // "<tool_" held back
    }
  }
  auto d = p->finish();
  EXPECT_TRUE(d.empty());
  EXPECT_EQ(content, "Checking.");
  ASSERT_GE(deltas.size(), 3u);
  json h = deltas[0].to_json();
  EXPECT_EQ(h["index"], 0);
  EXPECT_EQ(h["type"], "function");
  EXPECT_EQ(h["function"]["name"], "get_weather");
  EXPECT_EQ(h["function"]["arguments"], "");
  EXPECT_EQ(h["id"].get<std::string>().substr(0, 5), "call_");
  std::string args;
  for (size_t i = 1; i < deltas.size(); ++i) {
    json j = deltas[i].to_json();
    EXPECT_FALSE(j.contains("id"));
    EXPECT_FALSE(j["function"].contains("name"));
    args += j["function"]["arguments"].get<std::string>();
  }
  EXPECT_EQ(args, kWeatherArgs);
  // The string value streamed before its </parameter> arrived.
  EXPECT_EQ(deltas[1].arguments, "{\"city\":\"");
  EXPECT_EQ(deltas[2].arguments, "Par");
}

TEST(MimoToolStream, HeaderAsSoonAsNameKnown) {
  auto p = tool_maker("mimo", test_tools())();
  auto d = p->push("<tool_call>\n<function=run>");
  ASSERT_EQ(d.calls.size(), 1u);
  EXPECT_EQ(d.calls[0].name, "run");
  d = p->push("\n<parameter=command>\nnul");
  EXPECT_EQ(d.calls.size(), 0u);  // could still be null
  d = p->push("l\n");
  EXPECT_EQ(d.calls.size(), 0u);
  d = p->push("</parameter>");
  ASSERT_EQ(d.calls.size(), 1u);
  EXPECT_EQ(d.calls[0].arguments, "{\"command\":null");
}

TEST(MimoToolOptions, PythonStyleNoStripNoJsonUnknown) {
  ToolParserOptions o;
  o.args_style = ArgsStyle::kPython;
  o.strip_value_newlines = false;
  o.unknown_params_as_json = false;
  std::string text = wrap("get_weather", param("city", "Paris") + param("days", "3") + param("extra", "5"));
  ToolParseResult r = expect_split_invariant(tool_maker("mimo", test_tools(), o), text);
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(r.calls[0].arguments, R"({"city": "\nParis\n", "days": 3, "extra": "\n5\n"})");
}

TEST(MimoToolOptions, NoToolsMeansText) {
  for (const json& tools : {json(), json::array()}) {
    auto r = make_tool_parser("mimo", tools)->parse(kRun);
    EXPECT_EQ(r.content, kRun);
    EXPECT_TRUE(r.calls.empty());
  }
}

TEST(MimoToolStream, LongStringValueStreamsIncrementally) {
  auto p = tool_maker("mimo", test_tools())();
  p->push("<tool_call><function=run><parameter=command>");
  size_t pieces = 0;
  std::string args;
  for (int i = 0; i < 100; ++i) {
    auto d = p->push("line &amp; more\n");
    for (auto& c : d.calls) {
      args += c.arguments;
      ++pieces;
    }
  }
  EXPECT_GE(pieces, 99u);
  auto d = p->push("end</parameter></function></tool_call>");
  for (auto& c : d.calls) args += c.arguments;
  auto v = json::parse(args);
  std::string expect;
  for (int i = 0; i < 100; ++i) expect += "line & more\n";
  EXPECT_EQ(v["command"], expect + "end");
}

TEST(ToolRegistry, NamesAndErrors) {
  EXPECT_EQ(tool_parser_names(), (std::vector<std::string>{"mimo", "qwen25"}));
  EXPECT_EQ(make_tool_parser("mimo", test_tools())->name(), "mimo");
  try {
    make_tool_parser("hermes3", test_tools());
    FAIL() << "no throw";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("hermes3"), std::string::npos) << m;
    EXPECT_NE(m.find("mimo, qwen25"), std::string::npos) << m;
  }
  EXPECT_THROW(make_tool_parser("mimo", json::object()), Error);
  EXPECT_THROW(make_tool_parser("mimo", json::parse(R"([{"type": "function", "function": {}}])")), Error);
  EXPECT_THROW(make_tool_parser("mimo", json::parse(R"([{"type": "function", "function": {"name": "f",
                                                         "parameters": 3}}])")), Error);
}

TEST(ToolIds, SeededAndRandom) {
  auto a = seeded_call_id_generator(7), b = seeded_call_id_generator(7);
  std::string x = a();
  EXPECT_EQ(x, b());
  EXPECT_NE(x, a());
  auto r = random_call_id_generator();
  std::string id = r();
  ASSERT_EQ(id.size(), 29u);
  for (char c : id.substr(5)) EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c))) << id;
}

}  // namespace
}  // namespace mimo
