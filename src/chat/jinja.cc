#include "chat/jinja.h"

#include <exception>
#include <new>

#include "chat/jinja_interp.h"
#include "chat/jinja_lexer.h"
#include "chat/jinja_parser.h"

namespace mimo::jinja {

Template::Template(std::string_view source) : body_(parse(tokenize(source))) {}

std::string Template::render(const nlohmann::ordered_json& context, const RenderLimits& limits) const {
  if (!context.is_object()) throw TemplateError("render context must be a JSON object");
  std::vector<std::pair<std::string, Value>> vars;
  for (auto it = context.begin(); it != context.end(); ++it) vars.emplace_back(it.key(), Value::from_json(it.value()));
  return render(vars, limits);
}

std::string Template::render(const std::vector<std::pair<std::string, Value>>& vars, const RenderLimits& limits) const {
  // Globals live below the caller's variables, so a context key named like
  // a global (e.g. `range`) shadows it, as in jinja2.
  auto globals = std::make_shared<Scope>(nullptr);
  auto namespaces = std::make_shared<std::vector<Value>>();
  install_globals(*globals, namespaces);
  // Clears every namespace on the way out, rendered or not (see install_globals).
  struct ClearNamespaces {
    std::vector<Value>& ns;
    ~ClearNamespaces() {
      for (auto& v : ns) v.dict().clear();
    }
  } clear_at_exit{*namespaces};
  auto root = std::make_shared<Scope>(globals);
  for (const auto& [k, v] : vars) root->set(k, v);
  Interp interp(limits, root);
  std::string out;
  try {
    interp.exec_body(body_, root, out);
  } catch (const TemplateError& e) {
    if (!e.has_position() && interp.line() > 0) throw e.at(interp.line(), interp.col());
    throw;
  } catch (const std::bad_alloc&) {
    throw TemplateError("out of memory while rendering", interp.line(), interp.col());
  } catch (const std::exception& e) {
    // Anything else (a JSON or standard-library error) still becomes a
    // positioned template error instead of escaping as a foreign type.
    throw TemplateError(e.what(), interp.line(), interp.col());
  }
  return out;
}

}  // namespace mimo::jinja
