// The server's pieces without HTTP: request parsing and its 400s, the
// default model's tokenizer, and the response builders fed canned engine
// outputs through the same calls the handlers make (so reasoning and tool
// calls, which a random model never produces, are covered end to end from
// model text to JSON).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include <nlohmann/json.hpp>

#include "chat/chat_template.h"
#include "parsers/tool_choice.h"
#include "server/chat_response.h"
#include "server/client_watch.h"
#include "server/completion_response.h"
#include "server/default_model.h"
#include "server/metrics.h"
#include "server/protocol.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace mimo::server {
namespace {

using json = nlohmann::json;

class ServerUnit : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir("server-tok");
    write_tokenizer_files(dir_->path(), 512, builtin_chat_template());
    tok_ = new Tokenizer(Tokenizer::load(dir_->path()));
  }
  static void TearDownTestSuite() {
    delete tok_;
    delete dir_;
  }
  static test::TempDir* dir_;
  static Tokenizer* tok_;
};
test::TempDir* ServerUnit::dir_ = nullptr;
Tokenizer* ServerUnit::tok_ = nullptr;

// Canned engine output: text plus as many fake token ids as it has bytes.
EngineOutput out(const std::string& text, bool finished = false, const std::string& reason = "",
                 int completion = 0) {
  EngineOutput o;
  o.text = text;
  o.token_ids = {1};
  o.finished = finished;
  o.finish_reason = reason;
  o.prompt_tokens = 10;
  o.completion_tokens = completion;
  o.cached_tokens = 4;
  return o;
}

// Feeds `pieces` to choice 0 and returns every chunk.
std::vector<ojson> feed(ChatResponseBuilder& b, const std::vector<std::string>& pieces, const std::string& reason) {
  std::vector<ojson> chunks = b.start();
  for (size_t i = 0; i < pieces.size(); i++) {
    bool last = i + 1 == pieces.size();
    for (auto& c : b.push(0, out(pieces[i], last, last ? reason : "", int(i + 1)))) chunks.push_back(c);
  }
  for (auto& c : b.finish()) chunks.push_back(c);
  return chunks;
}

// Concatenated streamed deltas of a field.
std::string streamed(const std::vector<ojson>& chunks, const std::string& field) {
  std::string s;
  for (auto& c : chunks)
    for (auto& ch : c["choices"])
      if (ch["delta"].contains(field) && ch["delta"][field].is_string()) s += ch["delta"][field].get<std::string>();
  return s;
}

std::vector<std::string> bytewise(const std::string& s, size_t step) {
  std::vector<std::string> v;
  for (size_t i = 0; i < s.size(); i += step) v.push_back(s.substr(i, step));
  return v;
}

