#include "bench/serving.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <mutex>
#include <numeric>
#include <random>
#include <regex>
#include <semaphore>
#include <thread>

#include <httplib.h>

#include "bench/svg_chart.h"
#include "core/error.h"

namespace mimo::bench::serving {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

double seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

// Common English words: the chat backend's random prompts (one word is
// about one token for a BPE tokenizer trained on English).
const char* const kWords[] = {
    "the",   "of",    "and",   "to",    "in",    "is",    "that",  "for",   "it",    "as",    "was",   "with",
    "be",    "by",    "on",    "not",   "he",    "this",  "are",   "or",    "his",   "from",  "at",    "which",
    "but",   "have",  "an",    "had",   "they",  "you",   "were",  "their", "one",   "all",   "we",    "can",
    "her",   "has",   "there", "been",  "if",    "more",  "when",  "will",  "would", "who",   "so",    "no",
    "time",  "people", "year", "way",   "day",   "man",   "thing", "woman", "life",  "child", "world", "school",
    "state", "family", "group", "country", "problem", "hand", "part", "place", "case", "week", "company", "system",
    "water", "light", "house", "river", "stone", "city",  "night", "word",  "book",  "story", "king",  "land"};

std::string trim_right_slash(std::string s) {
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

// "http://h:p/prefix" -> ("http://h:p", "/prefix").
std::pair<std::string, std::string> split_url(const std::string& base_url) {
  static const std::regex re(R"(^(https?://[^/]+)(/.*)?$)");
  std::smatch m;
  std::string u = trim_right_slash(base_url);
  if (!std::regex_match(u, m, re)) fail("--base-url '{}' is not http(s)://host:port[/path]", base_url);
  return {m[1].str(), m[2].matched ? m[2].str() : std::string()};
}

httplib::Headers headers_for(const Options& opt) {
  httplib::Headers h;
  if (!opt.api_key.empty()) h.emplace("Authorization", "Bearer " + opt.api_key);
  return h;
}

std::string truncate(std::string s, size_t n = 400) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  if (s.size() > n) s = s.substr(0, n) + "...";
  return s;
}

int json_int(const json& j, const char* k) {
  if (!j.is_object()) return -1;
  auto it = j.find(k);
  return it != j.end() && it->is_number_integer() ? it->get<int>() : -1;
}

bool nonempty_string(const json& j, const char* k) {
  if (!j.is_object()) return false;
  auto it = j.find(k);
  return it != j.end() && it->is_string() && !it->get_ref<const std::string&>().empty();
}

std::string error_message(const json& j) {
  if (!j.is_object() || !j.contains("error")) return {};
  const json& e = j["error"];
  if (e.is_object() && e.contains("message") && e["message"].is_string()) return e["message"].get<std::string>();
  if (e.is_string()) return e.get<std::string>();
  return e.dump();
}

void read_usage(const json& j, ChunkInfo* c) {
  if (!j.is_object() || !j.contains("usage") || !j["usage"].is_object()) return;
  c->completion_tokens = json_int(j["usage"], "completion_tokens");
  c->prompt_tokens = json_int(j["usage"], "prompt_tokens");
}

// One request: sends it, reads the (streamed) response, times it.
RequestResult do_request(const Options& opt, const RequestSpec& spec, Clock::time_point bench_start,
                         const std::atomic<bool>* cancel) {
  RequestResult r;
  r.input_len = spec.input_len;
  r.requested_output_len = spec.output_len;
  auto [host, prefix] = split_url(opt.base_url);
  httplib::Client cli(host);
  cli.set_connection_timeout(std::chrono::milliseconds(int64_t(std::min(opt.request_timeout_s, 30.0) * 1000)));
  auto timeout = std::chrono::milliseconds(int64_t(opt.request_timeout_s * 1000));
  cli.set_read_timeout(timeout);
  cli.set_write_timeout(timeout);

  httplib::Request req;
  req.method = "POST";
  req.path = prefix + api_path(opt.api);
  req.headers = headers_for(opt);
  req.headers.emplace("Content-Type", "application/json");
  if (opt.stream) req.headers.emplace("Accept", "text/event-stream");
  req.body = request_body(opt.api, opt.model, spec, opt.stream, opt.ignore_eos, opt.extra_body).dump();

  int status = 0;
  std::string raw, stream_error;
  SseParser sse;
  int completion_tokens = -1, usage_tokens = -1, prompt_tokens = -1, token_chunks = 0;
  bool got_first = false, timed_out = false;
  Clock::time_point t0, last;
  req.response_handler = [&](const httplib::Response& res) {
    status = res.status;
    return true;
  };
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    Clock::time_point now = Clock::now();
    if (seconds(t0, now) > opt.request_timeout_s) {
      timed_out = true;
      return false;
    }
    if (cancel && cancel->load()) return false;
    if (status != 200 || !opt.stream) {
      raw.append(data, n);
      return true;
    }
    sse.feed(data, n, [&](const std::string& payload) {
      if (payload == "[DONE]" || !stream_error.empty()) return;
      json j = json::parse(payload, nullptr, false);
      if (j.is_discarded()) {
        stream_error = "unparsable stream payload: " + truncate(payload);
        return;
      }
      ChunkInfo c = parse_chunk(opt.api, j, completion_tokens);
      if (!c.error.empty()) {
        stream_error = c.error;
        return;
      }
      if (c.prompt_tokens >= 0) prompt_tokens = c.prompt_tokens;
      if (opt.api == Api::Generate) {
        if (c.completion_tokens >= 0) completion_tokens = c.completion_tokens;
      } else if (c.completion_tokens >= 0) {
        usage_tokens = c.completion_tokens;
      }
      if (!c.token) return;
      token_chunks++;
      if (!got_first) {
        got_first = true;
        r.ttft = seconds(t0, now);
      } else {
        r.itl.push_back(seconds(last, now));
      }
      last = now;
    });
    return stream_error.empty();
  };

