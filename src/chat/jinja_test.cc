// Unit tests of the template language: the shared feature table (expected
// outputs recorded from jinja2), error positions and the safety limits.
#include "chat/jinja.h"

#include <gtest/gtest.h>

#include <thread>

#include "chat/chat_test_util.h"

namespace mimo::jinja {
namespace {

using chat_test::JinjaCase;
using json = nlohmann::ordered_json;

// One registered test per feature case, named after it (JinjaFeature.<name>),
// so ctest lists them individually without gtest's parameter dumps.
class JinjaCaseTest : public ::testing::Test {
 public:
  explicit JinjaCaseTest(const JinjaCase& c) : c_(c) {}
  void TestBody() override {
    json ctx = chat_test::case_context(c_);
    if (c_.expected) {
      std::string out;
      try {
        out = Template(c_.tmpl).render(ctx);
      } catch (const TemplateError& e) {
        FAIL() << "template: " << c_.tmpl << "\nunexpected error: " << e.what();
      }
      EXPECT_EQ(out, c_.expected) << "template: " << c_.tmpl << "\n" << chat_test::first_difference(out, c_.expected);
    } else {
      try {
        std::string out = Template(c_.tmpl).render(ctx);
        FAIL() << "template: " << c_.tmpl << "\nexpected an error, rendered: " << out;
      } catch (const TemplateError& e) {
        EXPECT_NE(std::string(e.what()).find(c_.error_has), std::string::npos)
            << "error '" << e.what() << "' lacks '" << c_.error_has << "'";
        EXPECT_GT(e.line(), 0) << "errors must carry a position: " << e.what();
      }
    }
  }

