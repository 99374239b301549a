#include "parsers/tool_schema.h"

#include "core/error.h"

namespace mimo {

ToolSet::ToolSet(const nlohmann::json& tools) {
  if (tools.is_null()) return;
  MIMO_CHECK(tools.is_array(), "'tools' must be an array, got {}", tools.type_name());
  for (size_t i = 0; i < tools.size(); ++i) {
    const auto& t = tools[i];
    MIMO_CHECK(t.is_object(), "tools[{}] must be an object", i);
    const nlohmann::json* fn = &t;
    if (t.contains("function")) {
      fn = &t["function"];
      MIMO_CHECK(fn->is_object(), "tools[{}].function must be an object", i);
      if (t.contains("type"))
        MIMO_CHECK(t["type"] == "function", "tools[{}].type must be \"function\"", i);
    }
    auto name = fn->find("name");
    MIMO_CHECK(name != fn->end() && name->is_string() && !name->get_ref<const std::string&>().empty(),
               "tools[{}].function.name must be a non-empty string", i);
    nlohmann::json params;
    if (auto p = fn->find("parameters"); p != fn->end() && !p->is_null()) {
      MIMO_CHECK(p->is_object(), "tools[{}].function.parameters must be an object", i);
      params = *p;
    }
    std::string n = name->get<std::string>();
    if (!has(n)) tools_.push_back({std::move(n), std::move(params)});
  }
}

const ToolSet::Tool* ToolSet::find(std::string_view name) const {
  for (const auto& t : tools_)
    if (t.name == name) return &t;
  return nullptr;
}

std::vector<std::string> ToolSet::names() const {
  std::vector<std::string> out;
  for (const auto& t : tools_) out.push_back(t.name);
  return out;
}

const nlohmann::json* ToolSet::parameters(std::string_view name) const {
  const Tool* t = find(name);
  return t ? &t->parameters : nullptr;
}

ParamType ToolSet::param_type(std::string_view func, std::string_view param) const {
  const Tool* t = find(func);
  if (!t || !t->parameters.is_object()) return {};
  auto props = t->parameters.find("properties");
  if (props == t->parameters.end() || !props->is_object()) return {};
  auto p = props->find(std::string(param));
  if (p == props->end()) return {};
  return param_type_from_schema(*p);
}

}  // namespace mimo
