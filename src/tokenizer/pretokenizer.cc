#include "tokenizer/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <array>
#include <cctype>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tokenizer/utf8.h"

namespace mimo {
namespace {

// Oniguruma's \s is Unicode White_Space; PCRE2's UCP \s also takes U+180E.
constexpr std::string_view kSpaceItems = "\\t-\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}";
// Oniguruma's Unicode \w: Alphabetic, Mark, Decimal_Number, Connector_Punctuation,
// plus the Latin-1 superscripts and fractions its byte-range table calls word
// characters (found by comparing every code point, see regex_onig_test.cc).
constexpr std::string_view kWordItems = "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{B2}\\x{B3}\\x{B9}\\x{BC}-\\x{BE}";
constexpr std::string_view kHexItems = "0-9a-fA-F";

// GPT-2's pattern, used by ByteLevel when use_regex is true.
constexpr std::string_view kGpt2Pattern =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

std::string escape_literal(std::string_view s) {
  std::string out;
  for (char c : s) {
    const auto u = uint8_t(c);
    if (u < 0x80 && !std::isalnum(u)) out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

struct MatchScratch {
  pcre2_match_data* md;
  pcre2_match_context* ctx;
  pcre2_jit_stack* jit_stack;
  MatchScratch() {
    md = pcre2_match_data_create(16, nullptr);
    ctx = pcre2_match_context_create(nullptr);
    // The default 32 KiB JIT stack can run out on long inputs; grow up to 8 MiB.
    jit_stack = pcre2_jit_stack_create(64 * 1024, 8 * 1024 * 1024, nullptr);
    MIMO_ASSERT(md && ctx && jit_stack, "out of memory creating PCRE2 match state");
    pcre2_jit_stack_assign(ctx, nullptr, jit_stack);
  }
  ~MatchScratch() {
    pcre2_jit_stack_free(jit_stack);
    pcre2_match_context_free(ctx);
    pcre2_match_data_free(md);
  }
};

// Byte classes for the hand-written Qwen2 matcher: \p{L}, \p{N} and \s
// (Oniguruma's: \t..\r and space) for ASCII; kU for any byte >= 0x80, whose
// character the table cannot classify.
enum : uint8_t { kL = 1, kN = 2, kS = 4, kU = 8 };
constexpr std::array<uint8_t, 256> make_byte_classes() {
  std::array<uint8_t, 256> t{};
  for (int c = 'a'; c <= 'z'; ++c) t[c] = kL;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = kL;
  for (int c = '0'; c <= '9'; ++c) t[c] = kN;
  for (int c = '\t'; c <= '\r'; ++c) t[c] = kS;
  t[' '] = kS;
  for (int c = 0x80; c < 0x100; ++c) t[c] = kU;
  return t;
}
constexpr std::array<uint8_t, 256> kByteClass = make_byte_classes();
constexpr size_t kBail = std::string_view::npos;

// End of the kQwen2Pattern match that starts at s[i], or kBail when deciding
// it needs the class of a non-ASCII character (PCRE2 then takes over for this
// one match). Every character starts a match, so matches tile the text. Each
// step mirrors one alternative, in order, with the backtracking worked out.
size_t qwen2_ascii_match(std::string_view s, size_t i) {
  const size_t n = s.size();
  auto cls = [&](size_t k) { return kByteClass[uint8_t(s[k])]; };
  // End of the run of class c from k, or kBail if a non-ASCII character ends it
  // (it might belong to the class).
  auto run = [&](size_t k, uint8_t c) {
    while (k < n && (cls(k) & c)) ++k;
    return k < n && cls(k) == kU ? kBail : k;
  };
  const char c = s[i];
  if (cls(i) == kU) return kBail;
  // (?i:'s|'t|'re|'ve|'m|'ll|'d); non-ASCII U+017F folds to s, so look no further.
  if (c == '\'' && i + 1 < n) {
    if (cls(i + 1) == kU) return kBail;
    const char a = char(s[i + 1] | 0x20);  // ASCII lower case; only letters are compared
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
    if (i + 2 < n && (a == 'r' || a == 'v' || a == 'l')) {
      if (cls(i + 2) == kU) return kBail;
      const char b = char(s[i + 2] | 0x20);
      if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
    }
  }
  // [^\r\n\p{L}\p{N}]?\p{L}+
  if (cls(i) & kL) return run(i, kL);
  if (c != '\r' && c != '\n' && !(cls(i) & kN) && i + 1 < n) {
    if (cls(i + 1) == kU) return kBail;
    if (cls(i + 1) & kL) return run(i + 1, kL);
  }
  // \p{N}
  if (cls(i) & kN) return i + 1;
  // ' ?[^\s\p{L}\p{N}]+[\r\n]*'  (here c is punctuation or whitespace)
  size_t j = i;
  if (c == ' ' && i + 1 < n && cls(i + 1) == 0) j = i + 1;
  if (cls(j) == 0) {
    size_t k = j;
    while (k < n && cls(k) == 0) ++k;
    if (k < n && cls(k) == kU) return kBail;
    while (k < n && (s[k] == '\r' || s[k] == '\n')) ++k;  // a non-ASCII byte just ends this
    return k;
  }
  // Only whitespace is left. \s*[\r\n]+ ends after the run's last \r or \n.
  const size_t e = run(i, kS);
  if (e == kBail) return kBail;
  for (size_t p = e; p > i; --p) {
    if (s[p - 1] == '\r' || s[p - 1] == '\n') return p;
  }
  // \s+(?!\S) gives back the last space before a non-space; else \s+.
  if (e == n || e - i == 1) return e;
  return e - 1;
}

MatchScratch& match_scratch() {
  thread_local MatchScratch s;
  return s;
}

enum class Behavior { Isolated, Removed, MergedWithPrevious, MergedWithNext, Contiguous };

Behavior parse_behavior(const std::string& s) {
  if (s == "Isolated") return Behavior::Isolated;
  if (s == "Removed") return Behavior::Removed;
  if (s == "MergedWithPrevious") return Behavior::MergedWithPrevious;
  if (s == "MergedWithNext") return Behavior::MergedWithNext;
  if (s == "Contiguous") return Behavior::Contiguous;
  fail("tokenizer.json: unsupported Split behavior \"{}\"", s);
}

}  // namespace

std::string onig_to_pcre2(std::string_view p) {
  std::string out;
  out.reserve(p.size() + 64);
  bool in_class = false;
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      const char e = p[++i];
      std::string_view items;
      bool negate = false;
      switch (e) {
        case 's': items = kSpaceItems; break;
        case 'S': items = kSpaceItems; negate = true; break;
        case 'w': items = kWordItems; break;
        case 'W': items = kWordItems; negate = true; break;
        case 'h': items = kHexItems; break;
        case 'H': items = kHexItems; negate = true; break;
        default: break;
      }
      if (items.empty() || (in_class && negate)) {
        // A negated class inside a class has no PCRE2 spelling; keep PCRE2's meaning.
        out.push_back('\\');
        out.push_back(e);
      } else if (in_class) {
        out.append(items);
      } else {
        out.append(negate ? "[^" : "[");
        out.append(items);
        out.push_back(']');
      }
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out.push_back(c);
      // A ']' right after '[' or '[^' is a literal, not the end of the class.
      if (i + 1 < p.size() && p[i + 1] == '^') out.push_back(p[++i]);
      if (i + 1 < p.size() && p[i + 1] == ']') out.push_back(p[++i]);
      continue;
    }
    if (in_class && c == '[' && i + 1 < p.size() && p[i + 1] == ':') {
      // POSIX class such as [:alpha:]: copy through its closing ":]".
      const size_t end = p.find(":]", i + 2);
      if (end != std::string_view::npos) {
        out.append(p.substr(i, end + 2 - i));
        i = end + 1;
        continue;
      }
    }
    if (in_class && c == ']') in_class = false;
    out.push_back(c);
  }
  return out;
}

Regex::Regex(std::string_view pattern, bool allow_fast_path) {
  qwen2_ascii_ = allow_fast_path && pattern == kQwen2Pattern;
  const std::string translated = onig_to_pcre2(pattern);
  int err = 0;
  PCRE2_SIZE err_off = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                                   PCRE2_UTF | PCRE2_UCP, &err, &err_off, nullptr);
  if (!code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    fail("tokenizer.json: regex /{}/ does not compile (as /{}/ at offset {}): {}", pattern, translated, err_off,
         reinterpret_cast<const char*>(msg));
  }
  code_ = code;
  uint32_t have_jit = 0;
  pcre2_config(PCRE2_CONFIG_JIT, &have_jit);
  // Without JIT (or if it fails, e.g. no executable memory) the interpreter
  // gives the same matches, only slower.
  jit_ = have_jit && pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
}

