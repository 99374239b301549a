// jinja2's built-in filters, with transformers' tojson. Each one follows
// jinja2/filters.py, including how it treats Undefined (most string filters
// see '', `length` sees 0, `list` sees []) and which ones are lazy generators.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <unordered_map>
#include <unordered_set>

#include "chat/jinja_error.h"
#include "chat/jinja_interp.h"
#include "chat/pystr.h"

namespace mimo::jinja {

namespace {

using FilterFn = Value (*)(Interp&, const Value&, CallArgs&);

// make_attrgetter: "a.b.0" walks items, digits index lists.
Value attr_path(Interp& in, Value item, const Value& attribute) {
  if (attribute.is_int()) return in.getitem(item, attribute);
  for (const std::string& part : py::split(attribute.str(), std::string("."), -1)) {
    bool digits = !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit);
    item = in.getitem(item, digits ? Value(int64_t(std::stoll(part))) : Value(part));
  }
  return item;
}

Value generator(std::vector<Value> items) { return Value::make_view(std::move(items), View::Generator); }

// Runs a filter that is a generator function in jinja2: any error it raises
// is kept in the returned generator and surfaces only if that is iterated.
Value lazily(Value (*fn)(Interp&, const Value&, CallArgs&), Interp& in, const Value& v, CallArgs& args) {
  try {
    return fn(in, v, args);
  } catch (const TemplateError& e) {
    Value g = generator({});
    g.list().deferred_error = e.detail();
    return g;
  }
}

Value ignore_case(const Value& v) { return v.is_string() ? Value(py::lower(v.as_string())) : v; }

// The sort key of one item for sort/unique/min/max/dictsort.
Value sort_key(Interp& in, const Value& item, const Value& attribute, bool case_sensitive) {
  Value k = item;
  if (!attribute.is_none() && !attribute.is_undefined()) {
    if (attribute.is_string() && attribute.as_string().find(',') != std::string::npos) {
      std::vector<Value> parts;  // make_multi_attrgetter: "a,b" sorts by a then b
      for (const std::string& a : py::split(attribute.as_string(), std::string(","), -1))
        parts.push_back(case_sensitive ? attr_path(in, item, Value(a)) : ignore_case(attr_path(in, item, Value(a))));
      return Value::make_list(std::move(parts));
    }
    k = attr_path(in, item, attribute);
  }
  return case_sensitive ? k : ignore_case(k);
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// Python's int()/float() of a string, or nullopt where Python raises ValueError.
std::optional<double> parse_float(const std::string& raw) {
  std::string s = py::strip(raw, std::nullopt, true, true);
  std::string t;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '_' && i > 0 && i + 1 < s.size() && isdigit(s[i - 1]) && isdigit(s[i + 1])) continue;
    t += s[i];
  }
  if (t.empty() || t.find_first_of("xXpP") != std::string::npos) return std::nullopt;
  char* end = nullptr;
  double d = std::strtod(t.c_str(), &end);
  if (end != t.c_str() + t.size()) return std::nullopt;
  return d;
}

std::optional<int64_t> parse_int(const std::string& raw, int base) {
  std::string s = py::strip(raw, std::nullopt, true, true);
  std::string t;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '_' && i > 0 && i + 1 < s.size() && isalnum(s[i - 1]) && isalnum(s[i + 1])) continue;
    t += s[i];
  }
  if (t.empty()) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(t.c_str(), &end, base);
  if (end != t.c_str() + t.size() || isspace((unsigned char)t[0])) return std::nullopt;
  if (errno == ERANGE) jfail("integer {} does not fit in 64 bits", t);
  return int64_t(v);
}

Value f_default(Interp&, const Value& v, CallArgs& args) {
  ArgBinder a("default", args, {"default_value", "boolean"});
  if (v.is_undefined() || (a.flag(1) && !v.truthy())) return a.get_or(0, Value(""));
  return v;
}

