// `mimoserve bench-serving`: an HTTP load generator against a running
// OpenAI-compatible or SGLang-native server, measuring what a client sees
// (like `python -m sglang.bench_serving`): time to first token, time per
// output token, inter-token latency, end-to-end latency and throughput.
//
// The dataset, the arrival schedule, the stream parsing and the statistics
// are pure functions (unit-tested without a server); run_benchmark() does
// the HTTP with one cpp-httplib client per in-flight request.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace mimo::bench::serving {

// Which API the requests go to.
enum class Api {
  Completions,  // sglang-oai: POST /v1/completions, prompt as token ids
  Chat,         // sglang-oai-chat: POST /v1/chat/completions, random text
  Generate,     // sglang: POST /generate, input_ids
};
// "sglang-oai" | "sglang-oai-chat" | "sglang" (also "vllm"/"openai" as Completions, "openai-chat" as Chat).
Api parse_backend(const std::string& name);
const char* api_path(Api api);

struct RequestSpec {
  std::vector<int32_t> ids;  // prompt token ids (Completions, Generate)
  std::string text;          // prompt text (Chat)
  int input_len = 0;         // tokens asked for (ids.size(), or the word count of text)
  int output_len = 0;        // max_tokens
};

// SGLang's "random" dataset: input and output lengths uniform over
// [max(1, floor(len * range_ratio)), len], prompts of uniform random token
// ids in [0, vocab_size) or, with as_text, of random words.
std::vector<RequestSpec> random_dataset(int num_prompts, int input_len, int output_len, double range_ratio,
                                        int vocab_size, uint64_t seed, bool as_text);

// Send offsets in seconds from the benchmark start: Poisson arrivals at
// `rate` requests/s (exponential gaps, the first request at 0), or all at
// 0 when rate is infinite or <= 0.
std::vector<double> arrival_times(int n, double rate, uint64_t seed);

// The JSON body of one request. `extra` (an object) is merged over it at
// the top level. ignore_eos asks for exactly output_len tokens.
nlohmann::json request_body(Api api, const std::string& model, const RequestSpec& r, bool stream, bool ignore_eos,
                            const nlohmann::json& extra);

// Splits an SSE byte stream into `data:` payloads, across arbitrary chunk
// boundaries.
class SseParser {
 public:
  // Calls on_data for every complete `data:` line in the bytes so far.
  void feed(const char* p, size_t n, const std::function<void(const std::string&)>& on_data);

 private:
  std::string buf_;
};

// What one streamed payload says.
struct ChunkInfo {
  bool token = false;          // carries generated output (a TTFT/ITL event)
  int completion_tokens = -1;  // output tokens so far or in total, when the payload says
  int prompt_tokens = -1;
  std::string error;           // an error payload
};
// `prev_completion_tokens` is the count reported by the previous payload
// (for /generate, whose payloads are cumulative); -1 before any.
ChunkInfo parse_chunk(Api api, const nlohmann::json& payload, int prev_completion_tokens);
// The same for a whole non-streamed response body.
ChunkInfo parse_response(Api api, const nlohmann::json& body);

// One request as the client saw it. Times in seconds.
struct RequestResult {
  bool ok = false;
  std::string error;
  int input_len = 0;       // prompt tokens (the server's count when it reports one)
  int output_len = 0;      // output tokens (the server's count when it reports one, else token chunks)
  int requested_output_len = 0;
  double start = 0;        // send time, from the benchmark start
  double ttft = 0;         // to the first token chunk (to the whole response without streaming)
  double e2e = 0;          // to the end of the response
  std::vector<double> itl;  // gaps between successive token chunks
};

// numpy's default (linear) percentile of unsorted values, p in [0, 100]; 0 for none.
double percentile(std::vector<double> v, double p);

struct Dist {
  double mean = 0, median = 0, std = 0, p90 = 0, p95 = 0, p99 = 0, max = 0;
  size_t n = 0;
};
Dist distribution(const std::vector<double>& v);  // std is the population std (numpy's default)

// Per request (e2e - ttft) / (output_len - 1), for successful requests with more than one output token.
std::vector<double> tpots(const std::vector<RequestResult>& rs);
// Every inter-token gap of every successful request, pooled.
std::vector<double> pooled_itls(const std::vector<RequestResult>& rs);

struct Summary {
  std::string backend;
  double request_rate = 0;  // inf for all at once
  int max_concurrency = 0;  // 0: not set
  int completed = 0, failed = 0;
  std::string first_error;
  double duration = 0;  // s
  int64_t total_input = 0, total_output = 0;
  double request_throughput = 0, input_throughput = 0, output_throughput = 0, total_throughput = 0;
  double concurrency = 0;  // sum of e2e / duration
  std::optional<double> accept_length;
  Dist e2e_ms, ttft_ms, tpot_ms, itl_ms;
  // Successful requests of several output tokens whose text came in one
  // chunk: streamed, that means no per-token timing (a server without a
  // tokenizer streams no text until the end); the report then says so.
  int one_chunk = 0;
};
Summary summarize(const std::vector<RequestResult>& rs, double duration);

// SGLang's "Serving Benchmark Result" table.
std::string format_report(const Summary& s);
// All figures plus the per-request arrays (input_lens, output_lens, ttfts, e2e_latencies, itls in s; errors).
nlohmann::json to_json(const Summary& s, const std::vector<RequestResult>& rs);

// Reads the speculative accept length from a /get_server_info body: the
// top-level "avg_spec_accept_length" or SGLang's internal_states[0] one.
std::optional<double> accept_length_from_server_info(const nlohmann::json& info);

// The CDF of TTFT and of E2E latency (ms) as an SVG line chart.
std::string cdf_plot_svg(const std::vector<RequestResult>& rs, const std::string& title);

struct Options {
  std::string base_url = "http://127.0.0.1:30000";  // scheme://host:port[/prefix]
  Api api = Api::Completions;
  std::string backend_name = "sglang-oai";
  std::string model;  // empty: the first of GET /v1/models
  std::string api_key;
  bool stream = true, ignore_eos = true;
  double request_rate = 0;  // <= 0 or inf: all at once
  int max_concurrency = 0;  // 0: unlimited
  int warmup_requests = 1;
  double request_timeout_s = 600;
  uint64_t seed = 1;
  nlohmann::json extra_body = nlohmann::json::object();
};

struct BenchResult {
  Summary summary;
  std::vector<RequestResult> requests;
  std::string model;
};

// Sends the warmup requests then the benchmark; throws mimo::Error when
// the server cannot be reached or the warmup fails.
BenchResult run_benchmark(Options opt, const std::vector<RequestSpec>& dataset,
                          const std::function<void(const std::string&)>& log);

// GET on the server (used for /v1/models, /get_model_info,
// /get_server_info): the parsed body, or nullopt with *error set.
std::optional<nlohmann::json> get_json(const Options& opt, const std::string& path, std::string* error);

}  // namespace mimo::bench::serving
