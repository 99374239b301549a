#include "server/server.h"

#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "core/log.h"
#include "core/thread_pool.h"
#include "parsers/reasoning_parser.h"
#include "parsers/tool_parser.h"
#include "server/default_model.h"
#include "server/http_util.h"

namespace mimo::server {

namespace fs = std::filesystem;

std::string ServerContext::new_id(const std::string& prefix) {
  return fmt::format("{}{:016x}", prefix, id_salt_ + id_counter_.fetch_add(1) * 0x9e3779b97f4a7c15ull);
}

bool ServerContext::model_matches(const std::string& name) const {
  // Absent, the served name, the model path, or "default" (so examples
  // work against any server).
  return name.empty() || name == served_name || name == model_path || name == "default";
}

namespace {

std::unique_ptr<Backend> make_device_backend(const std::string& device) {
  if (device == "cpu") return make_cpu_backend();
  if (device == "cuda" || device == "auto") {
    if (auto b = make_cuda_backend()) return b;
    if (device == "cuda") fail("--device cuda: this build has no CUDA backend or no GPU is present");
    return make_cpu_backend();
  }
  fail("--device must be cpu, cuda or auto, got '{}'", device);
}

bool has_chat_template(const fs::path& dir) {
  if (fs::exists(dir / "chat_template.jinja") || fs::exists(dir / "chat_template.json")) return true;
  std::ifstream in(dir / "tokenizer_config.json");
  if (!in) return false;
  auto cfg = nlohmann::json::parse(in, nullptr, false);
  return cfg.is_object() && cfg.contains("chat_template") && !cfg["chat_template"].is_null();
}

template <typename Names>
void check_name(const std::string& flag, const std::string& v, const Names& names) {
  if (v.empty()) return;
  for (auto& n : names)
    if (n == v) return;
  std::string list;
  for (auto& n : names) list += (list.empty() ? "" : ", ") + n;
  fail("{} '{}' is not known (known: {})", flag, v, list);
}

}  // namespace

// SGLang's --kv-cache-dtype names (an FP8 cache only on the CPU backend,
// refused elsewhere rather than quietly kept in bf16). Without a backend
// yet, only the name is checked.
static DType kv_cache_dtype(const std::string& name, DType weights, const Backend* backend = nullptr) {
  DType d;
  const bool on_cpu = !backend || backend->device() == Device::CPU;
  if (std::string why = kv_cache_dtype_from_flag(name, weights, on_cpu, &d); !why.empty()) fail("{}", why);
  return d;
}

void ServerContext::load() {
  id_salt_ = std::random_device{}() * 0x100000001ull + std::random_device{}();
  check_name("--reasoning-parser", args.reasoning_parser, reasoning_parser_names());
  check_name("--tool-call-parser", args.tool_call_parser, tool_parser_names());
  kv_cache_dtype(args.kv_cache_dtype, DType::BF16);  // a bad name fails before the weights load
  model_path = args.model_path.empty() ? default_model_path() : args.model_path;
  served_name = !args.served_model_name.empty() ? args.served_model_name
                : args.model_path.empty()      ? "mimoserve-default"
                                               : model_path;
  if (args.threads > 0) ThreadPool::set_global_threads(args.threads);
  backend = make_device_backend(args.device);
  ModelLoadOptions mo;
  mo.dtype = args.dtype;
  mo.quantization = args.quantization;
  mo.num_threads = args.loader_threads;
  model = load_model(model_path, *backend, mo);
  // SGLang reports the weights' quantisation (null when none is in use).
  args.flags["quantization"] = model.model->weights().fp8_matrices > 0 ? nlohmann::ordered_json("fp8") : nlohmann::ordered_json();
  fs::path dir = fs::is_directory(model_path) ? fs::path(model_path) : fs::path(model_path).parent_path();
  if (!args.tokenizer_path.empty()) {
    dir = args.tokenizer_path;
    if (!fs::exists(dir / "tokenizer.json")) fail("--tokenizer-path: {} has no tokenizer.json", dir.string());
  }
  if (args.skip_tokenizer_init) {
    spdlog::info("--skip-tokenizer-init: no tokenizer; requests send input_ids and get output_ids");
  } else if (fs::exists(dir / "tokenizer.json")) {
    tokenizer = Tokenizer::load(dir.string());
    // A tokenizer may know fewer ids than the model's padded vocabulary, never more.
    const int64_t model_vocab = model.model->spec().vocab_size;
    if (tokenizer->vocab_size() > model_vocab)
      fail("the tokenizer in {} has {} tokens, more than the model's vocabulary of {}", dir.string(),
           tokenizer->vocab_size(), model_vocab);
    codec = std::make_unique<TokenizerCodec>(*tokenizer);
    if (!args.chat_template.empty()) {
      std::ifstream in(args.chat_template);
      if (!in) fail("--chat-template: cannot read {}", args.chat_template);
      std::string src((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      chat_template = ChatTemplate::from_string(src, ChatTemplate::read_special_tokens(dir.string()));
    } else if (has_chat_template(dir)) {
      chat_template = ChatTemplate::from_model_dir(dir.string());
    } else {
      spdlog::warn("{} has no chat template: /v1/chat/completions is unavailable", dir.string());
    }
  } else {
    spdlog::warn("{} has no tokenizer.json: only /generate with input_ids works", dir.string());
  }
  EngineConfig cfg = args.engine;
  cfg.kv_dtype = kv_cache_dtype(args.kv_cache_dtype, model.weight_dtype, backend.get());
  // The toy default model needs no gigabytes of KV cache.
  if (args.model_path.empty() && cfg.max_total_tokens <= 0 && cfg.mem_fraction_static <= 0)
    cfg.max_total_tokens = 65536;
  engine = std::make_unique<Engine>(cfg, *model.model, codec.get());
}

namespace {

bool constant_time_equal(const std::string& a, const std::string& b) {
  // Every byte of the longer string is looked at, whatever matches.
  size_t n = std::max(a.size(), b.size());
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < n; i++) {
    unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

// Routes anyone may call (SGLang exempts health checks and metrics too; the
// page holds no data and asks for the key itself).
bool public_route(const std::string& path) {
  return path == "/" || path == "/health" || path == "/health_generate" || path == "/metrics";
}

bool authorized(const httplib::Request& req, const std::string& key) {
  std::string h = req.get_header_value("Authorization");
  const std::string bearer = "Bearer ";
  if (h.size() > bearer.size() && std::equal(bearer.begin(), bearer.end(), h.begin(), [](char x, char y) {
        return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
      }))
    return constant_time_equal(h.substr(bearer.size()), key);
  std::string x = req.get_header_value("X-API-Key");  // what some clients send instead
  return !x.empty() && constant_time_equal(x, key);
}

void install_handlers(httplib::Server& svr, ServerContext& ctx) {
  svr.set_default_headers({{"Access-Control-Allow-Origin", "*"}});
  svr.Options(R"(.*)", [](const httplib::Request&, httplib::Response& res) {
    res.status = 204;
    res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    res.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type, X-API-Key");
  });
  svr.set_pre_routing_handler([&ctx](const httplib::Request& req, httplib::Response& res) {
    if (!ctx.args.api_key.empty() && req.method != "OPTIONS" && !public_route(req.path) &&
        !authorized(req, ctx.args.api_key)) {
      send_error(ctx, res, ApiError(401, "Invalid or missing API key: send 'Authorization: Bearer <key>'",
                                    "invalid_request_error", "", "invalid_api_key"));
      return httplib::Server::HandlerResponse::Handled;
    }
    // `curl -X POST .../flush_cache` sends no Content-Length, which httplib
    // refuses before routing; there is no body to read, so answer here.
    if (req.method == "POST" && req.path == "/flush_cache" && !req.has_header("Content-Length") &&
        !req.has_header("Transfer-Encoding")) {
      handle_flush_cache(ctx, res);
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  register_openai_routes(svr, ctx);
  register_native_routes(svr, ctx);
  // Statuses httplib sets itself (unknown route, body too large, bad HTTP)
  // get an OpenAI error body too.
  svr.set_error_handler(httplib::Server::HandlerWithResponse([&ctx](const httplib::Request& req,
                                                                      httplib::Response& res) {
    if (!res.body.empty() || res.is_chunked_content_provider_) return httplib::Server::HandlerResponse::Unhandled;
    ApiError e = res.status == 404 ? ApiError(404, "no route " + req.method + " " + req.path, "invalid_request_error",
                                              "", "not_found")
                 : res.status == 413
                     ? ApiError(413, fmt::format("the request body is larger than {} bytes (--max-request-bytes)",
                                                 ctx.args.max_body_bytes),
                                "invalid_request_error", "", "request_too_large")
                     : ApiError(res.status, "the request could not be handled", "invalid_request_error");
    ctx.metrics.request_rejected(e.status);
    res.set_content(dump_json(e.body()), "application/json");
    return httplib::Server::HandlerResponse::Handled;
  }));
  svr.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    res.status = 500;
    res.set_content(dump_json(ApiError(500, "internal error: " + what, "server_error").body()), "application/json");
  });
}

// Waits for SIGINT/SIGTERM (blocked in every thread, so only this call sees
// them); returns the signal, or 0 after `timeout` when given.
int wait_signal(const sigset_t& set, double timeout_s) {
  if (timeout_s < 0) {
    int sig = 0;
    sigwait(&set, &sig);
    return sig;
  }
  timespec ts{time_t(timeout_s), long((timeout_s - double(time_t(timeout_s))) * 1e9)};
  int sig = sigtimedwait(&set, nullptr, &ts);
  return sig > 0 ? sig : 0;
}

void drain(ServerContext& ctx, const sigset_t& set) {
  ctx.draining = true;
  auto busy = [&] {
    EngineStats s = ctx.engine->stats();
    return ctx.live.size() > 0 || s.running + s.waiting > 0;
  };
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(ctx.args.drain_timeout_s);
  if (busy())
    spdlog::info("draining {} in-flight request(s) for up to {:.0f}s (signal again to stop now)", ctx.live.size(),
                 ctx.args.drain_timeout_s);
  while (busy() && std::chrono::steady_clock::now() < deadline)
    if (wait_signal(set, 0.05)) break;  // a second signal: stop waiting
  if (busy()) {
    auto ids = ctx.live.ids();
    spdlog::warn("aborting {} request(s) still running", ids.size());
    for (auto& id : ids)
      ctx.engine->abort(id, {EngineError::ShuttingDown, "the server is shutting down; the request was aborted"});
    // Give handlers a moment to send the aborted requests' last events.
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (ctx.live.size() > 0 && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace

// SGLang's warm-up: a short generation before the port opens, so the first
// client does not pay for what a first step costs (scratch buffers, CUDA graph
// capture, caches) and a model that cannot generate fails at start, not on a
// user's request. Its counters stay in the engine's totals, as SGLang's do.
static void warmup(ServerContext& ctx) {
  const auto t0 = std::chrono::steady_clock::now();
  EngineRequest r;
  r.id = "warmup";
  const int32_t vocab = int32_t(ctx.model.model->spec().vocab_size);
  for (int32_t i = 1; i <= 4; i++) r.input_ids.push_back(i % vocab);
  r.sampling.max_new_tokens = 4;
  r.sampling.ignore_eos = true;
  auto h = ctx.engine->submit(r)[0];
  for (;;) {
    EngineOutput o;
    if (!h->next(&o, std::chrono::minutes(10))) fail("warm-up generation: no output after 10 minutes");
    if (!o.error.empty()) fail("warm-up generation failed: {}", o.error);
    if (o.finished) break;
  }
  ctx.engine->flush_cache();
  spdlog::info("warm-up generation done in {:.0f} ms", 1e3 * std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
}

int run_server(ServerArgs args) {
  // Only the main thread takes SIGINT/SIGTERM (threads inherit the mask);
  // a client that goes away must not kill the process with SIGPIPE.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  ServerContext ctx;
  ctx.args = std::move(args);
  ctx.load();
  if (!ctx.args.skip_warmup) warmup(ctx);

  httplib::Server svr;
  // Every streaming request holds an HTTP thread: the pool must not cap
  // concurrency below what the engine runs.
  size_t threads = size_t(std::max(ctx.args.engine.max_running_requests * 2, 64));
  svr.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  svr.set_payload_max_length(ctx.args.max_body_bytes);
  svr.set_keep_alive_timeout(5);  // an idle keep-alive connection holds a thread this long
  svr.set_keep_alive_max_count(1000);
  svr.set_read_timeout(60);
  svr.set_write_timeout(60);
  svr.set_tcp_nodelay(true);
  install_handlers(svr, ctx);

  int port = ctx.args.port;
  if (port == 0) {
    port = svr.bind_to_any_port(ctx.args.host);
    if (port < 0) fail("cannot bind to {} (any port)", ctx.args.host);
  } else if (!svr.bind_to_port(ctx.args.host, port)) {
    fail("cannot bind to {}:{} (in use, or a bad --host)", ctx.args.host, port);
  }
  ctx.args.flags["port"] = port;
  std::thread listener([&] { svr.listen_after_bind(); });
  // A fixed line that scripts (and the tests) read to find the port.
  std::fprintf(stderr, "mimoserve: serving %s on http://%s:%d\n", ctx.served_name.c_str(), ctx.args.host.c_str(),
               port);
  std::fflush(stderr);

  int sig = wait_signal(set, -1);
  spdlog::info("received {}: shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  drain(ctx, set);
  svr.stop();
  listener.join();
  ctx.engine->shutdown(false);
  std::fprintf(stderr, "mimoserve: stopped\n");
  return 0;
}

}  // namespace mimo::server
