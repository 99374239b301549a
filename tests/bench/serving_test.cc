// Unit tests of bench-serving's pure parts: dataset, arrivals, request
// bodies, stream parsing and the statistics (src/bench/serving.*), and the
// CDF plot (through src/bench/svg_chart.*).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "bench/serving.h"

namespace sv = mimo::bench::serving;
using nlohmann::json;

namespace {

sv::RequestResult req(double ttft, double e2e, int out, std::vector<double> itl = {}, bool ok = true) {
  sv::RequestResult r;
  r.ok = ok;
  r.ttft = ttft;
  r.e2e = e2e;
  r.output_len = out;
  r.input_len = 10;
  r.itl = std::move(itl);
  if (!ok) r.error = "HTTP 500: boom";
  return r;
}

// One row of the report table: the key padded to 40 columns, the value.
std::string line(std::string key, const std::string& value) {
  key.resize(40, ' ');
  return key + " " + value + "\n";
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) n++;
  return n;
}

}  // namespace

TEST(BenchServingStats, PercentileIsNumpysLinear) {
  std::vector<double> v = {4, 1, 3, 2};  // unsorted on purpose
  EXPECT_DOUBLE_EQ(sv::percentile(v, 50), 2.5);
  EXPECT_NEAR(sv::percentile(v, 90), 3.7, 1e-12);
  EXPECT_NEAR(sv::percentile(v, 99), 3.97, 1e-12);
  EXPECT_DOUBLE_EQ(sv::percentile(v, 0), 1);
  EXPECT_DOUBLE_EQ(sv::percentile(v, 100), 4);
  EXPECT_DOUBLE_EQ(sv::percentile({7}, 99), 7);
  EXPECT_DOUBLE_EQ(sv::percentile({}, 50), 0);
}

TEST(BenchServingStats, DistributionMeanStdMax) {
  sv::Dist d = sv::distribution({2, 4, 4, 4, 5, 5, 7, 9});
  EXPECT_DOUBLE_EQ(d.mean, 5);
  EXPECT_DOUBLE_EQ(d.std, 2);  // population std, as numpy.std
  EXPECT_DOUBLE_EQ(d.median, 4.5);
  EXPECT_DOUBLE_EQ(d.max, 9);
  EXPECT_EQ(d.n, 8u);
  EXPECT_EQ(sv::distribution({}).n, 0u);
}

TEST(BenchServingStats, TpotExcludesOneTokenAndFailedRequests) {
  std::vector<sv::RequestResult> rs = {req(0.1, 1.0, 10), req(0.2, 0.2, 1), req(0.1, 0.5, 5, {}, false),
                                       req(0.05, 0.45, 3)};
  std::vector<double> t = sv::tpots(rs);
  ASSERT_EQ(t.size(), 2u);
  EXPECT_NEAR(t[0], 0.1, 1e-12);  // (1.0 - 0.1) / 9
  EXPECT_NEAR(t[1], 0.2, 1e-12);  // (0.45 - 0.05) / 2
}

TEST(BenchServingStats, ItlIsPooledOverSuccessfulRequests) {
  std::vector<sv::RequestResult> rs = {req(0.1, 0.4, 3, {0.1, 0.2}), req(0.1, 0.2, 2, {0.1}),
                                       req(0.1, 0.9, 3, {0.5, 0.3}, false)};
  std::vector<double> v = sv::pooled_itls(rs);
  EXPECT_EQ(v, (std::vector<double>{0.1, 0.2, 0.1}));
}

