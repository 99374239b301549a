#include "chat/pystr.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>

#include "chat/jinja_error.h"

namespace mimo::jinja::py {

namespace {

struct SetRun {
  char32_t start, end, stride;
};
struct MapRun {
  char32_t start, end, stride;
  int32_t delta;
};
struct SpecialMap {
  char32_t cp;
  const char* utf8;
};

#include "chat/unicode_tables.inc"

template <typename Run, size_t N>
const Run* find_run(const Run (&runs)[N], char32_t c) {
  // Runs are sorted and disjoint: the candidate is the last one starting at or before c.
  auto it = std::upper_bound(runs, runs + N, c, [](char32_t v, const Run& r) { return v < r.start; });
  if (it == runs) return nullptr;
  const Run* r = it - 1;
  if (c > r->end || (c - r->start) % r->stride != 0) return nullptr;
  return r;
}

template <size_t N>
bool in_set(const SetRun (&runs)[N], char32_t c) {
  return find_run(runs, c) != nullptr;
}

template <size_t N, size_t M>
void map_char(const MapRun (&runs)[N], const SpecialMap (&special)[M], char32_t c, std::string& out) {
  // Multi-code-point mappings (e.g. U+00DF -> "SS") are sorted by code point.
  auto sp = std::lower_bound(special, special + M, c, [](const SpecialMap& m, char32_t v) { return m.cp < v; });
  if (sp != special + M && sp->cp == c && sp->utf8[0] != '\0') {
    out += sp->utf8;
    return;
  }
  const MapRun* r = find_run(runs, c);
  append_utf8(out, r ? char32_t(int32_t(c) + r->delta) : c);
}

bool is_cased(char32_t c) { return in_set(kCased, c); }

size_t cp_size(unsigned char b) {
  if (b < 0x80) return 1;
  if ((b >> 5) == 0x6) return 2;
  if ((b >> 4) == 0xE) return 3;
  if ((b >> 3) == 0x1E) return 4;
  return 1;
}

// Python slice-style clamping of optional start/end over a length.
void clamp_range(int64_t len, std::optional<int64_t> start, std::optional<int64_t> end, int64_t* s, int64_t* e) {
  *s = start.value_or(0);
  *e = end.value_or(len);
  if (*s < 0) *s = std::max<int64_t>(0, *s + len);
  if (*e < 0) *e = std::max<int64_t>(0, *e + len);
  *s = std::min(*s, len);
  *e = std::min(*e, len);
}

}  // namespace

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out += char(c);
  } else if (c < 0x800) {
    out += char(0xC0 | (c >> 6));
    out += char(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += char(0xE0 | (c >> 12));
    out += char(0x80 | ((c >> 6) & 0x3F));
    out += char(0x80 | (c & 0x3F));
  } else {
    out += char(0xF0 | (c >> 18));
    out += char(0x80 | ((c >> 12) & 0x3F));
    out += char(0x80 | ((c >> 6) & 0x3F));
    out += char(0x80 | (c & 0x3F));
  }
}

std::u32string decode(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    unsigned char b = s[i];
    size_t n = cp_size(b);
    if (n == 1 && b >= 0x80) {
      out += U'\uFFFD';
      ++i;
      continue;
    }
    if (i + n > s.size()) {
      out += U'\uFFFD';
      break;
    }
    char32_t c = n == 1 ? b : n == 2 ? (b & 0x1F) : n == 3 ? (b & 0x0F) : (b & 0x07);
    bool ok = true;
    for (size_t k = 1; k < n; ++k) {
      unsigned char cb = s[i + k];
      if ((cb & 0xC0) != 0x80) ok = false;
      c = (c << 6) | (cb & 0x3F);
    }
    out += ok ? c : U'\uFFFD';
    i += ok ? n : 1;
  }
  return out;
}

std::string encode(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) append_utf8(out, c);
  return out;
}

size_t length(std::string_view s) {
  size_t n = 0;
  for (unsigned char b : s) n += (b & 0xC0) != 0x80;
  return n;
}