 private:
  const JinjaCase& c_;
};

const bool kRegistered = [] {
  for (const JinjaCase& c : chat_test::jinja_cases())
    ::testing::RegisterTest("JinjaFeature", c.name, nullptr, nullptr, __FILE__, __LINE__,
                            [&c]() -> ::testing::Test* { return new JinjaCaseTest(c); });
  return true;
}();

TemplateError render_error(const std::string& tmpl, const json& ctx = json::object(), RenderLimits limits = {}) {
  try {
    Template(tmpl).render(ctx, limits);
  } catch (const TemplateError& e) {
    return e;
  }
  ADD_FAILURE() << "expected an error from: " << tmpl;
  return TemplateError("none");
}

TEST(JinjaErrors, PositionsPointAtTheFailingNode) {
  TemplateError e = render_error("line one\n{% for m in messages %}\n  {{ m.content.foo.bar }}\n{% endfor %}",
                                 json{{"messages", json::array({json{{"role", "user"}}})}});
  EXPECT_EQ(e.line(), 3);
  EXPECT_EQ(e.column(), 15);  // the "." of ".foo", applied to the undefined content
  EXPECT_NE(std::string(e.what()).find("line 3, column 15"), std::string::npos) << e.what();

  TemplateError s = render_error("ok\n\n  {% if x %}{{ 1 + }}{% endif %}");
  EXPECT_EQ(s.line(), 3);
  EXPECT_NE(s.detail().find("expected an expression"), std::string::npos);
}

TEST(JinjaErrors, RaiseExceptionKeepsTheAuthorsMessage) {
  TemplateError e = render_error("{{ raise_exception('Roles must alternate') }}");
  EXPECT_TRUE(e.raised());
  EXPECT_EQ(e.detail(), "Roles must alternate");
  TemplateError other = render_error("{{ 1 / 0 }}");
  EXPECT_FALSE(other.raised());
}

TEST(JinjaErrors, IsAMimoError) {
  try {
    Template("{{ x.y }}").render(json::object());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'x' is undefined"), std::string::npos);
  }
}

TEST(JinjaLimits, EndlessWorkIsStopped) {
  RenderLimits limits;
  limits.max_steps = 10000;
  TemplateError e = render_error("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
                                 json::object(), limits);
  EXPECT_NE(e.detail().find("budget"), std::string::npos) << e.what();
}

TEST(JinjaLimits, RecursionIsBounded) {
  TemplateError e = render_error("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}");
  EXPECT_NE(e.detail().find("deeper than"), std::string::npos) << e.what();
}

TEST(JinjaLimits, OutputSizeIsBounded) {
  RenderLimits limits;
  limits.max_output_bytes = 1000;
  EXPECT_NE(render_error("{{ 'x' * 5000 }}", json::object(), limits).detail().find("limit"), std::string::npos);
  EXPECT_NE(render_error("{% for i in range(5000) %}ab{% endfor %}", json::object(), limits).detail().find("limit"),
            std::string::npos);
}

TEST(JinjaLimits, DeepNestingInSourceIsASyntaxError) {
  std::string deep = "{{ " + std::string(1000, '(') + "1" + std::string(1000, ')') + " }}";
  EXPECT_THROW(Template{deep}, TemplateError);
  std::string deep_ifs;
  for (int i = 0; i < 1000; ++i) deep_ifs += "{% if true %}";
  EXPECT_THROW(Template{deep_ifs}, TemplateError);
}

TEST(JinjaLimits, NestingDepthIsBounded) {
  // Values are freed recursively: 100000 nested lists would overflow the stack.
  TemplateError e =
      render_error("{% set ns = namespace(x=[]) %}{% for i in range(100000) %}{% set ns.x = [ns.x] %}{% endfor %}");
  EXPECT_NE(e.detail().find("nested deeper"), std::string::npos) << e.what();
}

TEST(JinjaRender, NamespaceCyclesAreBrokenAfterRendering) {
  // Runs clean under LeakSanitizer: the self-reference is cleared at the end.
  EXPECT_EQ(Template("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns.me.me is defined }}").render(json::object()),
            "True");
}

TEST(JinjaRender, ContextMustBeAnObject) { EXPECT_THROW(Template("x").render(json::array()), TemplateError); }

TEST(JinjaRender, IntegersOverflowLoudly) {
  EXPECT_NE(render_error("{{ 9223372036854775807 + 1 }}").detail().find("64 bits"), std::string::npos);
  EXPECT_NE(render_error("{{ 2 ** 64 }}").detail().find("64 bits"), std::string::npos);
}

TEST(JinjaRender, ConcurrentRendersShareOneTemplate) {
  Template t("{% set ns = namespace(n=0) %}{% for m in msgs %}{% set ns.n = ns.n + m %}{% endfor %}{{ ns.n }}");
  json ctx = {{"msgs", json::array({1, 2, 3, 4})}};
  std::vector<std::thread> threads;
  std::vector<std::string> out(8);
  for (int i = 0; i < 8; ++i)
    threads.emplace_back([&, i] {
      for (int k = 0; k < 200; ++k) out[size_t(i)] = t.render(ctx);
    });
  for (auto& th : threads) th.join();
  for (const auto& o : out) EXPECT_EQ(o, "10");
}

TEST(JinjaValue, PythonStrAndRepr) {
  Value d = Value::from_json(json::parse(R"({"a": [1, 2.0, "x'y", null, true], "b": {}})"));
  EXPECT_EQ(d.str(), R"({'a': [1, 2.0, "x'y", None, True], 'b': {}})");
  EXPECT_EQ(Value("q").repr(), "'q'");
  EXPECT_EQ(Value::make_list({Value(1)}, true).str(), "(1,)");
  EXPECT_EQ(Value().str(), "");
  EXPECT_FALSE(Value::undefined("x").truthy());
  EXPECT_TRUE(equals(Value(1), Value(1.0)));
  EXPECT_TRUE(equals(Value(true), Value(1)));
  EXPECT_FALSE(equals(Value("1"), Value(1)));
}

TEST(JinjaValue, DictKeysFollowPythonHashing) {
  Value d = Value::make_dict();
  d.dict().set(Value(1), Value("int"));
  d.dict().set(Value(1.0), Value("float"));
  d.dict().set(Value(true), Value("bool"));
  ASSERT_EQ(d.dict().size(), 1u);  // 1, 1.0 and True are one key in Python
  EXPECT_EQ(d.dict().get(Value(1))->as_string(), "bool");
  EXPECT_EQ(d.str(), "{1: 'bool'}");
}

TEST(JinjaValue, JsonRoundTrip) {
  json j = json::parse(R"({"z": 1, "a": [1.5, "s", null, false, {"k": {}}]})");
  EXPECT_EQ(to_json(Value::from_json(j)), j);
  EXPECT_EQ(to_json_text(Value::from_json(j), {}), R"({"z": 1, "a": [1.5, "s", null, false, {"k": {}}]})");
}

}  // namespace
}  // namespace mimo::jinja
