// Methods on str/dict/list values and the global functions a chat template
// can call (jinja2's defaults plus transformers' raise_exception and
// strftime_now).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <unordered_set>

#include "chat/jinja_error.h"
#include "chat/jinja_interp.h"
#include "chat/pystr.h"

namespace mimo::jinja {

namespace {

using Names = std::unordered_set<std::string>;

// str is immutable, so the sandbox allows all of its methods; these are the
// ones implemented. The rest are named so the error says "not supported"
// rather than pretending Python lacks them.
const Names kStrMethods = {
    "strip",        "lstrip",       "rstrip",     "split",      "rsplit",  "splitlines", "upper",   "lower",
    "title",        "capitalize",   "startswith", "endswith",   "replace", "find",       "rfind",   "index",
    "rindex",       "count",        "join",       "format",     "isspace", "islower",    "isupper", "isascii",
    "removeprefix", "removesuffix", "partition",  "rpartition", "ljust",   "rjust",      "center"};
const Names kStrUnsupported = {"casefold",  "swapcase",     "isdigit",     "isalpha", "isalnum",    "isdecimal",
                               "isnumeric", "isidentifier", "isprintable", "istitle", "expandtabs", "encode",
                               "translate", "maketrans",    "format_map",  "zfill"};
const Names kDictMethods = {"items", "keys", "values", "get", "copy"};
const Names kDictMutators = {"clear", "pop", "popitem", "setdefault", "update"};
const Names kListMethods = {"index", "count", "copy"};
const Names kListMutators = {"append", "clear", "extend", "insert", "pop", "remove", "reverse", "sort"};

std::optional<std::string> opt_str(const ArgBinder& a, size_t i, const char* what) {
  if (!a.has(i) || a.get(i).is_none()) return std::nullopt;
  if (!a.get(i).is_string()) jfail("TypeError: {} must be None or str, not {}", what, a.get(i).type_name());
  return a.get(i).as_string();
}

std::optional<int64_t> opt_int(const ArgBinder& a, size_t i) {
  if (!a.has(i) || a.get(i).is_none()) return std::nullopt;
  if (!a.get(i).is_int() && !a.get(i).is_bool())
    jfail("TypeError: '{}' object cannot be interpreted as an integer", a.get(i).type_name());
  return a.get(i).as_int();
}

const std::string& req_str(const ArgBinder& a, size_t i, const char* fname) {
  if (!a.get(i).is_string()) jfail("TypeError: {}() argument must be str, not {}", fname, a.get(i).type_name());
  return a.get(i).as_string();
}

// s[start:end] in code points, for startswith/endswith with bounds.
std::string substr_cp(const std::string& s, std::optional<int64_t> start, std::optional<int64_t> end) {
  if (!start && !end) return s;
  std::u32string u = py::decode(s);
  int64_t n = int64_t(u.size());
  int64_t b = start.value_or(0), e = end.value_or(n);
  if (b < 0) b = std::max<int64_t>(0, b + n);
  if (e < 0) e = std::max<int64_t>(0, e + n);
  b = std::min(b, n);
  e = std::min(e, n);
  if (e <= b) return "";
  return py::encode(u.substr(size_t(b), size_t(e - b)));
}

bool affix_match(const std::string& s, const Value& affix, bool prefix, const char* fname) {
  auto one = [&](const Value& v) {
    if (!v.is_string()) jfail("TypeError: {} first arg must be str or a tuple of str, not {}", fname, v.type_name());
    const std::string& a = v.as_string();
    if (a.size() > s.size()) return false;
    return prefix ? s.compare(0, a.size(), a) == 0 : s.compare(s.size() - a.size(), a.size(), a) == 0;
  };
  if (affix.is_list() && affix.list().tuple) {
    for (const auto& v : affix.list().items)
      if (one(v)) return true;
    return false;
  }
  return one(affix);
}

std::string pad(const std::string& s, int64_t width, const std::string& fill, int align) {
  int64_t len = int64_t(py::length(s));
  if (width <= len) return s;
  int64_t marg = width - len, left = 0;
  if (align < 0)
    left = 0;
  else if (align > 0)
    left = marg;
  else
    left = marg / 2 + (marg & width & 1);  // CPython's str.center rounding
  std::string out;
  for (int64_t i = 0; i < left; ++i) out += fill;
  out += s;
  for (int64_t i = 0; i < marg - left; ++i) out += fill;
  return out;
}

// str.format with auto/manual indexes, names, .attr and [key] lookups and
// !r/!s conversions. Format specs (":>10") are refused rather than guessed.
Value str_format(Interp& in, const std::string& fmt_s, CallArgs& args) {
  std::string out;
  size_t auto_idx = 0;
  for (size_t i = 0; i < fmt_s.size(); ++i) {
    char c = fmt_s[i];
    if (c == '}') {
      if (i + 1 < fmt_s.size() && fmt_s[i + 1] == '}') {
        out += '}';
        ++i;
        continue;
      }
      jfail("ValueError: Single '}}' encountered in format string");
    }
    if (c != '{') {
      out += c;
      continue;
    }
    if (i + 1 < fmt_s.size() && fmt_s[i + 1] == '{') {
      out += '{';
      ++i;
      continue;
    }
    size_t close = fmt_s.find('}', i);
    if (close == std::string::npos) jfail("ValueError: Single '{{' encountered in format string");
    std::string field = fmt_s.substr(i + 1, close - i - 1);
    i = close;
    if (field.find('{') != std::string::npos) jfail("nested replacement fields in format() are not supported");
    std::string spec, conv;
    if (size_t colon = field.find(':'); colon != std::string::npos) {
      spec = field.substr(colon + 1);
      field.resize(colon);
    }
    if (size_t bang = field.find('!'); bang != std::string::npos) {
      conv = field.substr(bang + 1);
      field.resize(bang);
    }
    if (!spec.empty()) jfail("format specs ('{}') in str.format are not supported", spec);
    size_t name_end = std::min(field.find('.'), field.find('['));
    std::string head = field.substr(0, name_end);
    Value v;
    if (head.empty() || std::all_of(head.begin(), head.end(), ::isdigit)) {
      size_t idx = head.empty() ? auto_idx++ : size_t(std::stoul(head));
      if (idx >= args.pos.size()) jfail("IndexError: Replacement index {} out of range for positional args tuple", idx);
      v = args.pos[idx];
    } else {
      bool found = false;
      for (const auto& [k, kv] : args.kw)
        if (k == head) {
          v = kv;
          found = true;
        }
      if (!found) jfail("KeyError: '{}'", head);
    }
    for (size_t p = name_end; p < field.size();) {
      if (field[p] == '.') {
        size_t e = std::min(field.find('.', p + 1), field.find('[', p + 1));
        v = in.getattr(v, field.substr(p + 1, e - p - 1));
        p = e;
      } else {
        size_t e = field.find(']', p);
        if (e == std::string::npos) jfail("ValueError: Missing ']' in format string");
        std::string key = field.substr(p + 1, e - p - 1);
        bool numeric = !key.empty() && std::all_of(key.begin(), key.end(), ::isdigit);
        v = in.getitem(v, numeric ? Value(int64_t(std::stoll(key))) : Value(key));
        p = e + 1;
      }
    }
    if (conv == "r")
      out += v.repr();
    else if (conv.empty() || conv == "s")
      out += v.str();
    else
      jfail("ValueError: Unknown conversion specifier {}", conv);
    in.check_size(out.size());
  }
  return Value(std::move(out));
}

// One %-conversion of Python's printf-style formatting through C's printf,
// whose output matches Python's for these conversions and flags.
std::string format_one(char conv, const std::string& flags, int width, int prec, const Value& v) {
  auto cfmt = [&](const char* len_mod, char c) {
    std::string f = "%" + flags;
    if (width >= 0) f += std::to_string(width);
    if (prec >= 0) f += "." + std::to_string(prec);
    return f + len_mod + c;
  };
  char buf[512];
  switch (conv) {
    case 's':
    case 'r':
    case 'a': {
      std::string text = conv == 's' ? v.str() : v.repr();
      if (prec >= 0) text = py::encode(py::decode(text).substr(0, size_t(prec)));
      int64_t pad_n = width - int64_t(py::length(text));
      if (pad_n <= 0) return text;
      return flags.find('-') != std::string::npos ? text + std::string(size_t(pad_n), ' ')
                                                  : std::string(size_t(pad_n), ' ') + text;
    }
    case 'd':
    case 'i':
    case 'u':
    case 'x':
    case 'X':
    case 'o': {
      if (!v.is_number()) jfail("TypeError: %{} format: a real number is required, not {}", conv, v.type_name());
      if (v.is_float() && conv != 'd' && conv != 'i' && conv != 'u')
        jfail("TypeError: %{} format: an integer is required, not float", conv);
      long long i = v.is_float() ? (long long)v.as_double() : (long long)v.as_int();
      char c = conv == 'i' || conv == 'u' ? 'd' : conv;
      std::snprintf(buf, sizeof buf, cfmt("ll", c).c_str(), i);
      std::string out = buf;
      // Python's alternate octal form is 0o17, C's is 017.
      if (c == 'o' && flags.find('#') != std::string::npos) {
        size_t z = out.find_first_of("0");
        if (z != std::string::npos) out.insert(z + 1, "o");
      }
      return out;
    }
    case 'e':
    case 'E':
    case 'f':
    case 'F':
    case 'g':
    case 'G':
      if (!v.is_number()) jfail("TypeError: must be real number, not {}", v.type_name());
      std::snprintf(buf, sizeof buf, cfmt("", conv).c_str(), v.as_double());
      return buf;
    case 'c':
      if (v.is_string() && py::length(v.as_string()) == 1) return v.as_string();
      if (v.is_int()) return py::encode(std::u32string(1, char32_t(v.as_int())));
      jfail("TypeError: %c requires int or char");
    default:
      jfail("ValueError: unsupported format character '{}'", conv);
  }
}

}  // namespace

std::string percent_format(const std::string& fmt_s, const Value& args) {
  // A tuple supplies the arguments; a dict serves %(name)s; anything else is one argument.
  std::vector<Value> pos;
  bool is_tuple = args.is_list() && args.list().tuple;
  if (is_tuple)
    pos = args.list().items;
  else
    pos.push_back(args);
  size_t next = 0;
  bool used_mapping = false;
  std::string out;
  auto take = [&]() -> const Value& {
    if (next >= pos.size()) jfail("TypeError: not enough arguments for format string");
    return pos[next++];
  };
  for (size_t i = 0; i < fmt_s.size(); ++i) {
    if (fmt_s[i] != '%') {
      out += fmt_s[i];
      continue;
    }
    if (++i >= fmt_s.size()) jfail("ValueError: incomplete format");
    const Value* mapped = nullptr;
    if (fmt_s[i] == '(') {
      size_t close = fmt_s.find(')', i);
      if (close == std::string::npos) jfail("ValueError: incomplete format key");
      if (!args.is_mapping()) jfail("TypeError: format requires a mapping");
      mapped = args.dict().get(fmt_s.substr(i + 1, close - i - 1));
      if (!mapped) jfail("KeyError: '{}'", fmt_s.substr(i + 1, close - i - 1));
      used_mapping = true;
      i = close + 1;
    }
    std::string flags;
    while (i < fmt_s.size() && std::string_view("-+ #0").find(fmt_s[i]) != std::string_view::npos) flags += fmt_s[i++];
    auto number = [&]() {
      if (i < fmt_s.size() && fmt_s[i] == '*') {
        ++i;
        const Value& w = take();
        if (!w.is_int()) jfail("TypeError: * wants int");
        return int(w.as_int());
      }
      int n = -1;
      while (i < fmt_s.size() && isdigit((unsigned char)fmt_s[i])) n = std::max(n, 0) * 10 + (fmt_s[i++] - '0');
      return n;
    };
    int width = number(), prec = -1;
    if (i < fmt_s.size() && fmt_s[i] == '.') {
      ++i;
      prec = std::max(number(), 0);
    }
    while (i < fmt_s.size() && (fmt_s[i] == 'h' || fmt_s[i] == 'l' || fmt_s[i] == 'L')) ++i;
    if (i >= fmt_s.size()) jfail("ValueError: incomplete format");
    if (fmt_s[i] == '%') {
      out += '%';
      continue;
    }
    out += format_one(fmt_s[i], flags, std::min(width, 4096), std::min(prec, 4096), mapped ? *mapped : take());
  }
  // CPython only checks for unused arguments when they are a tuple or a
  // scalar; anything subscriptable (list, dict) is taken as a mapping.
  bool mapping_like = !is_tuple && (args.is_list() || args.is_dict());
  if (!used_mapping && !mapping_like && next < pos.size())
    jfail("TypeError: not all arguments converted during string formatting");
  return out;
}

namespace {

Value string_method(Interp& in, const std::string& s, const std::string& name, CallArgs& args) {
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    ArgBinder a(name, args, {"chars"});
    return Value(py::strip(s, opt_str(a, 0, "strip arg"), name != "rstrip", name != "lstrip"));
  }
  if (name == "split" || name == "rsplit") {
    ArgBinder a(name, args, {"sep", "maxsplit"});
    auto sep = opt_str(a, 0, "sep");
    int64_t maxsplit = opt_int(a, 1).value_or(-1);
    std::vector<Value> out;
    for (auto& p : name == "split" ? py::split(s, sep, maxsplit) : py::rsplit(s, sep, maxsplit))
      out.emplace_back(std::move(p));
    return Value::make_list(std::move(out));
  }
  if (name == "splitlines") {
    ArgBinder a(name, args, {"keepends"});
    std::vector<Value> out;
    for (auto& p : py::splitlines(s, a.flag(0))) out.emplace_back(std::move(p));
    return Value::make_list(std::move(out));
  }
  if (name == "upper" || name == "lower" || name == "title" || name == "capitalize" || name == "isspace" ||
      name == "islower" || name == "isupper" || name == "isascii") {
    ArgBinder a(name, args, {});
    if (name == "upper") return Value(py::upper(s));
    if (name == "lower") return Value(py::lower(s));
    if (name == "title") return Value(py::title(s));
    if (name == "capitalize") return Value(py::capitalize(s));
    if (name == "islower") return Value(py::is_lower(s));
    if (name == "isupper") return Value(py::is_upper(s));
    if (name == "isascii")
      return Value(std::all_of(s.begin(), s.end(), [](char c) { return (unsigned char)c < 0x80; }));
    std::u32string u = py::decode(s);
    return Value(!u.empty() && std::all_of(u.begin(), u.end(), py::is_space));
  }
  if (name == "startswith" || name == "endswith") {
    ArgBinder a(name, args, {"prefix", "start", "end"}, 1);
    std::string sub = substr_cp(s, opt_int(a, 1), opt_int(a, 2));
    return Value(affix_match(sub, a.get(0), name == "startswith", name.c_str()));
  }
  if (name == "replace") {
    ArgBinder a(name, args, {"old", "new", "count"}, 2);
    return Value(py::replace(s, req_str(a, 0, "replace"), req_str(a, 1, "replace"), opt_int(a, 2).value_or(-1)));
  }
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex" || name == "count") {
    ArgBinder a(name, args, {"sub", "start", "end"}, 1);
    const std::string& sub = req_str(a, 0, name.c_str());
    if (name == "count") return Value(py::count(s, sub, opt_int(a, 1), opt_int(a, 2)));
    int64_t r = py::find(s, sub, opt_int(a, 1), opt_int(a, 2), name[0] == 'r');
    if (r < 0 && name.find("index") != std::string::npos) jfail("ValueError: substring not found");
    return Value(r);
  }
  if (name == "join") {
    ArgBinder a(name, args, {"iterable"}, 1);
    std::string out;
    size_t i = 0;
    for (const auto& v : iterate(a.get(0))) {
      if (!v.is_string()) jfail("TypeError: sequence item {}: expected str instance, {} found", i, v.type_name());
      if (i++) out += s;
      out += v.as_string();
      in.check_size(out.size());
    }
    return Value(std::move(out));
  }
  if (name == "format") return str_format(in, s, args);
  if (name == "removeprefix" || name == "removesuffix") {
    ArgBinder a(name, args, {"affix"}, 1);
    const std::string& x = req_str(a, 0, name.c_str());
    if (name == "removeprefix") return Value(s.compare(0, x.size(), x) == 0 ? s.substr(x.size()) : s);
    bool ends = x.size() <= s.size() && s.compare(s.size() - x.size(), x.size(), x) == 0;
    return Value(ends ? s.substr(0, s.size() - x.size()) : s);
  }
  if (name == "partition" || name == "rpartition") {
    ArgBinder a(name, args, {"sep"}, 1);
    const std::string& sep = req_str(a, 0, name.c_str());
    if (sep.empty()) jfail("ValueError: empty separator");
    size_t p = name == "partition" ? s.find(sep) : s.rfind(sep);
    if (p == std::string::npos) {
      if (name == "partition") return Value::make_list({Value(s), Value(""), Value("")}, true);
      return Value::make_list({Value(""), Value(""), Value(s)}, true);
    }
    return Value::make_list({Value(s.substr(0, p)), Value(sep), Value(s.substr(p + sep.size()))}, true);
  }
  if (name == "ljust" || name == "rjust" || name == "center") {
    ArgBinder a(name, args, {"width", "fillchar"}, 1);
    std::string fill = a.has(1) ? req_str(a, 1, name.c_str()) : " ";
    if (py::length(fill) != 1) jfail("TypeError: The fill character must be exactly one character long");
    int64_t width = opt_int(a, 0).value_or(0);
    in.check_size(size_t(std::max<int64_t>(width, 0)));
    return Value(pad(s, width, fill, name == "ljust" ? -1 : name == "rjust" ? 1 : 0));
  }
  jfail("unknown str method '{}'", name);
}

}  // namespace

