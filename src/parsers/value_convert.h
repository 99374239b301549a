// Turning the text of a tool-call parameter into a JSON value, guided by the
// tool's JSON schema, and writing argument objects back out as JSON text.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace mimo {

// Separators of the `arguments` JSON string. kCompact: {"a":1,"b":2} (what
// the brief asks for and OpenAI sends); kPython: {"a": 1, "b": 2}, which is
// json.dumps' default and what SGLang sends.
enum class ArgsStyle { kCompact, kPython };

// Value text the way the parsers write it; strings go through
// parsers::json_escape_append, numbers through nlohmann's shortest round-trip.
void dump_json(const nlohmann::ordered_json& v, ArgsStyle style, std::string& out);
std::string dump_json(const nlohmann::ordered_json& v, ArgsStyle style);
inline std::string_view key_separator(ArgsStyle s) { return s == ArgsStyle::kCompact ? ":" : ": "; }
inline std::string_view item_separator(ArgsStyle s) { return s == ArgsStyle::kCompact ? "," : ", "; }

// Python literal subset (what ast.literal_eval accepts for data): dicts,
// lists, tuples (-> arrays), '...'/"..." strings, ints, floats, True, False,
// None. Dict keys that are ints/floats/bools/None become their JSON spelling
// as a string, as json.dumps does. Non-finite floats are rejected.
std::optional<nlohmann::ordered_json> parse_python_literal(std::string_view text);

// Strict JSON (nlohmann, key order kept); nullopt when it does not parse.
std::optional<nlohmann::ordered_json> parse_json_value(std::string_view text);

// The kinds a schema "type" can name, normalised the way SGLang/vLLM read the
// loose spellings models and clients use ("int64", "str", "dict", ...).
enum ParamKind : unsigned {
  kKindString = 1,
  kKindInteger = 2,
  kKindNumber = 4,
  kKindBoolean = 8,
  kKindObject = 16,  // object or array: parsed as JSON
  kKindNull = 32,
  kKindOther = 64,   // a type name we do not know
};

struct ParamType {
  unsigned kinds = 0;   // bit set of ParamKind
  bool known = false;   // false: the parameter is not in the schema
  bool only_string() const { return known && (kinds & ~unsigned(kKindNull)) == kKindString; }
};

// From a property schema: "type" as a string or a list, else the union over
// anyOf/oneOf/allOf members; no type at all reads as string (as SGLang does).
ParamType param_type_from_schema(const nlohmann::json& prop_schema);

struct ConvertOptions {
  // Parameters missing from the schema: true parses the text as JSON and
  // falls back to the string; false keeps the string (SGLang).
  bool unknown_as_json = true;
};

// `text` is the parameter text after newline stripping, still HTML-escaped.
// Rules (after html_unescape):
//  * "null" (any case) is null whatever the type (SGLang);
//  * string -> the text;
//  * integer -> int64 (optional sign, digits, surrounding spaces); else the string;
//  * number -> a finite double, written as an int when integral; else the string;
//  * boolean -> true/false in any case; anything else is false (SGLang);
//  * object/array -> JSON, then Python literal, else the string;
//  * unknown type names -> Python literal, else the string;
//  * several types (list / anyOf): tried as object, integer, number, boolean,
//    then string if allowed; else JSON / Python literal / string.
nlohmann::ordered_json convert_param_value(std::string_view text, const ParamType& type,
                                           const ConvertOptions& opts = {});

// The strict readers used above; exposed for tests.
std::optional<nlohmann::ordered_json> parse_int_text(std::string_view text);
std::optional<nlohmann::ordered_json> parse_number_text(std::string_view text);

}  // namespace mimo