bool is_space(char32_t c) {
  if (c <= 0x20) return c == 0x20 || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F);
  switch (c) {
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
      return true;
    default:
      return c >= 0x2000 && c <= 0x200A;
  }
}

std::string strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right) {
  std::u32string u = decode(s);
  std::u32string set = chars ? decode(*chars) : std::u32string();
  auto strippable = [&](char32_t c) { return chars ? set.find(c) != std::u32string::npos : is_space(c); };
  size_t b = 0, e = u.size();
  if (left)
    while (b < e && strippable(u[b])) ++b;
  if (right)
    while (e > b && strippable(u[e - 1])) --e;
  return encode(std::u32string_view(u).substr(b, e - b));
}

std::vector<std::string> split(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit) {
  std::vector<std::string> out;
  if (sep) {
    if (sep->empty()) jfail("ValueError: empty separator");
    size_t pos = 0;
    while (maxsplit < 0 || int64_t(out.size()) < maxsplit) {
      size_t f = s.find(*sep, pos);
      if (f == std::string_view::npos) break;
      out.emplace_back(s.substr(pos, f - pos));
      pos = f + sep->size();
    }
    out.emplace_back(s.substr(pos));
    return out;
  }
  // Whitespace mode: runs of whitespace separate, empty pieces vanish, and
  // once maxsplit is reached the rest is kept minus its leading whitespace.
  std::u32string u = decode(s);
  size_t i = 0, n = u.size();
  while (true) {
    while (i < n && is_space(u[i])) ++i;
    if (i == n) break;
    if (maxsplit >= 0 && int64_t(out.size()) == maxsplit) {
      out.push_back(encode(std::u32string_view(u).substr(i)));
      break;
    }
    size_t j = i;
    while (j < n && !is_space(u[j])) ++j;
    out.push_back(encode(std::u32string_view(u).substr(i, j - i)));
    i = j;
  }
  return out;
}

std::vector<std::string> rsplit(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit) {
  std::vector<std::string> out;
  if (sep) {
    if (sep->empty()) jfail("ValueError: empty separator");
    size_t end = s.size();
    while (maxsplit < 0 || int64_t(out.size()) < maxsplit) {
      if (end < sep->size()) break;
      size_t f = s.rfind(*sep, end - sep->size());
      if (f == std::string_view::npos) break;
      out.emplace_back(s.substr(f + sep->size(), end - f - sep->size()));
      end = f;
    }
    out.emplace_back(s.substr(0, end));
    std::reverse(out.begin(), out.end());
    return out;
  }
  std::u32string u = decode(s);
  size_t i = u.size();
  while (true) {
    while (i > 0 && is_space(u[i - 1])) --i;
    if (i == 0) break;
    if (maxsplit >= 0 && int64_t(out.size()) == maxsplit) {
      out.push_back(encode(std::u32string_view(u).substr(0, i)));
      break;
    }
    size_t j = i;
    while (j > 0 && !is_space(u[j - 1])) --j;
    out.push_back(encode(std::u32string_view(u).substr(j, i - j)));
    i = j;
  }
  std::reverse(out.begin(), out.end());
  return out;
}

std::vector<std::string> splitlines(std::string_view s, bool keepends) {
  std::u32string u = decode(s);
  std::vector<std::string> out;
  size_t start = 0, i = 0;
  auto is_break = [](char32_t c) {
    return (c >= 0x0A && c <= 0x0D) || (c >= 0x1C && c <= 0x1E) || c == 0x85 || c == 0x2028 || c == 0x2029;
  };
  while (i < u.size()) {
    if (!is_break(u[i])) {
      ++i;
      continue;
    }
    size_t eol = i;
    i += (u[i] == U'\r' && i + 1 < u.size() && u[i + 1] == U'\n') ? 2 : 1;
    out.push_back(encode(std::u32string_view(u).substr(start, (keepends ? i : eol) - start)));
    start = i;
  }
  if (start < u.size()) out.push_back(encode(std::u32string_view(u).substr(start)));
  return out;
}

