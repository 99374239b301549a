#include "chat/chat_template.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "chat/jinja.h"
#include "core/error.h"

namespace mimo {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace {

// Argument names apply_chat_template passes itself; chat_template_kwargs
// repeating one would be a TypeError in Python too.
const char* const kReserved[] = {"messages", "tools", "documents", "add_generation_prompt"};
const char* const kSpecialTokens[] = {"bos_token", "eos_token", "unk_token", "sep_token",
                                      "pad_token", "cls_token", "mask_token"};

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) fail("cannot read {}", p.string());
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

json read_json(const fs::path& p) {
  try {
    return json::parse(read_file(p));
  } catch (const json::exception& e) {
    fail("{}: invalid JSON: {}", p.string(), e.what());
  }
}

// A special token is "text" or an AddedToken {"content": "text", ...}.
std::optional<std::string> token_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return std::nullopt;
}

void collect_special_tokens(const json& cfg, json& out) {
  if (!cfg.is_object()) return;
  for (const char* k : kSpecialTokens) {
    if (out.contains(k) || !cfg.contains(k)) continue;
    if (auto t = token_text(cfg[k]); t && !t->empty()) out[k] = *t;
  }
  if (!out.contains("additional_special_tokens") && cfg.contains("additional_special_tokens") &&
      cfg["additional_special_tokens"].is_array()) {
    json list = json::array();
    for (const auto& v : cfg["additional_special_tokens"])
      if (auto t = token_text(v)) list.push_back(*t);
    if (!list.empty()) out["additional_special_tokens"] = list;  // transformers omits empty ones
  }
}

// SGLang's content-format detection: a template that loops over
// message['content'] (or msg/m .content) wants the parts list itself.
bool expr_is_content(const jinja::Expr* e) {
  while (e && e->kind == jinja::ExprKind::Filter) e = e->a.get();
  if (!e || !e->a || e->a->kind != jinja::ExprKind::Name) return false;
  const std::string& var = e->a->name;
  if (var != "message" && var != "msg" && var != "m") return false;
  if (e->kind == jinja::ExprKind::GetAttr) return e->name == "content";
  return e->kind == jinja::ExprKind::GetItem && e->b && e->b->kind == jinja::ExprKind::Const &&
         e->b->value.is_string() && e->b->value.as_string() == "content";
}

bool iterates_content(const jinja::Body& body) {
  for (const auto& n : body) {
    if (n->kind == jinja::NodeKind::For && expr_is_content(n->expr.get())) return true;
    if (iterates_content(n->body) || iterates_content(n->else_body)) return true;
    for (const auto& b : n->bodies)
      if (iterates_content(b)) return true;
  }
  return false;
}

json join_text_parts(const json& parts, size_t i) {
  std::string text;
  bool first = true;
  for (const auto& p : parts) {
    if (!p.is_object() || p.value("type", "") != "text") continue;  // images etc. have no place in a string
    if (!p.contains("text") || !p["text"].is_string())
      fail("messages[{}].content: a text part needs a string 'text'", i);
    if (!first) text += ' ';
    first = false;
    text += p["text"].get<std::string>();
  }
  return text;
}

json normalize_parts(const json& parts) {
  json out = json::array();
  for (const auto& p : parts) {
    std::string type = p.is_object() ? p.value("type", "") : "";
    if (type == "image_url")
      out.push_back(json{{"type", "image"}});
    else if (type == "audio_url")
      out.push_back(json{{"type", "audio"}});
    else if (type == "video_url")
      out.push_back(json{{"type", "video"}});
    else
      out.push_back(p);
  }
  return out;
}