  httplib::Response res;
  httplib::Error err = httplib::Error::Success;
  t0 = Clock::now();
  r.start = seconds(bench_start, t0);
  bool sent = cli.send(req, res, err);
  Clock::time_point t1 = Clock::now();
  r.e2e = seconds(t0, t1);
  if (timed_out || (!sent && err == httplib::Error::Read && r.e2e >= opt.request_timeout_s * 0.99)) {
    r.error = "timed out after " + std::to_string(opt.request_timeout_s) + " s";
    return r;
  }
  if (!stream_error.empty()) {
    r.error = stream_error;
    return r;
  }
  if (!sent) {
    r.error = "cannot reach " + opt.base_url + ": " + httplib::to_string(err);
    return r;
  }
  if (status != 200) {
    json j = json::parse(raw, nullptr, false);
    std::string m = j.is_discarded() ? truncate(raw) : error_message(j);
    r.error = "HTTP " + std::to_string(status) + ": " + (m.empty() ? truncate(raw) : m);
    return r;
  }
  if (!opt.stream) {
    json j = json::parse(raw, nullptr, false);
    if (j.is_discarded()) {
      r.error = "unparsable response: " + truncate(raw);
      return r;
    }
    ChunkInfo c = parse_response(opt.api, j);
    if (!c.error.empty()) {
      r.error = c.error;
      return r;
    }
    r.ttft = r.e2e;  // without streaming the first token arrives with the last
    r.output_len = c.completion_tokens >= 0 ? c.completion_tokens : spec.output_len;
    if (c.prompt_tokens >= 0) r.input_len = c.prompt_tokens;
    r.ok = true;
    return r;
  }
  if (!got_first) r.ttft = r.e2e;
  if (prompt_tokens >= 0) r.input_len = prompt_tokens;
  r.output_len = usage_tokens >= 0 ? usage_tokens : completion_tokens >= 0 ? completion_tokens : token_chunks;
  r.ok = true;
  return r;
}

std::string fmt_num(double v, int prec = 2) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", prec, v);
  return b;
}

std::string row(const std::string& k, const std::string& v) {
  char b[256];
  std::snprintf(b, sizeof b, "%-40s %s\n", k.c_str(), v.c_str());
  return b;
}

