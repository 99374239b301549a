#include "chat/jinja_lexer.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "chat/jinja_error.h"
#include "chat/pystr.h"

namespace mimo::jinja {

namespace {

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// rstrip/isspace of the template text around tags. Python would also strip
// Unicode spaces here, but only template source (not data) is affected and
// chat templates indent with ASCII.
std::string rstrip_ws(std::string_view s) {
  size_t e = s.size();
  while (e > 0 && is_ws(s[e - 1])) --e;
  return std::string(s.substr(0, e));
}

class Lexer {
 public:
  Lexer(std::string src, const LexOptions& opt) : src_(std::move(src)), opt_(opt) {
    line_starts_.push_back(0);
    for (size_t i = 0; i < src_.size(); ++i)
      if (src_[i] == '\n') line_starts_.push_back(i + 1);
  }

  std::vector<Token> run() {
    // line_starting mirrors jinja2: lstrip applies at the template start and
    // after a tag whose end consumed a newline.
    bool line_starting = true;
    size_t pos = 0;
    const size_t n = src_.size();
    while (pos < n) {
      size_t start = find_tag_start(pos);
      if (start == std::string::npos) {
        emit_text(src_.substr(pos), pos);
        break;
      }
      char kind = src_[start + 1];
      size_t after = start + 2;
      char sign = 0;
      if (after < n && (src_[after] == '-' || src_[after] == '+')) sign = src_[after++];
      size_t raw_end = kind == '%' ? match_raw_begin(after) : std::string::npos;

      std::string text = src_.substr(pos, start - pos);
      if (sign == '-') {
        text = rstrip_ws(text);
      } else if (sign != '+' && opt_.lstrip_blocks && kind != '{') {
        size_t l_pos = text.rfind('\n');
        l_pos = l_pos == std::string::npos ? 0 : l_pos + 1;
        if (l_pos > 0 || line_starting) {
          bool all_ws = l_pos < text.size();
          for (size_t i = l_pos; i < text.size() && all_ws; ++i) all_ws = is_ws(text[i]);
          if (all_ws) text.resize(l_pos);
        }
      }
      emit_text(std::move(text), pos);

      if (kind == '#') {
        pos = lex_comment(start, after);
      } else if (raw_end != std::string::npos) {
        pos = lex_raw(start, raw_end);
      } else {
        pos = lex_tag(kind, start, after);
      }
      line_starting = pos > 0 && src_[pos - 1] == '\n';
    }
    out_.push_back(Token{Tok::Eof, "", 0, 0, line_of(n), col_of(n)});
    return std::move(out_);
  }

 private:
  int line_of(size_t p) const {
    return int(std::upper_bound(line_starts_.begin(), line_starts_.end(), p) - line_starts_.begin());
  }
  int col_of(size_t p) const {
    size_t ls = line_starts_[size_t(line_of(p) - 1)];
    return int(py::length(std::string_view(src_).substr(ls, p - ls))) + 1;
  }
  [[noreturn]] void error_at(size_t p, const std::string& msg) const {
    throw TemplateError(msg, line_of(p), col_of(p));
  }

  size_t find_tag_start(size_t pos) const {
    for (size_t p = src_.find('{', pos); p != std::string::npos; p = src_.find('{', p + 1)) {
      if (p + 1 < src_.size() && (src_[p + 1] == '{' || src_[p + 1] == '%' || src_[p + 1] == '#')) return p;
    }
    return std::string::npos;
  }

  void emit_text(std::string text, size_t at) {
    if (text.empty()) return;
    out_.push_back(Token{Tok::Text, std::move(text), 0, 0, line_of(at), col_of(at)});
  }

  size_t skip_ws(size_t p) const {
    while (p < src_.size() && is_ws(src_[p])) ++p;
    return p;
  }

  // After "{%" and its sign: `\s*raw\s*(-%}\s*|%})`. Returns the position
  // after the tag, or npos. trim_blocks does not apply to a raw start tag.
  size_t match_raw_begin(size_t p) const {
    p = skip_ws(p);
    if (src_.compare(p, 3, "raw") != 0) return std::string::npos;
    p = skip_ws(p + 3);
    if (src_.compare(p, 3, "-%}") == 0) return skip_ws(p + 3);
    if (src_.compare(p, 2, "%}") == 0) return p + 2;
    return std::string::npos;
  }

  // The end of a block or comment tag: `-` eats all following whitespace,
  // `+` keeps it, otherwise trim_blocks eats one newline.
  size_t after_block_end(size_t p, char sign) const {
    if (sign == '-') return skip_ws(p);
    if (sign != '+' && opt_.trim_blocks && p < src_.size() && src_[p] == '\n') return p + 1;
    return p;
  }

  size_t lex_comment(size_t start, size_t after) {
    size_t q = src_.find("#}", after);
    if (q == std::string::npos) error_at(start, "unterminated comment (missing '#}')");
    char sign = (q > after && (src_[q - 1] == '-' || src_[q - 1] == '+')) ? src_[q - 1] : 0;
    return after_block_end(q + 2, sign);
  }