TEST(BenchServingStats, SummaryTotalsThroughputAndConcurrency) {
  std::vector<sv::RequestResult> rs = {req(0.1, 1.0, 10, {0.1}), req(0.3, 2.0, 20, {0.2, 0.4}),
                                       req(0.1, 5.0, 7, {}, false)};
  sv::Summary s = sv::summarize(rs, 4.0);
  EXPECT_EQ(s.completed, 2);
  EXPECT_EQ(s.failed, 1);
  EXPECT_EQ(s.first_error, "HTTP 500: boom");
  EXPECT_EQ(s.total_input, 20);
  EXPECT_EQ(s.total_output, 30);
  EXPECT_DOUBLE_EQ(s.request_throughput, 0.5);
  EXPECT_DOUBLE_EQ(s.output_throughput, 7.5);
  EXPECT_DOUBLE_EQ(s.total_throughput, 12.5);
  EXPECT_DOUBLE_EQ(s.concurrency, 0.75);  // (1 + 2) / 4
  EXPECT_DOUBLE_EQ(s.e2e_ms.mean, 1500);
  EXPECT_DOUBLE_EQ(s.ttft_ms.median, 200);
  EXPECT_NEAR(s.itl_ms.mean, 700.0 / 3, 1e-9);
  EXPECT_DOUBLE_EQ(s.itl_ms.max, 400);
  EXPECT_NEAR(s.tpot_ms.mean, (100 + 1700.0 / 19) / 2, 1e-9);

  s.backend = "sglang-oai";
  s.request_rate = INFINITY;
  std::string t = sv::format_report(s);
  EXPECT_NE(t.find("Serving Benchmark Result"), std::string::npos);
  EXPECT_NE(t.find(line("Successful requests:", "2")), std::string::npos) << t;
  EXPECT_NE(t.find(line("Failed requests:", "1")), std::string::npos) << t;
  EXPECT_NE(t.find(line("Traffic request rate:", "inf")), std::string::npos) << t;
  EXPECT_NE(t.find(line("Concurrency:", "0.75")), std::string::npos) << t;
  EXPECT_NE(t.find(line("Mean E2E Latency (ms):", "1500.00")), std::string::npos) << t;
  EXPECT_NE(t.find("P99 TPOT (ms):"), std::string::npos);
  EXPECT_NE(t.find("First error: HTTP 500: boom"), std::string::npos);
  EXPECT_EQ(t.find("Accept length"), std::string::npos);
  EXPECT_EQ(s.one_chunk, 0);
  EXPECT_EQ(t.find("in one chunk"), std::string::npos);
  s.accept_length = 2.5;
  EXPECT_NE(sv::format_report(s).find(line("Accept length:", "2.50")), std::string::npos);

  json j = sv::to_json(s, rs);
  EXPECT_EQ(j["completed"], 2);
  EXPECT_EQ(j["request_rate"], "inf");
  EXPECT_EQ(j["output_lens"], json({10, 20, 7}));
  EXPECT_EQ(j["itls"][1], json({0.2, 0.4}));
  EXPECT_EQ(j["errors"][2], "HTTP 500: boom");
  EXPECT_DOUBLE_EQ(j["accept_length"].get<double>(), 2.5);
  EXPECT_EQ(j["one_chunk_requests"], 0);
}

// A streamed request of several tokens whose text came in one chunk (no
// tokenizer on the server) has no per-token timing: the report says so.
TEST(BenchServingStats, OneChunkStreamsAreFlagged) {
  std::vector<sv::RequestResult> rs = {req(1.0, 1.0, 10, {}), req(0.1, 1.0, 10, {0.1}), req(0.5, 0.5, 1, {})};
  sv::Summary s = sv::summarize(rs, 2.0);
  EXPECT_EQ(s.one_chunk, 1);  // one token needs no gap
  const std::string t = sv::format_report(s);
  EXPECT_NE(t.find("Note: 1 of 3 requests received all their text in one chunk"), std::string::npos) << t;
  EXPECT_EQ(sv::to_json(s, rs)["one_chunk_requests"], 1);
}

TEST(BenchServingSchedule, PoissonGapsHaveTheRequestedMean) {
  const int n = 20000;
  std::vector<double> t = sv::arrival_times(n, 10.0, 7);
  ASSERT_EQ(t.size(), size_t(n));
  EXPECT_EQ(t[0], 0.0);
  EXPECT_TRUE(std::is_sorted(t.begin(), t.end()));
  double mean_gap = t.back() / double(n - 1);
  EXPECT_NEAR(mean_gap, 0.1, 0.1 * 0.03);  // standard error ~0.7%
  // Exponential: the gaps' standard deviation equals their mean.
  double ss = 0;
  for (int i = 1; i < n; i++) ss += (t[i] - t[i - 1] - mean_gap) * (t[i] - t[i - 1] - mean_gap);
  EXPECT_NEAR(std::sqrt(ss / (n - 1)), 0.1, 0.1 * 0.05);
  EXPECT_EQ(sv::arrival_times(n, 10.0, 7), t);  // seeded
  EXPECT_NE(sv::arrival_times(n, 10.0, 8), t);
  for (double r : {0.0, double(INFINITY)}) {
    std::vector<double> z = sv::arrival_times(5, r, 7);
    EXPECT_EQ(z, std::vector<double>(5, 0.0));
  }
}