Regex::~Regex() { pcre2_code_free(static_cast<pcre2_code*>(code_)); }

void Regex::find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>* out) const {
  auto* code = static_cast<pcre2_code*>(code_);
  MatchScratch& s = match_scratch();
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  const size_t n = text.size();
  size_t pos = 0;
  while (pos <= n) {
    if (qwen2_ascii_ && pos < n) {
      const size_t e = qwen2_ascii_match(text, pos);
      if (e != kBail) {
        out->emplace_back(pos, e);
        pos = e;
        continue;
      }
    }
    // The text was validated once by the caller, so skip PCRE2's UTF check.
    const int rc = jit_ ? pcre2_jit_match(code, subject, n, pos, 0, s.md, s.ctx)
                        : pcre2_match(code, subject, n, pos, PCRE2_NO_UTF_CHECK, s.md, s.ctx);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(rc, msg, sizeof msg);
      fail("tokenizer: regex match failed on {} bytes of input: {}", n, reinterpret_cast<const char*>(msg));
    }
    // rc == 0 only means the ovector is too small for every group; group 0 is set.
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(s.md);
    const size_t b = ov[0], e = ov[1];
    if (e > b) {
      out->emplace_back(b, e);
      pos = e;
    } else {
      // An empty match yields no piece; step over one character, as Oniguruma's iterator does.
      if (e >= n) break;
      const utf8::Step st = utf8::step(text, e);
      pos = e + st.len;
    }
  }
}