  size_t lex_raw(size_t start, size_t body) {
    for (size_t p = src_.find("{%", body); p != std::string::npos; p = src_.find("{%", p + 2)) {
      size_t q = p + 2;
      char sign = 0;
      if (q < src_.size() && (src_[q] == '-' || src_[q] == '+')) sign = src_[q++];
      q = skip_ws(q);
      if (src_.compare(q, 6, "endraw") != 0) continue;
      q = skip_ws(q + 6);
      char end_sign = 0;
      if (q < src_.size() && (src_[q] == '-' || src_[q] == '+')) end_sign = src_[q++];
      if (src_.compare(q, 2, "%}") != 0) continue;
      std::string text = src_.substr(body, p - body);
      if (sign == '-') {
        text = rstrip_ws(text);
      } else if (sign != '+' && opt_.lstrip_blocks) {
        size_t l_pos = text.rfind('\n');
        l_pos = l_pos == std::string::npos ? 0 : l_pos + 1;
        bool line_starting = body > 0 && src_[body - 1] == '\n';
        if (l_pos > 0 || line_starting) {
          bool all_ws = l_pos < text.size();
          for (size_t i = l_pos; i < text.size() && all_ws; ++i) all_ws = is_ws(text[i]);
          if (all_ws) text.resize(l_pos);
        }
      }
      emit_text(std::move(text), body);
      return after_block_end(q + 2, end_sign);
    }
    error_at(start, "unterminated raw block (missing '{% endraw %}')");
  }

  size_t lex_tag(char kind, size_t start, size_t p) {
    const bool block = kind == '%';
    out_.push_back(Token{block ? Tok::BlockBegin : Tok::VarBegin, "", 0, 0, line_of(start), col_of(start)});
    std::vector<char> brackets;  // jinja2 only ends a tag when brackets are balanced
    const size_t n = src_.size();
    while (true) {
      p = skip_ws(p);
      if (p >= n) error_at(start, block ? "unterminated block tag (missing '%}')" : "unterminated '{{' (missing '}}')");
      if (brackets.empty()) {
        char sign = (src_[p] == '-' || (block && src_[p] == '+')) ? src_[p] : 0;
        size_t q = p + (sign ? 1 : 0);
        if (src_.compare(q, 2, block ? "%}" : "}}") == 0) {
          out_.push_back(Token{block ? Tok::BlockEnd : Tok::VarEnd, "", 0, 0, line_of(p), col_of(p)});
          if (block) return after_block_end(q + 2, sign);
          return sign == '-' ? skip_ws(q + 2) : q + 2;
        }
      }
      p = lex_token(p, brackets);
    }
  }

  size_t lex_token(size_t p, std::vector<char>& brackets) {
    const size_t n = src_.size();
    Token t{Tok::Op, "", 0, 0, line_of(p), col_of(p)};
    char c = src_[p];
    if (is_name_start(c)) {
      size_t e = p;
      while (e < n && is_name_char(src_[e])) ++e;
      t.type = Tok::Name;
      t.text = src_.substr(p, e - p);
      out_.push_back(std::move(t));
      return e;
    }
    if (is_digit(c)) return lex_number(p, std::move(t));
    if (c == '\'' || c == '"') return lex_string(p, std::move(t));
    static const char* const two[] = {"//", "**", "==", "!=", "<=", ">="};
    for (const char* op : two)
      if (src_.compare(p, 2, op) == 0) {
        t.text = op;
        out_.push_back(std::move(t));
        return p + 2;
      }
    if (std::string_view("+-*/%~[](){}<>=.:|,;").find(c) == std::string_view::npos)
      error_at(p, fmt::format("unexpected character '{}' in tag", c));
    if (c == '(' || c == '[' || c == '{') brackets.push_back(c);
    if (c == ')' || c == ']' || c == '}') {
      char open = c == ')' ? '(' : c == ']' ? '[' : '{';
      if (brackets.empty() || brackets.back() != open) error_at(p, fmt::format("unexpected '{}'", c));
      brackets.pop_back();
    }
    t.text = std::string(1, c);
    out_.push_back(std::move(t));
    return p + 1;
  }

