#include "parsers/tool_parser.h"

#include <random>

#include "core/error.h"
#include "parsers/tool_formats.h"

namespace mimo {

nlohmann::json ToolCall::to_json() const {
  return {{"id", id}, {"type", "function"}, {"function", {{"name", name}, {"arguments", arguments}}}};
}

nlohmann::json ToolCallDelta::to_json() const {
  if (is_header())
    return {{"index", index},
            {"id", id},
            {"type", "function"},
            {"function", {{"name", name}, {"arguments", arguments}}}};
  return {{"index", index}, {"function", {{"arguments", arguments}}}};
}

void ToolStreamDelta::append(ToolStreamDelta&& other) {
  content += other.content;
  for (auto& c : other.calls) calls.push_back(std::move(c));
}

void ToolParseResult::apply(const ToolStreamDelta& d) {
  content += d.content;
  for (const auto& c : d.calls) {
    if (c.is_header()) {
      calls.push_back({c.index, c.id, c.name, c.arguments});
      continue;
    }
    for (auto it = calls.rbegin(); it != calls.rend(); ++it)
      if (it->index == c.index) {
        it->arguments += c.arguments;
        break;
      }
  }
}

nlohmann::json ToolParseResult::calls_json() const {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& c : calls) a.push_back(c.to_json());
  return a;
}

static IdGenerator id_generator_from(uint64_t seed) {
  auto rng = std::make_shared<std::mt19937_64>(seed);
  return [rng] {
    static constexpr char kAlnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    std::string id = "call_";
    for (int i = 0; i < 24; ++i) id += kAlnum[(*rng)() % 62];
    return id;
  };
}

IdGenerator random_call_id_generator() {
  std::random_device rd;
  return id_generator_from((uint64_t(rd()) << 32) ^ rd());
}

IdGenerator seeded_call_id_generator(uint64_t seed) { return id_generator_from(seed); }

ToolCallParser::ToolCallParser(ToolParserOptions opts) : opts_(std::move(opts)) {
  if (!opts_.id_generator) opts_.id_generator = random_call_id_generator();
}

std::string ToolCallParser::new_call_id() { return opts_.id_generator(); }

ToolParseResult ToolCallParser::parse(std::string_view text) {
  reset();
  ToolParseResult r;
  r.apply(push(text));
  r.apply(finish());
  reset();
  return r;
}

namespace {

using Factory = std::unique_ptr<ToolCallParser> (*)(ToolSet, ToolParserOptions);

struct Entry {
  std::string_view name;
  Factory make;
};

// SGLang's --tool-call-parser names.
constexpr Entry kFormats[] = {
    {"mimo", make_mimo_tool_parser},
    {"qwen25", make_qwen25_tool_parser},
};

}  // namespace

std::vector<std::string> tool_parser_names() {
  std::vector<std::string> out;
  for (const auto& e : kFormats) out.emplace_back(e.name);
  return out;
}

std::unique_ptr<ToolCallParser> make_tool_parser(std::string_view name, const nlohmann::json& tools,
                                                 ToolParserOptions opts) {
  for (const auto& e : kFormats)
    if (e.name == name) return e.make(ToolSet(tools), std::move(opts));
  std::string known;
  for (const auto& e : kFormats) known += (known.empty() ? "" : ", ") + std::string(e.name);
  fail("unknown tool-call parser '{}' (known: {})", name, known);
}

}  // namespace mimo
