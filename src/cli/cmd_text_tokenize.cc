// `mimoserve tokenize` and `mimoserve detokenize`: line-oriented filters
// around mimo::Tokenizer for scripts and for comparing with other tokenizers.
// Each input line is one JSON value, so arbitrary text (newlines, NULs)
// round-trips; each output line answers one input line, in order.
#include <CLI/CLI.hpp>

#include <cstdint>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"
#include "tokenizer/tokenizer.h"

namespace mimo::cli {
namespace {

struct TokenizeOptions {
  std::string model_path;
  bool no_special = false;
  bool skip_special_tokens = false;
};

nlohmann::json parse_line(const std::string& line, size_t line_no) {
  try {
    return nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception& e) {
    fail("stdin line {}: not JSON: {}", line_no, e.what());
  }
}

void run_tokenize(const TokenizeOptions& opt) {
  const Tokenizer tok = Tokenizer::load(opt.model_path);
  std::string line;
  for (size_t line_no = 1; std::getline(std::cin, line); ++line_no) {
    const nlohmann::json j = parse_line(line, line_no);
    MIMO_CHECK(j.is_string(), "stdin line {}: expected a JSON string", line_no);
    const std::vector<int32_t> ids = tok.encode(j.get_ref<const std::string&>(), !opt.no_special);
    std::cout << nlohmann::json(ids).dump() << '\n';
  }
  std::cout.flush();
}

void run_detokenize(const TokenizeOptions& opt) {
  const Tokenizer tok = Tokenizer::load(opt.model_path);
  std::string line;
  for (size_t line_no = 1; std::getline(std::cin, line); ++line_no) {
    const nlohmann::json j = parse_line(line, line_no);
    MIMO_CHECK(j.is_array(), "stdin line {}: expected a JSON array of token ids", line_no);
    std::vector<int32_t> ids;
    ids.reserve(j.size());
    for (const auto& v : j) {
      MIMO_CHECK(v.is_number_integer() && v.get<int64_t>() >= 0 && v.get<int64_t>() < tok.vocab_size(),
                 "stdin line {}: {} is not a token id (vocab size {})", line_no, v.dump(), tok.vocab_size());
      ids.push_back(v.get<int32_t>());
    }
    // decode() already replaced broken UTF-8 with U+FFFD, so dump() cannot throw.
    std::cout << nlohmann::json(tok.decode(ids, opt.skip_special_tokens)).dump() << '\n';
  }
  std::cout.flush();
}

}  // namespace

void register_tokenize_commands(CLI::App& app) {
  auto opt = std::make_shared<TokenizeOptions>();

  CLI::App* enc = app.add_subcommand("tokenize", "encode text: one JSON string per stdin line -> one JSON id array");
  enc->add_option("--model-path", opt->model_path, "directory with tokenizer.json")->required();
  enc->add_flag("--no-special", opt->no_special, "encode special tokens such as <|im_start|> as plain text");
  enc->callback([opt] { run_tokenize(*opt); });

  CLI::App* dec =
      app.add_subcommand("detokenize", "decode ids: one JSON id array per stdin line -> one JSON string");
  dec->add_option("--model-path", opt->model_path, "directory with tokenizer.json")->required();
  dec->add_flag("--skip-special-tokens", opt->skip_special_tokens, "leave special tokens out of the text");
  dec->callback([opt] { run_detokenize(*opt); });
}

}  // namespace mimo::cli
