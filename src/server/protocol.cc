#include "server/protocol.h"

#include <cmath>
#include <limits>
#include <set>

#include "core/error.h"
#include "parsers/tool_schema.h"

namespace mimo::server {

namespace {

// Requests without max_tokens run to the end of the context (the engine
// clamps max_new_tokens to what is left), as in SGLang.
constexpr int kNoLimit = std::numeric_limits<int>::max() / 2;

const ojson* get(const ojson& b, const char* k) {
  auto it = b.find(k);
  if (it == b.end() || it->is_null()) return nullptr;
  return &*it;
}

bool read_bool(const ojson& b, const char* k, bool def) {
  const ojson* v = get(b, k);
  if (!v) return def;
  if (!v->is_boolean()) throw bad_request(fmt::format("'{}' must be a boolean", k), k);
  return v->get<bool>();
}

int64_t read_int(const ojson& b, const char* k, int64_t def, int64_t lo, int64_t hi) {
  const ojson* v = get(b, k);
  if (!v) return def;
  int64_t x;
  if (v->is_number_integer()) {
    x = v->get<int64_t>();
  } else if (v->is_number_float() && std::nearbyint(v->get<double>()) == v->get<double>() &&
             std::fabs(v->get<double>()) < 9e15) {
    x = int64_t(v->get<double>());  // pydantic accepts 5.0 for an int field; so do we
  } else {
    throw bad_request(fmt::format("'{}' must be an integer", k), k);
  }
  if (x < lo || x > hi) {
    if (hi == std::numeric_limits<int64_t>::max())
      throw bad_request(fmt::format("'{}' must be >= {}, got {}", k, lo, x), k);
    throw bad_request(fmt::format("'{}' must be between {} and {}, got {}", k, lo, hi, x), k);
  }
  return x;
}

double read_num(const ojson& b, const char* k, double def, double lo, double hi, bool lo_open = false) {
  const ojson* v = get(b, k);
  if (!v) return def;
  if (!v->is_number()) throw bad_request(fmt::format("'{}' must be a number", k), k);
  double x = v->get<double>();
  if (!std::isfinite(x) || x < lo || x > hi || (lo_open && x == lo)) {
    std::string range = hi == std::numeric_limits<double>::infinity()
                            ? fmt::format("{} {}", lo_open ? ">" : ">=", lo)
                            : fmt::format("in {}{}, {}]", lo_open ? "(" : "[", lo, hi);
    throw bad_request(fmt::format("'{}' must be {}, got {}", k, range, x), k);
  }
  return x;
}

std::string read_str(const ojson& b, const char* k, const std::string& def = "") {
  const ojson* v = get(b, k);
  if (!v) return def;
  if (!v->is_string()) throw bad_request(fmt::format("'{}' must be a string", k), k);
  return v->get<std::string>();
}

std::vector<std::string> read_stop(const ojson& b, const char* k) {
  const ojson* v = get(b, k);
  std::vector<std::string> out;
  if (!v) return out;
  if (v->is_string()) {
    out.push_back(v->get<std::string>());
  } else if (v->is_array()) {
    for (auto& s : *v) {
      if (!s.is_string()) throw bad_request(fmt::format("'{}' must be a string or a list of strings", k), k);
      out.push_back(s.get<std::string>());
    }
  } else {
    throw bad_request(fmt::format("'{}' must be a string or a list of strings", k), k);
  }
  for (auto& s : out)
    if (s.empty()) throw bad_request(fmt::format("'{}' must not contain empty strings", k), k);
  return out;
}

std::vector<int32_t> read_ids(const ojson& v, const char* k) {
  std::vector<int32_t> ids;
  for (auto& x : v) {
    if (!x.is_number_integer() || x.get<int64_t>() < 0 || x.get<int64_t>() > std::numeric_limits<int32_t>::max())
      throw bad_request(fmt::format("'{}' must hold non-negative integer token ids", k), k);
    ids.push_back(int32_t(x.get<int64_t>()));
  }
  return ids;
}

// OpenAI's {"token id": bias} with biases in [-100, 100].
std::vector<std::pair<int32_t, float>> read_logit_bias(const ojson& b) {
  std::vector<std::pair<int32_t, float>> out;
  const ojson* v = get(b, "logit_bias");
  if (!v) return out;
  if (!v->is_object()) throw bad_request("'logit_bias' must be an object of token ids to biases", "logit_bias");
  for (auto& [k, x] : v->items()) {
    size_t pos = 0;
    long long id = -1;
    try {
      id = std::stoll(k, &pos);
    } catch (...) {
      pos = 0;
    }
    if (pos == 0 || pos != k.size() || id < 0 || id > std::numeric_limits<int32_t>::max())
      throw bad_request(fmt::format("'logit_bias' keys must be token ids, got '{}'", k), "logit_bias");
    if (!x.is_number() || !(x.get<double>() >= -100 && x.get<double>() <= 100))
      throw bad_request(fmt::format("'logit_bias' values must be numbers in [-100, 100], got {} for token {}", x.dump(), k),
                        "logit_bias");
    out.push_back({int32_t(id), float(x.get<double>())});
  }
  return out;
}

// Fields that ask for something this build cannot do: refused by name.
void refuse_unsupported(const ojson& b) {
  if (auto v = get(b, "response_format")) {
    if (!v->is_object() || !v->contains("type") || (*v)["type"] != "text")
      throw unsupported("response_format", "only {\"type\": \"text\"}; constrained decoding is not implemented");
  }
  for (const char* k : {"regex", "ebnf", "json_schema", "structural_tag"})
    if (get(b, k)) throw unsupported(k, "constrained decoding is not implemented");
  for (const char* k : {"functions", "function_call"})
    if (get(b, k)) throw unsupported(k, "the deprecated function-calling fields; use 'tools' and 'tool_choice'");
  if (read_int(b, "best_of", 1, 1, 1 << 20) > 1) throw unsupported("best_of", "only best_of 1");
  if (read_bool(b, "no_stop_trim", false)) throw unsupported("no_stop_trim", "stop strings are always trimmed");
  if (!read_bool(b, "stream_reasoning", true)) throw unsupported("stream_reasoning", "reasoning is always streamed");
  if (get(b, "lora_path")) throw unsupported("lora_path", "LoRA adapters are not implemented");
  if (read_bool(b, "return_hidden_states", false)) throw unsupported("return_hidden_states", "not implemented");
}

// Sampling fields common to the OpenAI endpoints (and SGLang's extensions of them).
void read_openai_sampling(const ojson& b, SamplingParams& s, int default_max_tokens, int min_max_tokens = 1) {
  s.temperature = float(read_num(b, "temperature", 1.0, 0, std::numeric_limits<double>::infinity()));
  s.top_p = float(read_num(b, "top_p", 1.0, 0, 1, true));
  s.top_k = int(read_int(b, "top_k", -1, -1, std::numeric_limits<int32_t>::max()));
  if (s.top_k == 0) throw bad_request("'top_k' must be -1 (all) or positive, got 0", "top_k");
  s.min_p = float(read_num(b, "min_p", 0, 0, 1));
  s.frequency_penalty = float(read_num(b, "frequency_penalty", 0, -2, 2));
  s.presence_penalty = float(read_num(b, "presence_penalty", 0, -2, 2));
  s.repetition_penalty = float(read_num(b, "repetition_penalty", 1, 0, 2, true));
  s.logit_bias = read_logit_bias(b);
  int64_t max_tokens = read_int(b, "max_tokens", default_max_tokens, min_max_tokens, std::numeric_limits<int64_t>::max());
  // max_completion_tokens is the newer name; it wins when both are given.
  max_tokens = read_int(b, "max_completion_tokens", max_tokens, min_max_tokens, std::numeric_limits<int64_t>::max());
  s.max_new_tokens = int(std::min<int64_t>(max_tokens, kNoLimit));
  s.min_new_tokens = int(read_int(b, "min_tokens", 0, 0, kNoLimit));
  if (s.min_new_tokens > s.max_new_tokens)
    throw bad_request(fmt::format("'min_tokens' ({}) exceeds 'max_tokens' ({})", s.min_new_tokens, s.max_new_tokens),
                      "min_tokens");
  s.stop = read_stop(b, "stop");
  if (auto v = get(b, "stop_token_ids")) {
    if (!v->is_array()) throw bad_request("'stop_token_ids' must be a list of integers", "stop_token_ids");
    s.stop_token_ids = read_ids(*v, "stop_token_ids");
  }
  s.ignore_eos = read_bool(b, "ignore_eos", false);
  s.skip_special_tokens = read_bool(b, "skip_special_tokens", true);
  if (get(b, "seed")) s.seed = uint64_t(read_int(b, "seed", 0, std::numeric_limits<int64_t>::min(),
                                                 std::numeric_limits<int64_t>::max()));
}

void read_stream(const ojson& b, bool* stream, bool* include_usage) {
  *stream = read_bool(b, "stream", false);
  *include_usage = false;
  if (auto v = get(b, "stream_options")) {
    if (!v->is_object()) throw bad_request("'stream_options' must be an object", "stream_options");
    *include_usage = read_bool(*v, "include_usage", false);
  }
}

std::string read_model(const ojson& b) { return read_str(b, "model"); }

void validate_content_parts(const ojson& content, const std::string& where) {
  for (auto& p : content) {
    if (!p.is_object() || !p.contains("type") || !p["type"].is_string())
      throw bad_request("each content part needs a string 'type'", where);
    if (p["type"] != "text")
      throw unsupported(where, fmt::format("content parts of type '{}' (this model reads text only)",
                                           p["type"].get<std::string>()));
    if (!p.contains("text") || !p["text"].is_string()) throw bad_request("a text content part needs 'text'", where);
  }
}

// OpenAI roles; "developer" is OpenAI's newer name for "system".
ojson validate_messages(const ojson* m) {
  if (!m || !m->is_array() || m->empty()) throw bad_request("'messages' must be a non-empty array", "messages");
  static const std::set<std::string> roles = {"system", "developer", "user", "assistant", "tool"};
  ojson out = *m;
  for (size_t i = 0; i < out.size(); i++) {
    ojson& msg = out[i];
    std::string where = fmt::format("messages[{}]", i);
    if (!msg.is_object()) throw bad_request(where + " must be an object", where);
    if (!msg.contains("role") || !msg["role"].is_string())
      throw bad_request(where + " needs a string 'role'", where + ".role");
    std::string role = msg["role"];
    if (!roles.count(role))
      throw bad_request(fmt::format("{}.role '{}' is not one of system, developer, user, assistant, tool", where, role),
                        where + ".role");
    if (role == "developer") msg["role"] = "system";
    const ojson* c = get(msg, "content");
    if (!c) {
      bool has_calls = msg.contains("tool_calls") && msg["tool_calls"].is_array() && !msg["tool_calls"].empty();
      if (role != "assistant" || !has_calls) {
        if (role != "assistant") throw bad_request(where + " needs 'content'", where + ".content");
      }
    } else if (c->is_array()) {
      validate_content_parts(*c, where + ".content");
    } else if (!c->is_string()) {
      throw bad_request(where + ".content must be a string or a list of content parts", where + ".content");
    }
    if (auto tc = get(msg, "tool_calls")) {
      if (!tc->is_array()) throw bad_request(where + ".tool_calls must be an array", where + ".tool_calls");
      for (auto& call : *tc) {
        const ojson* f = call.is_object() ? get(call, "function") : nullptr;
        if (!f || !f->is_object() || !f->contains("name") || !(*f)["name"].is_string())
          throw bad_request(where + ".tool_calls entries need function.name", where + ".tool_calls");
      }
    }
  }
  return out;
}

ojson validate_tools(const ojson* t) {
  if (!t) return nullptr;
  if (!t->is_array()) throw bad_request("'tools' must be an array", "tools");
  for (size_t i = 0; i < t->size(); i++) {
    const ojson& tool = (*t)[i];
    const ojson* f = tool.is_object() ? get(tool, "function") : nullptr;
    if (!tool.is_object() || read_str(tool, "type", "function") != "function" || !f || !f->is_object() ||
        !f->contains("name") || !(*f)["name"].is_string() || (*f)["name"].get<std::string>().empty())
      throw bad_request(fmt::format("tools[{}] must be {{\"type\": \"function\", \"function\": {{\"name\": ...}}}}", i),
                        "tools");
    if (auto p = get(*f, "parameters"); p && !p->is_object())
      throw bad_request(fmt::format("tools[{}].function.parameters must be an object", i), "tools");
  }
  try {
    ToolSet check(nlohmann::json::parse(t->dump()));
  } catch (const Error& e) {
    throw bad_request(e.what(), "tools");
  }
  return *t;
}

Prompt text_prompt(std::string s) {
  Prompt p;
  p.text = std::move(s);
  return p;
}

Prompt ids_prompt(std::vector<int32_t> ids) {
  Prompt p;
  p.is_text = false;
  p.ids = std::move(ids);
  return p;
}

// A string, a list of strings, a list of ids or a list of lists of ids.
std::vector<Prompt> read_prompts(const ojson& v, const char* k, bool* batched) {
  std::vector<Prompt> out;
  *batched = false;
  if (v.is_string()) {
    out.push_back(text_prompt(v.get<std::string>()));
  } else if (v.is_array() && !v.empty()) {
    if (v[0].is_number_integer()) {
      out.push_back(ids_prompt(read_ids(v, k)));
    } else {
      *batched = true;
      for (auto& x : v) {
        if (x.is_string()) out.push_back(text_prompt(x.get<std::string>()));
        else if (x.is_array() && !x.empty()) out.push_back(ids_prompt(read_ids(x, k)));
        else throw bad_request(fmt::format("'{}' entries must be strings or non-empty lists of token ids", k), k);
      }
    }
  } else {
    throw bad_request(fmt::format("'{}' must be a string, a list of strings, or (lists of) token ids", k), k);
  }
  return out;
}

}  // namespace

ojson parse_body(const std::string& text) {
  ojson b;
  try {
    b = ojson::parse(text);
  } catch (const std::exception& e) {
    throw bad_request(std::string("the body is not valid JSON: ") + e.what());
  }
  if (!b.is_object()) throw bad_request("the body must be a JSON object");
  return b;
}

ojson template_tools(const ojson& tools) {
  if (!tools.is_array()) return nullptr;
  ojson out = ojson::array();
  for (auto& t : tools) out.push_back(t.contains("function") ? t["function"] : t);
  return out;
}

ChatRequest parse_chat_request(const ojson& b) {
  ChatRequest r;
  refuse_unsupported(b);
  r.model = read_model(b);
  r.messages = validate_messages(get(b, "messages"));
  r.tools = validate_tools(get(b, "tools"));
  try {
    const ojson* tc = get(b, "tool_choice");
    r.tool_choice = parse_tool_choice(tc ? nlohmann::json::parse(tc->dump()) : nlohmann::json(),
                                      r.tools.is_null() ? nlohmann::json() : nlohmann::json::parse(r.tools.dump()));
  } catch (const ApiError&) {
    throw;
  } catch (const Error& e) {
    throw bad_request(e.what(), "tool_choice");
  }
  if (auto k = get(b, "chat_template_kwargs")) {
    if (!k->is_object()) throw bad_request("'chat_template_kwargs' must be an object", "chat_template_kwargs");
    r.chat_template_kwargs = *k;
    if (auto t = get(*k, "enable_thinking")) {
      if (!t->is_boolean())
        throw bad_request("'chat_template_kwargs.enable_thinking' must be a boolean", "chat_template_kwargs");
      r.enable_thinking = t->get<bool>();
    }
  }
  r.separate_reasoning = read_bool(b, "separate_reasoning", true);
  r.parallel_tool_calls = read_bool(b, "parallel_tool_calls", true);
  r.continue_final_message = read_bool(b, "continue_final_message", false);
  r.add_generation_prompt = read_bool(b, "add_generation_prompt", !r.continue_final_message);
  read_openai_sampling(b, r.sampling, kNoLimit);
  r.n = int(read_int(b, "n", 1, 1, 128));
  read_stream(b, &r.stream, &r.include_usage);
  r.logprobs = read_bool(b, "logprobs", false);
  r.top_logprobs = int(read_int(b, "top_logprobs", 0, 0, 20));
  if (get(b, "top_logprobs") && !r.logprobs)
    throw bad_request("'top_logprobs' needs 'logprobs': true", "top_logprobs");
  r.sampling.logprobs = r.logprobs ? r.top_logprobs : -1;
  return r;
}

CompletionRequest parse_completion_request(const ojson& b) {
  CompletionRequest r;
  refuse_unsupported(b);
  if (!read_str(b, "suffix").empty()) throw unsupported("suffix", "insertion (fill-in-the-middle) is not implemented");
  r.model = read_model(b);
  const ojson* p = get(b, "prompt");
  if (!p) throw bad_request("'prompt' is required", "prompt");
  bool batched;
  r.prompts = read_prompts(*p, "prompt", &batched);
  // OpenAI's legacy default of 16; 0 with echo scores a prompt (its logprobs) without generating.
  read_openai_sampling(b, r.sampling, 16, 0);
  r.echo = read_bool(b, "echo", false);
  r.n = int(read_int(b, "n", 1, 1, 128));
  read_stream(b, &r.stream, &r.include_usage);
  r.logprobs = get(b, "logprobs") ? int(read_int(b, "logprobs", 0, 0, 20)) : -1;
  r.sampling.logprobs = r.logprobs;
  if (r.echo && r.logprobs >= 0) r.sampling.prompt_logprobs_start = 0;
  return r;
}

GenerateRequest parse_generate_request(const ojson& b) {
  GenerateRequest r;
  const ojson* text = get(b, "text");
  const ojson* ids = get(b, "input_ids");
  if (!text == !ids) throw bad_request("give exactly one of 'text' and 'input_ids'", text ? "input_ids" : "text");
  r.prompts = read_prompts(text ? *text : *ids, text ? "text" : "input_ids", &r.batched);
  ojson sp = ojson::object();
  if (auto s = get(b, "sampling_params")) {
    if (!s->is_object()) throw bad_request("'sampling_params' must be an object", "sampling_params");
    sp = *s;
  }
  refuse_unsupported(sp);
  SamplingParams& s = r.sampling;
  // SGLang's SamplingParams defaults.
  s.temperature = float(read_num(sp, "temperature", 1.0, 0, std::numeric_limits<double>::infinity()));
  s.top_p = float(read_num(sp, "top_p", 1.0, 0, 1, true));
  s.top_k = int(read_int(sp, "top_k", -1, -1, std::numeric_limits<int32_t>::max()));
  if (s.top_k == 0) throw bad_request("'top_k' must be -1 (all) or positive, got 0", "top_k");
  s.min_p = float(read_num(sp, "min_p", 0, 0, 1));
  s.frequency_penalty = float(read_num(sp, "frequency_penalty", 0, -2, 2));
  s.presence_penalty = float(read_num(sp, "presence_penalty", 0, -2, 2));
  s.repetition_penalty = float(read_num(sp, "repetition_penalty", 1, 0, 2, true));
  s.logit_bias = read_logit_bias(sp);
  // 0: only the prompt (scored with return_logprob and logprob_start_len).
  s.max_new_tokens = int(std::min<int64_t>(read_int(sp, "max_new_tokens", 128, 0, std::numeric_limits<int64_t>::max()),
                                           kNoLimit));
  s.min_new_tokens = int(read_int(sp, "min_new_tokens", 0, 0, kNoLimit));
  if (s.min_new_tokens > s.max_new_tokens)
    throw bad_request("'min_new_tokens' exceeds 'max_new_tokens'", "min_new_tokens");
  s.stop = read_stop(sp, "stop");
  if (auto v = get(sp, "stop_token_ids")) {
    if (!v->is_array()) throw bad_request("'stop_token_ids' must be a list of integers", "stop_token_ids");
    s.stop_token_ids = read_ids(*v, "stop_token_ids");
  }
  s.ignore_eos = read_bool(sp, "ignore_eos", false);
  s.skip_special_tokens = read_bool(sp, "skip_special_tokens", true);
  for (const char* k : {"seed", "sampling_seed"})
    if (get(sp, k))
      s.seed = uint64_t(read_int(sp, k, 0, std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()));
  r.n = int(read_int(sp, "n", 1, 1, 128));
  r.stream = read_bool(b, "stream", false);
  r.return_logprob = read_bool(b, "return_logprob", false);
  r.top_logprobs_num = int(read_int(b, "top_logprobs_num", 0, 0, 20));
  s.logprobs = r.return_logprob ? r.top_logprobs_num : -1;
  r.logprob_start_len = int(read_int(b, "logprob_start_len", -1, -1, std::numeric_limits<int32_t>::max()));
  if (r.return_logprob && r.logprob_start_len >= 0) s.prompt_logprobs_start = r.logprob_start_len;
  r.rid = read_str(b, "rid");
  if (r.stream && (r.batched || r.n > 1))
    throw unsupported("stream", "streaming a batch or n > 1 on /generate; send one request per prompt");
  return r;
}

}  // namespace mimo::server