MethodKind method_kind(const Value& self, const std::string& name) {
  if (self.is_string()) {
    if (kStrMethods.count(name)) return MethodKind::Safe;
    if (kStrUnsupported.count(name)) return MethodKind::Unsupported;
  } else if (self.is_mapping()) {
    if (kDictMethods.count(name)) return MethodKind::Safe;
    if (kDictMutators.count(name)) return MethodKind::Unsafe;
  } else if (self.is_sequence_list()) {
    if (kListMethods.count(name) && (name != "copy" || !self.is_view())) return MethodKind::Safe;
    if (!self.list().tuple && kListMutators.count(name)) return MethodKind::Unsafe;
  }
  return MethodKind::None;
}

Value call_method(Interp& in, const Value& self, const std::string& name, CallArgs& args) {
  if (self.is_string()) return string_method(in, self.as_string(), name, args);
  if (self.is_mapping()) {
    const DictObj& d = self.dict();
    if (name == "get") {
      ArgBinder a(name, args, {"key", "default"}, 1);
      const Value* v = d.get(a.get(0));
      return v ? *v : a.get_or(1, Value::none());
    }
    ArgBinder a(name, args, {});
    std::vector<Value> out;
    if (name == "copy") {
      Value c = Value::make_dict();
      for (const auto& [k, v] : d.items()) c.dict().set(k, v);
      return c;
    }
    for (const auto& [k, v] : d.items()) {
      if (name == "items")
        out.push_back(Value::make_list({k, v}, true));
      else
        out.push_back(name == "keys" ? k : v);
    }
    return Value::make_view(std::move(out), name == "items" ? View::Items : name == "keys" ? View::Keys : View::Values);
  }
  if (self.is_list()) {
    const auto& items = self.list().items;
    if (name == "copy") {
      ArgBinder a(name, args, {});
      return Value::make_list(items, self.list().tuple);
    }
    ArgBinder a(name, args, {"value"}, 1);
    int64_t n = 0;
    for (size_t i = 0; i < items.size(); ++i) {
      if (!equals(items[i], a.get(0))) continue;
      if (name == "index") return Value(int64_t(i));
      ++n;
    }
    if (name == "index") jfail("ValueError: {} is not in list", a.get(0).repr());
    return Value(n);
  }
  jfail("'{}' object has no method '{}'", self.type_name(), name);
}

