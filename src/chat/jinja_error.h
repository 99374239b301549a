// The one error type of the template engine. Helpers deep in value code
// throw it without a position; the interpreter attaches the line and column
// of the innermost template node on the way out, so every message a user
// sees points into the template.
#pragma once

#include <fmt/format.h>

#include <string>

#include "core/error.h"

namespace mimo::jinja {

class TemplateError : public Error {
 public:
  explicit TemplateError(std::string detail, int line = 0, int column = 0, bool raised = false)
      : Error(format_what(detail, line, column, raised)),
        detail_(std::move(detail)),
        line_(line),
        column_(column),
        raised_(raised) {}

  const std::string& detail() const { return detail_; }  // the message without position
  int line() const { return line_; }                     // 1-based; 0 when unknown
  int column() const { return column_; }
  bool has_position() const { return line_ > 0; }
  // True for raise_exception(msg) called by the template itself: detail() is
  // the template author's message (e.g. "Conversation roles must alternate").
  bool raised() const { return raised_; }

  TemplateError at(int line, int column) const { return TemplateError(detail_, line, column, raised_); }

 private:
  static std::string format_what(const std::string& d, int line, int col, bool raised) {
    const char* kind = raised ? "raise_exception" : "error";
    if (line <= 0) return fmt::format("chat template {}: {}", kind, d);
    return fmt::format("chat template {} at line {}, column {}: {}", kind, line, col, d);
  }
  std::string detail_;
  int line_, column_;
  bool raised_;
};

template <typename... Args>
[[noreturn]] void jfail(fmt::format_string<Args...> f, Args&&... args) {
  throw TemplateError(fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace mimo::jinja