std::string replace(std::string_view s, std::string_view old, std::string_view repl, int64_t count) {
  std::string out;
  if (old.empty()) {
    // Python inserts the replacement before every code point and at the end.
    int64_t done = 0;
    size_t i = 0;
    while (i <= s.size()) {
      if (count < 0 || done < count) {
        out += repl;
        ++done;
      }
      if (i == s.size()) break;
      size_t n = std::min(cp_size(s[i]), s.size() - i);
      out.append(s.substr(i, n));
      i += n;
    }
    return out;
  }
  size_t pos = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    size_t f = s.find(old, pos);
    if (f == std::string_view::npos) break;
    out.append(s.substr(pos, f - pos));
    out.append(repl);
    pos = f + old.size();
    ++done;
  }
  out.append(s.substr(pos));
  return out;
}

int64_t find(std::string_view s, std::string_view sub, std::optional<int64_t> start, std::optional<int64_t> end,
             bool reverse) {
  std::u32string u = decode(s), v = decode(sub);
  int64_t b, e;
  clamp_range(int64_t(u.size()), start, end, &b, &e);
  if (e - b < int64_t(v.size())) return -1;
  std::u32string_view win = std::u32string_view(u).substr(b, e - b);
  size_t f = reverse ? win.rfind(v) : win.find(v);
  return f == std::u32string_view::npos ? -1 : b + int64_t(f);
}

int64_t count(std::string_view s, std::string_view sub, std::optional<int64_t> start, std::optional<int64_t> end) {
  std::u32string u = decode(s), v = decode(sub);
  int64_t b, e;
  clamp_range(int64_t(u.size()), start, end, &b, &e);
  if (e < b) return 0;
  if (v.empty()) return e - b + 1;
  std::u32string_view win = std::u32string_view(u).substr(b, e - b);
  int64_t n = 0;
  for (size_t p = win.find(v); p != std::u32string_view::npos; p = win.find(v, p + v.size())) ++n;
  return n;
}

std::string upper(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : decode(s)) map_char(kUpperMap, kUpperSpecial, c, out);
  return out;
}

// Lowercases u[i] into out. A capital sigma that ends a word lowers to final
// sigma U+03C2; case-ignorable characters (apostrophes, combining marks) are
// skipped when looking at the neighbours, as CPython does.
static void lower_at(const std::u32string& u, size_t i, std::string& out) {
  if (u[i] != 0x3A3) {
    map_char(kLowerMap, kLowerSpecial, u[i], out);
    return;
  }
  size_t j = i;
  while (j > 0 && in_set(kCaseIgnorable, u[j - 1])) --j;
  bool before = j > 0 && is_cased(u[j - 1]);
  size_t k = i + 1;
  while (k < u.size() && in_set(kCaseIgnorable, u[k])) ++k;
  bool after = k < u.size() && is_cased(u[k]);
  append_utf8(out, before && !after ? char32_t(0x3C2) : char32_t(0x3C3));
}

std::string lower(std::string_view s) {
  std::u32string u = decode(s);
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < u.size(); ++i) lower_at(u, i, out);
  return out;
}

std::string title(std::string_view s) {
  std::u32string u = decode(s);
  std::string out;
  bool prev_cased = false;
  for (size_t i = 0; i < u.size(); ++i) {
    if (prev_cased)
      lower_at(u, i, out);
    else
      map_char(kTitleMap, kTitleSpecial, u[i], out);
    prev_cased = is_cased(u[i]);
  }
  return out;
}

std::string capitalize(std::string_view s) {
  std::u32string u = decode(s);
  std::string out;
  for (size_t i = 0; i < u.size(); ++i) {
    if (i == 0)
      map_char(kTitleMap, kTitleSpecial, u[i], out);
    else
      lower_at(u, i, out);
  }
  return out;
}

bool is_lower(std::string_view s) {
  bool any = false;
  for (char32_t c : decode(s)) {
    if (!is_cased(c)) continue;
    if (!in_set(kLowercase, c)) return false;
    any = true;
  }
  return any;
}

