// Internal to mimo_parsers: the per-format factories the registry lists and
// the pieces the format files share (StreamingToolParser, the streaming frame
// every format derives from). Adding a format = one .cc file that defines a
// StreamingToolParser and its factory + one line in tool_parser.cc.
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

// The streaming frame the text formats share: pushed text is joined into
// whole UTF-8 characters in buf_, the format's run() consumes it from pos_
// (eof: no more input comes) writing to out_ (text outside calls through
// gate_), and take() hands out what was produced and drops consumed input.
class StreamingToolParser : public ToolCallParser {
 public:
  using ToolCallParser::ToolCallParser;
  ToolStreamDelta push(std::string_view text) final {
    utf8_.feed(text, buf_);
    run(false);
    return take();
  }
  ToolStreamDelta finish() final {
    utf8_.flush(buf_);
    run(true);
    gate_.finish();
    return take();
  }
  void reset() final {
    buf_.clear();
    pos_ = 0;
    out_ = {};
    gate_.reset();
    utf8_.reset();
    next_index_ = 0;
    restart();
  }

 protected:
  virtual void run(bool eof) = 0;
  virtual ToolStreamDelta take() = 0;
  virtual void restart() = 0;  // the format's own state back to the start

  std::string buf_;
  size_t pos_ = 0;
  ToolStreamDelta out_;
  InterCallText gate_;
  Utf8Joiner utf8_;
  int next_index_ = 0;  // the next call's index
};

}  // namespace parsers
}  // namespace mimo