std::string centered(const std::string& s, char fill) {
  size_t n = 50;
  if (s.size() >= n) return s + "\n";
  size_t left = (n - s.size()) / 2;
  return std::string(left, fill) + s + std::string(n - s.size() - left, fill) + "\n";
}

}  // namespace

Api parse_backend(const std::string& name) {
  if (name == "sglang-oai" || name == "vllm" || name == "openai" || name == "lmdeploy") return Api::Completions;
  if (name == "sglang-oai-chat" || name == "openai-chat" || name == "vllm-chat") return Api::Chat;
  if (name == "sglang" || name == "sglang-native") return Api::Generate;
  fail("unknown --backend '{}' (sglang-oai, sglang-oai-chat, sglang)", name);
}

const char* api_path(Api api) {
  switch (api) {
    case Api::Completions: return "/v1/completions";
    case Api::Chat: return "/v1/chat/completions";
    case Api::Generate: return "/generate";
  }
  return "";
}

std::vector<RequestSpec> random_dataset(int num_prompts, int input_len, int output_len, double range_ratio,
                                        int vocab_size, uint64_t seed, bool as_text) {
  MIMO_CHECK(num_prompts >= 0, "--num-prompts must not be negative");
  MIMO_CHECK(input_len >= 1 && output_len >= 1, "--random-input-len and --random-output-len must be >= 1");
  MIMO_CHECK(range_ratio >= 0 && range_ratio <= 1, "--random-range-ratio must be in [0, 1]");
  MIMO_CHECK(as_text || vocab_size >= 1, "the vocabulary size must be >= 1");
  std::mt19937_64 rng(seed);
  auto lens = [&](int len) {
    int lo = std::max(1, int(std::floor(double(len) * range_ratio)));
    std::vector<int> v(static_cast<size_t>(num_prompts));
    std::uniform_int_distribution<int> d(lo, len);
    for (int& x : v) x = d(rng);
    return v;
  };
  std::vector<int> in = lens(input_len), out = lens(output_len);
  std::vector<RequestSpec> ds(static_cast<size_t>(num_prompts));
  std::uniform_int_distribution<int> tok(0, std::max(vocab_size, 1) - 1);
  std::uniform_int_distribution<size_t> word(0, sizeof kWords / sizeof kWords[0] - 1);
  for (size_t i = 0; i < ds.size(); i++) {
    RequestSpec& r = ds[i];
    r.input_len = in[i];
    r.output_len = out[i];
    if (as_text) {
      for (int k = 0; k < in[i]; k++) {
        if (k) r.text += ' ';
        r.text += kWords[word(rng)];
      }
    } else {
      r.ids.resize(size_t(in[i]));
      for (int32_t& t : r.ids) t = tok(rng);
    }
  }
  return ds;
}

std::vector<double> arrival_times(int n, double rate, uint64_t seed) {
  std::vector<double> t(size_t(std::max(n, 0)), 0.0);
  if (!(rate > 0) || std::isinf(rate)) return t;
  std::mt19937_64 rng(seed);
  std::exponential_distribution<double> gap(rate);
  for (size_t i = 1; i < t.size(); i++) t[i] = t[i - 1] + gap(rng);
  return t;
}

json request_body(Api api, const std::string& model, const RequestSpec& r, bool stream, bool ignore_eos,
                  const json& extra) {
  json b;
  switch (api) {
    case Api::Completions:
      b = {{"model", model}, {"prompt", r.ids}, {"max_tokens", r.output_len}, {"temperature", 0.0},
           {"stream", stream}, {"ignore_eos", ignore_eos}};
      if (stream) b["stream_options"] = {{"include_usage", true}};
      break;
    case Api::Chat:
      b = {{"model", model},
           {"messages", json::array({{{"role", "user"}, {"content", r.text}}})},
           {"max_tokens", r.output_len},
           {"temperature", 0.0},
           {"stream", stream},
           {"ignore_eos", ignore_eos}};
      if (stream) b["stream_options"] = {{"include_usage", true}};
      break;
    case Api::Generate:
      b = {{"input_ids", r.ids},
           {"sampling_params", {{"temperature", 0.0}, {"max_new_tokens", r.output_len}, {"ignore_eos", ignore_eos}}},
           {"stream", stream}};
      break;
  }
  if (extra.is_object())
    for (auto it = extra.begin(); it != extra.end(); ++it) b[it.key()] = it.value();
  return b;
}