TEST_F(ServerUnit, DefaultTokenizerFillsTheVocabularyAndKnowsTheSpecialTokens) {
  EXPECT_EQ(tok_->vocab_size(), 512);
  EXPECT_EQ(tok_->token_to_id("<|im_end|>"), 507);
  EXPECT_EQ(tok_->token_to_id("<think>"), 508);
  for (int32_t id = 0; id < 512; id++) EXPECT_FALSE(tok_->token_bytes(id).empty()) << "hole at id " << id;
  std::string text = "Hello, world! <think>plan</think> The weather in Paris: 42 °C.";
  EXPECT_EQ(tok_->decode(tok_->encode(text)), text);
  EXPECT_LT(tok_->encode("the answer").size(), std::string("the answer").size()) << "merges should apply";
  auto eos = tok_->eos_ids();
  EXPECT_NE(std::find(eos.begin(), eos.end(), 507), eos.end());
  // The template renders a conversation into the MiMo layout.
  ChatTemplate t = ChatTemplate::from_model_dir(dir_->path());
  std::string p = t.render(ojson::parse(R"([{"role": "user", "content": "Hi"}])"), nullptr, true,
                           ojson{{"enable_thinking", false}});
  EXPECT_EQ(p, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
}

TEST_F(ServerUnit, ReasoningIsSplitStreamedAndCounted) {
  ChatResponseOptions o;
  o.id = "chatcmpl-x";
  o.reasoning_parser = "qwen3";
  o.include_usage = true;
  o.tokenizer = tok_;
  const std::string text = "<think>\nThe user greets me. I greet back.\n</think>\n\nHello there!";
  for (size_t step : {size_t(1), size_t(3), text.size()}) {
    ChatResponseBuilder b(o);
    auto chunks = feed(b, bytewise(text, step), "stop");
    EXPECT_EQ(chunks.front()["choices"][0]["delta"], (ojson{{"role", "assistant"}, {"content", ""}}));
    EXPECT_EQ(streamed(chunks, "reasoning_content"), "The user greets me. I greet back.") << step;
    EXPECT_EQ(streamed(chunks, "content"), "Hello there!") << step;
    ojson r = b.response();
    EXPECT_EQ(r["object"], "chat.completion");
    EXPECT_EQ(r["choices"][0]["message"]["reasoning_content"], "The user greets me. I greet back.");
    EXPECT_EQ(r["choices"][0]["message"]["content"], "Hello there!");
    EXPECT_EQ(r["choices"][0]["finish_reason"], "stop");
    int want = int(tok_->encode("The user greets me. I greet back.", false).size());
    EXPECT_EQ(r["usage"]["completion_tokens_details"]["reasoning_tokens"], want);
    // The usage chunk closes the stream with no choices.
    EXPECT_TRUE(chunks.back()["choices"].empty());
    EXPECT_EQ(chunks.back()["usage"]["prompt_tokens_details"]["cached_tokens"], 4);
  }
}

TEST_F(ServerUnit, ThinkingOpenedByThePromptAndThinkingDisabled) {
  ChatResponseOptions o;
  o.reasoning_parser = "qwen3";
  o.reasoning.thinking_started_in_prompt = prompt_opens_thinking("<|im_start|>assistant\n<think>\n");
  ChatResponseBuilder a(o);
  feed(a, {"plan it", "</think>", "done"}, "stop");
  EXPECT_EQ(a.result(0).reasoning, "plan it");
  EXPECT_EQ(a.result(0).content, "done");
  o.reasoning = {};
  o.reasoning.enable_thinking = false;
  ChatResponseBuilder b(o);
  feed(b, {"<think>x</think>y"}, "stop");
  EXPECT_EQ(b.result(0).reasoning, "");
  EXPECT_EQ(b.result(0).content, "<think>x</think>y");
}

const char* kTools = R"([{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object",
  "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}, "required": ["city"]}}}])";

TEST_F(ServerUnit, ToolCallsStreamAndFinishWithToolCalls) {
  ChatResponseOptions o;
  o.reasoning_parser = "qwen3";
  o.tool_parser = "mimo";
  o.tools = json::parse(kTools);
  o.tokenizer = tok_;
  o.call_ids = seeded_call_id_generator(7);
  const std::string text =
      "<think>Need the weather.</think>Let me check.\n<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n"
      "</parameter>\n<parameter=days>\n3\n</parameter>\n</function>\n</tool_call>";
  for (size_t step : {size_t(1), size_t(5), text.size()}) {
    ChatResponseBuilder b(o);
    auto chunks = feed(b, bytewise(text, step), "stop");
    // Streamed: a header delta with id and name, then argument pieces.
    std::string args, name, id;
    for (auto& c : chunks)
      for (auto& ch : c["choices"])
        if (ch["delta"].contains("tool_calls"))
          for (auto& t : ch["delta"]["tool_calls"]) {
            EXPECT_EQ(t["index"], 0);
            if (t.contains("id")) id = t["id"];
            if (t["function"].contains("name")) name = t["function"]["name"];
            args += t["function"]["arguments"].get<std::string>();
          }
    EXPECT_EQ(name, "get_weather");
    EXPECT_EQ(id.rfind("call_", 0), 0u);
    EXPECT_EQ(json::parse(args), (json{{"city", "Paris"}, {"days", 3}})) << args;
    EXPECT_EQ(streamed(chunks, "content"), "Let me check.\n");  // text before a call is kept as is (SGLang too)
    EXPECT_EQ(streamed(chunks, "reasoning_content"), "Need the weather.");
    ojson last = chunks.back()["choices"][0];
    EXPECT_EQ(last["finish_reason"], "tool_calls");
    ojson r = b.response();
    ojson m = r["choices"][0]["message"];
    EXPECT_EQ(r["choices"][0]["finish_reason"], "tool_calls");
    ASSERT_EQ(m["tool_calls"].size(), 1u);
    EXPECT_EQ(m["tool_calls"][0]["type"], "function");
    EXPECT_EQ(m["tool_calls"][0]["function"]["name"], "get_weather");
    EXPECT_EQ(json::parse(m["tool_calls"][0]["function"]["arguments"].get<std::string>()),
              (json{{"city", "Paris"}, {"days", 3}}));
    EXPECT_EQ(m["content"], "Let me check.\n");
  }
}

// parallel_tool_calls: false returns the first of several calls only.
TEST_F(ServerUnit, ParallelToolCallsFalseKeepsTheFirstCall) {
  const std::string call =
      "<tool_call>\n<function=get_weather>\n<parameter=city>\nCITY\n</parameter>\n</function>\n</tool_call>";
  std::string text = call;
  text.replace(text.find("CITY"), 4, "Paris");
  text += "\n" + call;
  text.replace(text.rfind("CITY"), 4, "Rome");
  for (bool parallel : {true, false}) {
    ChatResponseOptions o;
    o.tool_parser = "mimo";
    o.tools = json::parse(kTools);
    o.tokenizer = tok_;
    o.parallel_tool_calls = parallel;
    ChatResponseBuilder b(o);
    auto chunks = feed(b, bytewise(text, 7), "stop");
    int max_index = -1;
    for (auto& c : chunks)
      for (auto& ch : c["choices"])
        if (ch["delta"].contains("tool_calls"))
          for (auto& t : ch["delta"]["tool_calls"]) max_index = std::max(max_index, t["index"].get<int>());
    EXPECT_EQ(max_index, parallel ? 1 : 0);
    ojson m = b.response()["choices"][0]["message"];
    ASSERT_EQ(m["tool_calls"].size(), parallel ? 2u : 1u);
    EXPECT_EQ(json::parse(m["tool_calls"][0]["function"]["arguments"].get<std::string>()), (json{{"city", "Paris"}}));
    EXPECT_EQ(b.response()["choices"][0]["finish_reason"], "tool_calls");
  }
  ChatRequest c = parse_chat_request(parse_body(R"({"messages": [{"role": "user", "content": "hi"}],
      "parallel_tool_calls": false})"));
  EXPECT_FALSE(c.parallel_tool_calls);
}

TEST_F(ServerUnit, UnknownFunctionStaysTextAndTruncatedCallKeepsLength) {
  ChatResponseOptions o;
  o.tool_parser = "mimo";
  o.tools = json::parse(kTools);
  ChatResponseBuilder b(o);
  feed(b, {"<tool_call>\n<function=nope>\n</function>\n</tool_call>"}, "stop");
  EXPECT_EQ(b.response()["choices"][0]["finish_reason"], "stop");
  EXPECT_TRUE(b.result(0).tool_calls.empty());
  EXPECT_NE(b.result(0).content.find("nope"), std::string::npos);
  // Only calls give "tool_calls"; a cut-off turn stays "length".
  ChatResponseBuilder c(o);
  feed(c, {"<tool_call>\n<function=get_weather>\n<parameter=city>\nPa"}, "length");
  EXPECT_EQ(c.response()["choices"][0]["finish_reason"], "length");
}

// A forced call opening (tool_choice named) is read back as the output's
// first text: the model's continuation alone completes the call.
TEST_F(ServerUnit, ForcedCallOpeningIsTheOutputsStart) {
  ChatResponseOptions o;
  o.reasoning_parser = "qwen3";
  o.reasoning.thinking_started_in_prompt = true;
  o.tool_parser = "mimo";
  o.tools = json::parse(kTools);
  o.tool_choice = parse_tool_choice({{"type", "function"}, {"function", {{"name", "get_weather"}}}}, o.tools);
  o.forced_opening = forced_call_opening(o.tool_choice, "mimo", o.tools);
  const std::string rest = "<parameter=city>\nParis\n</parameter>\n</function>\n</tool_call>";
  for (size_t step : {size_t(1), rest.size()}) {
    ChatResponseBuilder b(o);
    auto chunks = feed(b, bytewise(rest, step), "stop");
    ojson r = b.response();
    ASSERT_EQ(r["choices"][0]["message"]["tool_calls"].size(), 1u) << r.dump();
    EXPECT_EQ(r["choices"][0]["message"]["tool_calls"][0]["function"]["name"], "get_weather");
    EXPECT_EQ(r["choices"][0]["finish_reason"], "tool_calls");
    EXPECT_EQ(streamed(chunks, "reasoning_content"), "");  // <tool_call> ends the prompt's open thinking
  }
}

TEST_F(ServerUnit, LogprobsNAndErrors) {
  ChatResponseOptions o;
  o.n = 2;
  o.logprobs = true;
  o.top_logprobs = 2;
  o.tokenizer = tok_;
  o.stop = {"END"};
  ChatResponseBuilder b(o);
  EXPECT_EQ(b.start().size(), 2u);
  EngineOutput e = out("Hi", true, "stop", 1);
  int32_t h = tok_->encode(" the")[0];
  ASSERT_EQ(tok_->decode(tok_->encode(" the")), " the");
  ASSERT_EQ(tok_->encode(" the").size(), 1u);
  e.logprobs = {{h, -0.5f, {{h, -0.5f}, {3, -1.5f}, {4, -2.0f}}}};
  e.matched_stop = "END";
  auto chunks = b.push(0, e);
  ojson lp = chunks[0]["choices"][0]["logprobs"]["content"][0];
  EXPECT_EQ(lp["token"], " the");
  EXPECT_EQ(lp["bytes"], (ojson{32, 116, 104, 101}));
  EXPECT_EQ(lp["top_logprobs"].size(), 2u);
  EXPECT_FALSE(b.finished());
  EngineOutput e2 = out("Yo", true, "stop", 1);
  e2.matched_stop = "507";
  b.push(1, e2);
  ojson r = b.response();
  EXPECT_EQ(r["choices"][0]["matched_stop"], "END");
  EXPECT_EQ(r["choices"][1]["matched_stop"], 507);
  EXPECT_EQ(r["usage"]["prompt_tokens"], 10);  // the shared prompt counts once
  EXPECT_EQ(r["usage"]["completion_tokens"], 2);
  // An abort (/abort_request) is no error: the choice ends with finish_reason
  // abort. The shutdown's abort carries its error and becomes a 503; an
  // engine error a 500/400.
  ChatResponseBuilder w(ChatResponseOptions{});
  w.push(0, out("partial", true, "abort"));
  ASSERT_FALSE(w.error());
  EXPECT_EQ(w.response()["choices"][0]["finish_reason"], "abort");
  ChatResponseBuilder x(ChatResponseOptions{});
  EngineOutput shut = out("", true, "abort");
  shut.error = "the server is shutting down; the request was aborted";
  shut.error_kind = EngineError::ShuttingDown;
  x.push(0, shut);
  ASSERT_TRUE(x.error());
  EXPECT_EQ(x.error()->status, 503);
  ChatResponseBuilder y(ChatResponseOptions{});
  EngineOutput big = out("", true, "abort");
  big.error = "the request does not fit in the KV cache (raise --max-total-tokens)";
  big.error_kind = EngineError::BadRequest;
  y.push(0, big);
  EXPECT_EQ(y.error()->status, 400);
  // The status follows the engine's error kind, not the message's wording.
  ChatResponseBuilder z(ChatResponseOptions{});
  EngineOutput internal = out("", true, "abort");
  internal.error = "internal error: does not fit anywhere";
  internal.error_kind = EngineError::Internal;
  z.push(0, internal);
  EXPECT_EQ(z.error()->status, 500);
  ChatResponseBuilder d(ChatResponseOptions{});
  EngineOutput down = out("", true, "abort");
  down.error = "going away";
  down.error_kind = EngineError::ShuttingDown;
  d.push(0, down);
  EXPECT_EQ(d.error()->status, 503);
}

TEST_F(ServerUnit, CompletionsIndexPromptsTimesN) {
  CompletionResponseOptions o;
  o.prompts = 2;
  o.n = 2;
  o.logprobs = 1;
  o.tokenizer = tok_;
  o.include_usage = true;
  CompletionResponseBuilder b(o);
  for (int i = 0; i < 4; i++) {
    EngineOutput e = out("ab", true, "length", 3);
    e.logprobs = {{97, -1.0f, {{97, -1.0f}, {98, -2.0f}}}};
    auto chunks = b.push(i, e);
    ASSERT_EQ(chunks.size(), 1u);
    EXPECT_EQ(chunks[0]["object"], "text_completion");
    EXPECT_EQ(chunks[0]["choices"][0]["index"], i);
  }
  ASSERT_TRUE(b.finished());
  ojson r = b.response();
  EXPECT_EQ(r["choices"].size(), 4u);
  EXPECT_EQ(r["choices"][3]["text"], "ab");
  EXPECT_EQ(r["choices"][0]["logprobs"]["tokens"], (ojson{"a"}));
  EXPECT_EQ(r["choices"][0]["logprobs"]["top_logprobs"][0].size(), 1u);
  EXPECT_EQ(r["usage"]["prompt_tokens"], 20);  // two prompts, each once
  EXPECT_EQ(r["usage"]["completion_tokens"], 12);
  EXPECT_EQ(b.finish().size(), 1u);
}

// Each bad body must be a 400 naming the field.
void expect_400(const std::string& body, const std::string& param, bool chat = true) {
  try {
    ojson b = parse_body(body);
    if (chat) parse_chat_request(b);
    else parse_completion_request(b);
    ADD_FAILURE() << "accepted: " << body;
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 400) << body;
    EXPECT_EQ(e.param, param) << body << ": " << e.what();
  }
}

