// Operators, attribute/item access and slicing with Python's semantics.
#include <cmath>

#include "chat/jinja_error.h"
#include "chat/jinja_interp.h"
#include "chat/pystr.h"

namespace mimo::jinja {

namespace {

[[noreturn]] void overflow() {
  jfail("OverflowError: integer result does not fit in 64 bits (Python ints are unbounded; this engine's are not)");
}

// CPython's float_divmod: floor division and modulo with the sign of the divisor.
void float_divmod(double vx, double wx, double* floordiv, double* mod) {
  double m = std::fmod(vx, wx);
  double div = (vx - m) / wx;
  if (m != 0) {
    if ((wx < 0) != (m < 0)) {
      m += wx;
      div -= 1.0;
    }
  } else {
    m = std::copysign(0.0, wx);
  }
  double fd;
  if (div != 0) {
    fd = std::floor(div);
    if (div - fd > 0.5) fd += 1.0;
  } else {
    fd = std::copysign(0.0, vx / wx);
  }
  *floordiv = fd;
  *mod = m;
}

Value int_arith(const std::string& op, int64_t a, int64_t b) {
  int64_t r;
  if (op == "+") {
    if (__builtin_add_overflow(a, b, &r)) overflow();
    return Value(r);
  }
  if (op == "-") {
    if (__builtin_sub_overflow(a, b, &r)) overflow();
    return Value(r);
  }
  if (op == "*") {
    if (__builtin_mul_overflow(a, b, &r)) overflow();
    return Value(r);
  }
  if (op == "/") {
    if (b == 0) jfail("ZeroDivisionError: division by zero");
    return Value(double(a) / double(b));
  }
  if (op == "//" || op == "%") {
    if (b == 0) jfail("ZeroDivisionError: integer division or modulo by zero");
    if (a == INT64_MIN && b == -1) {
      if (op == "%") return Value(int64_t(0));
      overflow();
    }
    int64_t q = a / b, m = a % b;
    if (m != 0 && ((m < 0) != (b < 0))) {
      q -= 1;
      m += b;
    }
    return Value(op == "//" ? q : m);
  }
  if (op == "**") {
    if (b < 0) {
      if (a == 0) jfail("ZeroDivisionError: 0.0 cannot be raised to a negative power");
      return Value(std::pow(double(a), double(b)));
    }
    int64_t result = 1, base = a;
    while (b > 0) {
      if (b & 1)
        if (__builtin_mul_overflow(result, base, &result)) overflow();
      b >>= 1;
      if (b > 0 && __builtin_mul_overflow(base, base, &base)) overflow();
    }
    return Value(result);
  }
  jfail("unknown operator {}", op);
}

Value float_arith(const std::string& op, double a, double b) {
  if (op == "+") return Value(a + b);
  if (op == "-") return Value(a - b);
  if (op == "*") return Value(a * b);
  if (op == "/") {
    if (b == 0) jfail("ZeroDivisionError: float division by zero");
    return Value(a / b);
  }
  if (op == "//" || op == "%") {
    if (b == 0) jfail("ZeroDivisionError: {}", op == "//" ? "float floor division by zero" : "float modulo");
    double fd, m;
    float_divmod(a, b, &fd, &m);
    return Value(op == "//" ? fd : m);
  }
  if (op == "**") {
    if (a == 0 && b < 0) jfail("ZeroDivisionError: 0.0 cannot be raised to a negative power");
    if (a < 0 && std::floor(b) != b) jfail("ValueError: a negative number to a fractional power is complex");
    double r = std::pow(a, b);
    if (std::isinf(r) && std::isfinite(a) && std::isfinite(b))
      jfail("OverflowError: (34, 'Numerical result out of range')");
    return Value(r);
  }
  jfail("unknown operator {}", op);
}

}  // namespace

Value Interp::binary(const std::string& op, const Value& l, const Value& r) {
  if (op == "~") {
    // Concatenation converts with str(); Undefined is ''.
    std::string s = l.str();
    s += r.str();
    check_size(s.size());
    return Value(std::move(s));
  }
  if (l.is_undefined()) fail_undefined(l);
  if (r.is_undefined()) fail_undefined(r);
  if (l.is_number() && r.is_number()) {
    if (l.is_float() || r.is_float()) return float_arith(op, l.as_double(), r.as_double());
    return int_arith(op, l.as_int(), r.as_int());
  }
  if (op == "+") {
    if (l.is_string() && r.is_string()) {
      check_size(l.as_string().size() + r.as_string().size());
      return Value(l.as_string() + r.as_string());
    }
    if (l.is_list() && r.is_list() && !l.is_view() && !r.is_view() && l.list().tuple == r.list().tuple) {
      std::vector<Value> items = l.list().items;
      items.insert(items.end(), r.list().items.begin(), r.list().items.end());
      return Value::make_list(std::move(items), l.list().tuple);
    }
    if (l.is_string() || l.is_list())
      jfail("TypeError: can only concatenate {} (not \"{}\") to {}", l.type_name(), r.type_name(), l.type_name());
  }
  if (op == "*") {
    const Value* seq = nullptr;
    int64_t n = 0;
    if ((l.is_string() || (l.is_list() && !l.is_view())) && (r.is_int() || r.is_bool())) {
      seq = &l;
      n = r.as_int();
    } else if ((r.is_string() || (r.is_list() && !r.is_view())) && (l.is_int() || l.is_bool())) {
      seq = &r;
      n = l.as_int();
    }
    if (seq) {
      n = std::max<int64_t>(n, 0);
      if (seq->is_string()) {
        if (n > 0 && seq->as_string().size() > limits_.max_output_bytes / size_t(n))
          jfail("string repetition exceeds the limit of {} bytes", limits_.max_output_bytes);
        std::string out;
        for (int64_t i = 0; i < n; ++i) out += seq->as_string();
        return Value(std::move(out));
      }
      const auto& items = seq->list().items;
      if (n > 0 && items.size() > limits_.max_output_bytes / size_t(n)) jfail("list repetition is too large");
      std::vector<Value> out;
      for (int64_t i = 0; i < n; ++i) out.insert(out.end(), items.begin(), items.end());
      return Value::make_list(std::move(out), seq->list().tuple);
    }
  }
  if (op == "%" && l.is_string()) {
    std::string s = percent_format(l.as_string(), r);
    check_size(s.size());
    return Value(std::move(s));
  }
  jfail("TypeError: unsupported operand type(s) for {}: '{}' and '{}'", op, l.type_name(), r.type_name());
}

Value Interp::getattr(const Value& obj, const std::string& name) {
  if (obj.is_undefined()) fail_undefined(obj);
  if (obj.is_object()) {
    if (const Value* v = obj.dict().get(name)) return *v;
    return Value::undefined("'" + obj.type_name() + "' object has no attribute '" + name + "'");
  }
  // Attributes (methods) win over dict keys, as Python's getattr does.
  switch (method_kind(obj, name)) {
    case MethodKind::Safe: {
      Value self = obj;
      return Value::make_func(name, [this, self, name](CallArgs& a) { return call_method(*this, self, name, a); });
    }
    case MethodKind::Unsafe:
      return Value::undefined("access to attribute '" + name + "' of '" + obj.type_name() +
                              "' object is unsafe (transformers renders in an ImmutableSandboxedEnvironment)");
    case MethodKind::Unsupported:
      return Value::undefined("the " + obj.type_name() + " method '" + name + "' is not supported by this engine");
    case MethodKind::None:
      break;
  }
  if (obj.is_mapping())
    if (const Value* v = obj.dict().get(name)) return *v;
  if (obj.is_none()) return Value::undefined("'None' has no attribute '" + name + "'");
  return Value::undefined("'" + obj.type_name() + " object' has no attribute '" + name + "'");
}

Value Interp::getitem(const Value& obj, const Value& key) {
  if (obj.is_undefined()) fail_undefined(obj);
  if (obj.is_mapping() && (key.is_string() || key.is_number() || key.is_none())) {
    if (const Value* v = obj.dict().get(key)) return *v;
  }
  if ((obj.is_sequence_list() || obj.is_string()) && (key.is_int() || key.is_bool())) {
    int64_t i = key.as_int();
    if (obj.is_list()) {
      const auto& items = obj.list().items;
      int64_t n = int64_t(items.size());
      if (i < 0) i += n;
      if (i >= 0 && i < n) return items[size_t(i)];
    } else {
      std::u32string u = py::decode(obj.as_string());
      int64_t n = int64_t(u.size());
      if (i < 0) i += n;
      if (i >= 0 && i < n) return Value(py::encode(u.substr(size_t(i), 1)));
    }
    return Value::undefined("'" + obj.type_name() + " object' has no element " + std::to_string(key.as_int()));
  }
  // jinja2 falls back to attribute lookup for string subscripts.
  if (key.is_string()) return getattr(obj, key.as_string());
  return Value::undefined("'" + obj.type_name() + " object' has no element " + key.repr());
}

Value Interp::slice(const Value& obj, const Value& start, const Value& stop, const Value& step) {
  if (obj.is_undefined()) fail_undefined(obj);
  auto index = [](const Value& v) -> std::optional<int64_t> {
    if (v.is_none()) return std::nullopt;
    if (v.is_int() || v.is_bool()) return v.as_int();
    jfail("TypeError: slice indices must be integers or None");
  };
  int64_t st = index(step).value_or(1);
  if (st == 0) jfail("ValueError: slice step cannot be zero");
  if (!obj.is_sequence_list() && !obj.is_string())
    return Value::undefined("'" + obj.type_name() + " object' is not subscriptable");
  std::u32string u;
  int64_t n;
  if (obj.is_string()) {
    u = py::decode(obj.as_string());
    n = int64_t(u.size());
  } else {
    n = int64_t(obj.list().items.size());
  }
  // PySlice_AdjustIndices.
  auto adjust = [&](std::optional<int64_t> v, bool is_start) {
    if (!v) return is_start ? (st < 0 ? n - 1 : 0) : (st < 0 ? -1 : n);
    int64_t x = *v;
    if (x < 0) {
      x += n;
      if (x < 0) x = st < 0 ? -1 : 0;
    } else if (x >= n) {
      x = st < 0 ? n - 1 : n;
    }
    return x;
  };
  int64_t b = adjust(index(start), true), e = adjust(index(stop), false);
  std::vector<size_t> picks;
  for (int64_t i = b; st > 0 ? i < e : i > e; i += st) picks.push_back(size_t(i));
  if (obj.is_string()) {
    std::u32string out;
    for (size_t i : picks) out += u[i];
    return Value(py::encode(out));
  }
  std::vector<Value> out;
  for (size_t i : picks) out.push_back(obj.list().items[i]);
  return Value::make_list(std::move(out), obj.list().tuple);
}

}  // namespace mimo::jinja
