// Python str semantics the templates depend on (values from CPython 3.11).
#include "chat/pystr.h"

#include <gtest/gtest.h>

#include "chat/jinja_error.h"

namespace mimo::jinja::py {
namespace {

using V = std::vector<std::string>;

TEST(PyStr, FloatRepr) {
  EXPECT_EQ(float_repr(1.0), "1.0");
  EXPECT_EQ(float_repr(0.1), "0.1");
  EXPECT_EQ(float_repr(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(float_repr(1e16), "1e+16");
  EXPECT_EQ(float_repr(1e15), "1000000000000000.0");
  EXPECT_EQ(float_repr(123456789012345678.0), "1.2345678901234568e+17");
  EXPECT_EQ(float_repr(0.0001), "0.0001");
  EXPECT_EQ(float_repr(0.00001), "1e-05");
  EXPECT_EQ(float_repr(1.5e-7), "1.5e-07");
  EXPECT_EQ(float_repr(-0.0), "-0.0");
  EXPECT_EQ(float_repr(-2.5), "-2.5");
  EXPECT_EQ(float_repr(1e300 * 1e10), "inf");
  EXPECT_EQ(float_repr(5e-324), "5e-324");
  EXPECT_EQ(float_repr(1.7976931348623157e308), "1.7976931348623157e+308");
}

TEST(PyStr, StripUsesUnicodeWhitespace) {
  EXPECT_EQ(strip("\u3000 a b\u00a0\n", std::nullopt, true, true), "a b");
  EXPECT_EQ(strip("\u200ba\u200b", std::nullopt, true, true), "\u200ba\u200b");  // ZWSP is not whitespace
  EXPECT_EQ(strip("xxaxx", std::string("x"), true, false), "axx");
  EXPECT_EQ(strip("éaé", std::string("é"), true, true), "a");
  EXPECT_EQ(strip("\n\nthink\n", std::string("\n"), true, true), "think");
}

TEST(PyStr, Split) {
  EXPECT_EQ(split("  a  b c ", std::nullopt, -1), (V{"a", "b", "c"}));
  EXPECT_EQ(split("  a  b c ", std::nullopt, 1), (V{"a", "b c "}));
  EXPECT_EQ(split("", std::nullopt, -1), V{});
  EXPECT_EQ(split("a,,b", std::string(","), -1), (V{"a", "", "b"}));
  EXPECT_EQ(split("", std::string(","), -1), (V{""}));
  EXPECT_EQ(split("a</think>b</think>c", std::string("</think>"), 1), (V{"a", "b</think>c"}));
  EXPECT_EQ(rsplit("a b c", std::nullopt, 1), (V{"a b", "c"}));
  EXPECT_EQ(rsplit("a,b,c", std::string(","), 1), (V{"a,b", "c"}));
  EXPECT_THROW(split("a", std::string(""), -1), TemplateError);
  EXPECT_EQ(splitlines("a\r\nb\rc\n\nd", false), (V{"a", "b", "c", "", "d"}));
  EXPECT_EQ(splitlines("a\nb\n", true), (V{"a\n", "b\n"}));
}

TEST(PyStr, FindCountReplaceInCodePoints) {
  EXPECT_EQ(find("héllo", "l", std::nullopt, std::nullopt, false), 2);
  EXPECT_EQ(find("héllo", "l", std::nullopt, std::nullopt, true), 3);
  EXPECT_EQ(find("abc", "c", -1, std::nullopt, false), 2);
  EXPECT_EQ(find("abc", "z", std::nullopt, std::nullopt, false), -1);
  EXPECT_EQ(count("aaaa", "aa", std::nullopt, std::nullopt), 2);
  EXPECT_EQ(count("ab", "", std::nullopt, std::nullopt), 3);
  EXPECT_EQ(replace("ab", "", "-", -1), "-a-b-");
  EXPECT_EQ(replace("aaa", "a", "b", 2), "bba");
}

TEST(PyStr, CaseMapping) {
  EXPECT_EQ(upper("straße"), "STRASSE");
  EXPECT_EQ(lower("ΟΔΟΣ"), "οδος");  // final sigma
  EXPECT_EQ(lower("ΣΑ"), "σα");
  EXPECT_EQ(lower("İ"), "i\u0307");
  EXPECT_EQ(title("hello wORLD 1st x'y"), "Hello World 1St X'Y");
  EXPECT_EQ(capitalize("hELLO"), "Hello");
  EXPECT_EQ(upper("ǆ"), "Ǆ");
  EXPECT_EQ(title("ǆa"), "ǅa");
  EXPECT_EQ(upper("日本"), "日本");
  EXPECT_TRUE(is_lower("abc1"));
  EXPECT_FALSE(is_lower("1"));
  EXPECT_TRUE(is_upper("ABC"));
}

TEST(PyStr, Repr) {
  EXPECT_EQ(str_repr("a"), "'a'");
  EXPECT_EQ(str_repr("a'b"), "\"a'b\"");
  EXPECT_EQ(str_repr("a'b\""), "'a\\'b\"'");
  EXPECT_EQ(str_repr("\n\t\\"), "'\\n\\t\\\\'");
  EXPECT_EQ(str_repr("\x01\x7f"), "'\\x01\\x7f'");
  EXPECT_EQ(str_repr("é\u00a0\u200b😀"), "'é\\xa0\\u200b😀'");
}

TEST(PyStr, JsonQuote) {
  EXPECT_EQ(json_quote("a\"b\\c\n\x01é\u2028", false), "\"a\\\"b\\\\c\\n\\u0001é\u2028\"");
  EXPECT_EQ(json_quote("é😀\x7f", true), "\"\\u00e9\\ud83d\\ude00\\u007f\"");
}

TEST(PyStr, Utf8) {
  EXPECT_EQ(length("héllo😀"), 6u);
  EXPECT_EQ(encode(decode("héllo😀")), "héllo😀");
  EXPECT_EQ(decode(std::string("a\xff") + "b"), U"a\uFFFDb");
  EXPECT_EQ(word_count("héllo wörld_x 42, ok"), 4);
}

}  // namespace
}  // namespace mimo::jinja::py