void SseParser::feed(const char* p, size_t n, const std::function<void(const std::string&)>& on_data) {
  buf_.append(p, n);
  size_t start = 0;
  for (;;) {
    size_t nl = buf_.find('\n', start);
    if (nl == std::string::npos) break;
    std::string_view line(buf_.data() + start, nl - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.substr(0, 5) == "data:") {
      line.remove_prefix(5);
      if (!line.empty() && line.front() == ' ') line.remove_prefix(1);
      on_data(std::string(line));
    }
    start = nl + 1;
  }
  buf_.erase(0, start);
}

ChunkInfo parse_chunk(Api api, const json& j, int prev_completion_tokens) {
  ChunkInfo c;
  c.error = error_message(j);
  if (!c.error.empty() || !j.is_object()) return c;
  if (api == Api::Generate) {
    const json& meta = j.contains("meta_info") ? j["meta_info"] : json();
    c.completion_tokens = json_int(meta, "completion_tokens");
    c.prompt_tokens = json_int(meta, "prompt_tokens");
    if (c.completion_tokens >= 0) c.token = c.completion_tokens > std::max(prev_completion_tokens, 0);
    else c.token = nonempty_string(j, "text");
    return c;
  }
  read_usage(j, &c);
  if (j.contains("choices") && j["choices"].is_array() && !j["choices"].empty()) {
    const json& ch = j["choices"][0];
    if (api == Api::Completions) {
      c.token = nonempty_string(ch, "text");
    } else if (ch.is_object() && ch.contains("delta")) {
      const json& d = ch["delta"];
      c.token = nonempty_string(d, "content") || nonempty_string(d, "reasoning_content") ||
                (d.is_object() && d.contains("tool_calls") && d["tool_calls"].is_array() && !d["tool_calls"].empty());
    }
  }
  return c;
}

ChunkInfo parse_response(Api api, const json& j) {
  ChunkInfo c;
  c.error = error_message(j);
  if (!c.error.empty()) return c;
  const json& one = j.is_array() && !j.empty() ? j[0] : j;
  if (api == Api::Generate) {
    const json& meta = one.is_object() && one.contains("meta_info") ? one["meta_info"] : json();
    c.completion_tokens = json_int(meta, "completion_tokens");
    c.prompt_tokens = json_int(meta, "prompt_tokens");
  } else {
    read_usage(one, &c);
  }
  c.token = true;
  return c;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  double idx = std::clamp(p, 0.0, 100.0) / 100.0 * double(v.size() - 1);
  size_t lo = size_t(std::floor(idx));
  size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (idx - double(lo));
}

Dist distribution(const std::vector<double>& v) {
  Dist d;
  d.n = v.size();
  if (v.empty()) return d;
  d.mean = std::accumulate(v.begin(), v.end(), 0.0) / double(v.size());
  double ss = 0;
  for (double x : v) ss += (x - d.mean) * (x - d.mean);
  d.std = std::sqrt(ss / double(v.size()));
  d.median = percentile(v, 50);
  d.p90 = percentile(v, 90);
  d.p95 = percentile(v, 95);
  d.p99 = percentile(v, 99);
  d.max = *std::max_element(v.begin(), v.end());
  return d;
}

std::vector<double> tpots(const std::vector<RequestResult>& rs) {
  std::vector<double> v;
  for (const RequestResult& r : rs)
    if (r.ok && r.output_len > 1) v.push_back((r.e2e - r.ttft) / double(r.output_len - 1));
  return v;
}

std::vector<double> pooled_itls(const std::vector<RequestResult>& rs) {
  std::vector<double> v;
  for (const RequestResult& r : rs)
    if (r.ok) v.insert(v.end(), r.itl.begin(), r.itl.end());
  return v;
}