json parse_tool_calls(const json& calls, size_t i) {
  json out = calls;
  for (size_t j = 0; j < out.size(); ++j) {
    json& call = out[j];
    if (!call.is_object() || !call.contains("function") || !call["function"].is_object()) continue;
    json& fn = call["function"];
    if (!fn.contains("arguments") || !fn["arguments"].is_string()) continue;
    const std::string s = fn["arguments"].get<std::string>();
    // Templates iterate `arguments|items`, so they need an object, as
    // SGLang's serving_chat and transformers expect. An empty string (some
    // clients send it for no-argument calls) is read as {}, as vLLM does.
    if (s.find_first_not_of(" \t\r\n") == std::string::npos) {
      fn["arguments"] = json::object();
      continue;
    }
    try {
      fn["arguments"] = json::parse(s);
    } catch (const json::exception& e) {
      fail("messages[{}].tool_calls[{}].function.arguments is not valid JSON: {}", i, j, e.what());
    }
  }
  return out;
}

}  // namespace

void ChatTemplate::add(const std::string& name, const std::string& source, const std::string& origin) {
  Named n;
  n.name = name;
  n.source = source;
  try {
    n.tmpl = std::make_shared<const jinja::Template>(source);
  } catch (const Error& e) {
    fail("{} (template '{}'): {}", origin, name, e.what());
  }
  n.openai_content = iterates_content(n.tmpl->body());
  for (auto& t : templates_)
    if (t.name == name) {
      t = std::move(n);
      return;
    }
  templates_.push_back(std::move(n));
}

ChatTemplate ChatTemplate::from_string(const std::string& source, const json& special_tokens) {
  ChatTemplate ct;
  ct.add("default", source, "chat template");
  if (!special_tokens.is_object()) fail("special tokens must be a JSON object");
  ct.special_tokens_ = special_tokens;
  return ct;
}

ChatTemplate ChatTemplate::from_model_dir(const std::string& dir) {
  const fs::path root(dir);
  if (!fs::is_directory(root)) fail("model path {} is not a directory", dir);
  ChatTemplate ct;
  json cfg = json::object();
  const fs::path cfg_path = root / "tokenizer_config.json";
  if (fs::exists(cfg_path)) cfg = read_json(cfg_path);

  const fs::path jinja_path = root / "chat_template.jinja";
  if (fs::exists(jinja_path)) {
    ct.add("default", read_file(jinja_path), jinja_path.string());
  } else if (cfg.is_object() && cfg.contains("chat_template") && !cfg["chat_template"].is_null()) {
    const json& t = cfg["chat_template"];
    if (t.is_string()) {
      ct.add("default", t.get<std::string>(), cfg_path.string());
    } else if (t.is_array()) {
      for (const auto& e : t) {
        if (!e.is_object() || !e.contains("name") || !e["name"].is_string() || !e.contains("template") ||
            !e["template"].is_string())
          fail("{}: chat_template list entries must be {{\"name\": str, \"template\": str}}", cfg_path.string());
        ct.add(e["name"].get<std::string>(), e["template"].get<std::string>(), cfg_path.string());
      }
    } else {
      fail("{}: chat_template must be a string or a list of named templates", cfg_path.string());
    }
  } else if (fs::exists(root / "chat_template.json")) {
    json j = read_json(root / "chat_template.json");
    if (!j.is_object() || !j.contains("chat_template") || !j["chat_template"].is_string())
      fail("{}: expected {{\"chat_template\": str}}", (root / "chat_template.json").string());
    ct.add("default", j["chat_template"].get<std::string>(), (root / "chat_template.json").string());
  }
  const fs::path extra = root / "additional_chat_templates";
  if (fs::is_directory(extra)) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(extra))
      if (e.path().extension() == ".jinja") files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) ct.add(f.stem().string(), read_file(f), f.string());
  }
  if (ct.templates_.empty())
    fail(
        "no chat template in {} (looked for chat_template.jinja, tokenizer_config.json \"chat_template\", "
        "chat_template.json)",
        dir);

  ct.special_tokens_ = read_special_tokens(dir);
  return ct;
}

json ChatTemplate::read_special_tokens(const std::string& dir) {
  const fs::path root(dir);
  json out = json::object();
  if (fs::exists(root / "tokenizer_config.json"))
    collect_special_tokens(read_json(root / "tokenizer_config.json"), out);
  if (fs::exists(root / "special_tokens_map.json"))
    collect_special_tokens(read_json(root / "special_tokens_map.json"), out);
  return out;
}