void install_globals(Scope& root, const std::shared_ptr<std::vector<Value>>& namespaces) {
  root.set("range", Value::make_func("range", [](CallArgs& args) {
             if (!args.kw.empty()) jfail("TypeError: range() takes no keyword arguments");
             if (args.pos.empty() || args.pos.size() > 3) jfail("TypeError: range expected 1 to 3 arguments");
             int64_t v[3] = {0, 0, 1};
             for (size_t i = 0; i < args.pos.size(); ++i) {
               if (!args.pos[i].is_int() && !args.pos[i].is_bool())
                 jfail("TypeError: '{}' object cannot be interpreted as an integer", args.pos[i].type_name());
               v[args.pos.size() == 1 ? 1 : i] = args.pos[i].as_int();
             }
             if (v[2] == 0) jfail("ValueError: range() arg 3 must not be zero");
             // jinja2's sandbox refuses ranges over MAX_RANGE (100000) items.
             long double span = v[2] > 0 ? (long double)v[1] - v[0] : (long double)v[0] - v[1];
             long double count = span <= 0 ? 0 : std::ceil(span / std::abs((long double)v[2]));
             if (count > 100000)
               jfail("OverflowError: Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
             std::vector<Value> out;
             for (int64_t i = v[0]; v[2] > 0 ? i < v[1] : i > v[1]; i += v[2]) out.emplace_back(i);
             Value r = Value::make_view(std::move(out), View::Range);
             r.list().range_repr = v[2] == 1 ? fmt::format("range({}, {})", v[0], v[1])
                                             : fmt::format("range({}, {}, {})", v[0], v[1], v[2]);
             return r;
           }));
  auto make_mapping = [namespaces](bool ns) {
    return [ns, namespaces](CallArgs& args) {
      Value d = ns ? Value::make_namespace() : Value::make_dict();
      if (ns) namespaces->push_back(d);
      if (args.pos.size() > 1) jfail("TypeError: expected at most 1 positional argument, got {}", args.pos.size());
      if (!args.pos.empty()) {
        const Value& src = args.pos[0];
        if (src.is_mapping()) {
          for (const auto& [k, v] : src.dict().items()) d.dict().set(k, v);
        } else {
          for (const auto& item : iterate(src)) {
            if (!item.is_list() || item.list().items.size() != 2)
              jfail("ValueError: dictionary update sequence element has wrong length");
            d.dict().set(item.list().items[0], item.list().items[1]);
          }
        }
      }
      for (const auto& [k, v] : args.kw) d.dict().set(Value(k), v);
      return d;
    };
  };
  root.set("namespace", Value::make_func("namespace", make_mapping(true)));
  root.set("dict", Value::make_func("dict", make_mapping(false)));
  root.set("joiner", Value::make_func("joiner", [](CallArgs& args) {
             ArgBinder a("joiner", args, {"sep"});
             std::string sep = a.has(0) ? a.get(0).str() : ", ";
             auto used = std::make_shared<bool>(false);
             return Value::make_func("joiner", [sep, used](CallArgs&) {
               if (!*used) {
                 *used = true;
                 return Value("");
               }
               return Value(sep);
             });
           }));
  root.set("raise_exception", Value::make_func("raise_exception", [](CallArgs& args) -> Value {
             ArgBinder a("raise_exception", args, {"message"}, 1);
             throw TemplateError(a.get(0).str(), 0, 0, /*raised=*/true);
           }));
  root.set("strftime_now", Value::make_func("strftime_now", [](CallArgs& args) {
             ArgBinder a("strftime_now", args, {"format"}, 1);
             if (!a.get(0).is_string())
               jfail("TypeError: strftime() argument 1 must be str, not {}", a.get(0).type_name());
             // datetime.now().strftime(fmt): local time through the C library, as CPython does.
             std::time_t t = std::time(nullptr);
             std::tm tm{};
             localtime_r(&t, &tm);
             const std::string& f = a.get(0).as_string();
             if (f.empty()) return Value("");
             for (size_t cap = 256; cap <= (size_t(1) << 20); cap *= 4) {
               std::string buf(cap, '\0');
               size_t n = std::strftime(buf.data(), buf.size(), f.c_str(), &tm);
               if (n > 0) {
                 buf.resize(n);
                 return Value(std::move(buf));
               }
             }
             return Value("");
           }));
}

}  // namespace mimo::jinja
