#include "parsers/value_convert.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>

#include "parsers/text_util.h"

namespace mimo {

using nlohmann::ordered_json;
using parsers::is_space;
using parsers::trim;

// ---------------------------------------------------------------- writing

void dump_json(const ordered_json& v, ArgsStyle style, std::string& out) {
  switch (v.type()) {
    case ordered_json::value_t::string:
      out += '"';
      parsers::json_escape_append(out, v.get_ref<const std::string&>());
      out += '"';
      return;
    case ordered_json::value_t::object: {
      out += '{';
      bool first = true;
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (!first) out += item_separator(style);
        first = false;
        out += '"';
        parsers::json_escape_append(out, it.key());
        out += '"';
        out += key_separator(style);
        dump_json(it.value(), style, out);
      }
      out += '}';
      return;
    }
    case ordered_json::value_t::array: {
      out += '[';
      bool first = true;
      for (const auto& e : v) {
        if (!first) out += item_separator(style);
        first = false;
        dump_json(e, style, out);
      }
      out += ']';
      return;
    }
    case ordered_json::value_t::boolean:
    case ordered_json::value_t::number_integer:
    case ordered_json::value_t::number_unsigned:
    case ordered_json::value_t::number_float:
      out += v.dump();
      return;
    default:
      out += "null";
  }
}

std::string dump_json(const ordered_json& v, ArgsStyle style) {
  std::string out;
  dump_json(v, style, out);
  return out;
}

// ---------------------------------------------------------------- numbers

std::optional<ordered_json> parse_int_text(std::string_view text) {
  std::string_view s = trim(text);
  bool neg = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    neg = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s.empty()) return std::nullopt;
  for (char c : s)
    if (c < '0' || c > '9') return std::nullopt;
  uint64_t u = 0;
  auto r = std::from_chars(s.data(), s.data() + s.size(), u);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size()) return std::nullopt;
  if (!neg) {
    if (u <= uint64_t(std::numeric_limits<int64_t>::max())) return ordered_json(int64_t(u));
    return ordered_json(u);
  }
  if (u <= uint64_t(std::numeric_limits<int64_t>::max())) return ordered_json(-int64_t(u));
  if (u == uint64_t(std::numeric_limits<int64_t>::max()) + 1) return ordered_json(std::numeric_limits<int64_t>::min());
  return std::nullopt;
}

std::optional<ordered_json> parse_number_text(std::string_view text) {
  std::string_view s = trim(text);
  if (!s.empty() && s[0] == '+') s.remove_prefix(1);
  if (s.empty() || s[0] == '+') return std::nullopt;
  for (char c : s)
    if (c == 'x' || c == 'X') return std::nullopt;
  double d = 0;
  auto r = std::from_chars(s.data(), s.data() + s.size(), d);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size() || !std::isfinite(d)) return std::nullopt;
  if (d == std::trunc(d) && std::fabs(d) < 9.2e18) return ordered_json(int64_t(d));
  return ordered_json(d);
}

// ---------------------------------------------------------------- Python literals

namespace {

class PyLiteral {
 public:
  explicit PyLiteral(std::string_view s) : s_(s) {}

  std::optional<ordered_json> run() {
    auto v = value(0);
    skip_ws();
    if (!v || i_ != s_.size()) return std::nullopt;
    return v;
  }

 private:
  static constexpr int kMaxDepth = 64;

