#include "parsers/reasoning_parser.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "parsers/parsers_test_util.h"
#include "parsers/text_util.h"

namespace mimo {
namespace {

using testing::expect_no_markup;
using testing::expect_split_invariant;

struct Case {
  const char* name;
  ReasoningOptions opts;
  std::string text;
  std::string reasoning;
  std::string content;
  bool clean = true;  // no markup may show in either field
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

constexpr ReasoningOptions kOn{true, false};
constexpr ReasoningOptions kInPrompt{true, true};
constexpr ReasoningOptions kOff{false, false};

const Case kCases[] = {
    {"plain", kOn, "Hello there.", "", "Hello there."},
    {"plain_leading_ws", kOn, "\n\nHello", "", "\n\nHello"},
    {"empty", kOn, "", "", ""},
    {"only_ws", kOn, " \n", "", " \n"},
    {"think_then_answer", kOn, "<think>\nLet me think.\n</think>\n\nThe answer is 42.", "Let me think.",
     "The answer is 42."},
    {"think_inline", kOn, "<think>abc</think>def", "abc", "def"},
    {"think_ws_before", kOn, "\n<think>x</think>y", "x", "y"},
    {"think_empty", kOn, "<think>\n\n</think>\n\nAnswer", "", "Answer"},
    {"think_inner_ws_kept", kOn, "<think>\n a \n\n b \n</think>c", "a \n\n b", "c"},
    {"think_truncated", kOn, "<think>\nStill thinking...  \n", "Still thinking...", ""},
    {"think_only_tag", kOn, "<think>", "", ""},
    {"think_repeated_open", kOn, "<think><think>\nx</think>y", "x", "y"},
    {"think_then_toolcall", kOn, "<think>I should call a tool.\n<tool_call>\n<function=f>\n</function>\n</tool_call>",
     "I should call a tool.", "<tool_call>\n<function=f>\n</function>\n</tool_call>", false},
    {"toolcall_after_think", kOn, "<think>r</think>\n\n<tool_call>x</tool_call>", "r", "<tool_call>x</tool_call>",
     false},
    {"toolcall_no_think", kOn, "<tool_call>x</tool_call>", "", "<tool_call>x</tool_call>", false},
    {"content_keeps_later_tags", kOn, "<think>a</think>b</think>c<think>d", "a", "b</think>c<think>d", false},
    {"no_think_later_tags_plain", kOn, "x <think>y</think> z", "", "x <think>y</think> z", false},
    {"lt_in_reasoning", kOn, "<think>a < b and c <t d</think>ok", "a < b and c <t d", "ok"},
    {"partial_like_tags", kOn, "<think>a </thin b</think>c", "a </thin b", "c", false},
    {"unicode", kOn, "<think>\xE4\xBD\xA0\xE5\xA5\xBD \xF0\x9F\x98\x80</think>\xC3\xA9t\xC3\xA9", 
     "\xE4\xBD\xA0\xE5\xA5\xBD \xF0\x9F\x98\x80", "\xC3\xA9t\xC3\xA9"},
    {"content_trailing_ws_kept", kOn, "<think>a</think>b \n", "a", "b \n"},
    {"in_prompt_basic", kInPrompt, "Let me see.\n</think>\n\nDone.", "Let me see.", "Done."},
    {"in_prompt_model_repeats_open", kInPrompt, "<think>\nhmm\n</think>ok", "hmm", "ok"},
    {"in_prompt_truncated", kInPrompt, "thinking forever", "thinking forever", ""},
    {"in_prompt_tool_call", kInPrompt, "plan\n\n<tool_call>x", "plan", "<tool_call>x", false},
    {"in_prompt_immediate_end", kInPrompt, "</think>Answer", "", "Answer"},
    {"in_prompt_empty", kInPrompt, "", "", ""},
    {"disabled_all_content", kOff, "<think>a</think>b", "", "<think>a</think>b", false},
    {"disabled_plain", kOff, "  hi  ", "", "  hi  "},
};

class Qwen3Reasoning : public ::testing::TestWithParam<Case> {};

TEST_P(Qwen3Reasoning, WholeAndEverySplit) {
  const Case& c = GetParam();
  auto make = [&] { return make_reasoning_parser("qwen3", c.opts); };
  ReasoningDelta whole = expect_split_invariant(make, c.text);
  EXPECT_EQ(whole.reasoning, c.reasoning);
  EXPECT_EQ(whole.content, c.content);
  if (c.clean) {
    expect_no_markup(whole.reasoning, "reasoning");
    expect_no_markup(whole.content, "content");
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, Qwen3Reasoning, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(Qwen3ReasoningStream, HoldsPartialTagsAndTrailingSpace) {
  auto p = make_reasoning_parser("qwen3");
  ReasoningDelta d = p->push("<thi");
  EXPECT_TRUE(d.empty());
  d = p->push("nk>\nStep one. ");
  EXPECT_EQ(d.reasoning, "Step one.");
  d = p->push("Step two.</thi");
  EXPECT_EQ(d.reasoning, " Step two.");
  EXPECT_EQ(d.content, "");
  d = p->push("nk>\n\nAns");
  EXPECT_EQ(d.reasoning, "");
  EXPECT_EQ(d.content, "Ans");
  d = p->push("wer");
  EXPECT_EQ(d.content, "wer");
  EXPECT_TRUE(p->finish().empty());
}

TEST(Qwen3ReasoningStream, Utf8NeverSplit) {
  auto p = make_reasoning_parser("qwen3");
  std::string s = "<think>\xE4\xBD\xA0</think>\xE5\xA5\xBD";
  std::string reasoning, content;
  for (char ch : s) {
    ReasoningDelta d = p->push(std::string_view(&ch, 1));
    // Every piece handed out is whole characters.
    for (const std::string* f : {&d.reasoning, &d.content})
      EXPECT_EQ(parsers::utf8_incomplete_tail(*f), 0u);
    reasoning += d.reasoning;
    content += d.content;
  }
  auto d = p->finish();
  EXPECT_EQ(reasoning + d.reasoning, "\xE4\xBD\xA0");
  EXPECT_EQ(content + d.content, "\xE5\xA5\xBD");
}

TEST(Qwen3ReasoningStream, ParseResetsState) {
  auto p = make_reasoning_parser("qwen3");
  p->push("<think>half");
  auto r = p->parse("<think>a</think>b");
  EXPECT_EQ(r.reasoning, "a");
  EXPECT_EQ(r.content, "b");
  r = p->parse("plain");
  EXPECT_EQ(r.content, "plain");
}

TEST(Qwen3ReasoningStream, PromptOpensThinking) {
  EXPECT_TRUE(prompt_opens_thinking("<|im_start|>assistant\n<think>\n"));
  EXPECT_TRUE(prompt_opens_thinking("<think>"));
  EXPECT_FALSE(prompt_opens_thinking("<|im_start|>assistant\n<think>\n\n</think>\n\n"));
  EXPECT_FALSE(prompt_opens_thinking("<|im_start|>assistant\n"));
  EXPECT_FALSE(prompt_opens_thinking(""));
}

TEST(ReasoningRegistry, NamesAndErrors) {
  EXPECT_EQ(reasoning_parser_names(), (std::vector<std::string>{"qwen3", "qwen3-thinking"}));
  EXPECT_EQ(make_reasoning_parser("qwen3")->name(), "qwen3");
  auto t = make_reasoning_parser("qwen3-thinking");
  auto r = t->parse("thoughts</think>answer");
  EXPECT_EQ(r.reasoning, "thoughts");
  EXPECT_EQ(r.content, "answer");
  try {
    make_reasoning_parser("deepseek-r9");
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("qwen3"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("deepseek-r9"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace mimo