Summary summarize(const std::vector<RequestResult>& rs, double duration) {
  Summary s;
  s.duration = duration;
  std::vector<double> e2e, ttft;
  double sum_e2e = 0;
  for (const RequestResult& r : rs) {
    if (!r.ok) {
      s.failed++;
      if (s.first_error.empty()) s.first_error = r.error;
      continue;
    }
    s.completed++;
    if (r.output_len > 1 && r.itl.empty()) s.one_chunk++;
    s.total_input += r.input_len;
    s.total_output += r.output_len;
    e2e.push_back(r.e2e * 1000);
    ttft.push_back(r.ttft * 1000);
    sum_e2e += r.e2e;
  }
  if (duration > 0) {
    s.request_throughput = double(s.completed) / duration;
    s.input_throughput = double(s.total_input) / duration;
    s.output_throughput = double(s.total_output) / duration;
    s.total_throughput = double(s.total_input + s.total_output) / duration;
    s.concurrency = sum_e2e / duration;
  }
  auto ms = [](std::vector<double> v) {
    for (double& x : v) x *= 1000;
    return v;
  };
  s.e2e_ms = distribution(e2e);
  s.ttft_ms = distribution(ttft);
  s.tpot_ms = distribution(ms(tpots(rs)));
  s.itl_ms = distribution(ms(pooled_itls(rs)));
  return s;
}

std::string format_report(const Summary& s) {
  std::string o = centered(" Serving Benchmark Result ", '=');
  o += row("Backend:", s.backend);
  o += row("Traffic request rate:", std::isinf(s.request_rate) || s.request_rate <= 0 ? "inf" : fmt_num(s.request_rate));
  o += row("Max request concurrency:", s.max_concurrency > 0 ? std::to_string(s.max_concurrency) : "not set");
  o += row("Successful requests:", std::to_string(s.completed));
  o += row("Failed requests:", std::to_string(s.failed));
  o += row("Benchmark duration (s):", fmt_num(s.duration));
  o += row("Total input tokens:", std::to_string(s.total_input));
  o += row("Total generated tokens:", std::to_string(s.total_output));
  o += row("Request throughput (req/s):", fmt_num(s.request_throughput));
  o += row("Input token throughput (tok/s):", fmt_num(s.input_throughput));
  o += row("Output token throughput (tok/s):", fmt_num(s.output_throughput));
  o += row("Total token throughput (tok/s):", fmt_num(s.total_throughput));
  o += row("Concurrency:", fmt_num(s.concurrency));
  if (s.accept_length) o += row("Accept length:", fmt_num(*s.accept_length));
  auto section = [&](const char* title, const char* name, const Dist& d, bool with_max) {
    o += centered(title, '-');
    o += row(std::string("Mean ") + name + " (ms):", fmt_num(d.mean));
    o += row(std::string("Median ") + name + " (ms):", fmt_num(d.median));
    o += row(std::string("Std ") + name + " (ms):", fmt_num(d.std));
    o += row(std::string("P90 ") + name + " (ms):", fmt_num(d.p90));
    o += row(std::string("P95 ") + name + " (ms):", fmt_num(d.p95));
    o += row(std::string("P99 ") + name + " (ms):", fmt_num(d.p99));
    if (with_max) o += row(std::string("Max ") + name + " (ms):", fmt_num(d.max));
  };
  section("End-to-End Latency", "E2E Latency", s.e2e_ms, false);
  section("Time to First Token", "TTFT", s.ttft_ms, false);
  section("Time per Output Token (excl. 1st token)", "TPOT", s.tpot_ms, false);
  section("Inter-Token Latency", "ITL", s.itl_ms, true);
  o += std::string(50, '=') + "\n";
  if (s.failed > 0) o += "First error: " + s.first_error + "\n";
  if (s.one_chunk > 0)
    o += fmt::format(
        "Note: {} of {} requests received all their text in one chunk, so TTFT is their whole latency and TPOT/ITL "
        "are not per token (a model without tokenizer.json streams no text; --backend sglang streams token ids)\n",
        s.one_chunk, s.completed);
  return o;
}