  void skip_ws() {
    while (i_ < s_.size() && is_space(s_[i_])) ++i_;
  }
  bool eat(char c) {
    skip_ws();
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  bool word(std::string_view w) {
    if (s_.substr(i_, w.size()) != w) return false;
    size_t e = i_ + w.size();
    if (e < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[e])) || s_[e] == '_')) return false;
    i_ = e;
    return true;
  }

  std::optional<ordered_json> value(int depth) {
    if (depth > kMaxDepth) return std::nullopt;
    skip_ws();
    if (i_ >= s_.size()) return std::nullopt;
    char c = s_[i_];
    if (c == '{') return dict(depth);
    if (c == '[') return seq(depth, ']');
    if (c == '(') return seq(depth, ')');
    if (c == '\'' || c == '"') return str();
    if (word("True")) return ordered_json(true);
    if (word("False")) return ordered_json(false);
    if (word("None")) return ordered_json(nullptr);
    return number();
  }

  std::optional<ordered_json> seq(int depth, char close) {
    ++i_;
    ordered_json arr = ordered_json::array();
    bool comma = false;
    while (true) {
      if (eat(close)) break;
      if (!arr.empty() && !comma) return std::nullopt;
      auto v = value(depth + 1);
      if (!v) return std::nullopt;
      arr.push_back(std::move(*v));
      comma = eat(',');
    }
    // "(x)" is x itself in Python; "(x,)" and "()" are tuples.
    if (close == ')' && arr.size() == 1 && !comma) return arr[0];
    return arr;
  }

  std::optional<ordered_json> dict(int depth) {
    ++i_;
    ordered_json obj = ordered_json::object();
    bool comma = true;
    while (true) {
      if (eat('}')) break;
      if (!comma) return std::nullopt;
      auto k = value(depth + 1);
      if (!k || !eat(':')) return std::nullopt;
      auto v = value(depth + 1);
      if (!v) return std::nullopt;
      std::string key;
      if (k->is_string()) key = k->get<std::string>();
      else if (k->is_primitive() && !k->is_null()) key = k->dump();
      else if (k->is_null()) key = "null";
      else return std::nullopt;  // list/dict keys are not hashable
      obj[key] = std::move(*v);
      comma = eat(',');
    }
    return obj;
  }

  std::optional<ordered_json> number() {
    size_t b = i_;
    if (i_ < s_.size() && (s_[i_] == '-' || s_[i_] == '+')) ++i_;
    while (i_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[i_])) || s_[i_] == '.' ||
                              ((s_[i_] == '-' || s_[i_] == '+') && (s_[i_ - 1] == 'e' || s_[i_ - 1] == 'E'))))
      ++i_;
    std::string_view tok = s_.substr(b, i_ - b);
    if (tok.empty()) return std::nullopt;
    if (auto v = parse_int_text(tok)) return v;
    // Python floats keep their float-ness (1.0 stays 1.0).
    std::string_view t = tok;
    if (t[0] == '+') t.remove_prefix(1);
    if (t.empty() || t[0] == '+' || t.find_first_of("xXnN") != std::string_view::npos) return std::nullopt;
    double d = 0;
    auto r = std::from_chars(t.data(), t.data() + t.size(), d);
    if (r.ec != std::errc() || r.ptr != t.data() + t.size() || !std::isfinite(d)) return std::nullopt;
    return ordered_json(d);
  }

  std::optional<ordered_json> str() {
    char q = s_[i_++];
    std::string out;
    while (i_ < s_.size()) {
      char c = s_[i_++];
      if (c == q) return ordered_json(std::move(out));
      if (c == '\n') return std::nullopt;  // unterminated single-line string
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i_ >= s_.size()) return std::nullopt;
      char e = s_[i_++];
      switch (e) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'v': out += '\v'; break;
        case 'a': out += '\a'; break;
        case '0': out += '\0'; break;
        case '\\': out += '\\'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case '\n': break;  // line continuation
        case 'x': case 'u': case 'U': {
          size_t n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          if (i_ + n > s_.size()) return std::nullopt;
          unsigned cp = 0;
          for (size_t k = 0; k < n; ++k) {
            char h = s_[i_ + k];
            int d = (h >= '0' && h <= '9') ? h - '0' : (h >= 'a' && h <= 'f') ? h - 'a' + 10
                    : (h >= 'A' && h <= 'F') ? h - 'A' + 10 : -1;
            if (d < 0) return std::nullopt;
            cp = cp * 16 + unsigned(d);
          }
          i_ += n;
          if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return std::nullopt;
          parsers::append_utf8(out, cp);
          break;
        }
        default:  // unknown escapes keep the backslash, as Python does
          out += '\\';
          out += e;
      }
    }
    return std::nullopt;
  }

  std::string_view s_;
  size_t i_ = 0;
};

}  // namespace

