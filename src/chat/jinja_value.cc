#include "chat/jinja_value.h"

#include <algorithm>
#include <cmath>

#include "chat/jinja_error.h"
#include "chat/pystr.h"

namespace mimo::jinja {

namespace {

// Nesting deeper than this in repr/json/equality means a self-referencing
// list (possible through append) or hostile input; Python would recurse too.
void check_depth(int depth) {
  if (depth > kMaxNesting) jfail("value nested deeper than {} levels (recursive list or dict?)", kMaxNesting);
}

}  // namespace

Value Value::undefined(std::string hint) {
  Value v;
  v.v_ = UndefinedT{std::move(hint)};
  return v;
}

Value Value::make_list(std::vector<Value> items, bool tuple) {
  Value v;
  auto l = std::make_shared<ListObj>();
  int d = 0;
  for (const auto& item : items) d = std::max(d, item.nesting());
  check_depth(d + 1);
  l->depth = d + 1;
  l->items = std::move(items);
  l->tuple = tuple;
  v.v_ = std::move(l);
  return v;
}

Value Value::make_view(std::vector<Value> items, View view) {
  Value v = make_list(std::move(items));
  v.list().view = view;
  return v;
}

Value Value::make_dict() {
  Value v;
  v.v_ = std::make_shared<DictObj>();
  return v;
}

Value Value::make_namespace() {
  Value v = make_dict();
  v.dict().kind = DictObj::Kind::Namespace;
  return v;
}

Value Value::make_loop() {
  Value v = make_dict();
  v.dict().kind = DictObj::Kind::Loop;
  return v;
}

Value Value::make_func(std::string name, NativeFn fn) {
  Value v;
  v.v_ = std::make_shared<FuncObj>(FuncObj{std::move(name), std::move(fn)});
  return v;
}

static Value from_json_rec(const nlohmann::ordered_json& j, int depth) {
  check_depth(depth);
  switch (j.type()) {
    case nlohmann::json::value_t::null:
      return Value::none();
    case nlohmann::json::value_t::boolean:
      return Value(j.get<bool>());
    case nlohmann::json::value_t::number_integer:
      return Value(j.get<int64_t>());
    case nlohmann::json::value_t::number_unsigned: {
      uint64_t u = j.get<uint64_t>();
      if (u > uint64_t(INT64_MAX)) jfail("integer {} is too large", u);
      return Value(int64_t(u));
    }
    case nlohmann::json::value_t::number_float:
      return Value(j.get<double>());
    case nlohmann::json::value_t::string:
      return Value(j.get_ref<const std::string&>());
    case nlohmann::json::value_t::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const auto& e : j) items.push_back(from_json_rec(e, depth + 1));
      return Value::make_list(std::move(items));
    }
    case nlohmann::json::value_t::object: {
      Value d = Value::make_dict();
      for (auto it = j.begin(); it != j.end(); ++it)
        d.dict().set(Value(it.key()), from_json_rec(it.value(), depth + 1));
      return d;
    }
    default:
      jfail("unsupported JSON value (binary or discarded)");
  }
}

Value Value::from_json(const nlohmann::ordered_json& j) { return from_json_rec(j, 0); }

int Value::nesting() const {
  if (is_list()) return list().depth;
  if (is_dict()) return dict().depth;
  return 0;
}

bool Value::is_namespace() const { return is_dict() && dict().kind == DictObj::Kind::Namespace; }
bool Value::is_object() const { return is_dict() && dict().kind != DictObj::Kind::Dict; }

int64_t Value::as_int() const { return is_bool() ? int64_t(as_bool()) : std::get<int64_t>(v_); }

double Value::as_double() const {
  if (is_float()) return std::get<double>(v_);
  return double(as_int());
}