const ChatTemplate::Named& ChatTemplate::select(const json& tools) const {
  MIMO_ASSERT(!templates_.empty());
  if (templates_.size() == 1 && templates_[0].name == "default") return templates_[0];
  // transformers: "tool_use" when tools are given and it exists, else "default".
  bool have_tools = tools.is_array() && !tools.empty();
  const Named* dflt = nullptr;
  for (const auto& t : templates_) {
    if (have_tools && t.name == "tool_use") return t;
    if (t.name == "default") dflt = &t;
  }
  if (!dflt) fail("the model has named chat templates but none called 'default'");
  return *dflt;
}

const std::string& ChatTemplate::source(const json& tools) const { return select(tools).source; }

std::vector<std::string> ChatTemplate::template_names() const {
  std::vector<std::string> out;
  for (const auto& t : templates_) out.push_back(t.name);
  return out;
}

json ChatTemplate::context_for(const Named& t, const json& messages, const json& tools, bool add_generation_prompt,
                               const json& extra_kwargs) const {
  if (!messages.is_array()) fail("messages must be an array");
  if (!tools.is_null() && !tools.is_array()) fail("tools must be an array or null");
  if (!extra_kwargs.is_null() && !extra_kwargs.is_object()) fail("chat_template_kwargs must be an object");

  json msgs = json::array();
  for (size_t i = 0; i < messages.size(); ++i) {
    const json& m = messages[i];
    if (!m.is_object()) fail("messages[{}] must be an object", i);
    if (!m.contains("role") || !m["role"].is_string()) fail("messages[{}] needs a string 'role'", i);
    json out = json::object();
    out["role"] = m["role"];
    // SGLang turns a missing or null content into "" before rendering.
    json content = m.contains("content") ? m["content"] : json();
    if (content.is_null()) content = "";
    if (content.is_array()) content = t.openai_content ? normalize_parts(content) : join_text_parts(content, i);
    if (!content.is_string() && !content.is_array())
      fail("messages[{}].content must be a string, a list of content parts or null", i);
    out["content"] = std::move(content);
    for (auto it = m.begin(); it != m.end(); ++it) {
      if (it.key() == "role" || it.key() == "content" || it.value().is_null()) continue;  // SGLang drops None fields
      if (it.key() == "tool_calls" && it.value().is_array())
        out["tool_calls"] = parse_tool_calls(it.value(), i);
      else
        out[it.key()] = it.value();
    }
    msgs.push_back(std::move(out));
  }

  json ctx = json::object();
  ctx["messages"] = std::move(msgs);
  ctx["tools"] = tools.is_array() && !tools.empty() ? tools : json();  // SGLang passes None for no tools
  ctx["documents"] = nullptr;
  ctx["add_generation_prompt"] = add_generation_prompt;
  for (auto it = special_tokens_.begin(); it != special_tokens_.end(); ++it) ctx[it.key()] = it.value();
  if (extra_kwargs.is_object())
    for (auto it = extra_kwargs.begin(); it != extra_kwargs.end(); ++it) {
      for (const char* r : kReserved)
        if (it.key() == r) fail("chat_template_kwargs cannot set '{}'", r);
      ctx[it.key()] = it.value();
    }
  return ctx;
}

json ChatTemplate::build_context(const json& messages, const json& tools, bool add_generation_prompt,
                                 const json& extra_kwargs) const {
  return context_for(select(tools), messages, tools, add_generation_prompt, extra_kwargs);
}

std::string ChatTemplate::render(const json& messages, const json& tools, bool add_generation_prompt,
                                 const json& extra_kwargs) const {
  const Named& t = select(tools);
  return t.tmpl->render(context_for(t, messages, tools, add_generation_prompt, extra_kwargs));
}

}  // namespace mimo