Value f_tojson(Interp&, const Value& v, CallArgs& args) {
  // transformers: tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)
  ArgBinder a("tojson", args, {"ensure_ascii", "indent", "separators", "sort_keys"});
  JsonOptions o;
  o.ensure_ascii = a.flag(0);
  if (a.has(1) && !a.get(1).is_none()) {
    const Value& ind = a.get(1);
    if (ind.is_string())
      o.indent = ind.as_string();
    else if (ind.is_int() || ind.is_bool())
      o.indent = std::string(size_t(std::max<int64_t>(0, ind.as_int())), ' ');
    else
      jfail("TypeError: tojson indent must be an int or a string");
  }
  if (a.has(2) && !a.get(2).is_none()) {
    const Value& sep = a.get(2);
    if (!sep.is_list() || sep.list().items.size() != 2 || !sep.list().items[0].is_string() ||
        !sep.list().items[1].is_string())
      jfail("tojson separators must be a pair of strings");
    o.separators = std::make_pair(sep.list().items[0].as_string(), sep.list().items[1].as_string());
  }
  o.sort_keys = a.flag(3);
  return Value(to_json_text(v, o));
}

Value f_length(Interp&, const Value& v, CallArgs& args) {
  ArgBinder a("length", args, {});
  return Value(py_len(v));
}

Value f_first_last(Interp&, const Value& v, CallArgs& args, bool first) {
  ArgBinder a(first ? "first" : "last", args, {});
  if (!first && !((v.is_list() && !v.is_generator()) || v.is_string() || v.is_mapping() || v.is_undefined()))
    jfail("TypeError: '{}' object is not reversible", v.type_name());
  if (first && v.is_generator()) {  // next(iter(gen)) takes one item
    ListObj& l = v.list();
    if (!l.deferred_error.empty()) jfail("{}", l.deferred_error);
    if (l.cursor < l.items.size()) return l.items[l.cursor++];
    return Value::undefined("No first item, sequence was empty.");
  }
  std::vector<Value> items = iterate(v);
  if (items.empty())
    return Value::undefined(first ? "No first item, sequence was empty." : "No last item, sequence was empty.");
  return first ? items.front() : items.back();
}

Value f_join(Interp& in, const Value& v, CallArgs& args) {
  ArgBinder a("join", args, {"d", "attribute"});
  std::string sep = a.has(0) ? a.get(0).str() : "";
  std::string out;
  bool first = true;
  for (Value item : iterate(v)) {
    if (a.has(1) && !a.get(1).is_none()) item = attr_path(in, item, a.get(1));
    if (!first) out += sep;
    first = false;
    out += item.str();
    in.check_size(out.size());
  }
  return Value(std::move(out));
}

Value f_indent(Interp&, const Value& v, CallArgs& args) {
  ArgBinder a("indent", args, {"width", "first", "blank"});
  // jinja2 does `s += "\n"` first, so only strings are accepted.
  if (v.is_undefined()) fail_undefined(v);
  if (!v.is_string()) jfail("TypeError: unsupported operand type(s) for +=: '{}' and 'str'", v.type_name());
  std::string ind = "    ";
  if (a.has(0))
    ind =
        a.get(0).is_string() ? a.get(0).as_string() : std::string(size_t(std::max<int64_t>(0, a.get(0).as_int())), ' ');
  std::vector<std::string> lines = py::splitlines(v.str() + "\n", false);  // jinja2 appends "\n" first
  std::string rv;
  if (a.flag(2)) {
    for (size_t i = 0; i < lines.size(); ++i) rv += (i ? "\n" + ind : "") + lines[i];
  } else {
    rv = lines.empty() ? "" : lines[0];
    for (size_t i = 1; i < lines.size(); ++i) rv += "\n" + (lines[i].empty() ? "" : ind) + lines[i];
  }
  if (a.flag(1)) rv = ind + rv;
  return Value(std::move(rv));
}

Value f_title(Interp&, const Value& v, CallArgs& args) {
  ArgBinder a("title", args, {});
  // jinja2 capitalizes each piece of re.split(r"([-\s({\[<]+)", s).
  std::u32string u = py::decode(v.str());
  auto is_sep = [](char32_t c) {
    return c == U'-' || c == U'(' || c == U'{' || c == U'[' || c == U'<' || py::is_space(c);
  };
  std::string out;
  size_t i = 0;
  while (i < u.size()) {
    size_t j = i;
    bool sep = is_sep(u[i]);
    while (j < u.size() && is_sep(u[j]) == sep) ++j;
    out += py::upper(py::encode(u.substr(i, 1)));
    out += py::lower(py::encode(u.substr(i + 1, j - i - 1)));
    i = j;
  }
  return Value(std::move(out));
}