TEST(BenchServingDataset, RandomLengthsAreUniformInTheRange) {
  auto ds = sv::random_dataset(2000, 100, 40, 0.5, 512, 3, false);
  ASSERT_EQ(ds.size(), 2000u);
  int in_min = 1 << 30, in_max = 0, out_min = 1 << 30, out_max = 0;
  double in_sum = 0;
  for (const auto& r : ds) {
    EXPECT_EQ(int(r.ids.size()), r.input_len);
    for (int32_t id : r.ids) ASSERT_TRUE(id >= 0 && id < 512) << id;
    in_min = std::min(in_min, r.input_len);
    in_max = std::max(in_max, r.input_len);
    out_min = std::min(out_min, r.output_len);
    out_max = std::max(out_max, r.output_len);
    in_sum += r.input_len;
  }
  EXPECT_EQ(in_min, 50);
  EXPECT_EQ(in_max, 100);
  EXPECT_EQ(out_min, 20);
  EXPECT_EQ(out_max, 40);
  EXPECT_NEAR(in_sum / 2000, 75, 1.0);
  // Ratio 1: exact lengths; ratio 0: down to 1 token.
  for (const auto& r : sv::random_dataset(50, 32, 8, 1.0, 100, 1, false)) {
    EXPECT_EQ(r.input_len, 32);
    EXPECT_EQ(r.output_len, 8);
  }
  int lo = 1 << 30;
  for (const auto& r : sv::random_dataset(500, 8, 8, 0.0, 100, 1, false)) lo = std::min(lo, r.output_len);
  EXPECT_EQ(lo, 1);
  // Seeded; text prompts have input_len words.
  EXPECT_EQ(sv::random_dataset(5, 16, 4, 0.0, 100, 9, false)[3].ids, sv::random_dataset(5, 16, 4, 0.0, 100, 9, false)[3].ids);
  auto text = sv::random_dataset(3, 12, 4, 1.0, 0, 1, true);
  EXPECT_EQ(count(text[0].text, " ") + 1, 12u);
  EXPECT_TRUE(text[0].ids.empty());
}

TEST(BenchServingRequests, BodiesAskForExactLengths) {
  sv::RequestSpec r;
  r.ids = {5, 6, 7};
  r.text = "hello world";
  r.input_len = 3;
  r.output_len = 9;
  json c = sv::request_body(sv::Api::Completions, "m", r, true, true, json::object());
  EXPECT_EQ(c["prompt"], json({5, 6, 7}));
  EXPECT_EQ(c["max_tokens"], 9);
  EXPECT_EQ(c["ignore_eos"], true);
  EXPECT_EQ(c["stream_options"]["include_usage"], true);
  EXPECT_EQ(c["model"], "m");
  json chat = sv::request_body(sv::Api::Chat, "m", r, false, true, json{{"temperature", 0.7}, {"top_k", 5}});
  EXPECT_EQ(chat["messages"][0]["content"], "hello world");
  EXPECT_FALSE(chat.contains("stream_options"));
  EXPECT_EQ(chat["temperature"], 0.7);  // extra body wins
  EXPECT_EQ(chat["top_k"], 5);
  json g = sv::request_body(sv::Api::Generate, "", r, true, false, json::object());
  EXPECT_EQ(g["input_ids"], json({5, 6, 7}));
  EXPECT_EQ(g["sampling_params"]["max_new_tokens"], 9);
  EXPECT_EQ(g["sampling_params"]["ignore_eos"], false);
  EXPECT_EQ(std::string(sv::api_path(sv::parse_backend("sglang"))), "/generate");
  EXPECT_EQ(std::string(sv::api_path(sv::parse_backend("sglang-oai-chat"))), "/v1/chat/completions");
  EXPECT_THROW(sv::parse_backend("nope"), std::exception);
}

TEST(BenchServingStream, SseParserSplitsAcrossChunkBoundaries) {
  std::string stream =
      "data: {\"a\":1}\n\n: comment\r\ndata:{\"b\":2}\r\n\r\nevent: x\ndata: [DONE]\n\n";
  for (size_t step : {size_t(1), size_t(3), size_t(7), stream.size()}) {
    sv::SseParser p;
    std::vector<std::string> got;
    for (size_t i = 0; i < stream.size(); i += step)
      p.feed(stream.data() + i, std::min(step, stream.size() - i), [&](const std::string& d) { got.push_back(d); });
    EXPECT_EQ(got, (std::vector<std::string>{"{\"a\":1}", "{\"b\":2}", "[DONE]"})) << "step " << step;
  }
}

