// OpenAI-compatible routes: /v1/chat/completions, /v1/completions,
// /v1/models, and /v1/tokenize + /v1/detokenize (SGLang/vLLM extensions).
#include "core/log.h"
#include "parsers/reasoning_parser.h"
#include "server/chat_response.h"
#include "server/completion_response.h"
#include "server/http_util.h"
#include "server/protocol.h"

namespace mimo::server {

namespace {

using Clock = std::chrono::system_clock;

int64_t unix_now() { return std::chrono::duration_cast<std::chrono::seconds>(Clock::now().time_since_epoch()).count(); }

void need_text(const ServerContext& ctx, bool need_template) {
  if (!ctx.tokenizer)
    throw bad_request("this model has no tokenizer (tokenizer.json); send token ids to /generate instead");
  if (need_template && !ctx.chat_template)
    throw bad_request("this model has no chat template; use /v1/completions or /generate instead");
}

std::vector<std::string> dumps(const std::vector<ojson>& v) {
  std::vector<std::string> out;
  for (auto& j : v) out.push_back(dump_json(j));
  return out;
}

// The prompt text of a chat request, as the template renders it.
std::string render_chat(const ServerContext& ctx, const ChatRequest& cr) {
  // SGLang hands the template no tools when tool_choice is "none".
  ojson tools = cr.tool_choice.mode == ToolChoiceMode::kNone ? ojson() : template_tools(cr.tools);
  if (!cr.continue_final_message)
    return ctx.chat_template->render(cr.messages, tools, cr.add_generation_prompt, cr.chat_template_kwargs);
  // Continue the last assistant message: render without the generation
  // prompt and cut everything after that message's text (its end-of-turn).
  const ojson& last = cr.messages.back();
  if (last["role"] != "assistant" || !last.contains("content") || !last["content"].is_string())
    throw bad_request("continue_final_message needs a final assistant message with string content",
                      "continue_final_message");
  std::string text = ctx.chat_template->render(cr.messages, tools, false, cr.chat_template_kwargs);
  std::string content = last["content"];
  size_t at = text.rfind(content);
  if (content.empty() || at == std::string::npos)
    throw bad_request("the chat template does not render the final message's content verbatim",
                      "continue_final_message");
  return text.substr(0, at + content.size());
}

void handle_chat(ServerContext& ctx, const httplib::Request& req, httplib::Response& res) {
  ChatRequest cr = parse_chat_request(parse_body(req.body));
  check_model(ctx, cr.model);
  need_text(ctx, true);
  std::string prompt = render_chat(ctx, cr);
  EngineRequest er;
  er.id = ctx.new_id("chatcmpl-");
  er.sampling = cr.sampling;
  er.n = cr.n;

  ChatResponseOptions o;
  o.id = er.id;
  o.model = ctx.served_name;
  o.created = unix_now();
  o.n = cr.n;
  o.include_usage = cr.include_usage;
  if (cr.separate_reasoning && !ctx.args.reasoning_parser.empty()) {
    o.reasoning_parser = ctx.args.reasoning_parser;
    o.reasoning.enable_thinking = cr.enable_thinking;
    o.reasoning.thinking_started_in_prompt = prompt_opens_thinking(prompt);
  }
  nlohmann::json tools = cr.tools.is_null() ? nlohmann::json() : nlohmann::json::parse(cr.tools.dump());
  if (!ctx.args.tool_call_parser.empty() && tool_parsing_enabled(cr.tool_choice, tools)) {
    o.tool_parser = ctx.args.tool_call_parser;
    o.tools = tools;
    // "required" / named: the output starts with a call (the prompt ends
    // with its opening; the parser reads the opening back first).
    o.forced_opening = forced_call_opening(cr.tool_choice, o.tool_parser, tools);
  }
  er.input_ids = ctx.tokenizer->encode(prompt + o.forced_opening, true);
  o.tool_choice = cr.tool_choice;
  o.parallel_tool_calls = cr.parallel_tool_calls;
  o.logprobs = cr.logprobs;
  o.top_logprobs = cr.top_logprobs;
  o.stop = cr.sampling.stop;
  o.tokenizer = &*ctx.tokenizer;
  auto builder = std::make_shared<ChatResponseBuilder>(o);

  std::vector<std::shared_ptr<Submitted>> subs = {submit(ctx, std::move(er))};
  if (cr.stream) {
    SseCallbacks cb;
    cb.on_start = [builder] { return dumps(builder->start()); };
    cb.on_output = [builder](int i, const EngineOutput& out) { return dumps(builder->push(i, out)); };
    cb.on_end = [builder] { return builder->error() ? std::vector<std::string>{} : dumps(builder->finish()); };
    cb.failed = [builder] { return builder->error().has_value(); };
    stream_sse(req, res, std::move(subs), std::move(cb));
    return;
  }
  if (!collect(req, res, subs, [&](int i, const EngineOutput& out) { builder->push(i, out); })) return;
  if (auto e = builder->error()) throw *e;
  send_json(res, 200, builder->response());
}

std::vector<int32_t> prompt_ids(const ServerContext& ctx, const Prompt& p) {
  if (!p.is_text) return p.ids;
  need_text(ctx, false);
  return ctx.tokenizer->encode(p.text, true);
}

void handle_completion(ServerContext& ctx, const httplib::Request& req, httplib::Response& res) {
  CompletionRequest cr = parse_completion_request(parse_body(req.body));
  check_model(ctx, cr.model);
  if (!cr.sampling.stop.empty()) need_text(ctx, false);
  CompletionResponseOptions o;
  o.id = ctx.new_id("cmpl-");
  o.model = ctx.served_name;
  o.created = unix_now();
  o.prompts = int(cr.prompts.size());
  o.n = cr.n;
  o.include_usage = cr.include_usage;
  o.logprobs = cr.logprobs;
  o.stop = cr.sampling.stop;
  o.tokenizer = ctx.tokenizer ? &*ctx.tokenizer : nullptr;
  o.echo = cr.echo;
  if (cr.echo) need_text(ctx, false);
  std::vector<std::vector<int32_t>> ids;
  for (const Prompt& p : cr.prompts) {
    ids.push_back(prompt_ids(ctx, p));
    if (cr.echo) {
      o.prompt_texts.push_back(p.is_text ? p.text : ctx.tokenizer->decode(ids.back(), false));
      o.prompt_first_ids.push_back(ids.back().empty() ? 0 : ids.back().front());
    }
  }
  auto builder = std::make_shared<CompletionResponseBuilder>(o);
  std::vector<std::shared_ptr<Submitted>> subs;
  for (size_t i = 0; i < cr.prompts.size(); i++) {
    EngineRequest er;
    er.id = cr.prompts.size() == 1 ? o.id : fmt::format("{}-p{}", o.id, i);
    er.input_ids = std::move(ids[i]);
    er.sampling = cr.sampling;
    er.n = cr.n;
    subs.push_back(submit(ctx, std::move(er)));  // earlier ones abort if this throws
  }
  if (cr.stream) {
    SseCallbacks cb;
    cb.on_start = [] { return std::vector<std::string>{}; };
    cb.on_output = [builder](int i, const EngineOutput& out) { return dumps(builder->push(i, out)); };
    cb.on_end = [builder] { return builder->error() ? std::vector<std::string>{} : dumps(builder->finish()); };
    cb.failed = [builder] { return builder->error().has_value(); };
    stream_sse(req, res, std::move(subs), std::move(cb));
    return;
  }
  if (!collect(req, res, subs, [&](int i, const EngineOutput& out) { builder->push(i, out); })) return;
  if (auto e = builder->error()) throw *e;
  send_json(res, 200, builder->response());
}

ojson model_card(const ServerContext& ctx) {
  return {{"id", ctx.served_name},
          {"object", "model"},
          {"created", std::chrono::duration_cast<std::chrono::seconds>(ctx.started.time_since_epoch()).count()},
          {"owned_by", "mimoserve"},
          {"root", ctx.model_path},
          {"max_model_len", ctx.engine->context_length()}};
}

void handle_tokenize(ServerContext& ctx, const httplib::Request& req, httplib::Response& res) {
  ojson b = parse_body(req.body);
  if (b.contains("model") && !b["model"].is_null()) check_model(ctx, b["model"].is_string() ? b["model"].get<std::string>() : "");
  ojson out;
  std::string text;
  if (b.contains("messages")) {
    need_text(ctx, true);
    ojson chat = b;
    chat.erase("prompt");
    ChatRequest cr = parse_chat_request(chat);
    text = render_chat(ctx, cr);
  } else if (b.contains("prompt") && b["prompt"].is_string()) {
    need_text(ctx, false);
    text = b["prompt"].get<std::string>();
  } else {
    throw bad_request("give 'prompt' (a string) or 'messages'", "prompt");
  }
  auto ids = ctx.tokenizer->encode(text, true);
  out["tokens"] = ids;
  out["count"] = ids.size();
  out["max_model_len"] = ctx.engine->context_length();
  if (b.contains("messages")) out["prompt"] = text;
  send_json(res, 200, out);
}

void handle_detokenize(ServerContext& ctx, const httplib::Request& req, httplib::Response& res) {
  ojson b = parse_body(req.body);
  need_text(ctx, false);
  if (!b.contains("tokens") || !b["tokens"].is_array()) throw bad_request("'tokens' must be a list of token ids", "tokens");
  std::vector<int32_t> ids;
  for (auto& t : b["tokens"]) {
    if (!t.is_number_integer()) throw bad_request("'tokens' must be a list of token ids", "tokens");
    ids.push_back(t.get<int32_t>());
  }
  send_json(res, 200, {{"text", ctx.tokenizer->decode(ids, false)}});
}

}  // namespace

void register_openai_routes(httplib::Server& svr, ServerContext& ctx) {
  auto route = [&ctx](void (*fn)(ServerContext&, const httplib::Request&, httplib::Response&)) {
    return [&ctx, fn](const httplib::Request& req, httplib::Response& res) {
      guarded(ctx, res, [&] { fn(ctx, req, res); });
    };
  };
  svr.Post("/v1/chat/completions", route(handle_chat));
  svr.Post("/v1/completions", route(handle_completion));
  svr.Post("/v1/tokenize", route(handle_tokenize));
  svr.Post("/v1/detokenize", route(handle_detokenize));
  svr.Get("/v1/models", [&ctx](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, {{"object", "list"}, {"data", ojson::array({model_card(ctx)})}});
  });
  svr.Get(R"(/v1/models/(.+))", [&ctx](const httplib::Request& req, httplib::Response& res) {
    guarded(ctx, res, [&] {
      std::string id = req.matches[1];
      if (id != ctx.served_name)
        throw ApiError(404, fmt::format("The model '{}' does not exist", id), "invalid_request_error", "model",
                       "model_not_found");
      send_json(res, 200, model_card(ctx));
    });
  });
}

}  // namespace mimo::server