std::optional<ordered_json> parse_python_literal(std::string_view text) { return PyLiteral(text).run(); }

std::optional<ordered_json> parse_json_value(std::string_view text) {
  ordered_json v = ordered_json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (v.is_discarded()) return std::nullopt;
  return v;
}

// ---------------------------------------------------------------- schema types

static unsigned kind_of_name(std::string name) {
  for (auto& c : name) c = char(std::tolower(static_cast<unsigned char>(c)));
  auto starts = [&](std::string_view p) { return name.compare(0, p.size(), p) == 0; };
  if (name == "string" || name == "str" || name == "text" || name == "varchar" || name == "char" ||
      name == "enum")
    return kKindString;
  if (starts("int") || starts("uint") || starts("long") || starts("short") || starts("unsigned"))
    return kKindInteger;
  if (starts("num") || starts("float")) return kKindNumber;
  if (name == "boolean" || name == "bool" || name == "binary") return kKindBoolean;
  if (name == "object" || name == "array" || name == "arr" || starts("dict") || starts("list")) return kKindObject;
  if (name == "null") return kKindNull;
  return kKindOther;
}

static void collect_kinds(const nlohmann::json& s, unsigned& kinds, int depth) {
  if (!s.is_object() || depth > 16) return;
  auto t = s.find("type");
  if (t != s.end() && t->is_string()) {
    kinds |= kind_of_name(t->get<std::string>());
    return;
  }
  if (t != s.end() && t->is_array()) {
    for (const auto& e : *t)
      if (e.is_string()) kinds |= kind_of_name(e.get<std::string>());
    return;
  }
  for (const char* key : {"anyOf", "oneOf", "allOf"}) {
    auto a = s.find(key);
    if (a != s.end() && a->is_array())
      for (const auto& m : *a) collect_kinds(m, kinds, depth + 1);
  }
  if (kinds == 0 && (s.contains("properties") || s.contains("items"))) kinds = kKindObject;
}

ParamType param_type_from_schema(const nlohmann::json& prop_schema) {
  ParamType t;
  t.known = true;
  collect_kinds(prop_schema, t.kinds, 0);
  if (t.kinds == 0) t.kinds = kKindString;
  return t;
}

// ---------------------------------------------------------------- conversion

static std::optional<ordered_json> parse_structured(std::string_view u) {
  if (auto v = parse_json_value(u)) return v;
  return parse_python_literal(u);
}

static std::optional<ordered_json> parse_bool_text(std::string_view u) {
  std::string_view t = trim(u);
  if (parsers::iequals(t, "true")) return ordered_json(true);
  if (parsers::iequals(t, "false")) return ordered_json(false);
  return std::nullopt;
}

ordered_json convert_param_value(std::string_view text, const ParamType& type, const ConvertOptions& opts) {
  if (parsers::iequals(text, "null")) return nullptr;
  std::string u = parsers::html_unescape(text);
  if (!type.known) {
    if (opts.unknown_as_json)
      if (auto v = parse_json_value(u)) return *v;
    return u;
  }
  unsigned k = type.kinds & ~unsigned(kKindNull);
  switch (k) {
    case kKindString:
      return u;
    case kKindInteger:
      if (auto v = parse_int_text(u)) return *v;
      return u;
    case kKindNumber:
      if (auto v = parse_number_text(u)) return *v;
      return u;
    case kKindBoolean:
      if (auto v = parse_bool_text(u)) return *v;
      return false;
    case kKindObject:
      if (auto v = parse_structured(u)) return *v;
      return u;
    case 0:
    case kKindOther:
      if (auto v = parse_python_literal(u)) return *v;
      return u;
    default:
      break;
  }
  if (k & kKindObject)
    if (auto v = parse_structured(u); v && v->is_structured()) return *v;
  if (k & kKindInteger)
    if (auto v = parse_int_text(u)) return *v;
  if (k & kKindNumber)
    if (auto v = parse_number_text(u)) return *v;
  if (k & kKindBoolean)
    if (auto v = parse_bool_text(u)) return *v;
  if (k & kKindString) return u;
  if (auto v = parse_structured(u)) return *v;
  return u;
}

}  // namespace mimo