bool is_upper(std::string_view s) {
  bool any = false;
  for (char32_t c : decode(s)) {
    if (!is_cased(c)) continue;
    // Cased but neither lowercase nor mapping anywhere on upper() is upper.
    std::string up;
    map_char(kUpperMap, kUpperSpecial, c, up);
    std::string self;
    append_utf8(self, c);
    if (in_set(kLowercase, c) || up != self) return false;
    any = true;
  }
  return any;
}

int64_t word_count(std::string_view s) {
  int64_t n = 0;
  bool in_word = false;
  for (char32_t c : decode(s)) {
    bool w = in_set(kWordChar, c);
    if (w && !in_word) ++n;
    in_word = w;
  }
  return n;
}

std::string float_repr(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (v == 0) return std::signbit(v) ? "-0.0" : "0.0";
  // Shortest round-trip digits (what repr uses), then CPython's layout:
  // positional when -4 < exponent10 < 16, else d.ddde+XX.
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  std::string sci(buf, r.ptr);
  bool neg = sci[0] == '-';
  if (neg) sci.erase(0, 1);
  size_t epos = sci.find('e');
  std::string digits = sci.substr(0, epos);
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  int exp10 = std::stoi(sci.substr(epos + 1));
  int decpt = exp10 + 1;  // digits represent 0.d1d2... * 10^decpt
  std::string out = neg ? "-" : "";
  if (decpt > -4 && decpt <= 16) {
    int nd = int(digits.size());
    if (decpt <= 0) {
      out += "0." + std::string(size_t(-decpt), '0') + digits;
    } else if (decpt >= nd) {
      out += digits + std::string(size_t(decpt - nd), '0') + ".0";
    } else {
      out += digits.substr(0, size_t(decpt)) + "." + digits.substr(size_t(decpt));
    }
    return out;
  }
  out += digits.substr(0, 1);
  if (digits.size() > 1) out += "." + digits.substr(1);
  out += fmt::format("e{}{:02d}", exp10 < 0 ? '-' : '+', std::abs(exp10));
  return out;
}

std::string str_repr(std::string_view s) {
  bool has_single = s.find('\'') != std::string_view::npos;
  bool has_double = s.find('"') != std::string_view::npos;
  char quote = has_single && !has_double ? '"' : '\'';
  std::string out(1, quote);
  for (char32_t c : decode(s)) {
    if (c == U'\\') {
      out += "\\\\";
    } else if (c == char32_t(quote)) {
      out += '\\';
      out += quote;
    } else if (c == U'\n') {
      out += "\\n";
    } else if (c == U'\r') {
      out += "\\r";
    } else if (c == U'\t') {
      out += "\\t";
    } else if (in_set(kNonPrintable, c)) {
      if (c < 0x100)
        out += fmt::format("\\x{:02x}", uint32_t(c));
      else if (c < 0x10000)
        out += fmt::format("\\u{:04x}", uint32_t(c));
      else
        out += fmt::format("\\U{:08x}", uint32_t(c));
    } else {
      append_utf8(out, c);
    }
  }
  out += quote;
  return out;
}

std::string json_quote(std::string_view s, bool ensure_ascii) {
  std::string out = "\"";
  auto u16 = [&](uint32_t c) { out += fmt::format("\\u{:04x}", c); };
  for (char32_t c : decode(s)) {
    switch (c) {
      case U'"':
        out += "\\\"";
        continue;
      case U'\\':
        out += "\\\\";
        continue;
      case U'\n':
        out += "\\n";
        continue;
      case U'\r':
        out += "\\r";
        continue;
      case U'\t':
        out += "\\t";
        continue;
      case U'\b':
        out += "\\b";
        continue;
      case U'\f':
        out += "\\f";
        continue;
      default:
        break;
    }
    if (c < 0x20 || (ensure_ascii && c > 0x7E)) {
      if (c >= 0x10000) {
        uint32_t v = uint32_t(c) - 0x10000;
        u16(0xD800 | (v >> 10));
        u16(0xDC00 | (v & 0x3FF));
      } else {
        u16(uint32_t(c));
      }
    } else {
      append_utf8(out, c);
    }
  }
  out += '"';
  return out;
}

}  // namespace mimo::jinja::py
