// Tool-call format "qwen25" (Qwen2.5 / Hermes, SGLang's Qwen25Detector):
//
//   <tool_call>
//   {"name": "get_weather", "arguments": {"city": "Paris"}}
//   </tool_call>
//
// A call is held until its "</tool_call>", then announced with its whole
// arguments object. The body must be a JSON object with a string "name" that
// is one of the tools and an object "arguments" (or "parameters"; absent is
// {}; a string holding a JSON object is accepted). Anything else, or a call
// still open at the end, leaves "<tool_call>" as plain text and scanning goes
// on right after it, so the whole block ends up in content.
#include <algorithm>
#include <memory>

#include "parsers/tool_formats.h"

namespace mimo {
namespace {

constexpr std::string_view kOpen = "<tool_call>";
constexpr std::string_view kClose = "</tool_call>";

class Qwen25ToolParser final : public parsers::StreamingToolParser {
 public:
  Qwen25ToolParser(ToolSet tools, ToolParserOptions opts)
      : StreamingToolParser(std::move(opts)), tools_(std::move(tools)) {}

  std::string_view name() const override { return "qwen25"; }
  std::string call_opening(std::string_view function) const override {
    if (function.empty()) return "<tool_call>\n{\"name\": \"";
    return "<tool_call>\n{\"name\": " + nlohmann::json(std::string(function)).dump() + ", \"arguments\": ";
  }


 private:
  void restart() override {
    scan_ = 0;
    in_call_ = false;
  }

  ToolStreamDelta take() override {
    buf_.erase(0, pos_);
    scan_ -= std::min(scan_, pos_);
    pos_ = 0;
    ToolStreamDelta d = std::move(out_);
    out_ = {};
    return d;
  }

  void run(bool eof) override {
    for (;;) {
      if (!in_call_) {
        size_t i = buf_.find(kOpen, pos_);
        if (i == std::string::npos) {
          size_t end = buf_.size() - (eof ? 0 : parsers::partial_tag_len(std::string_view(buf_).substr(pos_), kOpen));
          gate_.emit(std::string_view(buf_).substr(pos_, end - pos_), out_.content);
          pos_ = end;
          return;
        }
        gate_.emit(std::string_view(buf_).substr(pos_, i - pos_), out_.content);
        pos_ = scan_ = i + kOpen.size();
        in_call_ = true;
      }
      size_t e = buf_.find(kClose, std::max(pos_, scan_));
      if (e == std::string::npos && !eof) {
        // Resume the search where a "</tool_call>" could still start.
        scan_ = buf_.size() - parsers::partial_tag_len(std::string_view(buf_).substr(pos_), kClose);
        return;
      }
      in_call_ = false;
      if (e != std::string::npos && try_call(std::string_view(buf_).substr(pos_, e - pos_))) {
        pos_ = e + kClose.size();
      } else {
        gate_.emit(kOpen, out_.content);  // not a call: the tag is text, rescan after it
      }
    }
  }

  bool try_call(std::string_view body) {
    auto v = parse_json_value(parsers::trim(body));
    if (!v || !v->is_object()) return false;
    auto n = v->find("name");
    if (n == v->end() || !n->is_string() || !tools_.has(n->get_ref<const std::string&>())) return false;
    nlohmann::ordered_json args = nlohmann::ordered_json::object();
    auto a = v->find("arguments");
    if (a == v->end()) a = v->find("parameters");
    if (a != v->end() && !a->is_null()) {
      if (a->is_string()) {
        auto inner = parse_json_value(a->get_ref<const std::string&>());
        if (!inner || !inner->is_object()) return false;
        args = std::move(*inner);
      } else if (a->is_object()) {
        args = *a;
      } else {
        return false;
      }
    }
    gate_.call_started();
    ToolCallDelta h;
    h.index = next_index_;
    h.id = new_call_id();
    h.name = n->get<std::string>();
    out_.calls.push_back(std::move(h));
    ToolCallDelta d;
    d.index = next_index_++;
    d.arguments = dump_json(args, options().args_style);
    out_.calls.push_back(std::move(d));
    gate_.call_ended();
    return true;
  }

  ToolSet tools_;
  size_t scan_ = 0;  // in a call: where to resume looking for "</tool_call>"
  bool in_call_ = false;
};

}  // namespace

std::unique_ptr<ToolCallParser> make_qwen25_tool_parser(ToolSet tools, ToolParserOptions opts) {
  return std::make_unique<Qwen25ToolParser>(std::move(tools), std::move(opts));
}

}  // namespace mimo