TEST(ServerProtocol, BadRequestsNameTheField) {
  const std::string msgs = R"("messages": [{"role": "user", "content": "hi"}])";
  expect_400("{oops", "");
  expect_400("[1, 2]", "");
  expect_400("{}", "messages");
  expect_400(R"({"messages": []})", "messages");
  expect_400(R"({"messages": [{"role": "robot", "content": "x"}]})", "messages[0].role");
  expect_400(R"({"messages": [{"role": "user"}]})", "messages[0].content");
  expect_400("{" + msgs + R"(, "temperature": -1})", "temperature");
  expect_400("{" + msgs + R"(, "temperature": "hot"})", "temperature");
  expect_400("{" + msgs + R"(, "n": 0})", "n");
  expect_400("{" + msgs + R"(, "max_tokens": -5})", "max_tokens");
  expect_400("{" + msgs + R"(, "top_p": 0})", "top_p");
  expect_400("{" + msgs + R"(, "stop": [""]})", "stop");
  expect_400("{" + msgs + R"(, "stop": 5})", "stop");
  expect_400("{" + msgs + R"(, "top_logprobs": 3})", "top_logprobs");
  expect_400("{" + msgs + R"(, "logit_bias": {"five": 1}})", "logit_bias");
  expect_400("{" + msgs + R"(, "logit_bias": {"5": 101}})", "logit_bias");
  expect_400("{" + msgs + R"(, "logit_bias": {"5": "up"}})", "logit_bias");
  expect_400("{" + msgs + R"(, "logit_bias": [5, 1]})", "logit_bias");
  expect_400(R"({"prompt": "x", "logit_bias": {"-3": 1}})", "logit_bias", false);
  expect_400("{" + msgs + R"(, "response_format": {"type": "json_object"}})", "response_format");
  expect_400("{" + msgs + R"(, "tools": [{"type": "function"}]})", "tools");
  expect_400("{" + msgs + R"(, "tool_choice": "required"})", "tool_choice");  // no tools
  expect_400("{" + msgs + R"(, "stream": "yes"})", "stream");
  expect_400("{" + msgs + R"(, "max_tokens": 0})", "max_tokens");  // chat generates at least one token
  expect_400(R"({"prompt": "x", "suffix": "y"})", "suffix", false);
  expect_400(R"({"prompt": []})", "prompt", false);
  expect_400(R"({})", "prompt", false);
  // Good ones parse, with OpenAI's defaults.
  ChatRequest c = parse_chat_request(parse_body("{" + msgs + R"(, "max_completion_tokens": 7, "seed": 3,
      "stop": "END", "tools": )" + kTools + R"(, "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
      "chat_template_kwargs": {"enable_thinking": false}, "logprobs": true, "top_logprobs": 2,
      "logit_bias": {"17": -100, "4": 2.5}})"));
  EXPECT_EQ(c.sampling.temperature, 1.0f);
  EXPECT_EQ(c.sampling.max_new_tokens, 7);
  EXPECT_EQ(c.sampling.seed, 3u);
  EXPECT_EQ(c.sampling.stop, std::vector<std::string>{"END"});
  EXPECT_EQ(c.sampling.logprobs, 2);
  EXPECT_EQ(c.sampling.logit_bias, (std::vector<std::pair<int32_t, float>>{{17, -100.0f}, {4, 2.5f}}));
  EXPECT_EQ(c.tool_choice.mode, ToolChoiceMode::kNamed);
  EXPECT_FALSE(c.enable_thinking);
  CompletionRequest p = parse_completion_request(parse_body(R"({"prompt": [[1, 2], [3]], "n": 2})"));
  EXPECT_EQ(p.prompts.size(), 2u);
  EXPECT_EQ(p.sampling.max_new_tokens, 16);
  GenerateRequest g = parse_generate_request(parse_body(R"({"input_ids": [1, 2, 3],
      "sampling_params": {"max_new_tokens": 4, "temperature": 0, "stop_token_ids": [9], "logit_bias": {"3": 1}},
      "return_logprob": true})"));
  EXPECT_EQ(g.prompts[0].ids, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(g.sampling.logprobs, 0);
  EXPECT_EQ(g.sampling.stop_token_ids, std::vector<int32_t>{9});
  EXPECT_EQ(g.sampling.logit_bias, (std::vector<std::pair<int32_t, float>>{{3, 1.0f}}));
  EXPECT_EQ(g.sampling.prompt_logprobs_start, -1);  // no logprob_start_len: output logprobs only
  GenerateRequest scored = parse_generate_request(parse_body(R"({"input_ids": [1, 2, 3],
      "sampling_params": {"max_new_tokens": 0}, "return_logprob": true, "logprob_start_len": 1})"));
  EXPECT_EQ(scored.sampling.max_new_tokens, 0);
  EXPECT_EQ(scored.sampling.prompt_logprobs_start, 1);
  CompletionRequest echo = parse_completion_request(parse_body(R"({"prompt": "x", "echo": true, "logprobs": 1,
      "max_tokens": 0})"));
  EXPECT_TRUE(echo.echo);
  EXPECT_EQ(echo.sampling.max_new_tokens, 0);
  EXPECT_EQ(echo.sampling.prompt_logprobs_start, 0);
}

TEST(ServerMetrics, PrometheusText) {
  Metrics m;
  m.request_finished("stop", 0.3);
  m.request_finished("length", 12);
  m.request_rejected(503);
  EngineStats s;
  s.running = 2;
  s.full_capacity = 100;
  s.full_used = 25;
  s.prompt_tokens = 10;
  s.cached_prompt_tokens = 5;
  s.graph_steps = 7;
  std::string t = m.prometheus(s, "m\"x");
  for (const char* want : {"sglang:num_running_reqs{model_name=\"m\\\"x\"} 2", "sglang:token_usage{model_name=\"m\\\"x\"} 0.25",
                           "mimoserve:graph_steps_total{model_name=\"m\\\"x\"} 7",
                           "sglang:cache_hit_rate{model_name=\"m\\\"x\"} 0.5",
                           "finish_reason=\"stop\"} 1", "status=\"503\"} 1", "le=\"0.5\"} 1", "le=\"+Inf\"} 2",
                           "# TYPE sglang:e2e_request_latency_seconds histogram"})
    EXPECT_NE(t.find(want), std::string::npos) << want << "\n" << t;
  EXPECT_EQ(t.find("spec_"), std::string::npos) << "no speculative figures without speculation";
  s.spec_verifies = 4;
  s.spec_accepted = 6;
  s.decode_steps_by_depth = {1, 0, 3, 0};
  t = m.prometheus(s, "m");
  for (const char* want : {"sglang:spec_accept_length{model_name=\"m\"} 2.5",
                           "mimoserve:spec_decode_steps_total{model_name=\"m\",depth=\"2\"} 3",
                           "mimoserve:spec_decode_steps_total{model_name=\"m\",depth=\"0\"} 1"})
    EXPECT_NE(t.find(want), std::string::npos) << want << "\n" << t;
  // TTFT and inter-token latency: an output of n tokens counts gap / n, n times.
  m.first_token(0.03);
  m.inter_token(0.012, 4);
  m.inter_token(0.3, 1);
  t = m.prometheus(s, "m");
  for (const char* want : {"# TYPE sglang:time_to_first_token_seconds histogram",
                           "sglang:time_to_first_token_seconds_bucket{model_name=\"m\",le=\"0.02\"} 0",
                           "sglang:time_to_first_token_seconds_bucket{model_name=\"m\",le=\"0.04\"} 1",
                           "sglang:time_to_first_token_seconds_count{model_name=\"m\"} 1",
                           "sglang:inter_token_latency_seconds_bucket{model_name=\"m\",le=\"0.015\"} 4",
                           "sglang:inter_token_latency_seconds_bucket{model_name=\"m\",le=\"0.3\"} 5",
                           "sglang:inter_token_latency_seconds_count{model_name=\"m\"} 5",
                           "sglang:inter_token_latency_seconds_sum{model_name=\"m\"} 0.348"})
    EXPECT_NE(t.find(want), std::string::npos) << want << "\n" << t;
}

}  // namespace
}  // namespace mimo::server