Value f_round(Interp&, const Value& v, CallArgs& args) {
  ArgBinder a("round", args, {"precision", "method"});
  int64_t prec = a.has(0) ? a.get(0).as_int() : 0;
  std::string method = a.has(1) ? a.get(1).str() : "common";
  if (!v.is_number()) jfail("TypeError: type {} doesn't define __round__ method", v.type_name());
  if (method == "common") {
    if (!v.is_float()) {  // round(int, n) stays an int
      int64_t i = v.as_int();
      if (prec >= 0) return Value(i);
      double p = std::pow(10.0, double(-prec));
      return Value(int64_t(std::nearbyint(double(i) / p) * p));
    }
    double x = v.as_double();
    if (!std::isfinite(x)) return Value(x);
    if (prec > 330) return Value(x);
    if (prec >= 0) {
      // printf rounds the exact binary value half-to-even, like CPython's round().
      char buf[512];
      std::snprintf(buf, sizeof buf, "%.*f", int(prec), x);
      return Value(std::strtod(buf, nullptr));
    }
    double p = std::pow(10.0, double(-prec));
    return Value(std::nearbyint(x / p) * p);
  }
  if (method != "ceil" && method != "floor") jfail("FilterArgumentError: method must be common, ceil or floor");
  double p = std::pow(10.0, double(prec));
  double x = v.as_double() * p;
  return Value((method == "ceil" ? std::ceil(x) : std::floor(x)) / p);
}

Value f_int(Interp&, const Value& v, CallArgs& args) {
  ArgBinder a("int", args, {"default", "base"});
  Value dflt = a.get_or(0, Value(int64_t(0)));
  if (v.is_undefined()) fail_undefined(v);  // int(Undefined) raises, not TypeError
  if (v.is_int() || v.is_bool()) return Value(v.as_int());
  if (v.is_float()) {
    double d = v.as_double();
    if (std::isnan(d)) return dflt;
    if (std::isinf(d)) jfail("OverflowError: cannot convert float infinity to integer");
    if (std::fabs(d) >= 9.2e18) jfail("integer {} does not fit in 64 bits", py::float_repr(d));
    return Value(int64_t(d));
  }
  if (v.is_string()) {
    if (auto i = parse_int(v.as_string(), a.has(1) ? int(a.get(1).as_int()) : 10)) return Value(*i);
    if (auto d = parse_float(v.as_string()); d && std::isfinite(*d)) return Value(int64_t(*d));
  }
  return dflt;
}

Value f_float(Interp&, const Value& v, CallArgs& args) {
  ArgBinder a("float", args, {"default"});
  if (v.is_undefined()) fail_undefined(v);
  if (v.is_number()) return Value(v.as_double());
  if (v.is_string())
    if (auto d = parse_float(v.as_string())) return Value(*d);
  return a.get_or(0, Value(0.0));
}

Value f_items(Interp&, const Value& v, CallArgs& args) {
  ArgBinder a("items", args, {});
  if (v.is_undefined()) return generator({});
  if (!v.is_mapping()) jfail("TypeError: Can only get item pairs from a mapping.");
  std::vector<Value> out;
  for (const auto& [k, x] : v.dict().items()) out.push_back(Value::make_list({k, x}, true));
  return generator(std::move(out));
}

Value f_map(Interp& in, const Value& v, CallArgs& args) {
  std::vector<Value> out;
  if (args.pos.empty()) {
    ArgBinder a("map", args, {"attribute", "default"}, 1);
    for (const Value& item : iterate(v)) {
      Value r = attr_path(in, item, a.get(0));
      out.push_back(r.is_undefined() && a.has(1) ? a.get(1) : r);
    }
  } else {
    if (!args.pos[0].is_string()) jfail("map() needs a filter name or attribute=");
    std::string name = args.pos[0].as_string();
    CallArgs rest{std::vector<Value>(args.pos.begin() + 1, args.pos.end()), args.kw};
    for (const Value& item : iterate(v)) {
      CallArgs call = rest;
      out.push_back(in.apply_filter(name, item, call));
    }
  }
  return generator(std::move(out));
}

