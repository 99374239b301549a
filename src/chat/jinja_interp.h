// Tree-walking evaluator (internal to the chat library). One Interp renders
// one template call; it owns the work and output budgets that keep a hostile
// or buggy template from hanging or exhausting a server thread.
#pragma once

#include <initializer_list>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "chat/jinja.h"
#include "chat/jinja_ast.h"
#include "chat/jinja_value.h"

namespace mimo::jinja {

// Variables of one jinja2 frame. Loop iterations, macro calls and `with`
// blocks get their own scope; `if` blocks do not (as in jinja2, where a
// `set` inside a loop body is gone in the next iteration).
class Scope {
 public:
  explicit Scope(std::shared_ptr<Scope> parent) : parent_(std::move(parent)) {}
  const Value* find(const std::string& name) const {
    for (const Scope* s = this; s; s = s->parent_.get()) {
      auto it = s->vars_.find(name);
      if (it != s->vars_.end()) return &it->second;
    }
    return nullptr;
  }
  void set(const std::string& name, Value v) { vars_[name] = std::move(v); }

 private:
  std::shared_ptr<Scope> parent_;
  std::unordered_map<std::string, Value> vars_;
};
using ScopePtr = std::shared_ptr<Scope>;

// Binds CallArgs to a Python-style signature: names in order, the first
// `required` of them mandatory. Errors name the function.
class ArgBinder {
 public:
  ArgBinder(const std::string& fname, const CallArgs& args, std::initializer_list<const char*> names,
            size_t required = 0);
  bool has(size_t i) const { return i < vals_.size() && set_[i]; }
  const Value& get(size_t i) const { return vals_[i]; }
  // Value or a default when absent.
  Value get_or(size_t i, Value dflt) const { return has(i) ? vals_[i] : std::move(dflt); }
  // Python truthiness of argument i (for flags such as reverse=, boolean=).
  bool flag(size_t i, bool dflt = false) const { return has(i) ? vals_[i].truthy() : dflt; }

 private:
  std::vector<Value> vals_;
  std::vector<bool> set_;
};

enum class Flow { Normal, Break, Continue };

class Interp {
 public:
  Interp(const RenderLimits& limits, ScopePtr root) : limits_(limits), root_(std::move(root)) {}

  Flow exec_body(const Body& body, const ScopePtr& scope, std::string& out);
  Value eval(const Expr& e, const ScopePtr& scope);

  // Attribute and item access with jinja2's sandbox rules: dict keys and
  // safe methods resolve, missing ones give Undefined, mutating methods give
  // an Undefined that fails when called (ImmutableSandboxedEnvironment).
  Value getattr(const Value& obj, const std::string& name);
  Value getitem(const Value& obj, const Value& key);
  Value call(const Value& fn, CallArgs& args);
  Value apply_filter(const std::string& name, const Value& v, CallArgs& args);
  bool apply_test(const std::string& name, const Value& v, CallArgs& args);
  bool has_filter(const std::string& name) const;
  bool has_test(const std::string& name) const;

  // Python's binary operators (+ - * / // % ** ~) on two values.
  Value binary(const std::string& op, const Value& l, const Value& r);

  // Counts work; throws once the template exceeds its budget.
  void step();
  // Raises if a string being built would exceed the output budget.
  void check_size(size_t n) const;

  int line() const { return line_; }
  int col() const { return col_; }

 private:
  struct DepthGuard {
    Interp* in;
    explicit DepthGuard(Interp* i);
    ~DepthGuard() { --in->depth_; }
  };

  Value eval_inner(const Expr& e, const ScopePtr& scope);
  Flow exec(const Node& n, const ScopePtr& scope, std::string& out);
  Flow exec_for(const Node& n, const ScopePtr& scope, std::string& out);
  void assign(const std::vector<std::string>& targets, const Value& v, Scope& scope);
  Value make_macro(const Node& n, const ScopePtr& scope, const std::string& name);
  Value call_macro(const Node& m, const std::string& name, const std::weak_ptr<Scope>& def_scope, CallArgs& args);
  Value eval_call(const Expr& e, const ScopePtr& scope, const Value* caller);
  bool compare_op(const std::string& op, const Value& l, const Value& r);
  Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step);
  std::string render_block(const Body& body, const ScopePtr& scope);
  Value filter_block_input(const Expr& chain, Value input, const ScopePtr& scope);

  const RenderLimits& limits_;
  ScopePtr root_;
  int depth_ = 0;
  int64_t steps_ = 0;
  int line_ = 0, col_ = 0;           // last statement started, for errors outside any node
  std::vector<Value> block_inputs_;  // {% filter %} / {% set x | f %} bodies being filtered
};

// Python-style helpers shared by the evaluator, filters and methods.
std::vector<Value> iterate(const Value& v);                // for-loop iteration; throws for non-iterables
bool contains(const Value& container, const Value& item);  // the `in` operator
int64_t py_len(const Value& v);
[[noreturn]] void fail_undefined(const Value& v);  // jinja2's UndefinedError for v's hint
// Methods of str/dict/list values. Safe ones are callable from templates;
// mutating ones are what ImmutableSandboxedEnvironment refuses; Unsupported
// are real Python methods this engine does not implement.
enum class MethodKind { None, Safe, Unsafe, Unsupported };
MethodKind method_kind(const Value& self, const std::string& name);
Value call_method(Interp& in, const Value& self, const std::string& name, CallArgs& args);
// Installs range, namespace, dict, joiner, raise_exception and strftime_now.
// Namespaces the template creates are appended to `namespaces`, so the
// caller can clear them after rendering: a namespace is the one mutable
// value, and `set ns.self = ns` would otherwise leak through a cycle.
void install_globals(Scope& root, const std::shared_ptr<std::vector<Value>>& namespaces);
// Python's `fmt % args` (printf-style): args is a tuple, a mapping or one value.
std::string percent_format(const std::string& fmt, const Value& args);

}  // namespace mimo::jinja
