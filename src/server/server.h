// `mimoserve serve`: the HTTP front end over one Engine. HTTP threads do
// JSON, templates and tokenizing; the engine thread only sees token ids.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "chat/chat_template.h"
#include "engine/engine.h"
#include "loader/load_model.h"
#include "server/metrics.h"
#include "server/tokenizer_codec.h"

namespace mimo::server {

struct ServerArgs {
  std::string model_path;  // empty: the default model
  std::string host = "127.0.0.1";
  int port = 30000;        // 0: any free port (printed at start)
  std::string served_model_name;  // empty: the model path
  std::string api_key;            // empty: no authentication
  std::string chat_template;      // a Jinja file overriding the model's template
  std::string tokenizer_path;     // tokenizer (and chat template) from here instead of the model's folder
  bool skip_tokenizer_init = false;  // no tokenizer: token ids in, token ids out (SGLang's flag)
  std::string reasoning_parser;   // "" | qwen3 | qwen3-thinking
  std::string tool_call_parser;   // "" | mimo | qwen25
  std::string device = "auto";    // cpu | cuda | auto
  std::string dtype = "auto";     // weights: auto | float32 | bfloat16
  std::string kv_cache_dtype = "auto";  // auto (the weights' compute dtype) | bfloat16 | float32 | fp8_e4m3 (CPU)
  std::string quantization;       // SGLang's --quantization: "" or "fp8" (the checkpoint must be FP8)
  int threads = 0;                // CPU compute threads (0: all cores)
  int loader_threads = 0;         // threads while loading weights (0: as compute)
  // The engine as the server runs it: SGLang's defaults for the batch log
  // interval and the watchdog.
  EngineConfig engine = [] {
    EngineConfig c;
    c.decode_log_interval = 40;
    c.watchdog_timeout_s = 300;
    return c;
  }();
  size_t max_body_bytes = size_t(32) << 20;
  double drain_timeout_s = 30;    // SIGTERM: how long in-flight requests may finish
  bool skip_warmup = false;       // no warm-up generation before the port opens (--skip-server-warmup)
  nlohmann::ordered_json flags = nlohmann::ordered_json::object();  // every flag as given, for /get_server_info
};

// Request ids the server has in the engine, so a shutdown can abort the
// ones still running after the drain timeout.
class LiveRequests {
 public:
  void add(const std::string& id);
  void remove(const std::string& id);
  std::vector<std::string> ids() const;
  size_t size() const;

 private:
  mutable std::mutex mu_;
  std::unordered_map<std::string, int> ids_;
};

// Everything a handler needs; shared by all HTTP threads.
struct ServerContext {
  ServerArgs args;
  std::string model_path, served_name;
  std::unique_ptr<Backend> backend;
  LoadedModel model;
  std::optional<Tokenizer> tokenizer;
  std::unique_ptr<TokenizerCodec> codec;
  std::optional<ChatTemplate> chat_template;
  std::unique_ptr<Engine> engine;
  Metrics metrics;
  LiveRequests live;
  std::atomic<bool> draining{false};
  std::chrono::system_clock::time_point started = std::chrono::system_clock::now();

  // "prefix-<unique hex>"
  std::string new_id(const std::string& prefix);
  // Whether `name` (the request's "model") names this server's model.
  bool model_matches(const std::string& name) const;
  // Loads the model, tokenizer and template, and starts the engine.
  void load();

 private:
  std::atomic<uint64_t> id_counter_{0};
  uint64_t id_salt_ = 0;
};

// Loads the model, serves until SIGTERM/SIGINT, drains, returns the exit code.
int run_server(ServerArgs args);

}  // namespace mimo::server
