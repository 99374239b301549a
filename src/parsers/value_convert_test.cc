#include "parsers/value_convert.h"

#include <gtest/gtest.h>

namespace mimo {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;

ParamType T(const json& schema) { return param_type_from_schema(schema); }
std::string conv(std::string_view text, const json& schema) {
  return dump_json(convert_param_value(text, T(schema)), ArgsStyle::kCompact);
}
std::string conv_unknown(std::string_view text, bool as_json = true) {
  return dump_json(convert_param_value(text, ParamType{}, ConvertOptions{as_json}), ArgsStyle::kCompact);
}

TEST(ParamType, FromSchema) {
  EXPECT_EQ(T({{"type", "string"}}).kinds, unsigned(kKindString));
  EXPECT_TRUE(T({{"type", "string"}}).only_string());
  EXPECT_TRUE(T({{"type", json::array({"string", "null"})}}).only_string());
  EXPECT_FALSE(T({{"type", json::array({"string", "integer"})}}).only_string());
  EXPECT_EQ(T({{"type", "int64"}}).kinds, unsigned(kKindInteger));
  EXPECT_EQ(T({{"type", "float"}}).kinds, unsigned(kKindNumber));
  EXPECT_EQ(T({{"type", "Boolean"}}).kinds, unsigned(kKindBoolean));
  EXPECT_EQ(T({{"type", "dict"}}).kinds, unsigned(kKindObject));
  EXPECT_EQ(T({{"type", "weird"}}).kinds, unsigned(kKindOther));
  EXPECT_EQ(T(json::object()).kinds, unsigned(kKindString));  // no type: string, as SGLang
  EXPECT_EQ(T({{"description", "x"}, {"properties", json::object()}}).kinds, unsigned(kKindObject));
  json any = {{"anyOf", json::array({{{"type", "integer"}}, {{"type", "null"}}})}};
  EXPECT_EQ(T(any).kinds, unsigned(kKindInteger | kKindNull));
  EXPECT_FALSE(ParamType{}.known);
}

TEST(Convert, String) {
  json s = {{"type", "string"}};
  EXPECT_EQ(conv("hello world", s), "\"hello world\"");
  EXPECT_EQ(conv("42", s), "\"42\"");
  EXPECT_EQ(conv("a &lt; b &amp;&amp; c", s), "\"a < b && c\"");
  EXPECT_EQ(conv("line1\nline2", s), "\"line1\\nline2\"");
  EXPECT_EQ(conv("", s), "\"\"");
  EXPECT_EQ(conv("null", s), "null");  // SGLang: "null" is null for every type
  EXPECT_EQ(conv("NULL", s), "null");
  EXPECT_EQ(conv("nullable", s), "\"nullable\"");
}

TEST(Convert, Integer) {
  json i = {{"type", "integer"}};
  EXPECT_EQ(conv("42", i), "42");
  EXPECT_EQ(conv(" -7 ", i), "-7");
  EXPECT_EQ(conv("+3", i), "3");
  EXPECT_EQ(conv("007", i), "7");
  EXPECT_EQ(conv("18446744073709551615", i), "18446744073709551615");
  EXPECT_EQ(conv("-9223372036854775808", i), "-9223372036854775808");
  EXPECT_EQ(conv("4.5", i), "\"4.5\"");  // not an integer: kept as the string
  EXPECT_EQ(conv("ten", i), "\"ten\"");
  EXPECT_EQ(conv("", i), "\"\"");
  EXPECT_EQ(conv("99999999999999999999999", i), "\"99999999999999999999999\"");
}

TEST(Convert, Number) {
  json n = {{"type", "number"}};
  EXPECT_EQ(conv("3.5", n), "3.5");
  EXPECT_EQ(conv("3.0", n), "3");  // integral floats become ints, as SGLang
  EXPECT_EQ(conv("1e3", n), "1000");
  EXPECT_EQ(conv("-0.25", n), "-0.25");
  EXPECT_EQ(conv(" .5 ", n), "0.5");
  EXPECT_EQ(conv("1e300", n), "1e+300");
  EXPECT_EQ(conv("inf", n), "\"inf\"");  // non-finite: kept as the string
  EXPECT_EQ(conv("nan", n), "\"nan\"");
  EXPECT_EQ(conv("0x10", n), "\"0x10\"");
  EXPECT_EQ(conv("abc", n), "\"abc\"");
}

TEST(Convert, Boolean) {
  json b = {{"type", "boolean"}};
  EXPECT_EQ(conv("true", b), "true");
  EXPECT_EQ(conv("True", b), "true");
  EXPECT_EQ(conv(" FALSE ", b), "false");
  EXPECT_EQ(conv("yes", b), "false");  // SGLang degenerates to false
}

TEST(Convert, ObjectAndArray) {
  json o = {{"type", "object"}};
  json a = {{"type", "array"}};
  EXPECT_EQ(conv("{\"b\": 1, \"a\": [1, 2.5, \"x\"]}", o), "{\"b\":1,\"a\":[1,2.5,\"x\"]}");  // order kept
  EXPECT_EQ(conv("[1, 2, 3]", a), "[1,2,3]");
  EXPECT_EQ(conv("{'a': 1, 'b': True, 'c': None, 'd': (1, 2)}", o), "{\"a\":1,\"b\":true,\"c\":null,\"d\":[1,2]}");
  EXPECT_EQ(conv("['x', \"y\", 1.5, -2]", a), "[\"x\",\"y\",1.5,-2]");
  EXPECT_EQ(conv("{&quot;k&quot;: &quot;v&quot;}", o), "{\"k\":\"v\"}");
  EXPECT_EQ(conv("{broken", o), "\"{broken\"");
  EXPECT_EQ(conv("[1, 2", a), "\"[1, 2\"");
}

TEST(Convert, SeveralTypes) {
  json t = {{"type", json::array({"integer", "string"})}};
  EXPECT_EQ(conv("5", t), "5");
  EXPECT_EQ(conv("five", t), "\"five\"");
  json any = {{"anyOf", json::array({{{"type", "array"}}, {{"type", "boolean"}}})}};
  EXPECT_EQ(conv("[1]", any), "[1]");
  EXPECT_EQ(conv("TRUE", any), "true");
  EXPECT_EQ(conv("maybe", any), "\"maybe\"");
  json on = {{"type", json::array({"number", "null"})}};
  EXPECT_EQ(conv("2.5", on), "2.5");
  EXPECT_EQ(conv("null", on), "null");
}

TEST(Convert, UnknownTypeAndUnknownParam) {
  EXPECT_EQ(conv("{'a': 1}", {{"type", "mapping"}}), "{\"a\":1}");
  EXPECT_EQ(conv("hello there", {{"type", "mapping"}}), "\"hello there\"");
  EXPECT_EQ(conv_unknown("42"), "42");
  EXPECT_EQ(conv_unknown("{\"a\": [1]}"), "{\"a\":[1]}");
  EXPECT_EQ(conv_unknown("hello"), "\"hello\"");
  EXPECT_EQ(conv_unknown("42", false), "\"42\"");
}

TEST(PythonLiteral, Cases) {
  auto p = [](std::string_view s) {
    auto v = parse_python_literal(s);
    return v ? dump_json(*v, ArgsStyle::kCompact) : std::string("<none>");
  };
  EXPECT_EQ(p("{'a': 'it\\'s', \"b\": [1, (2,), ()], 3: None}"), "{\"a\":\"it's\",\"b\":[1,[2],[]],\"3\":null}");
  EXPECT_EQ(p("'\\u00e9\\n\\x41'"), "\"\xC3\xA9\\nA\"");
  EXPECT_EQ(p("(1)"), "1");
  EXPECT_EQ(p("[1, 2,]"), "[1,2]");
  EXPECT_EQ(p("1.0"), "1.0");
  EXPECT_EQ(p("-3"), "-3");
  EXPECT_EQ(p("True"), "true");
  EXPECT_EQ(p("Truex"), "<none>");
  EXPECT_EQ(p("[1 2]"), "<none>");
  EXPECT_EQ(p("{'a' 1}"), "<none>");
  EXPECT_EQ(p("'open"), "<none>");
  EXPECT_EQ(p("{[1]: 2}"), "<none>");
  EXPECT_EQ(p("float('nan')"), "<none>");
  EXPECT_EQ(p(""), "<none>");
  EXPECT_EQ(p(std::string(200, '[')), "<none>");  // depth limit, no stack overflow
}

TEST(DumpJson, Styles) {
  ordered_json v = ordered_json::parse(R"({"z": 1, "a": [true, null, 0.5, "\u00e9\n"], "m": {}})");
  EXPECT_EQ(dump_json(v, ArgsStyle::kCompact), "{\"z\":1,\"a\":[true,null,0.5,\"\xC3\xA9\\n\"],\"m\":{}}");
  EXPECT_EQ(dump_json(v, ArgsStyle::kPython), "{\"z\": 1, \"a\": [true, null, 0.5, \"\xC3\xA9\\n\"], \"m\": {}}");
  EXPECT_EQ(dump_json(ordered_json(1e21), ArgsStyle::kCompact), "1e+21");
  EXPECT_EQ(dump_json(ordered_json(100.0), ArgsStyle::kCompact), "100.0");
}

}  // namespace
}  // namespace mimo