struct PreTokenizer::Step {
  enum Kind { kSplit, kByteLevel } kind;
  std::shared_ptr<Regex> regex;  // kSplit, or kByteLevel with use_regex
  Behavior behavior = Behavior::Isolated;
  bool invert = false;
  bool add_prefix_space = false;

  void apply(std::string_view piece, std::vector<std::string_view>* out, std::deque<std::string>* arena) const;
};

void PreTokenizer::Step::apply(std::string_view piece, std::vector<std::string_view>* out,
                               std::deque<std::string>* arena) const {
  if (kind == kByteLevel && add_prefix_space && piece.front() != ' ') {
    std::string& spaced = arena->emplace_back();
    spaced.reserve(piece.size() + 1);
    spaced.push_back(' ');
    spaced.append(piece);
    piece = spaced;
  }
  if (!regex) {
    out->push_back(piece);
    return;
  }
  thread_local std::vector<std::pair<size_t, size_t>> matches;
  matches.clear();
  regex->find_all(piece, &matches);
  // Segments alternate between gaps and matches; a match is a delimiter
  // unless invert is set. The folds below follow Hugging Face's split().
  const size_t first_out = out->size();
  bool prev_delim = false;
  auto emit = [&](size_t b, size_t e, bool delim) {
    if (b == e) return;
    const std::string_view seg = piece.substr(b, e - b);
    const bool has_prev = out->size() > first_out;
    switch (behavior) {
      case Behavior::Isolated: out->push_back(seg); break;
      case Behavior::Removed: if (!delim) out->push_back(seg); break;
      case Behavior::MergedWithPrevious:
        if (delim && !prev_delim && has_prev) {
          std::string_view& last = out->back();
          last = std::string_view(last.data(), last.size() + seg.size());
        } else {
          out->push_back(seg);
        }
        break;
      case Behavior::MergedWithNext:
        // Folded right to left in Hugging Face; left to right that is: a
        // delimiter joins the next segment unless that one is a delimiter too.
        if (has_prev && prev_delim && !delim) {
          std::string_view& last = out->back();
          last = std::string_view(last.data(), last.size() + seg.size());
        } else {
          out->push_back(seg);
        }
        break;
      case Behavior::Contiguous:
        if (has_prev && delim == prev_delim) {
          std::string_view& last = out->back();
          last = std::string_view(last.data(), last.size() + seg.size());
        } else {
          out->push_back(seg);
        }
        break;
    }
    prev_delim = delim;
  };
  size_t prev = 0;
  for (const auto& [b, e] : matches) {
    emit(prev, b, invert);
    emit(b, e, !invert);
    prev = e;
  }
  emit(prev, piece.size(), invert);
}

