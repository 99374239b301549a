// Expression half of the parser: jinja2's precedence climbing, one function
// per level (parse_or down to parse_primary), then postfix, filters and tests.
#include "chat/jinja_parser_impl.h"

namespace mimo::jinja::detail {

ExprPtr Parser::parse_tuple(bool simplified, bool with_condexpr, std::initializer_list<const char*> extra_end,
                            bool explicit_parens) {
  const Token& at = peek();
  std::vector<ExprPtr> items;
  bool is_tuple = false;
  while (true) {
    if (!items.empty()) expect_op(",");
    if (is_tuple_end(extra_end)) break;
    items.push_back(simplified ? parse_primary() : parse_expression(with_condexpr));
    if (is_op(","))
      is_tuple = true;
    else
      break;
  }
  if (!is_tuple) {
    if (!items.empty()) return std::move(items[0]);
    if (!explicit_parens) unexpected("an expression");
  }
  auto e = make(ExprKind::Tuple, at);
  e->items = std::move(items);
  return e;
}

ExprPtr Parser::parse_expression(bool with_condexpr) {
  DepthGuard g(this);
  if (!with_condexpr) return parse_or();
  ExprPtr e = parse_or();
  while (is_name("if")) {
    auto c = make(ExprKind::CondExpr, next());
    c->a = parse_or();
    c->b = std::move(e);
    if (is_name("else")) {
      next();
      c->c = parse_expression(true);
    }
    e = std::move(c);
  }
  return e;
}

ExprPtr Parser::parse_or() {
  ExprPtr l = parse_and();
  while (is_name("or")) {
    const Token& at = next();
    l = binary(at, "or", std::move(l), parse_and());
  }
  return l;
}

ExprPtr Parser::parse_and() {
  ExprPtr l = parse_not();
  while (is_name("and")) {
    const Token& at = next();
    l = binary(at, "and", std::move(l), parse_not());
  }
  return l;
}

ExprPtr Parser::parse_not() {
  if (is_name("not")) {
    DepthGuard g(this);
    auto e = make(ExprKind::Unary, next());
    e->name = "not";
    e->a = parse_not();
    return e;
  }
  return parse_compare();
}

ExprPtr Parser::parse_compare() {
  const Token& at = peek();
  ExprPtr first = parse_math1();
  std::vector<std::string> ops;
  std::vector<ExprPtr> rhs;
  while (true) {
    const Token& t = peek();
    if (t.type == Tok::Op &&
        (t.text == "==" || t.text == "!=" || t.text == "<" || t.text == "<=" || t.text == ">" || t.text == ">=")) {
      ops.push_back(next().text);
    } else if (is_name("in")) {
      next();
      ops.push_back("in");
    } else if (is_name("not") && is_name("in", 1)) {
      next();
      next();
      ops.push_back("not in");
    } else {
      break;
    }
    rhs.push_back(parse_math1());
  }
  if (ops.empty()) return first;
  auto e = make(ExprKind::Compare, at);
  e->a = std::move(first);
  e->ops = std::move(ops);
  e->items = std::move(rhs);
  return e;
}

ExprPtr Parser::parse_math1() {
  ExprPtr l = parse_concat();
  while (is_op("+") || is_op("-")) {
    const Token& at = next();
    l = binary(at, at.text, std::move(l), parse_concat());
  }
  return l;
}

ExprPtr Parser::parse_concat() {
  ExprPtr l = parse_math2();
  while (is_op("~")) {
    const Token& at = next();
    l = binary(at, "~", std::move(l), parse_math2());
  }
  return l;
}

ExprPtr Parser::parse_math2() {
  ExprPtr l = parse_pow();
  while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
    const Token& at = next();
    l = binary(at, at.text, std::move(l), parse_pow());
  }
  return l;
}

ExprPtr Parser::parse_pow() {
  ExprPtr l = parse_unary(true);
  while (is_op("**")) {
    const Token& at = next();
    l = binary(at, "**", std::move(l), parse_unary(true));
  }
  return l;
}

ExprPtr Parser::parse_unary(bool with_filter) {
  DepthGuard g(this);
  ExprPtr node;
  if (is_op("-") || is_op("+")) {
    node = make(ExprKind::Unary, peek());
    node->name = next().text;
    node->a = parse_unary(false);
  } else {
    node = parse_primary();
  }
  node = parse_postfix(std::move(node));
  if (with_filter) node = parse_filter_expr(std::move(node));
  return node;
}

ExprPtr Parser::parse_primary() {
  DepthGuard g(this);
  const Token& t = peek();
  if (t.type == Tok::Name) {
    next();
    auto e = make(ExprKind::Const, t);
    if (t.text == "true" || t.text == "True")
      e->value = Value(true);
    else if (t.text == "false" || t.text == "False")
      e->value = Value(false);
    else if (t.text == "none" || t.text == "None")
      e->value = Value::none();
    else {
      e->kind = ExprKind::Name;
      e->name = t.text;
      note_name_use(t.text);
    }
    return e;
  }
  if (t.type == Tok::String) {
    auto e = make(ExprKind::Const, t);
    std::string s;
    while (peek().type == Tok::String) s += next().text;  // adjacent literals concatenate
    e->value = Value(std::move(s));
    return e;
  }
  if (t.type == Tok::Int || t.type == Tok::Float) {
    auto e = make(ExprKind::Const, next());
    e->value = t.type == Tok::Int ? Value(t.ival) : Value(t.fval);
    return e;
  }
  if (is_op("(")) {
    next();
    ExprPtr e = parse_tuple(false, true, {}, true);
    expect_op(")");
    return e;
  }
  if (is_op("[")) {
    auto e = make(ExprKind::List, next());
    while (!is_op("]")) {
      if (!e->items.empty()) expect_op(",");
      if (is_op("]")) break;
      e->items.push_back(parse_expression(true));
    }
    next();
    return e;
  }
  if (is_op("{")) {
    auto e = make(ExprKind::Dict, next());
    while (!is_op("}")) {
      if (!e->items.empty()) expect_op(",");
      if (is_op("}")) break;
      e->items.push_back(parse_expression(true));
      expect_op(":");
      e->items.push_back(parse_expression(true));
    }
    next();
    return e;
  }
  unexpected("an expression");
}