json to_json(const Summary& s, const std::vector<RequestResult>& rs) {
  json j;
  j["backend"] = s.backend;
  j["request_rate"] = std::isinf(s.request_rate) || s.request_rate <= 0 ? json("inf") : json(s.request_rate);
  j["max_concurrency"] = s.max_concurrency > 0 ? json(s.max_concurrency) : json();
  j["completed"] = s.completed;
  j["one_chunk_requests"] = s.one_chunk;
  j["failed"] = s.failed;
  j["first_error"] = s.first_error.empty() ? json() : json(s.first_error);
  j["duration"] = s.duration;
  j["total_input_tokens"] = s.total_input;
  j["total_output_tokens"] = s.total_output;
  j["request_throughput"] = s.request_throughput;
  j["input_throughput"] = s.input_throughput;
  j["output_throughput"] = s.output_throughput;
  j["total_throughput"] = s.total_throughput;
  j["concurrency"] = s.concurrency;
  j["accept_length"] = s.accept_length ? json(*s.accept_length) : json();
  auto put = [&](const std::string& name, const Dist& d) {
    j["mean_" + name + "_ms"] = d.mean;
    j["median_" + name + "_ms"] = d.median;
    j["std_" + name + "_ms"] = d.std;
    j["p90_" + name + "_ms"] = d.p90;
    j["p95_" + name + "_ms"] = d.p95;
    j["p99_" + name + "_ms"] = d.p99;
    j["max_" + name + "_ms"] = d.max;
  };
  put("e2e_latency", s.e2e_ms);
  put("ttft", s.ttft_ms);
  put("tpot", s.tpot_ms);
  put("itl", s.itl_ms);
  json in = json::array(), out = json::array(), req_out = json::array(), ttfts = json::array(),
       e2es = json::array(), starts = json::array(), itls = json::array(), errors = json::array(),
       ok = json::array();
  for (const RequestResult& r : rs) {
    in.push_back(r.input_len);
    out.push_back(r.output_len);
    req_out.push_back(r.requested_output_len);
    ttfts.push_back(r.ttft);
    e2es.push_back(r.e2e);
    starts.push_back(r.start);
    itls.push_back(r.itl);
    errors.push_back(r.error);
    ok.push_back(r.ok);
  }
  j["input_lens"] = in;
  j["output_lens"] = out;
  j["requested_output_lens"] = req_out;
  j["ttfts"] = ttfts;
  j["e2e_latencies"] = e2es;
  j["start_times"] = starts;
  j["itls"] = itls;
  j["errors"] = errors;
  j["success"] = ok;
  return j;
}

std::optional<double> accept_length_from_server_info(const json& info) {
  auto read = [](const json& o) -> std::optional<double> {
    if (o.is_object() && o.contains("avg_spec_accept_length") && o["avg_spec_accept_length"].is_number())
      return o["avg_spec_accept_length"].get<double>();
    return std::nullopt;
  };
  if (auto a = read(info)) return a;
  if (info.is_object() && info.contains("internal_states") && info["internal_states"].is_array() &&
      !info["internal_states"].empty())
    return read(info["internal_states"][0]);
  return std::nullopt;
}

std::string cdf_plot_svg(const std::vector<RequestResult>& rs, const std::string& title) {
  auto cdf = [&](const char* name, double RequestResult::*field) {
    std::vector<double> v;
    for (const RequestResult& r : rs)
      if (r.ok) v.push_back(r.*field * 1000);
    std::sort(v.begin(), v.end());
    chart::Series s = chart::series(name);
    if (!v.empty()) {
      s.x.push_back(v.front());
      s.y.push_back(0.0);
    }
    for (size_t i = 0; i < v.size(); i++) {
      s.x.push_back(v[i]);
      s.y.push_back(double(i + 1) / double(v.size()));
    }
    return s;
  };
  chart::Panel p = chart::panel(title, "latency (ms)", "fraction of requests");
  p.series = {cdf("TTFT", &RequestResult::ttft), cdf("E2E latency", &RequestResult::e2e)};
  return chart::render({p});
}