// select/reject/selectattr/rejectattr share jinja2's prepare_select_or_reject.
Value select_impl(Interp& in, const Value& v, CallArgs& args, bool keep_if, bool by_attr) {
  size_t off = by_attr ? 1 : 0;
  if (by_attr && args.pos.empty()) jfail("selectattr/rejectattr need an attribute name");
  std::vector<Value> out;
  for (const Value& item : iterate(v)) {
    Value x = by_attr ? attr_path(in, item, args.pos[0]) : item;
    bool r;
    if (args.pos.size() > off) {
      CallArgs targs{std::vector<Value>(args.pos.begin() + long(off) + 1, args.pos.end()), args.kw};
      r = in.apply_test(args.pos[off].str(), x, targs);
    } else {
      r = x.truthy();
    }
    if (r == keep_if) out.push_back(item);
  }
  return generator(std::move(out));
}

Value f_select(Interp& in, const Value& v, CallArgs& a) { return select_impl(in, v, a, true, false); }
Value f_reject(Interp& in, const Value& v, CallArgs& a) { return select_impl(in, v, a, false, false); }
Value f_selectattr(Interp& in, const Value& v, CallArgs& a) { return select_impl(in, v, a, true, true); }
Value f_rejectattr(Interp& in, const Value& v, CallArgs& a) { return select_impl(in, v, a, false, true); }

Value f_sort(Interp& in, const Value& v, CallArgs& args) {
  ArgBinder a("sort", args, {"reverse", "case_sensitive", "attribute"});
  bool reverse = a.flag(0), cs = a.flag(1);
  std::vector<Value> items = iterate(v);
  std::vector<std::pair<Value, size_t>> keyed;
  for (size_t i = 0; i < items.size(); ++i)
    keyed.emplace_back(sort_key(in, items[i], a.get_or(2, Value::none()), cs), i);
  // Stable both ways, like sorted(..., reverse=True).
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& x, const auto& y) {
    return reverse ? compare(y.first, x.first) < 0 : compare(x.first, y.first) < 0;
  });
  std::vector<Value> out;
  for (const auto& [k, i] : keyed) out.push_back(items[i]);
  return Value::make_list(std::move(out));
}

Value f_dictsort(Interp&, const Value& v, CallArgs& args) {
  ArgBinder a("dictsort", args, {"case_sensitive", "by", "reverse"});
  if (v.is_undefined()) fail_undefined(v);
  if (!v.is_mapping()) jfail("AttributeError: '{}' object has no attribute 'items'", v.type_name());
  std::string by = a.has(1) ? a.get(1).str() : "key";
  if (by != "key" && by != "value") jfail("FilterArgumentError: You can only sort by either \"key\" or \"value\"");
  size_t pos = by == "key" ? 0 : 1;
  bool cs = a.flag(0), reverse = a.flag(2);
  std::vector<std::pair<Value, Value>> items = v.dict().items();
  std::stable_sort(items.begin(), items.end(), [&](const auto& x, const auto& y) {
    Value kx = pos ? x.second : x.first, ky = pos ? y.second : y.first;
    if (!cs) {
      kx = ignore_case(kx);
      ky = ignore_case(ky);
    }
    return reverse ? compare(ky, kx) < 0 : compare(kx, ky) < 0;
  });
  std::vector<Value> out;
  for (auto& [k, x] : items) out.push_back(Value::make_list({k, x}, true));
  return Value::make_list(std::move(out));
}

Value f_unique(Interp& in, const Value& v, CallArgs& args) {
  ArgBinder a("unique", args, {"case_sensitive", "attribute"});
  Value seen = Value::make_dict();
  std::vector<Value> out;
  for (const Value& item : iterate(v)) {
    Value k = sort_key(in, item, a.get_or(1, Value::none()), a.flag(0));
    if (seen.dict().get(k)) continue;
    seen.dict().set(k, Value(true));
    out.push_back(item);
  }
  return generator(std::move(out));
}

Value min_max(Interp& in, const Value& v, CallArgs& args, bool want_max) {
  ArgBinder a(want_max ? "max" : "min", args, {"case_sensitive", "attribute"});
  std::vector<Value> items = iterate(v);
  if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  size_t best = 0;
  Value best_key = sort_key(in, items[0], a.get_or(1, Value::none()), a.flag(0));
  for (size_t i = 1; i < items.size(); ++i) {
    Value k = sort_key(in, items[i], a.get_or(1, Value::none()), a.flag(0));
    int c = compare(k, best_key);
    if (want_max ? c > 0 : c < 0) {
      best = i;
      best_key = k;
    }
  }
  return items[best];
}