ExprPtr Parser::parse_postfix(ExprPtr node) {
  while (true) {
    if (is_op(".") || is_op("[")) {
      node = parse_subscript(std::move(node));
    } else if (is_op("(")) {
      node = parse_call(std::move(node));
    } else {
      return node;
    }
  }
}

ExprPtr Parser::parse_filter_expr(ExprPtr node) {
  while (true) {
    if (is_op("|")) {
      node = parse_filter_chain(std::move(node), false);
    } else if (is_name("is")) {
      node = parse_test(std::move(node));
    } else if (is_op("(")) {
      node = parse_call(std::move(node));
    } else {
      return node;
    }
  }
}

ExprPtr Parser::parse_subscript(ExprPtr node) {
  const Token& at = next();
  if (at.text == ".") {
    const Token& t = peek();
    if (t.type == Tok::Name) {
      auto e = make(ExprKind::GetAttr, at);
      e->name = next().text;
      e->a = std::move(node);
      return e;
    }
    if (t.type == Tok::Int) {
      auto e = make(ExprKind::GetItem, at);
      e->a = std::move(node);
      e->b = make(ExprKind::Const, t);
      e->b->value = Value(next().ival);
      return e;
    }
    unexpected("an attribute name after '.'");
  }
  std::vector<ExprPtr> args;
  while (!is_op("]")) {
    if (!args.empty()) expect_op(",");
    if (is_op("]")) break;
    args.push_back(parse_subscribed());
  }
  next();
  // jinja2 accepts x[] as x[()], an empty-tuple key.
  if (args.size() == 1 && args[0]->kind == ExprKind::Slice) {
    args[0]->a = std::move(node);
    return std::move(args[0]);
  }
  auto e = make(ExprKind::GetItem, at);
  e->a = std::move(node);
  if (args.size() == 1) {
    e->b = std::move(args[0]);
  } else {
    e->b = make(ExprKind::Tuple, at);
    e->b->items = std::move(args);
  }
  return e;
}

ExprPtr Parser::parse_subscribed() {
  const Token& at = peek();
  ExprPtr start;
  if (!is_op(":")) {
    ExprPtr e = parse_expression(true);
    if (!is_op(":")) return e;
    start = std::move(e);
  }
  next();
  auto s = make(ExprKind::Slice, at);
  auto bound = [&]() -> ExprPtr {
    if (is_op("]") || is_op(",") || is_op(":")) return nullptr;
    return parse_expression(true);
  };
  ExprPtr stop = bound();
  ExprPtr step;
  if (is_op(":")) {
    next();
    step = bound();
  }
  s->items.push_back(std::move(start));
  s->items.push_back(std::move(stop));
  s->items.push_back(std::move(step));
  return s;
}

void Parser::parse_call_args(Expr* e) {
  expect_op("(");
  bool first = true;
  while (!is_op(")")) {
    if (!first) expect_op(",");
    first = false;
    if (is_op(")")) break;
    if (is_op("*") || is_op("**")) error(peek(), "*args and **kwargs in calls are not supported");
    if (peek().type == Tok::Name && is_op("=", 1)) {
      std::string key = next().text;
      next();
      e->kwargs.emplace_back(std::move(key), parse_expression(true));
    } else {
      if (!e->kwargs.empty()) error(peek(), "positional argument follows keyword argument");
      e->items.push_back(parse_expression(true));
    }
  }
  next();
}

ExprPtr Parser::parse_call(ExprPtr node) {
  auto e = make(ExprKind::Call, peek());
  e->a = std::move(node);
  parse_call_args(e.get());
  return e;
}

std::string Parser::parse_dotted_name() {
  std::string name = expect_identifier();
  while (is_op(".") && peek(1).type == Tok::Name) {
    next();
    name += "." + next().text;
  }
  return name;
}

ExprPtr Parser::parse_filter_chain(ExprPtr node, bool start_inline) {
  do {
    const Token& at = peek();
    if (!start_inline) expect_op("|");
    start_inline = false;
    auto e = make(ExprKind::Filter, at);
    e->name = parse_dotted_name();
    e->a = std::move(node);
    if (is_op("(")) parse_call_args(e.get());
    node = std::move(e);
  } while (is_op("|"));
  return node;
}

ExprPtr Parser::parse_test(ExprPtr node) {
  auto e = make(ExprKind::Test, next());
  if (is_name("not")) {
    next();
    e->negated = true;
  }
  e->name = parse_dotted_name();
  e->a = std::move(node);
  const Token& t = peek();
  if (is_op("(")) {
    parse_call_args(e.get());
  } else if ((t.type == Tok::Name || t.type == Tok::String || t.type == Tok::Int || t.type == Tok::Float ||
              is_op("[") || is_op("{")) &&
             !is_name("else") && !is_name("or") && !is_name("and")) {
    // `x is divisibleby 3`: a single argument without parentheses.
    e->items.push_back(parse_postfix(parse_primary()));
  }
  return e;
}

}  // namespace mimo::jinja::detail
