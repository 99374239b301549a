// Test helpers: drive a parser with a given split of its input and check that
// every split gives the one-shot result.
#pragma once

#include <gtest/gtest.h>

#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "parsers/output_parser.h"
#include "parsers/reasoning_parser.h"
#include "parsers/tool_parser.h"

namespace mimo::testing {

// Pieces of `text` cut at `cuts` (ascending offsets).
inline std::vector<std::string_view> split_at(std::string_view text, const std::vector<size_t>& cuts) {
  std::vector<std::string_view> out;
  size_t prev = 0;
  for (size_t c : cuts) {
    out.push_back(text.substr(prev, c - prev));
    prev = c;
  }
  out.push_back(text.substr(prev));
  return out;
}

// Every way to feed `text` the tests use: whole, each 2-piece split, and one
// byte at a time. `fn` gets a short label and the pieces.
inline void for_each_split(std::string_view text,
                           const std::function<void(const std::string&, const std::vector<std::string_view>&)>& fn) {
  fn("whole", {text});
  for (size_t c = 0; c <= text.size(); ++c) fn("cut@" + std::to_string(c), split_at(text, {c}));
  std::vector<size_t> bytes;
  for (size_t c = 1; c < text.size(); ++c) bytes.push_back(c);
  fn("bytewise", split_at(text, bytes));
}

// The text with bytes outside printable ASCII (and backslashes) as \xNN.
inline std::string printable(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += char(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
    }
  }
  return out;
}

inline std::string show(const ToolParseResult& r) {
  std::string s = "content=\"" + printable(r.content) + "\" calls=[";
  for (const auto& c : r.calls)
    s += "{" + std::to_string(c.index) + " " + c.id + " " + printable(c.name) + " " + printable(c.arguments) + "}";
  return s + "]";
}

inline std::string show(const ChatResult& r) {
  ToolParseResult t{r.content, r.tool_calls};
  return "reasoning=\"" + printable(r.reasoning) + "\" " + show(t);
}

inline bool same(const ToolParseResult& a, const ToolParseResult& b) { return show(a) == show(b); }

// Streams `pieces` through a fresh parser from `make`.
inline ToolParseResult stream_tools(ToolCallParser& p, const std::vector<std::string_view>& pieces) {
  p.reset();
  ToolParseResult r;
  for (auto piece : pieces) r.apply(p.push(piece));
  r.apply(p.finish());
  return r;
}

inline ReasoningDelta stream_reasoning(ReasoningParser& p, const std::vector<std::string_view>& pieces) {
  p.reset();
  ReasoningDelta r;
  for (auto piece : pieces) r.append(p.push(piece));
  r.append(p.finish());
  return r;
}

inline ChatResult stream_chat(ChatOutputParser& p, const std::vector<std::string_view>& pieces) {
  p.reset();
  ChatResult r;
  for (auto piece : pieces) r.apply(p.push(piece));
  r.apply(p.finish());
  return r;
}

// Makes a parser whose ids restart from the same seed each time.
using ToolParserMaker = std::function<std::unique_ptr<ToolCallParser>()>;

inline ToolParserMaker tool_maker(const std::string& name, const nlohmann::json& tools, ToolParserOptions opts = {}) {
  return [=] {
    ToolParserOptions o = opts;
    o.id_generator = seeded_call_id_generator(42);
    return make_tool_parser(name, tools, o);
  };
}

// Checks each split against the one-shot result; returns the latter.
inline ToolParseResult expect_split_invariant(const ToolParserMaker& make, std::string_view text) {
  ToolParseResult whole = make()->parse(text);
  for (const auto& call : whole.calls) {
    auto v = nlohmann::json::parse(call.arguments, nullptr, false);
    EXPECT_TRUE(v.is_object()) << "arguments not a JSON object: " << call.arguments << "\ntext: " << text;
  }
  for_each_split(text, [&](const std::string& label, const std::vector<std::string_view>& pieces) {
    auto p = make();
    ToolParseResult r = stream_tools(*p, pieces);
    EXPECT_EQ(show(r), show(whole)) << label << "\ntext: " << text;
  });
  return whole;
}

inline ReasoningDelta expect_split_invariant(const std::function<std::unique_ptr<ReasoningParser>()>& make,
                                             std::string_view text) {
  ReasoningDelta whole = make()->parse(text);
  for_each_split(text, [&](const std::string& label, const std::vector<std::string_view>& pieces) {
    auto p = make();
    ReasoningDelta r = stream_reasoning(*p, pieces);
    EXPECT_EQ(r.reasoning, whole.reasoning) << label << "\ntext: " << text;
    EXPECT_EQ(r.content, whole.content) << label << "\ntext: " << text;
  });
  return whole;
}

// Markup fragments that must not appear in content or reasoning of outputs
// whose tags are all well formed.
inline void expect_no_markup(std::string_view s, std::string_view what) {
  for (std::string_view frag : {"<tool_call", "</tool_call", "<function", "</function", "<parameter", "</parameter",
                                "<think", "</think"})
    EXPECT_EQ(s.find(frag), std::string_view::npos) << what << " contains " << frag << ": " << s;
}

}  // namespace mimo::testing
