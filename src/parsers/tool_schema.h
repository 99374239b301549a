// The request's tools, indexed by function name, for the tool-call parsers.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "parsers/value_convert.h"

namespace mimo {

class ToolSet {
 public:
  ToolSet() = default;
  // OpenAI "tools": [{"type": "function", "function": {"name", "parameters"}}].
  // Bare function objects ({"name", "parameters"}) are accepted too. null is
  // an empty set. Throws mimo::Error naming the bad entry; a repeated name
  // keeps its first definition.
  explicit ToolSet(const nlohmann::json& tools);

  bool empty() const { return tools_.empty(); }
  bool has(std::string_view name) const { return find(name) != nullptr; }
  std::vector<std::string> names() const;
  // The "parameters" schema of a function (null json when it has none), or
  // nullptr when there is no such function.
  const nlohmann::json* parameters(std::string_view name) const;
  // Type of parameters.properties[param]; known = false when absent.
  ParamType param_type(std::string_view func, std::string_view param) const;

 private:
  struct Tool {
    std::string name;
    nlohmann::json parameters;
  };
  const Tool* find(std::string_view name) const;
  std::vector<Tool> tools_;
};

}  // namespace mimo
