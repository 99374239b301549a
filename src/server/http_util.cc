#include "server/http_util.h"

#include <thread>

#include "core/log.h"

namespace mimo::server {

void send_json(httplib::Response& res, int status, const ojson& body) {
  res.status = status;
  res.set_content(dump_json(body), "application/json");
}

void send_error(ServerContext& ctx, httplib::Response& res, const ApiError& e) {
  ctx.metrics.request_rejected(e.status);
  send_json(res, e.status, e.body());
}

void guarded(ServerContext& ctx, httplib::Response& res, const std::function<void()>& body) {
  try {
    body();
  } catch (const ApiError& e) {
    send_error(ctx, res, e);
  } catch (const EngineError& e) {
    send_error(ctx, res, from_engine_error(e.kind, e.what()));
  } catch (const Error& e) {
    // Input the lower layers refused (template, tokenizer, parsers).
    send_error(ctx, res, bad_request(e.what()));
  } catch (const std::exception& e) {
    spdlog::error("request failed: {}", e.what());
    send_error(ctx, res, ApiError(500, std::string("internal error: ") + e.what(), "server_error"));
  }
}

void check_model(const ServerContext& ctx, const std::string& model) {
  if (!ctx.model_matches(model))
    throw ApiError(404, fmt::format("The model '{}' does not exist; this server serves '{}'", model, ctx.served_name),
                   "invalid_request_error", "model", "model_not_found");
}

std::shared_ptr<Submitted> submit(ServerContext& ctx, EngineRequest r) {
  if (ctx.draining) throw from_engine_error(EngineError::ShuttingDown, "the server is shutting down");
  auto s = std::make_shared<Submitted>();
  s->id = r.id;
  s->handles = ctx.engine->submit(std::move(r));  // throws EngineError
  s->done.assign(s->handles.size(), false);
  s->last_tokens.resize(s->handles.size());
  s->ctx = &ctx;
  ctx.live.add(s->id);
  return s;
}

Submitted::~Submitted() {
  if (!ctx) return;
  abort_rest();
  ctx->live.remove(id);
}

bool Submitted::all_done() const {
  for (bool d : done)
    if (!d) return false;
  return true;
}

void Submitted::abort_rest() {
  if (!ctx || all_done()) return;
  ctx->engine->abort(id);
  // Nobody reads these requests' last outputs: count them here.
  double e2e = std::chrono::duration<double>(std::chrono::steady_clock::now() - arrival).count();
  for (size_t i = 0; i < done.size(); i++)
    if (!done[i]) {
      done[i] = true;
      ctx->metrics.request_finished("abort", e2e);
    }
}

// TTFT for a handle's first output with tokens, inter-token latency for
// the later ones (server-side, as a client would see them).
void Submitted::timed(size_t i, const EngineOutput& out) {
  if (out.token_ids.empty() || !ctx) return;
  const auto now = std::chrono::steady_clock::now();
  auto& last = last_tokens[i];
  if (last.time_since_epoch().count() == 0)
    ctx->metrics.first_token(std::chrono::duration<double>(now - arrival).count());
  else
    ctx->metrics.inter_token(std::chrono::duration<double>(now - last).count() / double(out.token_ids.size()),
                             int64_t(out.token_ids.size()));
  last = now;
}

bool Submitted::next(int* index, EngineOutput* out, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int waiting = -1;
    for (size_t i = 0; i < handles.size(); i++) {
      if (done[i]) continue;
      if (waiting < 0) waiting = int(i);
      if (handles[i]->next(out, std::chrono::milliseconds(0))) {
        *index = int(i);
        if (out->finished) done[i] = true;
        timed(i, *out);
        return true;
      }
    }
    if (waiting < 0) return false;
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return false;
    // One handle: block on it. Several: wait briefly on one, then poll all.
    auto slice = handles.size() == 1 ? deadline - now
                                     : std::min<std::chrono::steady_clock::duration>(deadline - now,
                                                                                      std::chrono::milliseconds(5));
    if (handles[size_t(waiting)]->next(out, std::chrono::duration_cast<std::chrono::milliseconds>(slice))) {
      *index = waiting;
      if (out->finished) done[size_t(waiting)] = true;
      timed(size_t(waiting), *out);
      return true;
    }
  }
}

bool collect(const httplib::Request& req, httplib::Response& res, std::vector<std::shared_ptr<Submitted>>& subs,
             const std::function<void(int, const EngineOutput&)>& on_output) {
  ClientWatch watch(req);
  int off = 0;
  for (auto& s : subs) {
    while (!s->all_done()) {
      if (watch.gone()) {
        for (auto& t : subs) t->abort_rest();
        res.status = 499;
        return false;
      }
      int idx;
      EngineOutput o;
      if (!s->next(&idx, &o, std::chrono::milliseconds(100))) continue;
      record_finish(*s->ctx, *s, o);
      on_output(off + idx, o);
    }
    off += int(s->handles.size());
  }
  return true;
}