PreTokenizer::PreTokenizer() = default;
PreTokenizer::~PreTokenizer() = default;
PreTokenizer::PreTokenizer(PreTokenizer&&) noexcept = default;
PreTokenizer& PreTokenizer::operator=(PreTokenizer&&) noexcept = default;

PreTokenizer PreTokenizer::from_json(const nlohmann::json& j) {
  PreTokenizer pt;
  std::vector<const nlohmann::json*> flat;
  auto flatten = [&](auto& self, const nlohmann::json& node) -> void {
    MIMO_CHECK(node.is_object() && node.contains("type") && node["type"].is_string(),
               "tokenizer.json: pre_tokenizer must be an object with a \"type\" (byte-level BPE needs one)");
    if (node["type"] == "Sequence") {
      MIMO_CHECK(node.contains("pretokenizers") && node["pretokenizers"].is_array(),
                 "tokenizer.json: Sequence pre_tokenizer without a \"pretokenizers\" array");
      for (const auto& sub : node["pretokenizers"]) self(self, sub);
    } else {
      flat.push_back(&node);
    }
  };
  flatten(flatten, j);

  bool byte_level = false;
  for (const nlohmann::json* node : flat) {
    const std::string type = (*node)["type"].get<std::string>();
    MIMO_CHECK(!byte_level, "tokenizer.json: pre_tokenizer \"{}\" after ByteLevel is not supported", type);
    Step st;
    if (type == "Split") {
      st.kind = Step::kSplit;
      const auto& pat = node->value("pattern", nlohmann::json());
      if (pat.contains("Regex") && pat["Regex"].is_string()) {
        st.regex = std::make_shared<Regex>(pat["Regex"].get<std::string>());
      } else if (pat.contains("String") && pat["String"].is_string()) {
        const std::string lit = pat["String"].get<std::string>();
        if (lit.empty()) continue;  // an empty delimiter splits nothing
        st.regex = std::make_shared<Regex>(escape_literal(lit));
      } else {
        fail("tokenizer.json: Split pre_tokenizer needs a pattern {{\"Regex\": ...}} or {{\"String\": ...}}");
      }
      st.behavior = parse_behavior(node->value("behavior", std::string("Isolated")));
      st.invert = node->value("invert", false);
    } else if (type == "ByteLevel") {
      byte_level = true;
      st.kind = Step::kByteLevel;
      st.add_prefix_space = node->value("add_prefix_space", true);
      if (node->value("use_regex", true)) st.regex = std::make_shared<Regex>(kGpt2Pattern);
      if (!st.add_prefix_space && !st.regex) continue;  // only the byte mapping, done by the BPE model
    } else {
      fail("tokenizer.json: unsupported pre_tokenizer type \"{}\"", type);
    }
    pt.steps_.push_back(std::move(st));
  }
  MIMO_CHECK(byte_level, "tokenizer.json: pre_tokenizer has no ByteLevel step; only byte-level BPE is supported");
  return pt;
}

void PreTokenizer::split(std::string_view text, std::vector<std::string_view>* pieces,
                         std::deque<std::string>* arena) const {
  pieces->clear();
  if (text.empty()) return;
  pieces->push_back(text);
  thread_local std::vector<std::string_view> next;
  for (const Step& st : steps_) {
    next.clear();
    for (std::string_view p : *pieces) st.apply(p, &next, arena);
    pieces->swap(next);
  }
}

}  // namespace mimo
