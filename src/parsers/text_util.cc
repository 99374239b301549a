#include "parsers/text_util.h"

#include <algorithm>
#include <cstdint>

namespace mimo::parsers {

bool all_space(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return is_space(c); });
}

std::string_view trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && is_space(s[b])) ++b;
  while (e > b && is_space(s[e - 1])) --e;
  return s.substr(b, e - b);
}

static char lower(char c) { return (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

size_t partial_tag_len(std::string_view text, std::string_view tag) {
  size_t max = std::min(text.size(), tag.empty() ? 0 : tag.size() - 1);
  for (size_t k = max; k > 0; --k)
    if (text.substr(text.size() - k) == tag.substr(0, k)) return k;
  return 0;
}

size_t partial_tag_len(std::string_view text, std::initializer_list<std::string_view> tags) {
  size_t best = 0;
  for (auto t : tags) best = std::max(best, partial_tag_len(text, t));
  return best;
}

size_t find_first_tag(std::string_view text, size_t from, std::initializer_list<std::string_view> tags,
                      int* which) {
  size_t best = std::string_view::npos;
  int i = 0;
  for (auto t : tags) {
    size_t p = text.find(t, from);
    if (p < best) {
      best = p;
      *which = i;
    }
    ++i;
  }
  return best;
}

// Expected length of a UTF-8 sequence from its lead byte; 0 for a byte that
// cannot start one.
static int utf8_len(unsigned char c) {
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return 2;
  if (c >= 0xE0 && c <= 0xEF) return 3;
  if (c >= 0xF0 && c <= 0xF4) return 4;
  return 0;
}

static bool is_cont(unsigned char c) { return (c & 0xC0) == 0x80; }

size_t utf8_incomplete_tail(std::string_view s) {
  size_t n = s.size();
  for (size_t k = 1; k <= 3 && k <= n; ++k) {
    unsigned char c = static_cast<unsigned char>(s[n - k]);
    if (is_cont(c)) continue;
    int len = utf8_len(c);
    return (len > int(k)) ? k : 0;
  }
  return 0;
}

void append_utf8(std::string& out, unsigned cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

namespace {

constexpr size_t kMaxEntity = 12;  // "&#x10FFFF;" plus slack

bool entity_char(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '#';
}

// Decodes the entity whose '&' is at s[0] and whose ';' is at s[semi].
bool decode_entity(std::string_view body, std::string& out) {
  static const struct {
    std::string_view name;
    unsigned cp;
  } kNamed[] = {{"lt", '<'}, {"gt", '>'}, {"amp", '&'}, {"quot", '"'}, {"apos", '\''}, {"nbsp", 0xA0}};
  if (body.empty()) return false;
  if (body[0] != '#') {
    for (const auto& e : kNamed)
      if (body == e.name) {
        append_utf8(out, e.cp);
        return true;
      }
    return false;
  }
  bool hex = body.size() > 1 && (body[1] == 'x' || body[1] == 'X');
  std::string_view digits = body.substr(hex ? 2 : 1);
  if (digits.empty() || digits.size() > 8) return false;
  uint32_t v = 0;
  for (char c : digits) {
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (hex && c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (hex && c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else return false;
    v = v * (hex ? 16 : 10) + uint32_t(d);
  }
  if (v == 0 || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) v = 0xFFFD;
  append_utf8(out, v);
  return true;
}

}  // namespace

std::string html_unescape(std::string_view s) {
  if (s.find('&') == std::string_view::npos) return std::string(s);
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] != '&') {
      out += s[i++];
      continue;
    }
    size_t j = i + 1;
    while (j < s.size() && j - i <= kMaxEntity && entity_char(s[j])) ++j;
    if (j < s.size() && s[j] == ';' && decode_entity(s.substr(i + 1, j - i - 1), out)) {
      i = j + 1;
    } else {
      out += '&';
      ++i;
    }
  }
  return out;
}

size_t html_entity_holdback(std::string_view s) {
  size_t amp = s.rfind('&');
  if (amp == std::string_view::npos || s.size() - amp > kMaxEntity) return s.size();
  for (size_t j = amp + 1; j < s.size(); ++j)
    if (!entity_char(s[j])) return s.size();  // ended (by ';' or anything else)
  return amp;
}

void json_escape_append(std::string& out, std::string_view s) {
  static const char* kHex = "0123456789abcdef";
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
          if (c < 0x20) {
            out += "\\u00";
            out += kHex[c >> 4];
            out += kHex[c & 15];
          } else {
            out += char(c);
          }
      }
      ++i;
      continue;
    }
    int len = utf8_len(c);
    if (len == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
      continue;
    }
    size_t j = i + 1;
    while (j < s.size() && j < i + size_t(len) && is_cont(static_cast<unsigned char>(s[j]))) ++j;
    if (j == i + size_t(len)) {
      out.append(s.substr(i, size_t(len)));
    } else {
      out += "\xEF\xBF\xBD";  // truncated sequence: one replacement for the bytes seen
    }
    i = j;
  }
}

std::string json_quote(std::string_view s) {
  std::string out = "\"";
  json_escape_append(out, s);
  out += '"';
  return out;
}

}  // namespace mimo::parsers
