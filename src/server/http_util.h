// Internal to src/server: what the route handlers share on top of
// cpp-httplib — JSON and error responses, waiting on several request
// handles, and server-sent-event streaming with abort on disconnect.
#pragma once

#include <httplib.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "server/api_error.h"
#include "server/client_watch.h"
#include "server/server.h"

namespace mimo::server {

using ojson = nlohmann::ordered_json;

void send_json(httplib::Response& res, int status, const ojson& body);
void send_error(ServerContext& ctx, httplib::Response& res, const ApiError& e);

// Runs a handler body, turning ApiError, EngineError and other exceptions
// into error responses.
void guarded(ServerContext& ctx, httplib::Response& res, const std::function<void()>& body);

// 404 when the request names another model.
void check_model(const ServerContext& ctx, const std::string& model);

// Submits to the engine (EngineError becomes ApiError) and registers the ids
// as live until the returned guard is destroyed.
struct Submitted {
  std::vector<std::shared_ptr<RequestHandle>> handles;
  std::string id;
  std::chrono::steady_clock::time_point arrival = std::chrono::steady_clock::now();
  ServerContext* ctx = nullptr;
  std::vector<bool> done;  // per handle: its final output was seen
  // Per handle: when its last output with tokens came (unset before the
  // first), for the TTFT and inter-token latency metrics.
  std::vector<std::chrono::steady_clock::time_point> last_tokens;
  ~Submitted();
  // Waits for the next output of any unfinished handle; false on timeout.
  bool next(int* index, EngineOutput* out, std::chrono::milliseconds timeout);
  bool all_done() const;
  // Aborts whatever has not finished (client gone).
  void abort_rest();
  void timed(size_t handle, const EngineOutput& out);
};
std::shared_ptr<Submitted> submit(ServerContext& ctx, EngineRequest r);

// Runs `subs` to the end, handing each output to `on_output`. false when
// the client of `req` went away first: the rest is aborted (its KV freed
// now) and `res` says 499, as nginx logs a client that closed its request.
bool collect(const httplib::Request& req, httplib::Response& res, std::vector<std::shared_ptr<Submitted>>& subs,
             const std::function<void(int, const EngineOutput&)>& on_output);

// Streams server-sent events. `on_output` turns an output of handle i into
// event payloads; `on_end` gives the last ones (before "[DONE]") once all
// handles finished or `failed()` says an error event went out. The request
// is aborted if the client of `req` goes away first (a failed write, or the
// watch while no event is due).
struct SseCallbacks {
  std::function<std::vector<std::string>()> on_start;
  std::function<std::vector<std::string>(int, const EngineOutput&)> on_output;
  std::function<std::vector<std::string>()> on_end;
  std::function<bool()> failed;
};
void stream_sse(const httplib::Request& req, httplib::Response& res, std::vector<std::shared_ptr<Submitted>> subs,
                SseCallbacks cb);

// Records a finished choice in the metrics.
void record_finish(ServerContext& ctx, const Submitted& s, const EngineOutput& o);

void register_openai_routes(httplib::Server& svr, ServerContext& ctx);
void register_native_routes(httplib::Server& svr, ServerContext& ctx);
void handle_flush_cache(ServerContext& ctx, httplib::Response& res);
const std::string& web_index_html();

}  // namespace mimo::server