const void* Value::identity() const {
  switch (type()) {
    case Type::List:
      return std::get<std::shared_ptr<ListObj>>(v_).get();
    case Type::Dict:
      return std::get<std::shared_ptr<DictObj>>(v_).get();
    case Type::Func:
      return std::get<std::shared_ptr<FuncObj>>(v_).get();
    default:
      return nullptr;
  }
}

bool Value::truthy() const {
  switch (type()) {
    case Type::Undefined:
    case Type::None:
      return false;
    case Type::Bool:
      return as_bool();
    case Type::Int:
      return as_int() != 0;
    case Type::Float:
      return as_double() != 0.0;
    case Type::String:
      return !as_string().empty();
    case Type::List:
      return is_generator() || !list().items.empty();
    case Type::Dict:
      return is_object() || dict().size() > 0;
    case Type::Func:
      return true;
  }
  return false;
}

std::string Value::type_name() const {
  switch (type()) {
    case Type::Undefined:
      return "Undefined";
    case Type::None:
      return "NoneType";
    case Type::Bool:
      return "bool";
    case Type::Int:
      return "int";
    case Type::Float:
      return "float";
    case Type::String:
      return "str";
    case Type::List:
      switch (list().view) {
        case View::Keys:
          return "dict_keys";
        case View::Values:
          return "dict_values";
        case View::Items:
          return "dict_items";
        case View::Generator:
          return "generator";
        case View::Range:
          return "range";
        case View::None:
          break;
      }
      return list().tuple ? "tuple" : "list";
    case Type::Dict:
      return is_namespace() ? "Namespace" : is_object() ? "LoopContext" : "dict";
    case Type::Func:
      return "function";
  }
  return "object";
}

void Value::write(std::string& out, bool as_repr, int depth) const {
  check_depth(depth);
  switch (type()) {
    case Type::Undefined:
      if (as_repr) out += "Undefined";
      return;
    case Type::None:
      out += "None";
      return;
    case Type::Bool:
      out += as_bool() ? "True" : "False";
      return;
    case Type::Int:
      out += std::to_string(as_int());
      return;
    case Type::Float:
      out += py::float_repr(as_double());
      return;
    case Type::String:
      out += as_repr ? py::str_repr(as_string()) : as_string();
      return;
    case Type::List: {
      const ListObj& l = list();
      if (l.view == View::Generator) {
        out += "<generator object>";  // CPython adds a name and an address
        return;
      }
      if (l.view == View::Range) {
        out += l.range_repr;
        return;
      }
      if (l.view != View::None) out += type_name() + "(";
      out += l.tuple ? '(' : '[';
      for (size_t i = 0; i < l.items.size(); ++i) {
        if (i) out += ", ";
        l.items[i].write(out, true, depth + 1);
      }
      if (l.tuple && l.items.size() == 1) out += ',';
      out += l.tuple ? ')' : ']';
      if (l.view != View::None) out += ')';
      return;
    }
    case Type::Dict: {
      if (is_object() && !is_namespace()) {  // <LoopContext 2/3>
        const Value* i = dict().get("index");
        const Value* n = dict().get("length");
        out += "<LoopContext " + (i ? i->str() : "?") + "/" + (n ? n->str() : "?") + ">";
        return;
      }
      if (is_namespace()) out += "<Namespace ";
      out += '{';
      bool first = true;
      for (const auto& [k, v] : dict().items()) {
        if (!first) out += ", ";
        first = false;
        k.write(out, true, depth + 1);
        out += ": ";
        v.write(out, true, depth + 1);
      }
      out += '}';
      if (is_namespace()) out += '>';
      return;
    }
    case Type::Func:
      out += "<function " + func().name + ">";
      return;
  }
}

std::string Value::str() const {
  if (is_string()) return as_string();
  std::string out;
  write(out, false, 0);
  return out;
}

std::string Value::repr() const {
  std::string out;
  write(out, true, 0);
  return out;
}

