// jinja2's built-in tests (jinja2/tests.py): `x is defined`, `x is string`,
// `n is divisibleby 3`, and the comparison aliases.
#include <unordered_map>

#include "chat/jinja_error.h"
#include "chat/jinja_interp.h"
#include "chat/pystr.h"

namespace mimo::jinja {

namespace {

using TestFn = bool (*)(Interp&, const Value&, CallArgs&);

bool is_odd(Interp& in, const Value& v) { return equals(in.binary("%", v, Value(int64_t(2))), Value(int64_t(1))); }

const Value& test_arg(const CallArgs& a, const char* name) {
  if (a.pos.empty()) jfail("TypeError: test '{}' needs an argument", name);
  return a.pos[0];
}

const std::unordered_map<std::string, TestFn>& test_table() {
  static const std::unordered_map<std::string, TestFn> t = {
      {"defined", [](Interp&, const Value& v, CallArgs&) { return !v.is_undefined(); }},
      {"undefined", [](Interp&, const Value& v, CallArgs&) { return v.is_undefined(); }},
      {"none", [](Interp&, const Value& v, CallArgs&) { return v.is_none(); }},
      {"boolean", [](Interp&, const Value& v, CallArgs&) { return v.is_bool(); }},
      {"true", [](Interp&, const Value& v, CallArgs&) { return v.is_bool() && v.as_bool(); }},
      {"false", [](Interp&, const Value& v, CallArgs&) { return v.is_bool() && !v.as_bool(); }},
      {"integer", [](Interp&, const Value& v, CallArgs&) { return v.is_int(); }},
      {"float", [](Interp&, const Value& v, CallArgs&) { return v.is_float(); }},
      {"number", [](Interp&, const Value& v, CallArgs&) { return v.is_number(); }},
      {"string", [](Interp&, const Value& v, CallArgs&) { return v.is_string(); }},
      {"mapping", [](Interp&, const Value& v, CallArgs&) { return v.is_mapping(); }},
      {"iterable", [](Interp&, const Value& v,
                      CallArgs&) { return v.is_list() || v.is_string() || v.is_mapping() || v.is_undefined(); }},
      {"sequence",
       [](Interp&, const Value& v, CallArgs&) {
         // jinja2's Undefined has __len__ and __getitem__, so it passes.
         return v.is_sequence_list() || v.is_string() || v.is_mapping() || v.is_undefined();
       }},
      // jinja2's Undefined defines __call__ (to raise), so callable() is true.
      {"callable", [](Interp&, const Value& v, CallArgs&) { return v.is_func() || v.is_undefined(); }},
      {"escaped", [](Interp&, const Value&, CallArgs&) { return false; }},
      {"odd", [](Interp& in, const Value& v, CallArgs&) { return is_odd(in, v); }},
      {"even", [](Interp& in, const Value& v,
                  CallArgs&) { return equals(in.binary("%", v, Value(int64_t(2))), Value(int64_t(0))); }},
      {"divisibleby",
       [](Interp& in, const Value& v, CallArgs& a) {
         return equals(in.binary("%", v, test_arg(a, "divisibleby")), Value(int64_t(0)));
       }},
      {"eq", [](Interp&, const Value& v, CallArgs& a) { return equals(v, test_arg(a, "eq")); }},
      {"ne", [](Interp&, const Value& v, CallArgs& a) { return !equals(v, test_arg(a, "ne")); }},
      {"lt", [](Interp&, const Value& v, CallArgs& a) { return compare(v, test_arg(a, "lt"), "<") < 0; }},
      {"le", [](Interp&, const Value& v, CallArgs& a) { return compare(v, test_arg(a, "le"), "<=") <= 0; }},
      {"gt", [](Interp&, const Value& v, CallArgs& a) { return compare(v, test_arg(a, "gt"), ">") > 0; }},
      {"ge", [](Interp&, const Value& v, CallArgs& a) { return compare(v, test_arg(a, "ge"), ">=") >= 0; }},
      {"in", [](Interp&, const Value& v, CallArgs& a) { return contains(test_arg(a, "in"), v); }},
      {"sameas",
       [](Interp&, const Value& v, CallArgs& a) {
         const Value& o = test_arg(a, "sameas");
         if (v.identity() || o.identity()) return v.identity() == o.identity();
         return v.type() == o.type() && equals(v, o);
       }},
      {"lower", [](Interp&, const Value& v, CallArgs&) { return py::is_lower(v.str()); }},
      {"upper", [](Interp&, const Value& v, CallArgs&) { return py::is_upper(v.str()); }},
      {"filter", [](Interp& in, const Value& v, CallArgs&) { return v.is_string() && in.has_filter(v.as_string()); }},
      {"test", [](Interp& in, const Value& v, CallArgs&) { return v.is_string() && in.has_test(v.as_string()); }},
  };
  return t;
}

// Aliases jinja2 registers for the comparison tests.
const std::unordered_map<std::string, std::string> kTestAliases = {{"==", "eq"}, {"equalto", "eq"},     {"!=", "ne"},
                                                                   {"<", "lt"},  {"lessthan", "lt"},    {"<=", "le"},
                                                                   {">", "gt"},  {"greaterthan", "gt"}, {">=", "ge"}};

}  // namespace

bool Interp::has_test(const std::string& name) const {
  return test_table().count(name) > 0 || kTestAliases.count(name) > 0;
}

bool Interp::apply_test(const std::string& name, const Value& v, CallArgs& args) {
  step();
  auto alias = kTestAliases.find(name);
  const std::string& key = alias == kTestAliases.end() ? name : alias->second;
  auto it = test_table().find(key);
  if (it == test_table().end()) jfail("no test named '{}'", name);
  return it->second(*this, v, args);
}

}  // namespace mimo::jinja
