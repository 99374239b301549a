#include "chat/jinja_interp.h"

#include <cmath>

#include "chat/jinja_error.h"
#include "chat/pystr.h"

namespace mimo::jinja {

// ---- helpers ---------------------------------------------------------------

ArgBinder::ArgBinder(const std::string& fname, const CallArgs& args, std::initializer_list<const char*> names,
                     size_t required)
    : vals_(names.size()), set_(names.size(), false) {
  const std::vector<const char*> n(names);
  if (args.pos.size() > n.size())
    jfail("TypeError: {}() takes at most {} argument(s) ({} given)", fname, n.size(), args.pos.size());
  for (size_t i = 0; i < args.pos.size(); ++i) {
    vals_[i] = args.pos[i];
    set_[i] = true;
  }
  for (const auto& [k, v] : args.kw) {
    size_t i = 0;
    while (i < n.size() && k != n[i]) ++i;
    if (i == n.size()) jfail("TypeError: {}() got an unexpected keyword argument '{}'", fname, k);
    if (set_[i]) jfail("TypeError: {}() got multiple values for argument '{}'", fname, k);
    vals_[i] = v;
    set_[i] = true;
  }
  for (size_t i = 0; i < required; ++i)
    if (!set_[i]) jfail("TypeError: {}() missing required argument '{}'", fname, n[i]);
}

void fail_undefined(const Value& v) { throw TemplateError(v.undefined_hint()); }

std::vector<Value> iterate(const Value& v) {
  switch (v.type()) {
    case Value::Type::Undefined:
      return {};
    case Value::Type::List: {
      ListObj& l = v.list();
      if (l.view != View::Generator) return l.items;
      if (!l.deferred_error.empty()) jfail("{}", l.deferred_error);
      std::vector<Value> rest(l.items.begin() + long(l.cursor), l.items.end());
      l.cursor = l.items.size();  // a generator runs once
      return rest;
    }
    case Value::Type::String: {
      std::vector<Value> out;
      for (char32_t c : py::decode(v.as_string())) out.emplace_back(py::encode(std::u32string(1, c)));
      return out;
    }
    case Value::Type::Dict:
      if (v.is_mapping()) {
        std::vector<Value> out;
        for (const auto& kv : v.dict().items()) out.push_back(kv.first);
        return out;
      }
      break;
    default:
      break;
  }
  jfail("TypeError: '{}' object is not iterable", v.type_name());
}

bool contains(const Value& c, const Value& item) {
  switch (c.type()) {
    case Value::Type::Undefined:
      return false;
    case Value::Type::String:
      if (!item.is_string())
        jfail("TypeError: 'in <string>' requires string as left operand, not {}", item.type_name());
      return c.as_string().find(item.as_string()) != std::string::npos;
    case Value::Type::List: {
      // `in` on a generator consumes it up to the match, as in Python.
      ListObj& l = c.list();
      if (!l.deferred_error.empty()) jfail("{}", l.deferred_error);
      size_t start = l.view == View::Generator ? l.cursor : 0;
      for (size_t i = start; i < l.items.size(); ++i)
        if (equals(l.items[i], item)) {
          if (l.view == View::Generator) l.cursor = i + 1;
          return true;
        }
      if (l.view == View::Generator) l.cursor = l.items.size();
      return false;
    }
    case Value::Type::Dict:
      if (!c.is_mapping()) break;
      if (item.is_undefined()) return false;  // Undefined hashes but is never a key
      if (!(item.is_string() || item.is_number() || item.is_none()))
        jfail("TypeError: unhashable type: '{}'", item.type_name());
      return c.dict().get(item) != nullptr;
    default:
      break;
  }
  jfail("TypeError: argument of type '{}' is not iterable", c.type_name());
}

int64_t py_len(const Value& v) {
  switch (v.type()) {
    case Value::Type::Undefined:
      return 0;
    case Value::Type::String:
      return int64_t(py::length(v.as_string()));
    case Value::Type::List:
      if (v.is_generator()) break;
      return int64_t(v.list().items.size());
    case Value::Type::Dict:
      if (v.is_mapping()) return int64_t(v.dict().size());
      break;
    default:
      break;
  }
  jfail("TypeError: object of type '{}' has no len()", v.type_name());
}

// ---- statements --------------------------------------------------------------

Interp::DepthGuard::DepthGuard(Interp* i) : in(i) {
  if (++in->depth_ > in->limits_.max_depth) {
    --in->depth_;
    jfail("template nests or recurses deeper than {} levels", in->limits_.max_depth);
  }
}

void Interp::step() {
  if (++steps_ > limits_.max_steps)
    jfail("template exceeded its budget of {} steps (endless loop or runaway recursion?)", limits_.max_steps);
}

void Interp::check_size(size_t n) const {
  if (n > limits_.max_output_bytes) jfail("rendered text exceeds the limit of {} bytes", limits_.max_output_bytes);
}

Flow Interp::exec_body(const Body& body, const ScopePtr& scope, std::string& out) {
  for (const auto& n : body) {
    Flow f = exec(*n, scope, out);
    if (f != Flow::Normal) return f;
  }
  return Flow::Normal;
}

std::string Interp::render_block(const Body& body, const ScopePtr& scope) {
  std::string s;
  exec_body(body, scope, s);
  return s;
}

Value Interp::filter_block_input(const Expr& chain, Value input, const ScopePtr& scope) {
  block_inputs_.push_back(std::move(input));
  Value r = eval(chain, scope);
  block_inputs_.pop_back();
  return r;
}

Flow Interp::exec(const Node& n, const ScopePtr& scope, std::string& out) {
  DepthGuard g(this);
  step();
  line_ = n.line;
  col_ = n.col;
  try {
    switch (n.kind) {
      case NodeKind::Text:
        out += n.text;
        check_size(out.size());
        return Flow::Normal;
      case NodeKind::Output: {
        Value v = eval(*n.expr, scope);
        if (!v.is_undefined()) out += v.str();
        check_size(out.size());
        return Flow::Normal;
      }
      case NodeKind::If:
        for (size_t i = 0; i < n.conds.size(); ++i)
          if (eval(*n.conds[i], scope).truthy()) return exec_body(n.bodies[i], scope, out);
        return exec_body(n.else_body, scope, out);
      case NodeKind::For:
        return exec_for(n, scope, out);
      case NodeKind::Set:
        assign(n.targets, eval(*n.expr, scope), *scope);
        return Flow::Normal;
      case NodeKind::SetAttr: {
        Value v = eval(*n.expr, scope);
        const Value* ns = scope->find(n.text);
        if (!ns || !ns->is_namespace())
          jfail("cannot assign attribute '{}' on '{}': it is not a namespace()", n.attr, n.text);
        ns->dict().set(Value(n.attr), std::move(v));
        return Flow::Normal;
      }
      case NodeKind::SetBlock: {
        Value v(render_block(n.body, scope));
        if (n.expr) v = filter_block_input(*n.expr, std::move(v), scope);
        scope->set(n.text, std::move(v));
        return Flow::Normal;
      }
      case NodeKind::Macro:
        scope->set(n.text, make_macro(n, scope, n.text));
        return Flow::Normal;
      case NodeKind::CallBlock: {
        Value caller = make_macro(n, scope, "caller");
        Value v = eval_call(*n.expr, scope, &caller);
        if (!v.is_undefined()) out += v.str();
        check_size(out.size());
        return Flow::Normal;
      }
      case NodeKind::FilterBlock: {
        Value v = filter_block_input(*n.expr, Value(render_block(n.body, scope)), scope);
        if (!v.is_undefined()) out += v.str();
        check_size(out.size());
        return Flow::Normal;
      }
      case NodeKind::With: {
        auto inner = std::make_shared<Scope>(scope);
        for (size_t i = 0; i < n.targets.size(); ++i) inner->set(n.targets[i], eval(*n.values[i], scope));
        return exec_body(n.body, inner, out);
      }
      case NodeKind::Break:
        return Flow::Break;
      case NodeKind::Continue:
        return Flow::Continue;
      case NodeKind::Generation:
        return exec_body(n.body, scope, out);
    }
  } catch (const TemplateError& e) {
    if (!e.has_position()) throw e.at(n.line, n.col);
    throw;
  }
  return Flow::Normal;
}

void Interp::assign(const std::vector<std::string>& targets, const Value& v, Scope& scope) {
  if (targets.size() == 1) {
    scope.set(targets[0], v);
    return;
  }
  if (!(v.is_list() || v.is_string() || v.is_mapping()))
    jfail("TypeError: cannot unpack non-iterable {} object", v.type_name());
  std::vector<Value> parts = iterate(v);
  if (parts.size() > targets.size()) jfail("ValueError: too many values to unpack (expected {})", targets.size());
  if (parts.size() < targets.size())
    jfail("ValueError: not enough values to unpack (expected {}, got {})", targets.size(), parts.size());
  for (size_t i = 0; i < targets.size(); ++i) scope.set(targets[i], parts[i]);
}

Flow Interp::exec_for(const Node& n, const ScopePtr& scope, std::string& out) {
  std::vector<Value> items = iterate(eval(*n.expr, scope));
  if (n.cond) {
    // `for x in xs if cond` filters first, so loop.index and loop.length
    // count only the kept items (as in jinja2).
    std::vector<Value> kept;
    for (auto& item : items) {
      step();
      auto s = std::make_shared<Scope>(scope);
      assign(n.targets, item, *s);
      if (eval(*n.cond, s).truthy()) kept.push_back(std::move(item));
    }
    items.swap(kept);
  }
  if (items.empty()) return exec_body(n.else_body, scope, out);
  const int64_t len = int64_t(items.size());
  for (int64_t i = 0; i < len; ++i) {
    step();
    auto s = std::make_shared<Scope>(scope);  // a fresh frame per iteration, as jinja2 does
    assign(n.targets, items[size_t(i)], *s);
    Value loop = Value::make_loop();
    DictObj& d = loop.dict();
    d.set("index", Value(i + 1));
    d.set("index0", Value(i));
    d.set("revindex", Value(len - i));
    d.set("revindex0", Value(len - i - 1));
    d.set("first", Value(i == 0));
    d.set("last", Value(i == len - 1));
    d.set("length", Value(len));
    d.set("depth", Value(1));
    d.set("depth0", Value(0));
    if (i > 0) d.set("previtem", items[size_t(i - 1)]);
    if (i + 1 < len) d.set("nextitem", items[size_t(i + 1)]);
    d.set("cycle", Value::make_func("cycle", [i](CallArgs& a) {
            if (a.pos.empty()) jfail("no items for cycling given");
            return a.pos[size_t(i) % a.pos.size()];
          }));
    s->set("loop", std::move(loop));
    if (exec_body(n.body, s, out) == Flow::Break) break;
  }
  return Flow::Normal;
}

Value Interp::make_macro(const Node& n, const ScopePtr& scope, const std::string& name) {
  // The closure holds its defining scope weakly: scopes own the macro value,
  // so a strong reference would be a cycle. A macro that outlives its scope
  // falls back to the template's top-level variables.
  std::weak_ptr<Scope> def = scope;
  const Node* node = &n;
  return Value::make_func(name, [this, node, name, def](CallArgs& a) { return call_macro(*node, name, def, a); });
}

Value Interp::call_macro(const Node& m, const std::string& name, const std::weak_ptr<Scope>& def_scope,
                         CallArgs& args) {
  DepthGuard g(this);
  ScopePtr parent = def_scope.lock();
  if (!parent) parent = root_;
  auto s = std::make_shared<Scope>(parent);
  const auto& params = m.params;
  std::vector<bool> bound(params.size(), false);
  std::vector<Value> extra_pos;
  for (size_t i = 0; i < args.pos.size(); ++i) {
    if (i < params.size()) {
      s->set(params[i].name, args.pos[i]);
      bound[i] = true;
    } else {
      extra_pos.push_back(args.pos[i]);
    }
  }
  Value extra_kw = Value::make_dict();
  bool have_caller = false;
  for (const auto& [k, v] : args.kw) {
    if (k == "caller" && m.uses_caller) {
      s->set("caller", v);
      have_caller = true;
      continue;
    }
    size_t i = 0;
    while (i < params.size() && params[i].name != k) ++i;
    if (i < params.size()) {
      if (bound[i]) jfail("TypeError: macro '{}' got multiple values for argument '{}'", name, k);
      s->set(k, v);
      bound[i] = true;
    } else if (m.uses_kwargs) {
      extra_kw.dict().set(Value(k), v);
    } else {
      jfail("TypeError: macro '{}' takes no keyword argument '{}'", name, k);
    }
  }
  if (!extra_pos.empty() && !m.uses_varargs)
    jfail("TypeError: macro '{}' takes not more than {} argument(s)", name, params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    if (bound[i]) continue;
    // Defaults are evaluated per call, in the macro's own frame.
    s->set(params[i].name, params[i].default_value ? eval(*params[i].default_value, s)
                                                   : Value::undefined("'" + params[i].name + "' is undefined"));
  }
  if (m.uses_varargs) s->set("varargs", Value::make_list(std::move(extra_pos), true));
  if (m.uses_kwargs) s->set("kwargs", extra_kw);
  if (m.uses_caller && !have_caller) s->set("caller", Value::undefined("'caller' is undefined (no {% call %} block)"));
  std::string out;
  exec_body(m.body, s, out);
  return Value(std::move(out));
}

// ---- expressions -------------------------------------------------------------

Value Interp::eval(const Expr& e, const ScopePtr& scope) {
  DepthGuard g(this);
  try {
    return eval_inner(e, scope);
  } catch (const TemplateError& err) {
    if (!err.has_position()) throw err.at(e.line, e.col);
    throw;
  }
}

Value Interp::eval_call(const Expr& e, const ScopePtr& scope, const Value* caller) {
  Value fn = eval(*e.a, scope);
  CallArgs args;
  for (const auto& a : e.items) args.pos.push_back(eval(*a, scope));
  for (const auto& [k, a] : e.kwargs) args.kw.emplace_back(k, eval(*a, scope));
  if (caller) args.kw.emplace_back("caller", *caller);
  return call(fn, args);
}

Value Interp::call(const Value& fn, CallArgs& args) {
  if (fn.is_undefined()) fail_undefined(fn);
  if (!fn.is_func()) jfail("TypeError: '{}' object is not callable", fn.type_name());
  step();
  return fn.func().fn(args);
}

Value Interp::eval_inner(const Expr& e, const ScopePtr& scope) {
  switch (e.kind) {
    case ExprKind::Const:
      return e.value;
    case ExprKind::Name: {
      if (const Value* v = scope->find(e.name)) return *v;
      return Value::undefined("'" + e.name + "' is undefined");
    }
    case ExprKind::List:
    case ExprKind::Tuple: {
      std::vector<Value> items;
      items.reserve(e.items.size());
      for (const auto& i : e.items) items.push_back(eval(*i, scope));
      return Value::make_list(std::move(items), e.kind == ExprKind::Tuple);
    }
    case ExprKind::Dict: {
      Value d = Value::make_dict();
      for (size_t i = 0; i + 1 < e.items.size(); i += 2) {
        Value k = eval(*e.items[i], scope);
        d.dict().set(k, eval(*e.items[i + 1], scope));
      }
      return d;
    }
    case ExprKind::GetAttr:
      return getattr(eval(*e.a, scope), e.name);
    case ExprKind::GetItem: {
      Value obj = eval(*e.a, scope);
      return getitem(obj, eval(*e.b, scope));
    }
    case ExprKind::Slice: {
      Value obj = eval(*e.a, scope);
      Value b[3];
      for (int i = 0; i < 3; ++i) b[i] = e.items[size_t(i)] ? eval(*e.items[size_t(i)], scope) : Value::none();
      return slice(obj, b[0], b[1], b[2]);
    }
    case ExprKind::Call:
      return eval_call(e, scope, nullptr);
    case ExprKind::Filter: {
      Value input;
      if (e.a) {
        input = eval(*e.a, scope);
      } else {
        if (block_inputs_.empty()) jfail("filter without input");
        input = block_inputs_.back();
      }
      CallArgs args;
      for (const auto& a : e.items) args.pos.push_back(eval(*a, scope));
      for (const auto& [k, a] : e.kwargs) args.kw.emplace_back(k, eval(*a, scope));
      return apply_filter(e.name, input, args);
    }
    case ExprKind::Test: {
      Value v = eval(*e.a, scope);
      CallArgs args;
      for (const auto& a : e.items) args.pos.push_back(eval(*a, scope));
      for (const auto& [k, a] : e.kwargs) args.kw.emplace_back(k, eval(*a, scope));
      bool r = apply_test(e.name, v, args);
      return Value(e.negated ? !r : r);
    }
    case ExprKind::Unary: {
      Value v = eval(*e.a, scope);
      if (e.name == "not") return Value(!v.truthy());
      if (v.is_undefined()) fail_undefined(v);
      if (v.is_float()) return Value(e.name == "-" ? -v.as_double() : v.as_double());
      if (v.is_number()) {
        int64_t i = v.as_int();
        if (e.name == "+") return Value(i);
        if (i == INT64_MIN) jfail("integer overflow");
        return Value(-i);
      }
      jfail("TypeError: bad operand type for unary {}: '{}'", e.name, v.type_name());
    }
    case ExprKind::Binary: {
      Value l = eval(*e.a, scope);
      if (e.name == "and") return l.truthy() ? eval(*e.b, scope) : l;
      if (e.name == "or") return l.truthy() ? l : eval(*e.b, scope);
      Value r = eval(*e.b, scope);
      return binary(e.name, l, r);
    }
    case ExprKind::Compare: {
      // Chained like Python: a < b < c means a < b and b < c.
      Value l = eval(*e.a, scope);
      for (size_t i = 0; i < e.ops.size(); ++i) {
        Value r = eval(*e.items[i], scope);
        if (!compare_op(e.ops[i], l, r)) return Value(false);
        l = std::move(r);
      }
      return Value(true);
    }
    case ExprKind::CondExpr:
      if (eval(*e.a, scope).truthy()) return eval(*e.b, scope);
      if (e.c) return eval(*e.c, scope);
      return Value::undefined("the inline if-expression evaluated to false and has no else section");
    case ExprKind::BlockInput:
      if (block_inputs_.empty()) jfail("filter block without input");
      return block_inputs_.back();
  }
  jfail("internal error: unknown expression kind");
}

bool Interp::compare_op(const std::string& op, const Value& l, const Value& r) {
  if (op == "==") return equals(l, r);
  if (op == "!=") return !equals(l, r);
  if (op == "in") return contains(r, l);
  if (op == "not in") return !contains(r, l);
  if (l.is_undefined()) fail_undefined(l);
  if (r.is_undefined()) fail_undefined(r);
  int c = compare(l, r, op.c_str());
  if (op == "<") return c < 0;
  if (op == "<=") return c <= 0;
  if (op == ">") return c > 0;
  return c >= 0;
}

}  // namespace mimo::jinja
