// Tool-call format "mimo" (SGLang's MiMoDetector; the Qwen3-Coder XML form):
//
//   <tool_call>
//   <function=NAME>
//   <parameter=ARG>
//   VALUE
//   </parameter>
//   </function>
//   </tool_call>
//
// Grammar as read here (a state machine that decides only once enough text
// has arrived, so every split of the input gives the same result):
//  * Outside a call, "<tool_call>" starts one. Only whitespace may come before
//    "<function=NAME>"; NAME (trimmed, < 256 bytes, no '<') must be one of the
//    tools. Otherwise the "<tool_call>" is plain text and scanning goes on
//    right after it; a call still unannounced at the end is text too.
//  * Once NAME is known the call is announced (header delta). Inside it,
//    "<parameter=KEY>" opens a value, "</function>" closes the arguments,
//    "</tool_call>" ends the call (closing what is open), a new "<tool_call>"
//    ends it too; other text there is ignored, as are parameter tags with a
//    bad KEY and repeated KEYs (the first value wins).
//  * A value runs to "</parameter>", or to "</function>" / "</tool_call>" /
//    the end of output, which close it implicitly. "<parameter=" inside a
//    value is literal. One leading and one trailing '\n' are stripped
//    (ToolParserOptions::strip_value_newlines); then value_convert.h rules.
//  * Arguments stream per parameter; values of string-only parameters stream
//    as they arrive (entities and a possible final '\n' held back).
#include <memory>

#include "parsers/tool_formats.h"

namespace mimo {
namespace {

using parsers::find_first_tag;
using parsers::partial_tag_len;

constexpr std::string_view kOpen = "<tool_call>";
constexpr std::string_view kClose = "</tool_call>";
constexpr std::string_view kFunc = "<function=";
constexpr std::string_view kFuncEnd = "</function>";
constexpr std::string_view kParam = "<parameter=";
constexpr std::string_view kParamEnd = "</parameter>";
constexpr size_t kMaxName = 256;

class MimoToolParser final : public parsers::StreamingToolParser {
 public:
  MimoToolParser(ToolSet tools, ToolParserOptions opts)
      : StreamingToolParser(std::move(opts)), tools_(std::move(tools)) {
    copts_.unknown_as_json = options().unknown_params_as_json;
  }

  std::string_view name() const override { return "mimo"; }
  std::string call_opening(std::string_view function) const override {
    return function.empty() ? "<tool_call>\n<function=" : "<tool_call>\n<function=" + std::string(function) + ">\n";
  }


 private:
  void restart() override { st_ = St::kText; }

  enum class St { kText, kCallStart, kBody, kValue, kAfterFunc };

  std::string_view view(size_t from, size_t to) const { return std::string_view(buf_).substr(from, to - from); }
  std::string_view rest(size_t from) const { return std::string_view(buf_).substr(from); }

  ToolStreamDelta take() override {
    compact();
    ToolStreamDelta d = std::move(out_);
    out_ = {};
    return d;
  }

  // Drops consumed input, keeping whatever a pending decision may still need.
  void compact() {
    size_t keep = pos_;
    if (st_ == St::kValue) keep = std::min(keep, value_start_);
    if (keep == 0) return;
    buf_.erase(0, keep);
    pos_ -= keep;
    if (st_ == St::kValue) {
      value_start_ -= keep;
      body_start_ -= std::min(body_start_, keep);
      value_scan_ -= keep;
      vemit_ -= std::min(vemit_, keep);
    }
  }

  void run(bool eof) override {
    for (;;) {
      bool more = false;
      switch (st_) {
        case St::kText: more = step_text(eof); break;
        case St::kCallStart: more = step_call_start(eof); break;
        case St::kBody: more = step_body(eof); break;
        case St::kValue: more = step_value(eof); break;
        case St::kAfterFunc: more = step_after_func(eof); break;
      }
      if (!more) return;
    }
  }

  // ------------------------------------------------------------ outside calls

  bool step_text(bool eof) {
    size_t i = buf_.find(kOpen, pos_);
    if (i != std::string::npos) {
      gate_.emit(view(pos_, i), out_.content);
      pos_ = i + kOpen.size();  // decisions are made from just after the tag
      st_ = St::kCallStart;
      return true;
    }
    size_t end = buf_.size() - (eof ? 0 : partial_tag_len(rest(pos_), kOpen));
    gate_.emit(view(pos_, end), out_.content);
    pos_ = end;
    return false;
  }

