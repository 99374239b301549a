// Tokens -> syntax tree, following jinja2's grammar and operator precedence
// (jinja2/parser.py): or < and < not < comparisons < + - < ~ < * / // % <
// ** < unary < postfix / filters / tests. Tags that chat templates never need
// (extends, include, import, block, recursive loops) are rejected with a
// positioned error rather than half-supported.
#pragma once

#include <vector>

#include "chat/jinja_ast.h"
#include "chat/jinja_lexer.h"

namespace mimo::jinja {

// Throws TemplateError with the line and column of the offending token.
Body parse(std::vector<Token> tokens);

}  // namespace mimo::jinja
