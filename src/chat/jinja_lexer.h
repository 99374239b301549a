// Template source -> tokens, applying jinja2's whitespace control the way
// transformers configures it for chat templates: trim_blocks=True (drop the
// first newline after a block or comment tag), lstrip_blocks=True (drop the
// indentation before a block or comment tag that starts a line), `-` on a tag
// strips all whitespace on that side, `+` disables lstrip/trim, and one
// trailing newline of the template is dropped (keep_trailing_newline=False).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mimo::jinja {

enum class Tok : uint8_t {
  Text,        // literal template text (after whitespace control)
  VarBegin,    // {{
  VarEnd,      // }}
  BlockBegin,  // {%
  BlockEnd,    // %}
  Name,        // identifier or keyword (and, or, not, in, is, if, ...)
  String,      // string literal, escapes decoded
  Int,
  Float,
  Op,  // operator or punctuation: + - * / // % ** ~ == != < <= > >= = . : | , ( ) [ ] { }
  Eof,
};

struct Token {
  Tok type;
  std::string text;  // Text/Name/String/Op payload
  int64_t ival = 0;
  double fval = 0;
  int line = 1, col = 1;
};

struct LexOptions {
  bool trim_blocks = true;
  bool lstrip_blocks = true;
  bool keep_trailing_newline = false;
};

// Throws TemplateError (with position) on unterminated tags, strings or
// comments and on characters that are not part of the expression language.
std::vector<Token> tokenize(std::string_view source, const LexOptions& opt = {});

}  // namespace mimo::jinja