Value f_sum(Interp& in, const Value& v, CallArgs& args) {
  ArgBinder a("sum", args, {"attribute", "start"});
  Value total = a.get_or(1, Value(int64_t(0)));
  for (Value item : iterate(v)) {
    if (a.has(0) && !a.get(0).is_none()) item = attr_path(in, item, a.get(0));
    total = in.binary("+", total, item);
  }
  return total;
}

Value f_batch(Interp&, const Value& v, CallArgs& args) {
  ArgBinder a("batch", args, {"linecount", "fill_with"}, 1);
  int64_t n = a.get(0).as_int();
  if (n <= 0) jfail("batch size must be positive");
  std::vector<Value> out, cur;
  for (const Value& item : iterate(v)) {
    if (int64_t(cur.size()) == n) {
      out.push_back(Value::make_list(std::move(cur)));
      cur.clear();
    }
    cur.push_back(item);
  }
  if (!cur.empty()) {
    if (a.has(1) && !a.get(1).is_none())
      while (int64_t(cur.size()) < n) cur.push_back(a.get(1));
    out.push_back(Value::make_list(std::move(cur)));
  }
  return generator(std::move(out));
}

Value f_reverse(Interp&, const Value& v, CallArgs& args) {
  ArgBinder a("reverse", args, {});
  if (v.is_string()) {
    std::u32string u = py::decode(v.as_string());
    std::reverse(u.begin(), u.end());
    return Value(py::encode(u));
  }
  // reversed(seq) is a one-shot iterator; generators and Undefined, which
  // reversed() rejects, become a reversed list instead (jinja2's fallback).
  // Undefined has __len__ (0) and __getitem__, so reversed() accepts it too.
  bool reversible = (v.is_list() && !v.is_generator()) || v.is_mapping() || v.is_undefined();
  std::vector<Value> items = iterate(v);
  std::reverse(items.begin(), items.end());
  return reversible ? generator(std::move(items)) : Value::make_list(std::move(items));
}

Value f_attr(Interp& in, const Value& v, CallArgs& args) {
  ArgBinder a("attr", args, {"name"}, 1);
  std::string name = a.get(0).str();
  // Attributes only: dict keys are not attributes in Python.
  if (v.is_mapping() && method_kind(v, name) == MethodKind::None)
    return Value::undefined("'dict object' has no attribute '" + name + "'");
  return in.getattr(v, name);
}

Value str_filter(const char* name, const Value& v, CallArgs& args) {
  std::string n = name;
  if (n == "trim") {
    ArgBinder a("trim", args, {"chars"});
    std::optional<std::string> chars;
    if (a.has(0) && !a.get(0).is_none()) chars = a.get(0).str();
    return Value(py::strip(v.str(), chars, true, true));
  }
  if (n == "replace") {
    ArgBinder a("replace", args, {"old", "new", "count"}, 2);
    int64_t count = a.has(2) && !a.get(2).is_none() ? a.get(2).as_int() : -1;
    return Value(py::replace(v.str(), a.get(0).str(), a.get(1).str(), count));
  }
  if (n == "center") {
    ArgBinder a("center", args, {"width"});
    std::string s = v.str();
    int64_t width = a.has(0) ? a.get(0).as_int() : 80;
    int64_t len = int64_t(py::length(s));
    if (width <= len) return Value(s);
    int64_t marg = width - len, left = marg / 2 + (marg & width & 1);
    return Value(std::string(size_t(left), ' ') + s + std::string(size_t(marg - left), ' '));
  }
  ArgBinder a(name, args, {});
  std::string s = v.str();
  if (n == "upper") return Value(py::upper(s));
  if (n == "lower") return Value(py::lower(s));
  if (n == "capitalize") return Value(py::capitalize(s));
  if (n == "string") return Value(s);
  if (n == "safe") return Value(s);
  if (n == "escape" || n == "e") return Value(html_escape(s));
  if (n == "wordcount") return Value(py::word_count(s));
  jfail("unknown string filter {}", n);
}

#define STR_FILTER(n)                                                           \
  {                                                                             \
    n, [](Interp&, const Value& v, CallArgs& a) { return str_filter(n, v, a); } \
  }

