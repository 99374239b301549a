// ChatTemplate: loading from a model directory, template choice, special
// tokens, and the SGLang-style message normalization before rendering.
#include "chat/chat_template.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "chat/jinja.h"

namespace mimo {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/mimo_chat_dir_XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path_); }
  void write(const std::string& name, const std::string& text) const {
    fs::create_directories((fs::path(path_) / name).parent_path());
    std::ofstream(fs::path(path_) / name, std::ios::binary) << text;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Prints what the template sees, so tests can check the normalization.
const char* kEcho =
    "{% for m in messages %}[{{ m.role }}|{{ m.content }}|{{ m|length }}|{{ m.tool_calls|tojson if m.tool_calls is "
    "defined else '-' }}]{% endfor %}tools={{ tools }};gen={{ add_generation_prompt }};docs={{ documents }};"
    "bos={{ bos_token }};eos={{ eos_token }};think={{ enable_thinking }}";

json user(const std::string& text) { return json{{"role", "user"}, {"content", text}}; }

TEST(ChatTemplate, FromModelDirReadsStringTemplateAndTokens) {
  TempDir d;
  d.write("tokenizer_config.json", json{{"chat_template", "{{ bos_token }}{{ messages[0].content }}{{ eos_token }}"},
                                        {"bos_token", {{"__type", "AddedToken"}, {"content", "<s>"}}},
                                        {"eos_token", "</s>"},
                                        {"pad_token", nullptr}}
                                       .dump());
  ChatTemplate ct = ChatTemplate::from_model_dir(d.path());
  EXPECT_EQ(ct.render(json::array({user("hi")}), nullptr, false, nullptr), "<s>hi</s>");
  EXPECT_EQ(ct.special_tokens(), json::parse(R"({"bos_token": "<s>", "eos_token": "</s>"})"));
}

TEST(ChatTemplate, NamedTemplatesPickToolUseOnlyWithTools) {
  TempDir d;
  d.write("tokenizer_config.json",
          json{{"chat_template", json::array({json{{"name", "default"}, {"template", "plain"}},
                                              json{{"name", "tool_use"}, {"template", "tools:{{ tools|length }}"}}})}}
              .dump());
  ChatTemplate ct = ChatTemplate::from_model_dir(d.path());
  EXPECT_EQ(ct.template_names(), (std::vector<std::string>{"default", "tool_use"}));
  json tools = json::array({json{{"type", "function"}, {"function", {{"name", "f"}}}}});
  EXPECT_EQ(ct.render(json::array({user("x")}), nullptr, true, nullptr), "plain");
  EXPECT_EQ(ct.render(json::array({user("x")}), json::array(), true, nullptr), "plain");
  EXPECT_EQ(ct.render(json::array({user("x")}), tools, true, nullptr), "tools:1");
}

TEST(ChatTemplate, JinjaFileWinsAndAdditionalTemplatesAreNamed) {
  TempDir d;
  d.write("tokenizer_config.json", json{{"chat_template", "from config"}, {"eos_token", "E"}}.dump());
  d.write("chat_template.jinja", "from file {{ eos_token }}\n");
  d.write("additional_chat_templates/tool_use.jinja", "tool file");
  d.write("special_tokens_map.json", json{{"bos_token", "B"}, {"eos_token", "ignored"}}.dump());
  ChatTemplate ct = ChatTemplate::from_model_dir(d.path());
  EXPECT_EQ(ct.render(json::array({user("x")}), nullptr, true, nullptr), "from file E");
  EXPECT_EQ(ct.render(json::array({user("x")}), json::array({json::object()}), true, nullptr), "tool file");
  EXPECT_EQ(ct.special_tokens().value("bos_token", ""), "B");  // filled from special_tokens_map.json
  EXPECT_EQ(ct.special_tokens().value("eos_token", ""), "E");  // tokenizer_config.json wins
}

TEST(ChatTemplate, MissingOrBrokenTemplatesAreClearErrors) {
  TempDir empty;
  empty.write("tokenizer_config.json", "{}");
  try {
    ChatTemplate::from_model_dir(empty.path());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no chat template"), std::string::npos) << e.what();
  }
  TempDir broken;
  broken.write("chat_template.jinja", "ok\n{% for x in %}");
  try {
    ChatTemplate::from_model_dir(broken.path());
    FAIL();
  } catch (const Error& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("chat_template.jinja"), std::string::npos) << what;
    EXPECT_NE(what.find("line 2"), std::string::npos) << what;
  }
  EXPECT_THROW(ChatTemplate::from_model_dir("/nonexistent/model"), Error);
}

TEST(ChatTemplate, NormalizesMessagesLikeSGLang) {
  ChatTemplate ct = ChatTemplate::from_string(kEcho, json{{"bos_token", "<s>"}});
  json messages = json::parse(R"([
    {"role": "system", "content": [{"type": "text", "text": "Be"}, {"type": "text", "text": "brief."}]},
    {"role": "user", "content": [{"type": "text", "text": "look"},
                                 {"type": "image_url", "image_url": {"url": "http://x"}}], "name": null},
    {"role": "assistant", "content": null, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"b\": 1, \"a\": [true]}"}},
        {"id": "c2", "type": "function", "function": {"name": "g", "arguments": ""}}]},
    {"role": "tool", "tool_call_id": "c1", "content": "ok"}
  ])");
  std::string out = ct.render(messages, nullptr, true, json{{"enable_thinking", false}});
  EXPECT_EQ(out,
            "[system|Be brief.|2|-][user|look|2|-]"
            "[assistant||3|[{\"id\": \"c1\", \"type\": \"function\", \"function\": {\"name\": \"f\", \"arguments\": "
            "{\"b\": 1, \"a\": [true]}}}, {\"id\": \"c2\", \"type\": \"function\", \"function\": {\"name\": \"g\", "
            "\"arguments\": {}}}]][tool|ok|3|-]"
            "tools=None;gen=True;docs=None;bos=<s>;eos=;think=False");
}

