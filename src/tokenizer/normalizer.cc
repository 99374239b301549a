#include "tokenizer/normalizer.h"

#include <utf8proc.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tokenizer/utf8.h"

namespace mimo {
namespace {

void add_from_json(const nlohmann::json& j, std::vector<Normalizer::Form>* forms) {
  if (j.is_null()) return;
  MIMO_CHECK(j.is_object() && j.contains("type") && j["type"].is_string(),
             "tokenizer.json: normalizer must be null or an object with a \"type\"");
  const std::string type = j["type"].get<std::string>();
  if (type == "NFC") forms->push_back(Normalizer::Form::NFC);
  else if (type == "NFD") forms->push_back(Normalizer::Form::NFD);
  else if (type == "NFKC") forms->push_back(Normalizer::Form::NFKC);
  else if (type == "NFKD") forms->push_back(Normalizer::Form::NFKD);
  else if (type == "Sequence") {
    MIMO_CHECK(j.contains("normalizers") && j["normalizers"].is_array(),
               "tokenizer.json: Sequence normalizer without a \"normalizers\" array");
    for (const auto& sub : j["normalizers"]) add_from_json(sub, forms);
  } else {
    fail("tokenizer.json: unsupported normalizer type \"{}\"", type);
  }
}

utf8proc_option_t options_for(Normalizer::Form f) {
  switch (f) {
    case Normalizer::Form::NFC: return utf8proc_option_t(UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    case Normalizer::Form::NFD: return utf8proc_option_t(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE);
    case Normalizer::Form::NFKC:
      return utf8proc_option_t(UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT);
    case Normalizer::Form::NFKD:
      return utf8proc_option_t(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT);
  }
  return utf8proc_option_t(0);
}

// Code points that NFC provably leaves alone wherever they stand: combining
// class 0, no canonical decomposition, and never the second half of a
// canonical composition (utf8proc's own data decides all three). Text made
// only of these is already NFC, which spares a utf8proc_map allocation and
// pass on nearly all CJK, Cyrillic, emoji... A set bit means "stable".
class NfcStable {
 public:
  static const NfcStable& get() {
    static const NfcStable table;  // built once, on first use (thread-safe init)
    return table;
  }
  bool stable(uint32_t cp) const { return (bits_[cp >> 6] >> (cp & 63)) & 1; }

 private:
  NfcStable() : bits_(0x110000 / 64, ~0ull) {
    utf8proc_int32_t dec[32];
    std::vector<std::pair<uint32_t, uint32_t>> heads;  // (composite, first char of its decomposition)
    for (uint32_t cp = 0; cp < 0x110000; ++cp) {
      const utf8proc_property_t* p = utf8proc_get_property(utf8proc_int32_t(cp));
      if (p->combining_class != 0) clear(cp);
      utf8proc_int32_t last_boundclass = 0;
      const utf8proc_ssize_t n = utf8proc_decompose_char(utf8proc_int32_t(cp), dec, 32,
                                                         UTF8PROC_DECOMPOSE, &last_boundclass);
      if (n > 1 || (n == 1 && dec[0] != utf8proc_int32_t(cp))) {
        // Its tail can compose with what precedes it. The character itself is
        // stable only if it composes back to itself (é, 가; not a singleton
        // such as U+212B or an excluded composite).
        for (utf8proc_ssize_t k = 1; k < n; ++k) clear(uint32_t(dec[k]));
        if (!composes_to_itself(cp)) clear(cp);
        heads.emplace_back(cp, uint32_t(dec[0]));
      }
    }
    // A composite is a boundary only if its decomposition's head is one too.
    for (auto [cp, head] : heads) {
      if (!stable(head)) clear(cp);
    }
  }
  void clear(uint32_t cp) { bits_[cp >> 6] &= ~(1ull << (cp & 63)); }
  static bool composes_to_itself(uint32_t cp) {
    std::string s;
    utf8::append(&s, cp);
    utf8proc_uint8_t* dst = nullptr;
    const utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()),
                                            utf8proc_ssize_t(s.size()), &dst, options_for(Normalizer::Form::NFC));
    const bool same = n == utf8proc_ssize_t(s.size()) && std::memcmp(dst, s.data(), s.size()) == 0;
    std::free(dst);
    return same;
  }
  std::vector<uint64_t> bits_;
};

// The other forms change Latin-1 letters (decomposition) or U+00A0
// (compatibility), so only ASCII is known to be left alone.
bool unchanged_by(Normalizer::Form, std::string_view s) {
  for (char c : s) {
    if (uint8_t(c) >= 0x80) return false;
  }
  return true;
}

}  // namespace

Normalizer Normalizer::from_json(const nlohmann::json& j) {
  Normalizer n;
  add_from_json(j, &n.forms_);
  // Build the NFC table now (~50 ms) rather than inside the first request.
  if (std::find(n.forms_.begin(), n.forms_.end(), Form::NFC) != n.forms_.end()) NfcStable::get();
  return n;
}

// NFC rewrites only around unstable characters: every stable character is
// a normalisation boundary, so the text is NFC'd region by region, each
// region running from the stable character before an unstable run to the
// next stable one. Returns false (and leaves *out alone) if nothing changes.
static bool nfc_by_regions(std::string_view text, std::string* out) {
  const NfcStable& table = NfcStable::get();
  const size_t n = text.size();
  size_t i = 0, copied = 0, last_stable = 0;
  bool changed = false;
  std::string result;
  auto stable_at = [&](size_t k, size_t* len) {
    if (uint8_t(text[k]) < 0x80) {
      *len = 1;
      return true;
    }
    return table.stable(utf8::decode_at(text, k, len));
  };
  while (i < n) {
    size_t len;
    if (stable_at(i, &len)) {
      last_stable = i;
      i += len;
      continue;
    }
    const size_t begin = std::max(last_stable, copied);
    size_t end = i + len;
    while (end < n && !stable_at(end, &len)) end += len;
    utf8proc_uint8_t* dst = nullptr;
    const utf8proc_ssize_t m = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data() + begin),
                                            utf8proc_ssize_t(end - begin), &dst, options_for(Normalizer::Form::NFC));
    // The input was validated before normalisation, so a failure here is a bug.
    MIMO_ASSERT(m >= 0, "utf8proc_map: {}", utf8proc_errmsg(m));
    if (!changed) result.reserve(n + 16);
    result.append(text.substr(copied, begin - copied));
    result.append(reinterpret_cast<const char*>(dst), size_t(m));
    std::free(dst);
    changed = true;
    copied = i = end;
  }
  if (!changed) return false;
  result.append(text.substr(copied));
  *out = std::move(result);
  return true;
}

std::string_view Normalizer::apply(std::string_view text, std::string* storage) const {
  std::string_view cur = text;
  for (Form f : forms_) {
    if (cur.empty()) continue;
    if (f == Form::NFC) {
      std::string next;
      if (nfc_by_regions(cur, &next)) {
        *storage = std::move(next);
        cur = *storage;
      }
      continue;
    }
    if (unchanged_by(f, cur)) continue;
    utf8proc_uint8_t* dst = nullptr;
    utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(cur.data()),
                                      utf8proc_ssize_t(cur.size()), &dst, options_for(f));
    // The input was validated before normalisation, so a failure here is a bug.
    MIMO_ASSERT(n >= 0, "utf8proc_map: {}", utf8proc_errmsg(n));
    std::string next(reinterpret_cast<const char*>(dst), size_t(n));
    std::free(dst);
    *storage = std::move(next);
    cur = *storage;
  }
  return cur;
}

}  // namespace mimo
