// Internal to mimo_parsers: the per-format factories the registry lists and
// small pieces the format files share. Adding a format = one .cc file that
// defines a factory + one line in tool_parser.cc.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "parsers/text_util.h"
#include "parsers/tool_parser.h"

namespace mimo {

std::unique_ptr<ToolCallParser> make_mimo_tool_parser(ToolSet tools, ToolParserOptions opts);
std::unique_ptr<ToolCallParser> make_qwen25_tool_parser(ToolSet tools, ToolParserOptions opts);

namespace parsers {

// Content gate for text outside calls: before the first call everything
// passes; after a call, a stretch of text that is only whitespace (up to the
// next call or the end) is dropped, anything else passes whole.
class InterCallText {
 public:
  void emit(std::string_view s, std::string& out) {
    if (!after_call_ || nonspace_) {
      out += s;
    } else if (all_space(s)) {
      pending_ += s;
    } else {
      out += pending_;
      out += s;
      pending_.clear();
      nonspace_ = true;
    }
  }
  void call_started() { pending_.clear(); }
  void call_ended() {
    after_call_ = true;
    nonspace_ = false;
    pending_.clear();
  }
  void finish() { pending_.clear(); }
  void reset() { *this = InterCallText(); }

 private:
  bool after_call_ = false;
  bool nonspace_ = false;
  std::string pending_;
};

// Input side of a streaming parser: holds back an incomplete UTF-8 character
// at the end of a push so that outputs never split one.
class Utf8Joiner {
 public:
  // Appends the complete part of tail+text to `buf`.
  void feed(std::string_view text, std::string& buf) {
    tail_.append(text);
    size_t keep = utf8_incomplete_tail(tail_);
    buf.append(tail_, 0, tail_.size() - keep);
    tail_.erase(0, tail_.size() - keep);
  }
  void flush(std::string& buf) {
    buf += tail_;
    tail_.clear();
  }
  void reset() { tail_.clear(); }

 private:
  std::string tail_;
};

}  // namespace parsers
}  // namespace mimo