  // The "<tool_call>" before pos_ was not a call after all.
  bool degrade() {
    gate_.emit(kOpen, out_.content);
    st_ = St::kText;
    return true;
  }

  bool step_call_start(bool eof) {
    size_t p = pos_;
    while (p < buf_.size() && parsers::is_space(buf_[p])) ++p;
    size_t avail = buf_.size() - p;
    size_t m = std::min(avail, kFunc.size());
    if (view(p, p + m) != kFunc.substr(0, m)) return degrade();
    if (m < kFunc.size()) return eof ? degrade() : false;
    size_t ns = p + kFunc.size();
    size_t gt = buf_.find('>', ns);
    std::string_view raw = view(ns, gt == std::string::npos ? buf_.size() : gt);
    if (raw.size() > kMaxName || raw.find('<') != std::string_view::npos) return degrade();
    if (gt == std::string::npos) return eof ? degrade() : false;
    std::string_view fname = parsers::trim(raw);
    if (fname.empty() || !tools_.has(fname)) return degrade();
    begin_call(std::string(fname));
    pos_ = gt + 1;
    st_ = St::kBody;
    return true;
  }

  // ------------------------------------------------------------ inside a call

  void begin_call(std::string fname) {
    gate_.call_started();
    ToolCallDelta h;
    h.index = next_index_;
    h.id = new_call_id();
    h.name = fname;
    out_.calls.push_back(std::move(h));
    func_ = std::move(fname);
    args_open_ = false;
    args_closed_ = false;
    keys_.clear();
  }

  void emit_args(std::string_view s) {
    if (s.empty()) return;
    ToolCallDelta d;
    d.index = next_index_;
    d.arguments = std::string(s);
    out_.calls.push_back(std::move(d));
  }

  void close_args() {
    if (args_closed_) return;
    emit_args(args_open_ ? "}" : "{}");
    args_closed_ = true;
  }

  void end_call() {
    close_args();
    ++next_index_;
    gate_.call_ended();
    st_ = St::kText;
  }

  // `"key":` with "{" or "," in front.
  std::string param_prefix() {
    ArgsStyle s = options().args_style;
    std::string p(args_open_ ? item_separator(s) : "{");
    args_open_ = true;
    p += parsers::json_quote(key_);
    p += key_separator(s);
    return p;
  }

  bool step_body(bool eof) {
    int w = -1;
    size_t i = find_first_tag(buf_, pos_, {kParam, kFuncEnd, kClose, kOpen}, &w);
    if (i == std::string::npos) {
      if (eof) {
        pos_ = buf_.size();
        end_call();
        return true;
      }
      pos_ = buf_.size() - partial_tag_len(rest(pos_), {kParam, kFuncEnd, kClose, kOpen});
      return false;
    }
    switch (w) {
      case 0: {
        size_t ks = i + kParam.size();
        size_t gt = buf_.find('>', ks);
        std::string_view raw = view(ks, gt == std::string::npos ? buf_.size() : gt);
        if (raw.size() > kMaxName || raw.find('<') != std::string_view::npos) {
          pos_ = ks;  // not a parameter tag; look on
          return true;
        }
        if (gt == std::string::npos) {
          pos_ = i;
          if (!eof) return false;
          pos_ = buf_.size();
          end_call();
          return true;
        }
        std::string_view key = parsers::trim(raw);
        if (key.empty() || key.find('\n') != std::string_view::npos) {
          pos_ = ks;
          return true;
        }
        begin_value(std::string(key), gt + 1);
        return true;
      }
      case 1:
        pos_ = i + kFuncEnd.size();
        close_args();
        st_ = St::kAfterFunc;
        return true;
      case 2:
        pos_ = i + kClose.size();
        end_call();
        return true;
      default:  // a new "<tool_call>": this call is over; kText starts the next
        pos_ = i;
        end_call();
        return true;
    }
  }

  bool step_after_func(bool eof) {
    int w = -1;
    size_t i = find_first_tag(buf_, pos_, {kClose, kOpen}, &w);
    if (i == std::string::npos) {
      if (eof) {
        pos_ = buf_.size();
        end_call();
        return true;
      }
      pos_ = buf_.size() - partial_tag_len(rest(pos_), {kClose, kOpen});
      return false;
    }
    pos_ = w == 0 ? i + kClose.size() : i;
    end_call();
    return true;
  }

  // ------------------------------------------------------------ values

