// A Jinja2 engine for chat templates: the subset of the language that
// Hugging Face chat templates use, rendered the way transformers renders
// them (ImmutableSandboxedEnvironment with trim_blocks and lstrip_blocks,
// loop controls, {% generation %}, and the tojson / raise_exception /
// strftime_now helpers transformers installs). Output is meant to be
// byte-identical to Python; anything the engine does not implement is a
// TemplateError with a line and column, never a silently different prompt.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "chat/jinja_ast.h"
#include "chat/jinja_error.h"
#include "chat/jinja_value.h"

namespace mimo::jinja {

// Budgets for one render: a template is code from a model repository and
// must not be able to hang or exhaust the server.
struct RenderLimits {
  size_t max_output_bytes = size_t(64) << 20;  // any single string being built
  int64_t max_steps = 5'000'000;               // loop iterations, statements and calls
  int max_depth = 400;                         // nested expressions, statements and macro calls
};

class Template {
 public:
  // Parses `source`; throws TemplateError (with line and column) on syntax
  // errors and unsupported tags.
  explicit Template(std::string_view source);

  // Renders with the keys of `context` (a JSON object) as variables, plus
  // the globals range, namespace, dict, joiner, raise_exception and
  // strftime_now. Thread-safe: a Template can render on many threads.
  std::string render(const nlohmann::ordered_json& context, const RenderLimits& limits = {}) const;
  // Same, with variables already converted (keys in order).
  std::string render(const std::vector<std::pair<std::string, Value>>& vars, const RenderLimits& limits = {}) const;

  const Body& body() const { return body_; }

 private:
  Body body_;
};

}  // namespace mimo::jinja
