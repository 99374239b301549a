// SGLang's native routes: /generate, /health, /health_generate,
// /model_info, /get_server_info, /flush_cache, /metrics, and the web page.
#include "core/log.h"
#include "server/http_util.h"
#include "server/logprobs_json.h"
#include "server/protocol.h"
#include "server/response_common.h"

namespace mimo::server {

namespace {

// One /generate result (SGLang's shape), accumulated over outputs.
struct GenResult {
  std::string text;
  std::vector<int32_t> ids;
  ojson token_lps = ojson::array(), top_lps = ojson::array();
  ojson input_token_lps = ojson::array(), input_top_lps = ojson::array();
  int32_t first_prompt_id = 0;  // position 0's entry when logprob_start_len is 0 (it has no logprob)
  bool input_done = false;
  ChoiceProgress progress;
  std::string id;
};

ojson finish_reason_json(const GenResult& g, const std::vector<std::string>& stops) {
  const ChoiceProgress& p = g.progress;
  if (!p.finished) return nullptr;
  if (p.finish_reason == "length") return {{"type", "length"}, {"length", p.completion_tokens}};
  if (p.finish_reason == "stop") return {{"type", "stop"}, {"matched", matched_stop_json(p, stops)}};
  return {{"type", "abort"}, {"message", p.error.empty() ? std::string("aborted") : p.error}};
}

ojson gen_json(const ServerContext& ctx, const GenResult& g, const GenerateRequest& gr, double e2e) {
  ojson meta = {{"id", g.id},
                {"finish_reason", finish_reason_json(g, gr.sampling.stop)},
                {"prompt_tokens", g.progress.prompt_tokens},
                {"completion_tokens", g.progress.completion_tokens},
                {"cached_tokens", g.progress.cached_tokens},
                {"e2e_latency", e2e}};
  if (g.progress.spec_accept_length > 0) meta["spec_accept_length"] = g.progress.spec_accept_length;
  if (gr.return_logprob) {
    if (gr.logprob_start_len >= 0) {
      meta["input_token_logprobs"] = g.input_token_lps;
      meta["input_top_logprobs"] = g.input_top_lps;
    }
    meta["output_token_logprobs"] = g.token_lps;
    meta["output_top_logprobs"] = g.top_lps;
  }
  ojson j = ojson::object();
  if (ctx.tokenizer) j["text"] = g.text;
  j["output_ids"] = g.ids;
  j["meta_info"] = meta;
  return j;
}

void add_output(const ServerContext& ctx, GenResult& g, const GenerateRequest& gr, const EngineOutput& o) {
  g.text += o.text;
  g.ids.insert(g.ids.end(), o.token_ids.begin(), o.token_ids.end());
  g.progress.add(o);
  const Tokenizer* tok = ctx.tokenizer ? &*ctx.tokenizer : nullptr;
  if (gr.return_logprob && gr.logprob_start_len >= 0 && !g.input_done && (!o.prompt_logprobs.empty() || o.finished)) {
    // SGLang's shape: position 0, when asked for, has no logprob (null).
    g.input_done = true;
    if (gr.logprob_start_len == 0) {
      g.input_token_lps.push_back({nullptr, g.first_prompt_id, tok ? ojson(token_text(tok, g.first_prompt_id)) : ojson()});
      g.input_top_lps.push_back(nullptr);
    }
    append_native_logprobs(g.input_token_lps, g.input_top_lps, o.prompt_logprobs, tok, gr.top_logprobs_num);
  }
  if (gr.return_logprob) append_native_logprobs(g.token_lps, g.top_lps, o.logprobs, tok, gr.top_logprobs_num);
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

void handle_generate(ServerContext& ctx, const httplib::Request& req, httplib::Response& res) {
  auto gr = std::make_shared<GenerateRequest>(parse_generate_request(parse_body(req.body)));
  if (!gr->sampling.stop.empty() && !ctx.tokenizer) throw bad_request("stop strings need a tokenizer", "stop");
  std::string base = gr->rid.empty() ? ctx.new_id("") : gr->rid;
  std::vector<std::shared_ptr<Submitted>> subs;
  std::vector<int32_t> first_ids;
  for (size_t i = 0; i < gr->prompts.size(); i++) {
    EngineRequest er;
    er.id = gr->prompts.size() == 1 ? base : fmt::format("{}-p{}", base, i);
    const Prompt& p = gr->prompts[i];
    if (p.is_text && !ctx.tokenizer) throw bad_request("this model has no tokenizer; send 'input_ids'", "text");
    er.input_ids = p.is_text ? ctx.tokenizer->encode(p.text, true) : p.ids;
    first_ids.push_back(er.input_ids.empty() ? 0 : er.input_ids.front());
    er.sampling = gr->sampling;
    er.n = gr->n;
    subs.push_back(submit(ctx, std::move(er)));
  }
  // Result k is sample k % n of prompt k / n.
  auto results = std::make_shared<std::vector<GenResult>>();
  for (size_t i = 0; i < subs.size(); i++)
    for (auto& h : subs[i]->handles) {
      results->emplace_back();
      results->back().id = h->id();
      results->back().first_prompt_id = first_ids[i];
    }
  auto arrival = subs.front()->arrival;
  if (gr->stream) {
    SseCallbacks cb;
    cb.on_start = [] { return std::vector<std::string>{}; };
    cb.on_output = [&ctx, gr, results, arrival](int i, const EngineOutput& o) {
      GenResult& g = (*results)[size_t(i)];
      add_output(ctx, g, *gr, o);
      return std::vector<std::string>{dump_json(gen_json(ctx, g, *gr, seconds_since(arrival)))};
    };
    cb.on_end = [] { return std::vector<std::string>{}; };
    cb.failed = [] { return false; };
    stream_sse(req, res, std::move(subs), std::move(cb));
    return;
  }
  if (!collect(req, res, subs, [&](int i, const EngineOutput& o) { add_output(ctx, (*results)[size_t(i)], *gr, o); }))
    return;
  for (auto& g : *results)
    if (auto e = output_error(g.progress)) throw *e;
  double e2e = seconds_since(arrival);
  if (!gr->batched && gr->n == 1) {
    send_json(res, 200, gen_json(ctx, results->front(), *gr, e2e));
    return;
  }
  ojson arr = ojson::array();
  for (auto& g : *results) arr.push_back(gen_json(ctx, g, *gr, e2e));
  send_json(res, 200, arr);
}

ojson engine_state(const ServerContext& ctx) {
  EngineStats s = ctx.engine->stats();
  auto pool = [](int64_t cap, int64_t used, int64_t cached) {
    return ojson{{"capacity", cap}, {"used", used}, {"cached", cached},
                 {"usage", cap > 0 ? double(used) / double(cap) : 0.0}};
  };
  ojson st = {{"num_running_reqs", s.running},
              {"num_waiting_reqs", s.waiting},
              {"last_gen_throughput", s.gen_throughput},
              {"kv_pools", {{"full", pool(s.full_capacity, s.full_used, s.cached_full)},
                            {"swa", pool(s.swa_capacity, s.swa_used, s.cached_swa)}}},
              {"token_usage", s.full_capacity > 0 ? double(s.full_used) / double(s.full_capacity) : 0.0},
              {"cache_hit_rate", cache_hit_rate(s)},
              {"num_retractions", s.retractions},
              {"prompt_tokens_total", s.prompt_tokens},
              {"cached_prompt_tokens_total", s.cached_prompt_tokens},
              {"generation_tokens_total", s.generated_tokens},
              {"num_finished_reqs", s.finished_requests},
              {"forward_steps", s.steps},
              {"new_token_ratio", s.new_token_ratio},
              {"kv_bytes", s.kv_bytes},
              {"context_length", s.context_length},
              {"graph_steps", s.graph_steps},
              {"graph_captures", s.graph_captures}};
  if (auto a = spec_accept_length(s)) {
    st["avg_spec_accept_length"] = *a;
    st["spec_decode_steps_by_depth"] = s.decode_steps_by_depth;  // index = draft depth verified (0: none)
  }
  return st;
}

ojson model_info(const ServerContext& ctx) {
  return {{"model_path", ctx.model_path},
          {"tokenizer_path", ctx.tokenizer ? ojson(ctx.model_path) : ojson()},
          {"served_model_name", ctx.served_name},
          {"is_generation", true},
          {"preferred_sampling_params", nullptr},
          {"context_length", ctx.engine->context_length()},
          {"vocab_size", ctx.model.model->spec().vocab_size},  // not in SGLang: bench-serving's random token ids
          {"has_chat_template", ctx.chat_template.has_value()}};
}

void handle_health_generate(ServerContext& ctx, httplib::Response& res) {
  EngineRequest er;
  er.id = ctx.new_id("health-");
  er.input_ids = {0};
  if (ctx.tokenizer) {
    auto ids = ctx.tokenizer->encode("Hello", true);
    if (!ids.empty()) er.input_ids = ids;
  }
  er.sampling.max_new_tokens = 1;
  er.sampling.ignore_eos = true;
  auto s = submit(ctx, std::move(er));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!s->all_done() && std::chrono::steady_clock::now() < deadline) {
    int idx;
    EngineOutput o;
    if (s->next(&idx, &o, std::chrono::milliseconds(200)) && o.finished && !o.error.empty())
      throw ApiError(503, "health check generation failed: " + o.error, "service_unavailable_error");
  }
  if (!s->all_done()) throw ApiError(503, "health check generation timed out", "service_unavailable_error");
  res.status = 200;
}

}  // namespace

// SGLang's /abort_request: {"rid": ID} ends that request (and its n > 1
// siblings or batch entries) as aborted, or {"abort_all": true} every one in
// flight; their clients get what was generated with finish_reason abort.
static void handle_abort_request(ServerContext& ctx, const httplib::Request& req, httplib::Response& res) {
  const ojson b = parse_body(req.body);
  const ojson* all = b.contains("abort_all") ? &b["abort_all"] : nullptr;
  if (all && !all->is_boolean()) throw bad_request("'abort_all' must be a boolean", "abort_all");
  if (all && all->get<bool>()) {
    for (const std::string& id : ctx.live.ids()) ctx.engine->abort(id);
  } else {
    if (!b.contains("rid") || !b["rid"].is_string() || b["rid"].get<std::string>().empty())
      throw bad_request("'rid' (the request id to abort) is required", "rid");
    ctx.engine->abort(b["rid"].get<std::string>());
  }
  res.status = 200;
}

// SGLang's /get_load (what its router balances on): requests, and the tokens
// (prompt + output) of those running or waiting.
static ojson load_json(const ServerContext& ctx) {
  const EngineStats s = ctx.engine->stats();
  return ojson::array({{{"dp_rank", 0},
                        {"num_reqs", s.running + s.waiting},
                        {"num_waiting_reqs", s.waiting},
                        {"num_tokens", s.request_tokens}}});
}

void handle_flush_cache(ServerContext& ctx, httplib::Response& res) {
  if (ctx.engine->flush_cache()) {
    res.status = 200;
    res.set_content("Cache flushed.\n", "text/plain");
  } else {
    send_error(ctx, res, bad_request("Cache not flushed: requests are running or waiting (flush when the server is idle)"));
  }
}

void register_native_routes(httplib::Server& svr, ServerContext& ctx) {
  svr.Post("/generate", [&ctx](const httplib::Request& req, httplib::Response& res) {
    guarded(ctx, res, [&] { handle_generate(ctx, req, res); });
  });
  svr.Get("/health", [&ctx](const httplib::Request&, httplib::Response& res) {
    if (ctx.draining) send_json(res, 503, ApiError(503, "shutting down", "service_unavailable_error").body());
    else res.status = 200;
  });
  svr.Get("/health_generate", [&ctx](const httplib::Request&, httplib::Response& res) {
    guarded(ctx, res, [&] { handle_health_generate(ctx, res); });
  });
  for (const char* path : {"/model_info", "/get_model_info"})
    svr.Get(path, [&ctx](const httplib::Request&, httplib::Response& res) { send_json(res, 200, model_info(ctx)); });
  for (const char* path : {"/get_server_info", "/server_info"})
    svr.Get(path, [&ctx](const httplib::Request&, httplib::Response& res) {
      ojson info = ctx.args.flags;
      info["model_path"] = ctx.model_path;
      info["served_model_name"] = ctx.served_name;
      info["context_length"] = ctx.engine->context_length();
      info["version"] = "mimoserve-0.1";
      info["internal_states"] = ojson::array({engine_state(ctx)});
      send_json(res, 200, info);
    });
  svr.Post("/abort_request", [&ctx](const httplib::Request& req, httplib::Response& res) {
    guarded(ctx, res, [&] { handle_abort_request(ctx, req, res); });
  });
  svr.Get("/get_load", [&ctx](const httplib::Request&, httplib::Response& res) { send_json(res, 200, load_json(ctx)); });
  auto flush = [&ctx](const httplib::Request&, httplib::Response& res) { handle_flush_cache(ctx, res); };
  svr.Post("/flush_cache", flush);
  svr.Get("/flush_cache", flush);
  svr.Get("/metrics", [&ctx](const httplib::Request&, httplib::Response& res) {
    res.set_content(ctx.metrics.prometheus(ctx.engine->stats(), ctx.served_name), "text/plain; version=0.0.4");
  });
  svr.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(web_index_html(), "text/html; charset=utf-8");
  });
}

}  // namespace mimo::server
