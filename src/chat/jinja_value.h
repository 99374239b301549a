// Values of the template language, with Python's semantics: lists and dicts
// are shared references (so `namespace` attributes and list.append are seen
// through every alias), dicts keep insertion order, ints and floats stay
// distinct (str(1) is "1", str(1.0) is "1.0"), and jinja2's Undefined is a
// value of its own that prints as '' but fails on attribute access.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

namespace mimo::jinja {

class Value;

// Arguments of a call: positional, then keyword in call order.
struct CallArgs {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;
};
using NativeFn = std::function<Value(CallArgs&)>;

// dict.keys()/values()/items() return views in Python: iterable and sized,
// but printed as dict_keys([...]), not indexable and not JSON-serializable.
// jinja2's map/select/reject/selectattr/rejectattr/unique/batch/items
// filters return generators: always truthy, without len(), and exhausted
// once iterated. Templates can observe all of that, so it is mirrored.
// range() results are sequences too, but print as range(0, 3) and are not
// JSON-serializable.
enum class View : uint8_t { None, Keys, Values, Items, Generator, Range };

struct ListObj {
  std::vector<Value> items;
  bool tuple = false;  // prints (1, 2) instead of [1, 2]; never equal to a list
  View view = View::None;
  size_t cursor = 0;  // generators: items before it are consumed
  // jinja2's generators are lazy: an error while producing one surfaces only
  // when it is iterated. A generator built from failing input keeps it here.
  std::string deferred_error;
  std::string range_repr;  // "range(0, 3)" for View::Range
  int depth = 1;           // nesting of containers inside, bounded (see kMaxNesting)
};

struct FuncObj {
  std::string name;
  NativeFn fn;
};

class DictObj;

class Value {
 public:
  enum class Type : uint8_t { Undefined, None, Bool, Int, Float, String, List, Dict, Func };

  Value() = default;  // Undefined
  Value(std::nullptr_t) : v_(NoneT{}) {}
  Value(bool b) : v_(b) {}
  Value(int i) : v_(int64_t(i)) {}
  Value(long i) : v_(int64_t(i)) {}
  Value(long long i) : v_(int64_t(i)) {}
  Value(double d) : v_(d) {}
  Value(std::string s) : v_(std::move(s)) {}
  Value(std::string_view s) : v_(std::string(s)) {}
  Value(const char* s) : v_(std::string(s)) {}

  // `hint` says what was missing; it becomes the message if the value is used.
  static Value undefined(std::string hint);
  static Value none() { return Value(nullptr); }
  static Value make_list(std::vector<Value> items = {}, bool tuple = false);
  static Value make_view(std::vector<Value> items, View view);
  static Value make_dict();
  static Value make_namespace();
  static Value make_loop();  // jinja2's LoopContext: attributes, not a mapping
  static Value make_func(std::string name, NativeFn fn);
  static Value from_json(const nlohmann::ordered_json& j);

  Type type() const { return Type(v_.index()); }
  bool is_undefined() const { return type() == Type::Undefined; }
  bool is_none() const { return type() == Type::None; }
  bool is_bool() const { return type() == Type::Bool; }
  bool is_int() const { return type() == Type::Int; }
  bool is_float() const { return type() == Type::Float; }
  bool is_number() const { return is_bool() || is_int() || is_float(); }  // Python: bool is an int
  bool is_string() const { return type() == Type::String; }
  bool is_list() const { return type() == Type::List; }  // lists, tuples and dict views
  bool is_view() const { return is_list() && list().view != View::None; }
  bool is_generator() const { return is_list() && list().view == View::Generator; }
  // Lists, tuples and ranges: what Python can index, slice and compare in order.
  bool is_sequence_list() const { return is_list() && (list().view == View::None || list().view == View::Range); }
  bool is_dict() const { return type() == Type::Dict; }  // includes namespaces
  bool is_func() const { return type() == Type::Func; }
  bool is_namespace() const;
  bool is_object() const;  // a namespace or loop: attributes only, not a mapping
  bool is_mapping() const { return is_dict() && !is_object(); }

  bool as_bool() const { return std::get<bool>(v_); }
  int64_t as_int() const;    // Bool or Int
  double as_double() const;  // any number
  const std::string& as_string() const { return std::get<std::string>(v_); }
  ListObj& list() const { return *std::get<std::shared_ptr<ListObj>>(v_); }
  DictObj& dict() const { return *std::get<std::shared_ptr<DictObj>>(v_); }
  FuncObj& func() const { return *std::get<std::shared_ptr<FuncObj>>(v_); }
  const std::string& undefined_hint() const { return std::get<UndefinedT>(v_).hint; }
  const void* identity() const;  // object identity for `is sameas` on lists/dicts
  int nesting() const;           // 0 for scalars, else how deeply containers nest

  bool truthy() const;
  std::string str() const;        // Python str(); Undefined prints as ''
  std::string repr() const;       // Python repr()
  std::string type_name() const;  // Python's type name: 'str', 'dict', 'NoneType', ...

 private:
  struct UndefinedT {
    std::string hint;
  };
  struct NoneT {};
  void write(std::string& out, bool as_repr, int depth) const;
  std::variant<UndefinedT, NoneT, bool, int64_t, double, std::string, std::shared_ptr<ListObj>,
               std::shared_ptr<DictObj>, std::shared_ptr<FuncObj>>
      v_;
};

// An insertion-ordered dict with Python key equality (1 == 1.0 == True).
class DictObj {
 public:
  enum class Kind : uint8_t { Dict, Namespace, Loop };
  Kind kind = Kind::Dict;

  const Value* get(const Value& key) const;
  const Value* get(std::string_view key) const;
  const Value* get(const std::string& key) const { return get(std::string_view(key)); }
  const Value* get(const char* key) const { return get(std::string_view(key)); }
  void set(const Value& key, Value v);
  size_t size() const { return items_.size(); }
  const std::vector<std::pair<Value, Value>>& items() const { return items_; }
  void clear();  // drops all entries (breaks reference cycles through namespaces)
  int depth = 1;

 private:
  static std::string hash_key(const Value& k);  // throws for unhashable keys
  std::vector<std::pair<Value, Value>> items_;
  std::unordered_map<std::string, size_t> index_;
};

// Containers may nest this deep and no deeper: values are built and freed
// recursively, so a template building [[[...]]] in a loop must be stopped
// before destroying the result overflows the stack.
constexpr int kMaxNesting = 512;

// Python ==. Never throws.
bool equals(const Value& a, const Value& b);
// Python ordering for sort/min/max and < <= > >=: negative, zero or positive.
// Throws TemplateError for unorderable pairs, naming `op`.
int compare(const Value& a, const Value& b, const char* op = "<");

// json.dumps(v, ensure_ascii, indent, separators, sort_keys) as transformers'
// tojson filter calls it.
struct JsonOptions {
  bool ensure_ascii = false;
  std::optional<std::string> indent;  // unset: single line
  std::optional<std::pair<std::string, std::string>> separators;
  bool sort_keys = false;
};
std::string to_json_text(const Value& v, const JsonOptions& opt);

// Plain JSON for the values a template can hold (for callers and tests).
nlohmann::ordered_json to_json(const Value& v);

}  // namespace mimo::jinja
