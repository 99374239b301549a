// Small text helpers shared by the output parsers: tag scanning with
// partial-tag hold-back, UTF-8 boundaries, HTML unescaping and the JSON string
// escaper that both the streaming and the one-shot argument writers use (so
// their outputs agree byte for byte).
#pragma once

#include <cstddef>
#include <initializer_list>
#include <string>
#include <string_view>

namespace mimo::parsers {

inline bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool all_space(std::string_view s);
std::string_view trim(std::string_view s);
bool iequals(std::string_view a, std::string_view b);  // ASCII case-insensitive

// Length of the longest proper prefix of `tag` that is a suffix of `text`:
// those bytes may be the start of the tag and must be held back.
size_t partial_tag_len(std::string_view text, std::string_view tag);
size_t partial_tag_len(std::string_view text, std::initializer_list<std::string_view> tags);

// Earliest occurrence of any of `tags` in text[from:]; returns npos when none
// and sets *which to the index of the tag found.
size_t find_first_tag(std::string_view text, size_t from, std::initializer_list<std::string_view> tags,
                      int* which);

// Bytes at the end of `s` that start a UTF-8 sequence whose remaining bytes
// have not arrived yet (0..3). Invalid bytes are not held.
size_t utf8_incomplete_tail(std::string_view s);

// HTML entities: &lt; &gt; &amp; &quot; &apos; &#39; &nbsp; and numeric
// &#NN; / &#xNN; forms. The semicolon is required; anything else is kept as
// written. Numeric references to 0, surrogates or > U+10FFFF give U+FFFD.
std::string html_unescape(std::string_view s);
// Where an entity that is not complete yet may begin at the end of `s`
// (s.size() when nothing needs holding).
size_t html_entity_holdback(std::string_view s);

// Appends `s` escaped for the inside of a JSON string, as json.dumps with
// ensure_ascii=False and nlohmann's dump do: \" \\ \b \f \n \r \t, other
// control bytes as \u00xx; invalid UTF-8 becomes U+FFFD.
void json_escape_append(std::string& out, std::string_view s);
std::string json_quote(std::string_view s);  // "..." with escaping

void append_utf8(std::string& out, unsigned cp);

}  // namespace mimo::parsers