const std::unordered_map<std::string, FilterFn>& filter_table() {
  static const std::unordered_map<std::string, FilterFn> t = {
      {"default", f_default},
      {"d", f_default},
      {"tojson", f_tojson},
      {"length", f_length},
      {"count", f_length},
      {"first", [](Interp& in, const Value& v, CallArgs& a) { return f_first_last(in, v, a, true); }},
      {"last", [](Interp& in, const Value& v, CallArgs& a) { return f_first_last(in, v, a, false); }},
      {"join", f_join},
      {"indent", f_indent},
      {"title", f_title},
      {"round", f_round},
      {"int", f_int},
      {"float", f_float},
      {"items", [](Interp& in, const Value& v, CallArgs& a) { return lazily(f_items, in, v, a); }},
      {"map", [](Interp& in, const Value& v, CallArgs& a) { return lazily(f_map, in, v, a); }},
      {"select", [](Interp& in, const Value& v, CallArgs& a) { return lazily(f_select, in, v, a); }},
      {"reject", [](Interp& in, const Value& v, CallArgs& a) { return lazily(f_reject, in, v, a); }},
      {"selectattr", [](Interp& in, const Value& v, CallArgs& a) { return lazily(f_selectattr, in, v, a); }},
      {"rejectattr", [](Interp& in, const Value& v, CallArgs& a) { return lazily(f_rejectattr, in, v, a); }},
      {"sort", f_sort},
      {"dictsort", f_dictsort},
      {"unique", [](Interp& in, const Value& v, CallArgs& a) { return lazily(f_unique, in, v, a); }},
      {"min", [](Interp& in, const Value& v, CallArgs& a) { return min_max(in, v, a, false); }},
      {"max", [](Interp& in, const Value& v, CallArgs& a) { return min_max(in, v, a, true); }},
      {"sum", f_sum},
      {"batch", [](Interp& in, const Value& v, CallArgs& a) { return lazily(f_batch, in, v, a); }},
      {"reverse", f_reverse},
      {"attr", f_attr},
      {"format",
       [](Interp&, const Value& v, CallArgs& args) {
         // jinja2: soft_str(value) % (kwargs or args)
         if (!args.pos.empty() && !args.kw.empty())
           jfail("FilterArgumentError: can't handle positional and keyword arguments at the same time");
         if (!args.kw.empty()) {
           Value d = Value::make_dict();
           for (const auto& [k, x] : args.kw) d.dict().set(Value(k), x);
           return Value(percent_format(v.str(), d));
         }
         return Value(percent_format(v.str(), Value::make_list(args.pos, true)));
       }},
      {"list",
       [](Interp&, const Value& v, CallArgs& args) {
         ArgBinder a("list", args, {});
         return Value::make_list(iterate(v));
       }},
      {"abs",
       [](Interp&, const Value& v, CallArgs& args) {
         ArgBinder a("abs", args, {});
         if (v.is_float()) return Value(std::fabs(v.as_double()));
         if (!v.is_number()) jfail("TypeError: bad operand type for abs(): '{}'", v.type_name());
         if (v.as_int() == INT64_MIN) jfail("integer overflow");
         return Value(std::abs(v.as_int()));
       }},
      STR_FILTER("trim"),
      STR_FILTER("replace"),
      STR_FILTER("center"),
      STR_FILTER("upper"),
      STR_FILTER("lower"),
      STR_FILTER("capitalize"),
      STR_FILTER("string"),
      STR_FILTER("safe"),
      STR_FILTER("escape"),
      STR_FILTER("e"),
      STR_FILTER("wordcount"),
  };
  return t;
}

// jinja2 built-ins deliberately left out: an error names them precisely.
const std::unordered_set<std::string> kUnsupportedFilters = {"groupby",   "pprint",   "random",         "slice",
                                                             "striptags", "truncate", "urlencode",      "urlize",
                                                             "wordwrap",  "xmlattr",  "filesizeformat", "forceescape"};

}  // namespace

bool Interp::has_filter(const std::string& name) const { return filter_table().count(name) > 0; }

Value Interp::apply_filter(const std::string& name, const Value& v, CallArgs& args) {
  step();
  auto it = filter_table().find(name);
  if (it == filter_table().end()) {
    if (kUnsupportedFilters.count(name)) jfail("the '{}' filter is not supported by this engine", name);
    jfail("no filter named '{}'", name);
  }
  return it->second(*this, v, args);
}

}  // namespace mimo::jinja
