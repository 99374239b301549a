#include "tokenizer/onig_ref.h"

#include <oniguruma.h>

#include <stdexcept>

#include "tokenizer/utf8.h"

namespace mimo {

struct OnigReference::State {
  OnigRegex re = nullptr;
  OnigRegion* region = nullptr;
};

OnigReference::OnigReference(const std::string& pattern) : state_(std::make_unique<State>()) {
  OnigEncoding enc = ONIG_ENCODING_UTF8;
  onig_initialize(&enc, 1);
  OnigErrorInfo info;
  const auto* p = reinterpret_cast<const OnigUChar*>(pattern.data());
  const int rc = onig_new(&state_->re, p, p + pattern.size(), ONIG_OPTION_NONE, ONIG_ENCODING_UTF8,
                          ONIG_SYNTAX_DEFAULT, &info);
  if (rc != ONIG_NORMAL) throw std::runtime_error("onig_new failed for " + pattern);
  state_->region = onig_region_new();
}

OnigReference::~OnigReference() {
  onig_region_free(state_->region, 1);
  onig_free(state_->re);
}

std::vector<std::pair<size_t, size_t>> OnigReference::find_all(const std::string& text) const {
  std::vector<std::pair<size_t, size_t>> out;
  const auto* s = reinterpret_cast<const OnigUChar*>(text.data());
  const auto* end = s + text.size();
  size_t pos = 0;
  while (pos <= text.size()) {
    if (onig_search(state_->re, s, end, s + pos, end, state_->region, ONIG_OPTION_NONE) < 0) break;
    const size_t b = size_t(state_->region->beg[0]), e = size_t(state_->region->end[0]);
    if (e > b) {
      out.emplace_back(b, e);
      pos = e;
    } else {
      if (e >= text.size()) break;
      pos = e + utf8::step(text, e).len;
    }
  }
  return out;
}

}  // namespace mimo