TEST(ChatTemplate, KeepsContentPartsForTemplatesThatIterateThem) {
  ChatTemplate ct = ChatTemplate::from_string(
      "{% for message in messages %}{% for part in message['content'] %}<{{ part.type }}:{{ part.text }}>"
      "{% endfor %}{% endfor %}");
  json messages = json::parse(R"([{"role": "user", "content": [
      {"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": "u"}}]}])");
  EXPECT_EQ(ct.render(messages, nullptr, false, nullptr), "<text:hi><image:>");
}

TEST(ChatTemplate, BadInputIsRejected) {
  ChatTemplate ct = ChatTemplate::from_string("x");
  EXPECT_THROW(ct.render(json::object(), nullptr, true, nullptr), Error);
  EXPECT_THROW(ct.render(json::array({json{{"content", "no role"}}}), nullptr, true, nullptr), Error);
  EXPECT_THROW(ct.render(json::array({json{{"role", "user"}, {"content", 5}}}), nullptr, true, nullptr), Error);
  EXPECT_THROW(ct.render(json::array({user("x")}), json::object(), true, nullptr), Error);
  EXPECT_THROW(ct.render(json::array({user("x")}), nullptr, true, json{{"messages", 1}}), Error);
  json bad_args = json::parse(
      R"([{"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "f", "arguments": "{oops"}}]}])");
  try {
    ct.render(bad_args, nullptr, true, nullptr);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("messages[0].tool_calls[0].function.arguments"), std::string::npos);
  }
}

TEST(ChatTemplate, RaiseExceptionReachesTheCaller) {
  ChatTemplate ct = ChatTemplate::from_string(
      "{% if messages[0].role != 'user' %}{{ raise_exception('first message must be from the user') }}{% endif %}");
  try {
    ct.render(json::array({json{{"role", "assistant"}, {"content", "x"}}}), nullptr, true, nullptr);
    FAIL();
  } catch (const jinja::TemplateError& e) {
    EXPECT_TRUE(e.raised());
    EXPECT_EQ(e.detail(), "first message must be from the user");
  }
}

TEST(ChatTemplate, RenderEqualsTemplateOnBuiltContext) {
  ChatTemplate ct = ChatTemplate::from_string(kEcho);
  json messages = json::array({user("a"), json{{"role", "assistant"}, {"content", nullptr}}});
  json ctx = ct.build_context(messages, nullptr, false, json{{"enable_thinking", true}});
  EXPECT_EQ(ct.render(messages, nullptr, false, json{{"enable_thinking", true}}), jinja::Template(kEcho).render(ctx));
  EXPECT_TRUE(ctx["tools"].is_null());
  EXPECT_TRUE(ctx.contains("documents"));
}

TEST(ChatTemplate, MimoTemplateFormat) {
  std::ifstream f(std::string(MIMOSERVE_SOURCE_DIR) + "/src/chat/templates/mimo.jinja");
  std::string src((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  ChatTemplate ct = ChatTemplate::from_string(src);
  json messages = json::parse(R"([
    {"role": "system", "content": "S"},
    {"role": "user", "content": "Weather?"},
    {"role": "assistant", "content": null, "reasoning_content": "use the tool",
     "tool_calls": [{"type": "function", "function": {"name": "get_weather",
                     "arguments": "{\"city\": \"Paris\", \"days\": 2, \"opts\": {\"metric\": true}}"}}]},
    {"role": "tool", "content": "21C"}
  ])");
  json tools = json::array({json{{"type", "function"}, {"function", {{"name", "get_weather"}}}}});
  std::string out = ct.render(messages, tools, true, json{{"enable_thinking", false}});
  EXPECT_EQ(out.rfind("<|im_start|>system\nS\n\n# Tools", 0), 0u) << out;
  EXPECT_NE(out.find("<|im_start|>user\nWeather?<|im_end|>\n"), std::string::npos) << out;
  EXPECT_NE(out.find("<|im_start|>assistant\n<think>\nuse the tool\n</think>\n\n<tool_call>\n<function=get_weather>\n"
                     "<parameter=city>\nParis\n</parameter>\n<parameter=days>\n2\n</parameter>\n"
                     "<parameter=opts>\n{\"metric\": true}\n</parameter>\n</function>\n</tool_call><|im_end|>\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("<|im_start|>user\n<tool_response>\n21C\n</tool_response><|im_end|>\n"), std::string::npos) << out;
  const std::string tail = "<|im_start|>assistant\n<think>\n\n</think>\n\n";
  EXPECT_TRUE(out.size() >= tail.size() && out.compare(out.size() - tail.size(), tail.size(), tail) == 0) << out;
  std::string thinking = ct.render(json::array({user("hi")}), nullptr, true, nullptr);
  EXPECT_EQ(thinking, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
}

}  // namespace
}  // namespace mimo