std::optional<json> get_json(const Options& opt, const std::string& path, std::string* error) {
  auto [host, prefix] = split_url(opt.base_url);
  httplib::Client cli(host);
  cli.set_connection_timeout(std::chrono::seconds(10));
  cli.set_read_timeout(std::chrono::seconds(30));
  auto res = cli.Get(prefix + path, headers_for(opt));
  if (!res) {
    *error = "cannot reach " + opt.base_url + ": " + httplib::to_string(res.error());
    return std::nullopt;
  }
  if (res->status != 200) {
    *error = "GET " + path + ": HTTP " + std::to_string(res->status) + ": " + truncate(res->body);
    return std::nullopt;
  }
  json j = json::parse(res->body, nullptr, false);
  if (j.is_discarded()) {
    *error = "GET " + path + ": not JSON: " + truncate(res->body);
    return std::nullopt;
  }
  return j;
}

BenchResult run_benchmark(Options opt, const std::vector<RequestSpec>& dataset,
                          const std::function<void(const std::string&)>& log) {
  MIMO_CHECK(!dataset.empty(), "no requests to send (--num-prompts 0)");
  split_url(opt.base_url);  // validates it
  BenchResult out;
  if (opt.model.empty() && opt.api != Api::Generate) {
    std::string err;
    auto models = get_json(opt, "/v1/models", &err);
    if (!models) fail("{} (is the server running?)", err);
    if (!models->contains("data") || !(*models)["data"].is_array() || (*models)["data"].empty() ||
        !(*models)["data"][0].contains("id"))
      fail("GET /v1/models listed no model; pass --model");
    opt.model = (*models)["data"][0]["id"].get<std::string>();
  }
  out.model = opt.model;

  Clock::time_point t_start = Clock::now();
  if (opt.warmup_requests > 0) {
    log("warming up with " + std::to_string(opt.warmup_requests) + " request(s)");
    RequestSpec w = dataset.front();
    w.output_len = std::min(w.output_len, 16);
    std::vector<RequestResult> wr(size_t(opt.warmup_requests));
    std::vector<std::thread> th;
    for (size_t i = 0; i < wr.size(); i++)
      th.emplace_back([&, i] { wr[i] = do_request(opt, w, t_start, nullptr); });
    for (auto& t : th) t.join();
    for (const RequestResult& r : wr)
      if (!r.ok) fail("the warmup request failed: {}", r.error);
  }

  const size_t n = dataset.size();
  std::vector<double> arrivals = arrival_times(int(n), opt.request_rate, opt.seed ^ 0x9e3779b97f4a7c15ull);
  out.requests.resize(n);
  std::counting_semaphore<> slots(opt.max_concurrency > 0 ? opt.max_concurrency : std::ptrdiff_t(n));
  std::mutex mu;
  std::vector<size_t> finished;
  std::vector<std::thread> threads(n);
  log("sending " + std::to_string(n) + " requests");
  Clock::time_point t0 = Clock::now();
  for (size_t i = 0; i < n; i++) {
    std::this_thread::sleep_until(t0 + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(arrivals[i])));
    slots.acquire();
    threads[i] = std::thread([&, i] {
      out.requests[i] = do_request(opt, dataset[i], t0, nullptr);
      slots.release();
      std::lock_guard<std::mutex> g(mu);
      finished.push_back(i);
    });
    // Join the threads that are done so a long run holds few of them.
    std::vector<size_t> reap;
    {
      std::lock_guard<std::mutex> g(mu);
      reap.swap(finished);
    }
    for (size_t k : reap) threads[k].join();
  }
  for (auto& t : threads)
    if (t.joinable()) t.join();
  double duration = seconds(t0, Clock::now());

  Summary& s = out.summary;
  s = summarize(out.requests, duration);
  if (!opt.stream) s.one_chunk = 0;  // one chunk is what was asked for
  s.backend = opt.backend_name;
  s.request_rate = opt.request_rate > 0 ? opt.request_rate : std::numeric_limits<double>::infinity();
  s.max_concurrency = opt.max_concurrency;
  std::string err;
  if (auto info = get_json(opt, "/get_server_info", &err)) s.accept_length = accept_length_from_server_info(*info);
  return out;
}

}  // namespace mimo::bench::serving
