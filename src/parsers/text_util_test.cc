#include "parsers/text_util.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace mimo::parsers {
namespace {

TEST(TextUtil, PartialTagLen) {
  EXPECT_EQ(partial_tag_len("hello <tool_", "<tool_call>"), 6u);
  EXPECT_EQ(partial_tag_len("hello <", "<tool_call>"), 1u);
  EXPECT_EQ(partial_tag_len("hello", "<tool_call>"), 0u);
  EXPECT_EQ(partial_tag_len("<tool_call>", "<tool_call>"), 0u);  // whole tag is not partial
  EXPECT_EQ(partial_tag_len("x</fun", {"</parameter>", "</function>"}), 5u);
  EXPECT_EQ(partial_tag_len("", "<a>"), 0u);
}

TEST(TextUtil, FindFirstTag) {
  int w = -1;
  EXPECT_EQ(find_first_tag("ab</function></parameter>", 0, {"</parameter>", "</function>"}, &w), 2u);
  EXPECT_EQ(w, 1);
  EXPECT_EQ(find_first_tag("abc", 0, {"x", "y"}, &w), std::string_view::npos);
}

TEST(TextUtil, Trim) {
  EXPECT_EQ(trim("  a b \n"), "a b");
  EXPECT_EQ(trim(" \n "), "");
  EXPECT_TRUE(all_space(" \t\r\n"));
  EXPECT_FALSE(all_space(" x"));
  EXPECT_TRUE(iequals("NuLL", "null"));
  EXPECT_FALSE(iequals("nul", "null"));
}

TEST(TextUtil, Utf8Tail) {
  EXPECT_EQ(utf8_incomplete_tail("abc"), 0u);
  std::string e = "\xC3\xA9";  // é
  EXPECT_EQ(utf8_incomplete_tail(e), 0u);
  EXPECT_EQ(utf8_incomplete_tail(e.substr(0, 1)), 1u);
  std::string cjk = "\xE4\xBD\xA0";  // 你
  EXPECT_EQ(utf8_incomplete_tail("a" + cjk.substr(0, 2)), 2u);
  std::string emoji = "\xF0\x9F\x98\x80";
  EXPECT_EQ(utf8_incomplete_tail(emoji.substr(0, 3)), 3u);
  EXPECT_EQ(utf8_incomplete_tail(emoji), 0u);
  EXPECT_EQ(utf8_incomplete_tail("\x80"), 0u);  // stray continuation: not held
  EXPECT_EQ(utf8_incomplete_tail("\xFF"), 0u);
}

TEST(TextUtil, HtmlUnescape) {
  EXPECT_EQ(html_unescape("a &lt; b &amp;&amp; c &gt; d"), "a < b && c > d");
  EXPECT_EQ(html_unescape("&quot;x&quot; &#39;y&#39; &apos;"), "\"x\" 'y' '");
  EXPECT_EQ(html_unescape("&#65;&#x42;&#X43;"), "ABC");
  EXPECT_EQ(html_unescape("&#x4F60;"), "\xE4\xBD\xA0");
  EXPECT_EQ(html_unescape("&#0;&#xD800;&#x110000;"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(html_unescape("&nbsp;"), "\xC2\xA0");
  // Not entities: kept as written.
  EXPECT_EQ(html_unescape("a && b"), "a && b");
  EXPECT_EQ(html_unescape("&lt"), "&lt");
  EXPECT_EQ(html_unescape("&bogus;"), "&bogus;");
  EXPECT_EQ(html_unescape("&#;&#x;&#12a;"), "&#;&#x;&#12a;");
  EXPECT_EQ(html_unescape("&&lt;"), "&<");
  EXPECT_EQ(html_unescape("R&D"), "R&D");
}

TEST(TextUtil, EntityHoldback) {
  EXPECT_EQ(html_entity_holdback("abc"), 3u);
  EXPECT_EQ(html_entity_holdback("abc&"), 3u);
  EXPECT_EQ(html_entity_holdback("abc&lt"), 3u);
  EXPECT_EQ(html_entity_holdback("abc&lt;"), 7u);
  EXPECT_EQ(html_entity_holdback("abc& "), 5u);
  EXPECT_EQ(html_entity_holdback("&#x1F600"), 0u);
  EXPECT_EQ(html_entity_holdback("&abcdefghijklmnop"), 17u);  // too long to be one
}

TEST(TextUtil, JsonEscapeMatchesNlohmann) {
  const std::string samples[] = {"plain", "q\"b\\s", "\n\r\t\b\f", std::string("\x01\x1f\x7f", 3),
                                 "caf\xC3\xA9 \xE4\xBD\xA0 \xF0\x9F\x98\x80", "</script>"};
  for (const auto& s : samples) EXPECT_EQ(json_quote(s), nlohmann::json(s).dump()) << s;
}

TEST(TextUtil, JsonEscapeInvalidUtf8) {
  EXPECT_EQ(json_quote("a\xFF" "b"), "\"a\xEF\xBF\xBD" "b\"");
  EXPECT_EQ(json_quote("a\xE4\xBD"), "\"a\xEF\xBF\xBD\"");      // truncated at the end
  EXPECT_EQ(json_quote("a\xE4\xBDz"), "\"a\xEF\xBF\xBDz\"");     // broken by ASCII
  EXPECT_EQ(json_quote("\x80\x80"), "\"\xEF\xBF\xBD\xEF\xBF\xBD\"");
  // Escaping pieces cut before ASCII bytes gives the same text as the whole.
  std::string whole = "x\xE4\xBD<y\xFF&z";
  std::string a, b;
  json_escape_append(a, whole);
  json_escape_append(b, whole.substr(0, 3));
  json_escape_append(b, whole.substr(3));
  EXPECT_EQ(a, b);
}

}  // namespace
}  // namespace mimo::parsers