  void begin_value(std::string key, size_t start) {
    key_ = std::move(key);
    skip_value_ = false;
    for (const auto& k : keys_)
      if (k == key_) skip_value_ = true;
    if (!skip_value_) keys_.push_back(key_);
    ptype_ = tools_.param_type(func_, key_);
    stream_value_ = !skip_value_ && ptype_.only_string();
    value_start_ = value_scan_ = body_start_ = vemit_ = start;
    vphase_ = 0;
    st_ = St::kValue;
  }

  bool step_value(bool eof) {
    int w = -1;
    size_t i = find_first_tag(buf_, value_scan_, {kParamEnd, kFuncEnd, kClose}, &w);
    if (i == std::string::npos) {
      if (!eof) {
        value_scan_ = buf_.size() - partial_tag_len(rest(value_scan_), {kParamEnd, kFuncEnd, kClose});
        if (stream_value_) stream_string(value_scan_, false);
        return false;
      }
      i = buf_.size();
      w = 1;  // closed by the end of output; kBody then ends the call
    }
    end_value(i);
    pos_ = w == 0 ? i + kParamEnd.size() : i;
    st_ = St::kBody;
    return true;
  }

  bool strip() const { return options().strip_value_newlines; }

  void end_value(size_t end) {
    if (skip_value_) return;
    if (stream_value_) {
      stream_string(end, true);
      return;
    }
    std::string_view v = view(value_start_, end);
    if (strip() && !v.empty() && v.front() == '\n') v.remove_prefix(1);
    if (strip() && !v.empty() && v.back() == '\n') v.remove_suffix(1);
    ordered_value_ = convert_param_value(v, ptype_, copts_);
    emit_args(param_prefix() + dump_json(ordered_value_, options().args_style));
  }

  static bool could_be_null(std::string_view body, bool strip) {
    constexpr std::string_view kNull = "null";
    if (body.size() <= 4) return parsers::iequals(body, kNull.substr(0, body.size()));
    return strip && body.size() == 5 && body[4] == '\n' && parsers::iequals(body.substr(0, 4), kNull);
  }

  // String-only parameter: emits the JSON string as the raw value grows.
  // `avail` is how far the value may be read; `final` says it ends there.
  void stream_string(size_t avail, bool final) {
    if (vphase_ == 0) {
      if (avail == value_start_ && !final) return;
      body_start_ = value_start_;
      if (strip() && avail > value_start_ && buf_[value_start_] == '\n') ++body_start_;
      vphase_ = 1;
    }
    if (vphase_ == 1) {
      std::string_view body = view(body_start_, avail);
      if (final) {
        if (strip() && !body.empty() && body.back() == '\n') body.remove_suffix(1);
        if (parsers::iequals(body, "null")) {
          emit_args(param_prefix() + "null");
          vphase_ = 3;
          return;
        }
      } else if (could_be_null(body, strip())) {
        return;
      }
      emit_args(param_prefix() + "\"");
      vemit_ = body_start_;
      vphase_ = 2;
    }
    if (vphase_ != 2) return;
    size_t end = avail;
    if (final) {
      if (strip() && end > body_start_ && end > vemit_ && buf_[end - 1] == '\n') --end;
    } else {
      if (strip() && end > vemit_ && buf_[end - 1] == '\n') --end;
      end = vemit_ + parsers::html_entity_holdback(view(vemit_, end));
    }
    if (end > vemit_) {
      std::string esc;
      parsers::json_escape_append(esc, parsers::html_unescape(view(vemit_, end)));
      emit_args(esc);
      vemit_ = end;
    }
    if (final) {
      emit_args("\"");
      vphase_ = 3;
    }
  }

  ToolSet tools_;
  ConvertOptions copts_;
  St st_ = St::kText;

  // current call
  std::string func_;
  bool args_open_ = false;
  bool args_closed_ = false;
  std::vector<std::string> keys_;

  // current value
  std::string key_;
  ParamType ptype_;
  bool skip_value_ = false;
  bool stream_value_ = false;
  size_t value_start_ = 0, value_scan_ = 0, body_start_ = 0, vemit_ = 0;
  int vphase_ = 0;  // streamed strings: 0 before the first byte, 1 null undecided, 2 streaming, 3 done
  nlohmann::ordered_json ordered_value_;
};

}  // namespace

std::unique_ptr<ToolCallParser> make_mimo_tool_parser(ToolSet tools, ToolParserOptions opts) {
  return std::make_unique<MimoToolParser>(std::move(tools), std::move(opts));
}

}  // namespace mimo