  size_t lex_number(size_t p, Token t) {
    const size_t n = src_.size();
    auto digits = [&](size_t q, auto pred) {
      while (q < n && (pred(src_[q]) || (src_[q] == '_' && q + 1 < n && pred(src_[q + 1])))) ++q;
      return q;
    };
    if (src_[p] == '0' && p + 1 < n && std::string_view("bBoOxX").find(src_[p + 1]) != std::string_view::npos) {
      int base = (src_[p + 1] | 0x20) == 'b' ? 2 : (src_[p + 1] | 0x20) == 'o' ? 8 : 16;
      size_t e = digits(p + 2, [&](char ch) {
        int v = hex_value(ch);
        return v >= 0 && v < base;
      });
      std::string d;
      for (size_t i = p + 2; i < e; ++i)
        if (src_[i] != '_') d += src_[i];
      if (d.empty()) error_at(p, "invalid integer literal");
      errno = 0;
      t.ival = int64_t(std::strtoull(d.c_str(), nullptr, base));
      if (errno || t.ival < 0) error_at(p, "integer literal too large");
      t.type = Tok::Int;
      out_.push_back(std::move(t));
      return e;
    }
    size_t e = digits(p, is_digit);
    bool is_float = false;
    // A float needs digits after the dot; "x.0.1" is item access, not 0.1.
    bool after_dot = p > 0 && src_[p - 1] == '.';
    if (!after_dot && e + 1 < n && src_[e] == '.' && is_digit(src_[e + 1])) {
      e = digits(e + 1, is_digit);
      is_float = true;
    }
    if (!after_dot && e < n && (src_[e] | 0x20) == 'e') {
      size_t q = e + 1;
      if (q < n && (src_[q] == '+' || src_[q] == '-')) ++q;
      if (q < n && is_digit(src_[q])) {
        e = digits(q, is_digit);
        is_float = true;
      }
    }
    std::string text;
    for (size_t i = p; i < e; ++i)
      if (src_[i] != '_') text += src_[i];
    errno = 0;
    if (is_float) {
      t.type = Tok::Float;
      t.fval = std::strtod(text.c_str(), nullptr);
    } else {
      t.type = Tok::Int;
      t.ival = std::strtoll(text.c_str(), nullptr, 10);
      if (errno == ERANGE) error_at(p, "integer literal too large");
    }
    t.text = text;
    out_.push_back(std::move(t));
    return e;
  }

  // Python's unicode-escape decoding, which is what jinja2 applies to literals.
  size_t lex_string(size_t p, Token t) {
    const char q = src_[p];
    const size_t n = src_.size();
    std::string val;
    size_t i = p + 1;
    auto read_hex = [&](size_t count) -> char32_t {
      if (i + count > n) error_at(i, "truncated \\x, \\u or \\U escape");
      char32_t v = 0;
      for (size_t k = 0; k < count; ++k) {
        int h = hex_value(src_[i + k]);
        if (h < 0) error_at(i, "truncated \\x, \\u or \\U escape");
        v = v * 16 + char32_t(h);
      }
      i += count;
      if (v > 0x10FFFF) error_at(i, "illegal Unicode character in escape");
      return v;
    };
    while (true) {
      if (i >= n) error_at(p, "unterminated string literal");
      char c = src_[i];
      if (c == q) break;
      if (c != '\\') {
        val += c;
        ++i;
        continue;
      }
      if (i + 1 >= n) error_at(p, "unterminated string literal");
      char e = src_[i + 1];
      i += 2;
      switch (e) {
        case '\n':
          break;
        case '\\':
          val += '\\';
          break;
        case '\'':
          val += '\'';
          break;
        case '"':
          val += '"';
          break;
        case 'a':
          val += '\a';
          break;
        case 'b':
          val += '\b';
          break;
        case 'f':
          val += '\f';
          break;
        case 'n':
          val += '\n';
          break;
        case 'r':
          val += '\r';
          break;
        case 't':
          val += '\t';
          break;
        case 'v':
          val += '\v';
          break;
        case 'x':
          py::append_utf8(val, read_hex(2));
          break;
        case 'u':
          py::append_utf8(val, read_hex(4));
          break;
        case 'U':
          py::append_utf8(val, read_hex(8));
          break;
        case 'N':
          error_at(i - 2, "\\N{...} escapes are not supported");
        default:
          if (e >= '0' && e <= '7') {
            char32_t v = char32_t(e - '0');
            for (int k = 0; k < 2 && i < n && src_[i] >= '0' && src_[i] <= '7'; ++k)
              v = v * 8 + char32_t(src_[i++] - '0');
            py::append_utf8(val, v);
          } else {
            val += '\\';  // unknown escapes keep their backslash
            val += e;
          }
      }
    }
    t.type = Tok::String;
    t.text = std::move(val);
    out_.push_back(std::move(t));
    return i + 1;
  }

  std::string src_;
  const LexOptions& opt_;
  std::vector<size_t> line_starts_;
  std::vector<Token> out_;
};

}  // namespace

std::vector<Token> tokenize(std::string_view source, const LexOptions& opt) {
  // jinja2 normalizes \r\n and \r to \n before lexing and, with
  // keep_trailing_newline=False, drops one trailing newline.
  std::string src;
  src.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      src += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      src += source[i];
    }
  }
  if (!opt.keep_trailing_newline && !src.empty() && src.back() == '\n') src.pop_back();
  return Lexer(std::move(src), opt).run();
}

}  // namespace mimo::jinja
