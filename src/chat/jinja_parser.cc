#include "chat/jinja_parser.h"

#include "chat/jinja_parser_impl.h"

namespace mimo::jinja {

namespace detail {

Body Parser::parse_template() {
  std::string end;
  Body body = subparse({}, &end);
  return body;
}

Body Parser::subparse(std::initializer_list<const char*> ends, std::string* end_found) {
  DepthGuard g(this);
  Body body;
  while (true) {
    const Token& t = peek();
    if (t.type == Tok::Eof) {
      if (ends.size() == 0) return body;
      std::string want;
      for (const char* e : ends) want += (want.empty() ? "'" : " or '") + std::string(e) + "'";
      error(t, "unexpected end of template; expected " + want);
    }
    if (t.type == Tok::Text) {
      auto n = make_node(NodeKind::Text, t);
      n->text = next().text;
      body.push_back(std::move(n));
    } else if (t.type == Tok::VarBegin) {
      auto n = make_node(NodeKind::Output, next());
      n->expr = parse_tuple(false, true, {}, false);
      if (peek().type != Tok::VarEnd) unexpected("end of print statement '}}'");
      next();
      body.push_back(std::move(n));
    } else if (t.type == Tok::BlockBegin) {
      const Token& name = peek(1);
      if (name.type == Tok::Name)
        for (const char* e : ends)
          if (name.text == e) {
            next();
            *end_found = next().text;
            return body;
          }
      next();
      body.push_back(parse_statement());
    } else {
      error(t, "unexpected " + describe(t));
    }
  }
}

NodePtr Parser::parse_statement() {
  const Token& t = peek();
  if (t.type != Tok::Name) error(t, "expected a tag name after '{%'");
  const std::string& n = t.text;
  if (n == "for") return parse_for();
  if (n == "if") return parse_if();
  if (n == "set") return parse_set();
  if (n == "macro") return parse_macro();
  if (n == "call") return parse_call_block();
  if (n == "filter") return parse_filter_block();
  if (n == "with") return parse_with();
  if (n == "generation") {
    auto node = make_node(NodeKind::Generation, next());
    expect_block_end();
    node->body = parse_body_until("endgeneration");
    return node;
  }
  if (n == "break" || n == "continue") {
    if (loop_depth_ == 0) error(t, "'" + n + "' outside of a loop");
    auto node = make_node(n == "break" ? NodeKind::Break : NodeKind::Continue, next());
    expect_block_end();
    return node;
  }
  static const char* const unsupported[] = {"extends", "block", "include",    "import",
                                            "from",    "do",    "autoescape", "trans"};
  for (const char* u : unsupported)
    if (n == u) error(t, "the '" + n + "' tag is not supported in chat templates");
  if (n.rfind("end", 0) == 0 || n == "elif" || n == "else")
    error(t, "unexpected '" + n + "' (no matching opening tag)");
  error(t, "unknown tag '" + n + "'");
}

Body Parser::parse_body_until(const char* end) {
  std::string found;
  Body b = subparse({end}, &found);
  expect_block_end();
  return b;
}

std::vector<std::string> Parser::parse_assign_names(std::initializer_list<const char*> extra_end) {
  const Token& at = peek();
  ExprPtr target = parse_tuple(true, false, extra_end, false);
  std::vector<std::string> names;
  if (target->kind == ExprKind::Name) {
    names.push_back(target->name);
  } else if (target->kind == ExprKind::Tuple) {
    for (auto& item : target->items) {
      if (item->kind != ExprKind::Name) error(at, "only names and flat tuples of names can be assigned to");
      names.push_back(item->name);
    }
  } else {
    error(at, "cannot assign to this expression");
  }
  return names;
}

NodePtr Parser::parse_for() {
  auto node = make_node(NodeKind::For, next());
  node->targets = parse_assign_names({"in"});
  expect_name("in");
  node->expr = parse_tuple(false, false, {"recursive"}, false);
  if (is_name("recursive")) error(peek(), "recursive loops are not supported");
  if (is_name("if")) {
    next();
    node->cond = parse_expression(true);
  }
  expect_block_end();
  ++loop_depth_;
  std::string end;
  node->body = subparse({"endfor", "else"}, &end);
  --loop_depth_;
  if (end == "else") {
    expect_block_end();
    node->else_body = subparse({"endfor"}, &end);
  }
  expect_block_end();
  return node;
}

NodePtr Parser::parse_if() {
  auto node = make_node(NodeKind::If, next());
  while (true) {
    node->conds.push_back(parse_tuple(false, false, {}, false));
    expect_block_end();
    std::string end;
    node->bodies.push_back(subparse({"elif", "else", "endif"}, &end));
    if (end == "elif") continue;
    if (end == "else") {
      expect_block_end();
      node->else_body = subparse({"endif"}, &end);
    }
    expect_block_end();
    return node;
  }
}

NodePtr Parser::parse_set() {
  const Token& at = next();
  if (peek().type == Tok::Name && is_op(".", 1)) {
    auto node = make_node(NodeKind::SetAttr, at);
    node->text = next().text;
    next();
    node->attr = expect_identifier();
    expect_op("=");
    node->expr = parse_tuple(false, true, {}, false);
    expect_block_end();
    return node;
  }
  std::vector<std::string> names = parse_assign_names({});
  if (is_op("=")) {
    next();
    auto node = make_node(NodeKind::Set, at);
    node->targets = std::move(names);
    node->expr = parse_tuple(false, true, {}, false);
    expect_block_end();
    return node;
  }
  if (names.size() != 1) error(at, "a block assignment sets exactly one name");
  auto node = make_node(NodeKind::SetBlock, at);
  node->text = names[0];
  if (is_op("|")) node->expr = parse_filter_chain(make(ExprKind::BlockInput, at), false);
  expect_block_end();
  node->body = parse_body_until("endset");
  return node;
}

std::vector<Param> Parser::parse_signature() {
  std::vector<Param> params;
  expect_op("(");
  while (!is_op(")")) {
    if (!params.empty()) expect_op(",");
    if (is_op(")")) break;
    Param p;
    p.name = expect_identifier();
    if (is_op("=")) {
      next();
      p.default_value = parse_expression(true);
    } else if (!params.empty() && params.back().default_value) {
      error(peek(), "non-default argument follows default argument");
    }
    params.push_back(std::move(p));
  }
  next();
  return params;
}

Body Parser::parse_function_body(Node* fn, const char* end) {
  int saved_loops = loop_depth_;
  loop_depth_ = 0;
  functions_.push_back(fn);
  Body b = parse_body_until(end);
  functions_.pop_back();
  loop_depth_ = saved_loops;
  return b;
}

NodePtr Parser::parse_macro() {
  auto node = make_node(NodeKind::Macro, next());
  node->text = expect_identifier();
  node->params = parse_signature();
  expect_block_end();
  node->body = parse_function_body(node.get(), "endmacro");
  return node;
}

NodePtr Parser::parse_call_block() {
  auto node = make_node(NodeKind::CallBlock, next());
  if (is_op("(")) node->params = parse_signature();
  const Token& at = peek();
  node->expr = parse_expression(true);
  if (node->expr->kind != ExprKind::Call) error(at, "expected a macro call after 'call'");
  expect_block_end();
  node->body = parse_function_body(node.get(), "endcall");
  return node;
}

NodePtr Parser::parse_filter_block() {
  const Token& at = next();
  auto node = make_node(NodeKind::FilterBlock, at);
  node->expr = parse_filter_chain(make(ExprKind::BlockInput, at), true);
  expect_block_end();
  node->body = parse_body_until("endfilter");
  return node;
}

NodePtr Parser::parse_with() {
  auto node = make_node(NodeKind::With, next());
  while (peek().type != Tok::BlockEnd) {
    if (!node->targets.empty()) expect_op(",");
    node->targets.push_back(expect_identifier());
    expect_op("=");
    node->values.push_back(parse_expression(true));
  }
  expect_block_end();
  node->body = parse_body_until("endwith");
  return node;
}

}  // namespace detail

Body parse(std::vector<Token> tokens) { return detail::Parser(std::move(tokens)).parse_template(); }

}  // namespace mimo::jinja