TEST(BenchServingStream, ChunksSayTokensUsageAndErrors) {
  auto c = sv::parse_chunk(sv::Api::Completions, json::parse(R"({"choices":[{"index":0,"text":" the"}]})"), -1);
  EXPECT_TRUE(c.token);
  c = sv::parse_chunk(sv::Api::Completions,
                      json::parse(R"({"choices":[{"index":0,"text":"","finish_reason":"length"}]})"), -1);
  EXPECT_FALSE(c.token);
  c = sv::parse_chunk(sv::Api::Completions,
                      json::parse(R"({"choices":[],"usage":{"prompt_tokens":32,"completion_tokens":8}})"), -1);
  EXPECT_FALSE(c.token);
  EXPECT_EQ(c.completion_tokens, 8);
  EXPECT_EQ(c.prompt_tokens, 32);
  // Chat: the role chunk carries no token; content and reasoning do.
  c = sv::parse_chunk(sv::Api::Chat, json::parse(R"({"choices":[{"delta":{"role":"assistant","content":""}}]})"), -1);
  EXPECT_FALSE(c.token);
  c = sv::parse_chunk(sv::Api::Chat, json::parse(R"({"choices":[{"delta":{"reasoning_content":"hm"}}]})"), -1);
  EXPECT_TRUE(c.token);
  c = sv::parse_chunk(sv::Api::Chat, json::parse(R"({"choices":[{"delta":{}}],"usage":null})"), -1);
  EXPECT_FALSE(c.token);
  EXPECT_EQ(c.completion_tokens, -1);
  // /generate payloads are cumulative: a token event when the count grows.
  auto gen = [](int n) { return json{{"text", "x"}, {"meta_info", {{"completion_tokens", n}, {"prompt_tokens", 4}}}}; };
  EXPECT_TRUE(sv::parse_chunk(sv::Api::Generate, gen(1), -1).token);
  EXPECT_TRUE(sv::parse_chunk(sv::Api::Generate, gen(3), 1).token);
  EXPECT_FALSE(sv::parse_chunk(sv::Api::Generate, gen(3), 3).token);
  EXPECT_EQ(sv::parse_chunk(sv::Api::Generate, gen(3), 1).completion_tokens, 3);
  // Errors, in a stream or a whole body.
  c = sv::parse_chunk(sv::Api::Completions, json::parse(R"({"error":{"message":"out of memory","code":500}})"), -1);
  EXPECT_EQ(c.error, "out of memory");
  EXPECT_EQ(sv::parse_response(sv::Api::Chat, json::parse(R"({"error":{"message":"bad"}})")).error, "bad");
  auto whole = sv::parse_response(sv::Api::Completions, json::parse(R"({"choices":[{"text":"abc"}],
                                  "usage":{"prompt_tokens":5,"completion_tokens":3}})"));
  EXPECT_EQ(whole.completion_tokens, 3);
  EXPECT_EQ(whole.prompt_tokens, 5);
}

TEST(BenchServingStream, AcceptLengthFromEitherServerInfoForm) {
  EXPECT_EQ(sv::accept_length_from_server_info(json{{"avg_spec_accept_length", 2.5}}), 2.5);
  EXPECT_EQ(sv::accept_length_from_server_info(
                json{{"internal_states", json::array({json{{"avg_spec_accept_length", 3.25}}})}}),
            3.25);
  EXPECT_FALSE(sv::accept_length_from_server_info(json{{"internal_states", json::array({json::object()})}}));
  EXPECT_FALSE(sv::accept_length_from_server_info(json::object()));
}

TEST(BenchSvg, CdfPlotOfRequests) {
  std::vector<sv::RequestResult> rs = {req(0.1, 1.0, 10), req(0.2, 2.0, 10), req(0.1, 5.0, 7, {}, false)};
  std::string out = sv::cdf_plot_svg(rs, "cdf");
  EXPECT_EQ(count(out, "<polyline"), 2u);
  EXPECT_NE(out.find(">TTFT<"), std::string::npos);
  EXPECT_NE(out.find(">E2E latency<"), std::string::npos);
}