// A loopback connection as httplib would see it: the watch finds the
// server's end by the Request's addresses and sees the client leave.
TEST(ClientWatch, FindsTheConnectionAndSeesTheClientLeave) {
  int lst = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(lst, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(lst, 1), 0);
  socklen_t len = sizeof a;
  ASSERT_EQ(getsockname(lst, reinterpret_cast<sockaddr*>(&a), &len), 0);
  int cli = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_EQ(connect(cli, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  int srv = accept(lst, nullptr, nullptr);
  ASSERT_GE(srv, 0);
  sockaddr_in c{};
  len = sizeof c;
  ASSERT_EQ(getsockname(cli, reinterpret_cast<sockaddr*>(&c), &len), 0);
  httplib::Request req;
  req.remote_addr = "127.0.0.1";
  req.remote_port = ntohs(c.sin_port);
  req.local_port = ntohs(a.sin_port);
  EXPECT_EQ(mimo::server::find_connection(req.remote_addr, req.remote_port, req.local_port), srv);
  EXPECT_EQ(mimo::server::find_connection(req.remote_addr, req.remote_port + 1, req.local_port), -1);
  EXPECT_EQ(mimo::server::find_connection("127.0.0.2", req.remote_port, req.local_port), -1);

  mimo::server::ClientWatch w(req);
  EXPECT_FALSE(w.gone());  // not looked at in the first 100 ms
  std::this_thread::sleep_for(std::chrono::milliseconds(120));
  ASSERT_EQ(write(cli, "x", 1), 1);  // a pipelined byte: still there
  EXPECT_FALSE(w.gone());
  close(cli);
  std::this_thread::sleep_for(std::chrono::milliseconds(120));
  EXPECT_FALSE(w.gone());  // the unread byte comes before the end of stream
  char b;
  ASSERT_EQ(read(srv, &b, 1), 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(120));
  EXPECT_TRUE(w.gone());
  EXPECT_TRUE(w.gone());
  close(srv);
  close(lst);
}
