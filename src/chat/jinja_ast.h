// Syntax tree of a parsed template. Nodes are plain structs tagged by kind;
// every node keeps the line and column it came from so runtime errors point
// into the template.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "chat/jinja_value.h"

namespace mimo::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

enum class ExprKind : uint8_t {
  Const,       // value
  Name,        // name
  List,        // items
  Tuple,       // items
  Dict,        // items as key, value, key, value...
  GetAttr,     // a.name
  GetItem,     // a[b]
  Slice,       // a[b:c:d]; absent bounds are null pointers
  Call,        // a(items, kwargs)
  Filter,      // a | name(items, kwargs); a is null inside {% filter %} blocks
  Test,        // a is [not] name(items)
  Unary,       // op a: "-", "+", "not"
  Binary,      // a op b: + - * / // % ** ~ and or
  Compare,     // a (ops[i] items[i])...: == != < <= > >= in "not in"
  CondExpr,    // b if a else c (c may be null)
  BlockInput,  // the rendered body inside {% filter %} / {% set x | f %}
};

struct Expr {
  ExprKind kind;
  int line = 0, col = 0;
  Value value;                 // Const
  std::string name;            // Name, GetAttr, Filter, Test; operator for Unary/Binary
  ExprPtr a, b, c;             // operands (see ExprKind)
  std::vector<ExprPtr> items;  // list/tuple/dict items, call/filter/test args, compare operands
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  std::vector<std::string> ops;  // Compare operators
  bool negated = false;          // Test: `is not`
};

struct Node;
using NodePtr = std::unique_ptr<Node>;
using Body = std::vector<NodePtr>;

enum class NodeKind : uint8_t {
  Text,         // text
  Output,       // {{ expr }}
  If,           // conds[i] -> bodies[i]; else_body
  For,          // targets in expr [if cond]: body [else else_body]
  Set,          // targets = expr
  SetAttr,      // name.attr = expr (namespace assignment)
  SetBlock,     // {% set name [| filter] %}body{% endset %}
  Macro,        // {% macro name(params) %}body{% endmacro %}
  CallBlock,    // {% call(params) expr %}body{% endcall %}
  FilterBlock,  // {% filter expr %}body{% endfilter %}
  With,         // {% with targets = exprs %}body{% endwith %}
  Break,
  Continue,
  Generation,  // transformers' {% generation %}: renders body unchanged
};

struct Param {
  std::string name;
  ExprPtr default_value;  // null when required
};

struct Node {
  NodeKind kind;
  int line = 0, col = 0;
  std::string text;                  // Text; name for SetAttr/SetBlock/Macro
  std::string attr;                  // SetAttr attribute
  ExprPtr expr;                      // Output/For iter/Set value/SetBlock filter/CallBlock call/FilterBlock filter
  ExprPtr cond;                      // For filter condition
  std::vector<std::string> targets;  // For/Set/With names
  std::vector<ExprPtr> values;       // With values
  std::vector<ExprPtr> conds;        // If conditions
  std::vector<Body> bodies;          // If bodies
  Body body, else_body;
  std::vector<Param> params;  // Macro / CallBlock parameters
  bool uses_varargs = false;  // Macro body reads `varargs`
  bool uses_kwargs = false;   // Macro body reads `kwargs`
  bool uses_caller = false;   // Macro body reads `caller`
};

}  // namespace mimo::jinja