std::string DictObj::hash_key(const Value& k) {
  // Python hashes equal numbers equally (1, 1.0 and True are one key).
  switch (k.type()) {
    case Value::Type::String:
      return "s" + k.as_string();
    case Value::Type::None:
      return "n";
    case Value::Type::Bool:
    case Value::Type::Int:
      return "i" + std::to_string(k.as_int());
    case Value::Type::Float: {
      double d = k.as_double();
      if (std::floor(d) == d && std::fabs(d) < 9.2e18) return "i" + std::to_string(int64_t(d));
      return "f" + py::float_repr(d);
    }
    default:
      jfail("TypeError: unhashable type: '{}'", k.type_name());
  }
}

const Value* DictObj::get(const Value& key) const {
  if (!(key.is_string() || key.is_number() || key.is_none())) return nullptr;
  auto it = index_.find(hash_key(key));
  return it == index_.end() ? nullptr : &items_[it->second].second;
}

const Value* DictObj::get(std::string_view key) const {
  std::string h = "s";
  h += key;
  auto it = index_.find(h);
  return it == index_.end() ? nullptr : &items_[it->second].second;
}

void DictObj::clear() {
  items_.clear();
  index_.clear();
  depth = 1;
}

void DictObj::set(const Value& key, Value v) {
  int d = std::max(key.nesting(), v.nesting()) + 1;
  check_depth(d);
  depth = std::max(depth, d);
  auto [it, inserted] = index_.emplace(hash_key(key), items_.size());
  if (inserted)
    items_.emplace_back(key, std::move(v));
  else
    items_[it->second].second = std::move(v);
}

static bool equals_rec(const Value& a, const Value& b, int depth) {
  check_depth(depth);
  using T = Value::Type;
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_double() == b.as_double();
    return a.as_int() == b.as_int();
  }
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case T::Undefined:
    case T::None:
      return true;
    case T::String:
      return a.as_string() == b.as_string();
    case T::List: {
      if (a.is_generator() || b.is_generator()) return a.identity() == b.identity();
      const auto& x = a.list();
      const auto& y = b.list();
      if (x.tuple != y.tuple || x.view != y.view || x.items.size() != y.items.size()) return false;
      for (size_t i = 0; i < x.items.size(); ++i)
        if (!equals_rec(x.items[i], y.items[i], depth + 1)) return false;
      return true;
    }
    case T::Dict: {
      if (a.is_object() || b.is_object()) return a.identity() == b.identity();
      const auto& x = a.dict();
      const auto& y = b.dict();
      if (x.size() != y.size()) return false;
      for (const auto& [k, v] : x.items()) {
        const Value* o = y.get(k);
        if (!o || !equals_rec(v, *o, depth + 1)) return false;
      }
      return true;
    }
    default:
      return a.identity() == b.identity();
  }
}

bool equals(const Value& a, const Value& b) { return equals_rec(a, b, 0); }

int compare(const Value& a, const Value& b, const char* op) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) {
      double x = a.as_double(), y = b.as_double();
      return x < y ? -1 : x > y ? 1 : 0;
    }
    int64_t x = a.as_int(), y = b.as_int();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.is_string() && b.is_string()) {
    // UTF-8 byte order is code point order, which is what Python compares.
    int c = a.as_string().compare(b.as_string());
    return c < 0 ? -1 : c > 0 ? 1 : 0;
  }
  if (a.is_list() && b.is_list() && !a.is_view() && !b.is_view() && a.list().tuple == b.list().tuple) {
    const auto& x = a.list().items;
    const auto& y = b.list().items;
    for (size_t i = 0; i < x.size() && i < y.size(); ++i)
      if (!equals(x[i], y[i])) return compare(x[i], y[i], op);
    return x.size() < y.size() ? -1 : x.size() > y.size() ? 1 : 0;
  }
  jfail("TypeError: '{}' not supported between instances of '{}' and '{}'", op, a.type_name(), b.type_name());
}

namespace {

struct JsonWriter {
  const JsonOptions& opt;
  std::string item_sep, key_sep;
  std::string out;

