// Subcommands of build/mimoserve. Each register_* adds one or more CLI11
// subcommands whose callbacks do the work; errors are mimo::Error and become
// "mimoserve: error: ..." with exit code 1 in main.cc.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace mimo::cli {

// Number checks for options, with plain messages: CLI11's PositiveNumber and
// NonNegativeNumber print their range as "0.000000 to 1797693134862315...".
inline CLI::Validator number_at_least(double min, bool inclusive, const char* what) {
  return CLI::Validator(
      [=](std::string& s) -> std::string {
        double v = 0;
        size_t pos = 0;
        try {
          v = std::stod(s, &pos);
        } catch (...) {
          pos = 0;
        }
        if (pos == 0 || pos != s.size()) return "'" + s + "' is not a number";
        return (inclusive ? v >= min : v > min) ? std::string() : std::string("must be ") + what + ", got " + s;
      },
      what);
}
inline CLI::Validator number_between(double lo, double hi, const char* what) {
  return CLI::Validator(
      [=](std::string& s) -> std::string {
        std::string bad = number_at_least(lo, true, what)(s);
        if (!bad.empty()) return bad;
        return std::stod(s) <= hi ? std::string() : std::string("must be ") + what + ", got " + s;
      },
      what);
}
inline const CLI::Validator kPositive = number_at_least(0, false, "positive");
inline const CLI::Validator kNonNegative = number_at_least(0, true, "zero or more");

void register_generate(CLI::App& app);         // cmd_generate.cc
void register_make_checkpoint(CLI::App& app);  // cmd_make_checkpoint.cc
void register_text_commands(CLI::App& app);    // cmd_text.cc: tokenize, detokenize, chat-template
void register_serve_commands(CLI::App& app);   // cmd_serve.cc: serve (alias launch_server)
void register_bench_commands(CLI::App& app);   // cmd_bench.cc: bench-one-batch
void register_bench_spec(CLI::App& app);       // cmd_bench_spec.cc: speculative decoding
void register_bench_serving(CLI::App& app);    // cmd_bench_serving.cc: HTTP serving benchmark
void register_bench_sweeps(CLI::App& app);     // cmd_bench_sweep.cc: bench-prefill, bench-decode

}  // namespace mimo::cli
