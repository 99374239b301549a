// Internal to the chat library: the recursive-descent parser behind
// parse() (jinja_parser.h). Statements are parsed in jinja_parser.cc,
// expressions in jinja_parse_expr.cc.
#pragma once

#include <initializer_list>
#include <string>
#include <vector>

#include "chat/jinja_ast.h"
#include "chat/jinja_error.h"
#include "chat/jinja_lexer.h"

namespace mimo::jinja::detail {

// Deeper nesting than this in one expression or statement is not a chat
// template; refusing it keeps the recursive descent off the stack limit.
constexpr int kMaxParseDepth = 200;

class Parser {
 public:
  explicit Parser(std::vector<Token> toks) : t_(std::move(toks)) {}

  Body parse_template();

  // The rest is used by jinja_parser.cc (statements) and jinja_parse_expr.cc
  // (expressions); kept in one class so both recurse into each other.
  // ---- token helpers -------------------------------------------------------
  const Token& peek(size_t k = 0) const { return t_[std::min(i_ + k, t_.size() - 1)]; }
  const Token& next() {
    const Token& t = t_[i_];
    if (i_ + 1 < t_.size()) ++i_;
    return t;
  }
  bool is_op(const char* op, size_t k = 0) const { return peek(k).type == Tok::Op && peek(k).text == op; }
  bool is_name(const char* name, size_t k = 0) const { return peek(k).type == Tok::Name && peek(k).text == name; }

  static std::string describe(const Token& t) {
    switch (t.type) {
      case Tok::Text:
        return "template text";
      case Tok::VarBegin:
        return "'{{'";
      case Tok::VarEnd:
        return "'}}'";
      case Tok::BlockBegin:
        return "'{%'";
      case Tok::BlockEnd:
        return "'%}'";
      case Tok::Eof:
        return "end of template";
      case Tok::String:
        return "string literal";
      case Tok::Int:
      case Tok::Float:
        return "number " + t.text;
      default:
        return "'" + t.text + "'";
    }
  }
  [[noreturn]] void error(const Token& t, const std::string& msg) const { throw TemplateError(msg, t.line, t.col); }
  [[noreturn]] void unexpected(const std::string& wanted) const {
    error(peek(), "expected " + wanted + ", got " + describe(peek()));
  }
  void expect_op(const char* op) {
    if (!is_op(op)) unexpected(std::string("'") + op + "'");
    next();
  }
  void expect_name(const char* name) {
    if (!is_name(name)) unexpected(std::string("'") + name + "'");
    next();
  }
  std::string expect_identifier() {
    if (peek().type != Tok::Name) unexpected("a name");
    return next().text;
  }
  void expect_block_end() {
    if (peek().type != Tok::BlockEnd) unexpected("end of statement '%}'");
    next();
  }

  struct DepthGuard {
    Parser* p;
    explicit DepthGuard(Parser* parser) : p(parser) {
      if (++p->depth_ > kMaxParseDepth) p->error(p->peek(), "template nests too deeply");
    }
    ~DepthGuard() { --p->depth_; }
  };

  ExprPtr make(ExprKind k, const Token& at) {
    auto e = std::make_unique<Expr>();
    e->kind = k;
    e->line = at.line;
    e->col = at.col;
    return e;
  }
  NodePtr make_node(NodeKind k, const Token& at) {
    auto n = std::make_unique<Node>();
    n->kind = k;
    n->line = at.line;
    n->col = at.col;
    return n;
  }

  // ---- statements ----------------------------------------------------------
  // Parses until a block tag whose name is in `ends`; consumes "{%" and the
  // name, leaving the rest of that tag to the caller.
  Body subparse(std::initializer_list<const char*> ends, std::string* end_found);
  NodePtr parse_statement();
  Body parse_body_until(const char* end);
  std::vector<std::string> parse_assign_names(std::initializer_list<const char*> extra_end);
  NodePtr parse_for();
  NodePtr parse_if();
  NodePtr parse_set();
  std::vector<Param> parse_signature();

  // Macro and call bodies are functions: loops outside them do not count.
  Body parse_function_body(Node* fn, const char* end);
  NodePtr parse_macro();
  NodePtr parse_call_block();
  NodePtr parse_filter_block();
  NodePtr parse_with();

  // ---- expressions ---------------------------------------------------------
  bool is_tuple_end(std::initializer_list<const char*> extra_end) const {
    const Token& t = peek();
    if (t.type == Tok::VarEnd || t.type == Tok::BlockEnd || (t.type == Tok::Op && t.text == ")")) return true;
    for (const char* e : extra_end)
      if (t.type == Tok::Name && t.text == e) return true;
    return false;
  }

  ExprPtr parse_tuple(bool simplified, bool with_condexpr, std::initializer_list<const char*> extra_end,
                      bool explicit_parens);
  ExprPtr parse_expression(bool with_condexpr);

  ExprPtr binary(const Token& at, const std::string& op, ExprPtr l, ExprPtr r) {
    auto e = make(ExprKind::Binary, at);
    e->name = op;
    e->a = std::move(l);
    e->b = std::move(r);
    return e;
  }

  ExprPtr parse_or();
  ExprPtr parse_and();
  ExprPtr parse_not();
  ExprPtr parse_compare();
  ExprPtr parse_math1();
  ExprPtr parse_concat();
  ExprPtr parse_math2();
  ExprPtr parse_pow();
  ExprPtr parse_unary(bool with_filter);
  ExprPtr parse_primary();
  ExprPtr parse_postfix(ExprPtr node);
  ExprPtr parse_filter_expr(ExprPtr node);
  ExprPtr parse_subscript(ExprPtr node);

  // One subscript: an expression or a slice [start:stop:step] whose bounds
  // land in items[0..2] (null when absent).
  ExprPtr parse_subscribed();
  void parse_call_args(Expr* e);
  ExprPtr parse_call(ExprPtr node);
  std::string parse_dotted_name();

  // `| name(args) | name2 ...`; in {% filter %} the first name has no pipe.
  ExprPtr parse_filter_chain(ExprPtr node, bool start_inline);
  ExprPtr parse_test(ExprPtr node);

  void note_name_use(const std::string& name) {
    if (functions_.empty()) return;
    Node* fn = functions_.back();
    if (name == "varargs") fn->uses_varargs = true;
    if (name == "kwargs") fn->uses_kwargs = true;
    if (name == "caller") fn->uses_caller = true;
  }

  std::vector<Token> t_;
  size_t i_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
  std::vector<Node*> functions_;  // enclosing macro/call bodies, innermost last
};

}  // namespace mimo::jinja::detail