  std::string key_text(const Value& k) {
    switch (k.type()) {
      case Value::Type::String:
        return k.as_string();
      case Value::Type::Bool:
        return k.as_bool() ? "true" : "false";
      case Value::Type::None:
        return "null";
      case Value::Type::Int:
        return std::to_string(k.as_int());
      case Value::Type::Float:
        return number_text(k.as_double());
      default:
        jfail("TypeError: keys must be str, int, float, bool or None, not {}", k.type_name());
    }
  }

  static std::string number_text(double d) {
    if (std::isnan(d)) return "NaN";
    if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
    return py::float_repr(d);
  }

  void newline(int level) {
    out += '\n';
    for (int i = 0; i < level; ++i) out += *opt.indent;
  }

  void write(const Value& v, int level) {
    check_depth(level);
    switch (v.type()) {
      case Value::Type::None:
        out += "null";
        return;
      case Value::Type::Bool:
        out += v.as_bool() ? "true" : "false";
        return;
      case Value::Type::Int:
        out += std::to_string(v.as_int());
        return;
      case Value::Type::Float:
        out += number_text(v.as_double());
        return;
      case Value::Type::String:
        out += py::json_quote(v.as_string(), opt.ensure_ascii);
        return;
      case Value::Type::List: {
        if (v.is_view()) break;
        const auto& items = v.list().items;
        if (items.empty()) {
          out += "[]";
          return;
        }
        out += '[';
        for (size_t i = 0; i < items.size(); ++i) {
          if (i) out += item_sep;
          if (opt.indent) newline(level + 1);
          write(items[i], level + 1);
        }
        if (opt.indent) newline(level);
        out += ']';
        return;
      }
      case Value::Type::Dict: {
        if (v.is_object()) break;
        std::vector<const std::pair<Value, Value>*> items;
        for (const auto& kv : v.dict().items()) items.push_back(&kv);
        if (items.empty()) {
          out += "{}";
          return;
        }
        if (opt.sort_keys)
          std::stable_sort(items.begin(), items.end(),
                           [](auto* a, auto* b) { return compare(a->first, b->first) < 0; });
        out += '{';
        for (size_t i = 0; i < items.size(); ++i) {
          if (i) out += item_sep;
          if (opt.indent) newline(level + 1);
          out += py::json_quote(key_text(items[i]->first), opt.ensure_ascii);
          out += key_sep;
          write(items[i]->second, level + 1);
        }
        if (opt.indent) newline(level);
        out += '}';
        return;
      }
      default:
        break;
    }
    jfail("TypeError: Object of type {} is not JSON serializable", v.type_name());
  }
};

}  // namespace

std::string to_json_text(const Value& v, const JsonOptions& opt) {
  // json.dumps' default separators depend on whether it indents.
  JsonWriter w{opt, opt.indent ? "," : ", ", ": ", {}};
  if (opt.separators) {
    w.item_sep = opt.separators->first;
    w.key_sep = opt.separators->second;
  }
  w.write(v, 0);
  return std::move(w.out);
}

nlohmann::ordered_json to_json(const Value& v) {
  switch (v.type()) {
    case Value::Type::None:
    case Value::Type::Undefined:
      return nullptr;
    case Value::Type::Bool:
      return v.as_bool();
    case Value::Type::Int:
      return v.as_int();
    case Value::Type::Float:
      return v.as_double();
    case Value::Type::String:
      return v.as_string();
    case Value::Type::List: {
      auto a = nlohmann::ordered_json::array();
      for (const auto& e : v.list().items) a.push_back(to_json(e));
      return a;
    }
    case Value::Type::Dict: {
      auto o = nlohmann::ordered_json::object();
      for (const auto& [k, e] : v.dict().items()) o[k.is_string() ? k.as_string() : k.str()] = to_json(e);
      return o;
    }
    case Value::Type::Func:
      return v.str();
  }
  return nullptr;
}

}  // namespace mimo::jinja
