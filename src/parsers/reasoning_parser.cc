#include "parsers/reasoning_parser.h"

#include "core/error.h"
#include "parsers/tool_formats.h"

namespace mimo {

using parsers::is_space;

ReasoningDelta ReasoningParser::parse(std::string_view text) {
  reset();
  ReasoningDelta r = push(text);
  r.append(finish());
  reset();
  return r;
}

namespace {

constexpr std::string_view kThink = "<think>";
constexpr std::string_view kThinkEnd = "</think>";
constexpr std::string_view kToolCall = "<tool_call>";

class Qwen3ReasoningParser final : public ReasoningParser {
 public:
  Qwen3ReasoningParser(std::string name, ReasoningOptions opts) : name_(std::move(name)), opts_(opts) { reset(); }

  std::string_view name() const override { return name_; }

  ReasoningDelta push(std::string_view text) override {
    utf8_.feed(text, buf_);
    run(false);
    return take();
  }

  ReasoningDelta finish() override {
    utf8_.flush(buf_);
    run(true);
    pending_ws_.clear();  // trailing whitespace of truncated reasoning
    return take();
  }

  void reset() override {
    buf_.clear();
    pos_ = 0;
    out_ = {};
    pending_ws_.clear();
    utf8_.reset();
    lead_ = true;
    if (!opts_.enable_thinking) st_ = St::kContent;
    else if (opts_.thinking_started_in_prompt) st_ = St::kReasoning;
    else st_ = St::kStart;
  }

 private:
  enum class St { kStart, kReasoning, kAfterThink, kContent };

  std::string_view view(size_t from, size_t to) const { return std::string_view(buf_).substr(from, to - from); }

  ReasoningDelta take() {
    buf_.erase(0, pos_);
    pos_ = 0;
    ReasoningDelta d = std::move(out_);
    out_ = {};
    return d;
  }

  size_t skip_space(size_t p) const {
    while (p < buf_.size() && is_space(buf_[p])) ++p;
    return p;
  }

  // True when buf_[p:] is a proper prefix of `tag` (more input may complete it).
  bool tag_prefix_at(size_t p, std::string_view tag) const {
    std::string_view r = view(p, buf_.size());
    return r.size() < tag.size() && tag.substr(0, r.size()) == r;
  }

  bool tag_at(size_t p, std::string_view tag) const { return view(p, buf_.size()).substr(0, tag.size()) == tag; }

  // Reasoning text, trimmed at both ends across pushes.
  void emit_reasoning(std::string_view s) {
    size_t k = s.size();
    while (k > 0 && is_space(s[k - 1])) --k;
    if (k == 0) {
      pending_ws_ += s;
      return;
    }
    out_.reasoning += pending_ws_;
    out_.reasoning += s.substr(0, k);
    pending_ws_.assign(s.substr(k));
  }

  void run(bool eof) {
    for (;;) {
      switch (st_) {
        case St::kStart: {
          size_t p = skip_space(pos_);
          if (p == buf_.size() && !eof) return;
          if (tag_at(p, kThink)) {
            pos_ = p + kThink.size();
            st_ = St::kReasoning;
            break;
          }
          if (p < buf_.size() && tag_prefix_at(p, kThink) && !eof) return;
          st_ = St::kContent;  // no reasoning block: leading whitespace included
          break;
        }
        case St::kReasoning: {
          if (lead_) {
            size_t p = skip_space(pos_);
            pos_ = p;
            if (p == buf_.size()) return;
            if (tag_at(p, kThink)) {
              pos_ = p + kThink.size();
              break;
            }
            if (tag_prefix_at(p, kThink) && !eof) return;
            lead_ = false;
          }
          int w = -1;
          size_t i = parsers::find_first_tag(buf_, pos_, {kThinkEnd, kToolCall}, &w);
          if (i == std::string::npos) {
            size_t end = buf_.size() -
                         (eof ? 0 : parsers::partial_tag_len(view(pos_, buf_.size()), {kThinkEnd, kToolCall}));
            emit_reasoning(view(pos_, end));
            pos_ = end;
            return;
          }
          emit_reasoning(view(pos_, i));
          pending_ws_.clear();
          pos_ = w == 0 ? i + kThinkEnd.size() : i;
          st_ = w == 0 ? St::kAfterThink : St::kContent;
          break;
        }
        case St::kAfterThink: {
          pos_ = skip_space(pos_);
          if (pos_ == buf_.size()) return;
          st_ = St::kContent;
          break;
        }
        case St::kContent:
          out_.content.append(buf_, pos_, std::string::npos);
          pos_ = buf_.size();
          return;
      }
    }
  }

  std::string name_;
  ReasoningOptions opts_;
  St st_ = St::kStart;
  std::string buf_;
  size_t pos_ = 0;
  ReasoningDelta out_;
  std::string pending_ws_;
  parsers::Utf8Joiner utf8_;
  bool lead_ = true;  // still at the start of the reasoning (whitespace, extra <think> dropped)
};

struct Entry {
  std::string_view name;
  bool force_started;
};

constexpr Entry kParsers[] = {{"qwen3", false}, {"qwen3-thinking", true}};

}  // namespace

bool prompt_opens_thinking(std::string_view prompt) {
  size_t e = prompt.size();
  while (e > 0 && is_space(prompt[e - 1])) --e;
  return prompt.substr(0, e).ends_with(kThink);
}

std::vector<std::string> reasoning_parser_names() {
  std::vector<std::string> out;
  for (const auto& e : kParsers) out.emplace_back(e.name);
  return out;
}

std::unique_ptr<ReasoningParser> make_reasoning_parser(std::string_view name, ReasoningOptions opts) {
  for (const auto& e : kParsers) {
    if (e.name != name) continue;
    if (e.force_started) opts.enable_thinking = opts.thinking_started_in_prompt = true;
    return std::make_unique<Qwen3ReasoningParser>(std::string(name), opts);
  }
  std::string known;
  for (const auto& e : kParsers) known += (known.empty() ? "" : ", ") + std::string(e.name);
  fail("unknown reasoning parser '{}' (known: {})", name, known);
}

}  // namespace mimo
