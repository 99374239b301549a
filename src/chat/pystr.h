// Python `str` semantics over UTF-8 std::string. Chat templates are written
// against Python's string methods (strip, split, title, repr, ...), so the
// prompt is only byte-identical to transformers' if these behave exactly like
// CPython's, including Unicode whitespace and code-point indexing.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mimo::jinja::py {

// UTF-8 <-> code points. Invalid bytes decode to U+FFFD (inputs come from
// nlohmann::json, which already rejects invalid UTF-8, or from the template).
std::u32string decode(std::string_view s);
std::string encode(std::u32string_view s);
void append_utf8(std::string& out, char32_t c);
size_t length(std::string_view s);  // in code points

// Py_UNICODE_ISSPACE: what str.strip()/split() with no argument remove.
bool is_space(char32_t c);

// str.strip/lstrip/rstrip; `chars` unset means whitespace.
std::string strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right);
// str.split / str.rsplit; `sep` unset means runs of whitespace. maxsplit < 0: no limit.
std::vector<std::string> split(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit);
std::vector<std::string> rsplit(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit);
std::vector<std::string> splitlines(std::string_view s, bool keepends);
std::string replace(std::string_view s, std::string_view old, std::string_view repl, int64_t count);

// Index arithmetic is in code points, with Python's slice clamping of start/end.
int64_t find(std::string_view s, std::string_view sub, std::optional<int64_t> start, std::optional<int64_t> end,
             bool reverse);
int64_t count(std::string_view s, std::string_view sub, std::optional<int64_t> start, std::optional<int64_t> end);

// Case mapping with the full Unicode tables of the Python that generated
// unicode_tables.inc (multi-code-point mappings and final sigma included).
std::string upper(std::string_view s);
std::string lower(std::string_view s);
std::string title(std::string_view s);       // str.title()
std::string capitalize(std::string_view s);  // str.capitalize()
bool is_lower(std::string_view s);           // str.islower()
bool is_upper(std::string_view s);           // str.isupper()
// len(re.findall(r"\w+", s)): what jinja2's wordcount filter counts.
int64_t word_count(std::string_view s);

// repr(float) / str(float): shortest round-trip digits, Python's layout.
std::string float_repr(double v);
// repr(str): quotes and escapes chosen the way CPython does.
std::string str_repr(std::string_view s);
// json.dumps(str, ensure_ascii=...): quoted JSON string.
std::string json_quote(std::string_view s, bool ensure_ascii);

}  // namespace mimo::jinja::py