void record_finish(ServerContext& ctx, const Submitted& s, const EngineOutput& o) {
  if (!o.finished) return;
  double e2e = std::chrono::duration<double>(std::chrono::steady_clock::now() - s.arrival).count();
  // Requests the shutdown aborted count as aborts, as before they carried its error.
  const bool failed = !o.error.empty() && o.error_kind != EngineError::ShuttingDown;
  ctx.metrics.request_finished(failed ? "error" : o.finish_reason, e2e);
}

namespace {

struct SseState {
  explicit SseState(const httplib::Request& req) : watch(req) {}
  ClientWatch watch;
  std::vector<std::shared_ptr<Submitted>> subs;
  std::vector<int> offsets;  // global index of each submission's first handle
  SseCallbacks cb;
  bool started = false, ended = false;
  size_t rr = 0;  // round robin over submissions
};

bool write_event(httplib::DataSink& sink, const std::string& payload) {
  std::string ev = "data: " + payload + "\n\n";
  return sink.write(ev.data(), ev.size());
}

// One call of the content provider: the first events, then the next output
// (waiting a moment for it), and once all is done the closing events.
// false: a write failed (the client went away).
bool sse_step(SseState& st, httplib::DataSink& sink) {
  if (!st.started) {
    st.started = true;
    for (auto& p : st.cb.on_start())
      if (!write_event(sink, p)) return false;
  }
  bool all = true;
  for (auto& s : st.subs) all = all && s->all_done();
  if (!all && !st.cb.failed()) {
    // Poll the submissions in turn so none starves.
    for (size_t k = 0; k < st.subs.size(); k++) {
      size_t i = (st.rr + k) % st.subs.size();
      Submitted& s = *st.subs[i];
      if (s.all_done()) continue;
      int idx;
      EngineOutput o;
      if (s.next(&idx, &o, std::chrono::milliseconds(st.subs.size() == 1 ? 200 : 2))) {
        st.rr = i + 1;
        record_finish(*s.ctx, s, o);
        for (auto& p : st.cb.on_output(st.offsets[i] + idx, o))
          if (!write_event(sink, p)) return false;
        return true;
      }
    }
    // Nothing yet: httplib calls again, unless the client left (which only
    // a write would otherwise show).
    return !st.watch.gone();
  }
  for (auto& p : st.cb.on_end())
    if (!write_event(sink, p)) return false;
  if (!write_event(sink, "[DONE]")) return false;
  st.ended = true;
  sink.done();
  return true;
}

}  // namespace

void stream_sse(const httplib::Request& req, httplib::Response& res, std::vector<std::shared_ptr<Submitted>> subs,
                SseCallbacks cb) {
  auto st = std::make_shared<SseState>(req);
  int off = 0;
  for (auto& s : subs) {
    st->offsets.push_back(off);
    off += int(s->handles.size());
  }
  st->subs = std::move(subs);
  st->cb = std::move(cb);
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  // httplib calls the provider until it calls done() or a write fails (the
  // client went away); each call blocks for the next output.
  res.set_chunked_content_provider(
      "text/event-stream",
      [st](size_t, httplib::DataSink& sink) {
        try {
          return sse_step(*st, sink);
        } catch (const std::exception& e) {
          // The headers are out: the error reaches the client as an event.
          spdlog::error("stream failed: {}", e.what());
          write_event(sink, dump_json(ApiError(500, std::string("internal error: ") + e.what(), "server_error").body()));
          write_event(sink, "[DONE]");
          st->ended = true;
          for (auto& s : st->subs) s->abort_rest();
          sink.done();
          return true;
        }
      },
      [st](bool success) {
        // Client gone (or the stream failed): free the KV now.
        if (!success || !st->ended)
          for (auto& s : st->subs) s->abort_rest();
      });
}

// LiveRequests and ServerContext helpers live here too: small and shared.
void LiveRequests::add(const std::string& id) {
  std::lock_guard<std::mutex> lk(mu_);
  ids_[id]++;
}
void LiveRequests::remove(const std::string& id) {
  std::lock_guard<std::mutex> lk(mu_);
  if (auto it = ids_.find(id); it != ids_.end() && --it->second == 0) ids_.erase(it);
}
std::vector<std::string> LiveRequests::ids() const {
  std::lock_guard<std::mutex> lk(mu_);
  std::vector<std::string> out;
  for (auto& [k, _] : ids_) out.push_back(k);
  return out;
}
size_t LiveRequests::size() const {
  std::lock_guard<std::mutex> lk(mu_);
  return ids_.size();
}

}  // namespace mimo::server
