// Subcommands of build/mimoserve. Each register_* adds one or more CLI11
// subcommands whose callbacks do the work; errors are mimo::Error and become
// "mimoserve: error: ..." with exit code 1 in main.cc.
#pragma once

#include <CLI/CLI.hpp>
#include <limits>
#include <optional>
#include <string>

namespace mimo::cli {

// The whole of s as a number (std::stod's spellings, "inf" included), or none.
inline std::optional<double> parse_number(const std::string& s) {
  size_t pos = 0;
  double v = 0;
  try {
    v = std::stod(s, &pos);
  } catch (...) {
    return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;
  return v;
}

// Number checks for options, with plain messages: CLI11's PositiveNumber and
// NonNegativeNumber print their range as "0.000000 to 1797693134862315...".
inline CLI::Validator number_between(double lo, double hi, bool lo_inclusive, const char* what) {
  return CLI::Validator(
      [=](std::string& s) -> std::string {
        const std::optional<double> v = parse_number(s);
        if (!v) return "'" + s + "' is not a number";
        const bool ok = (lo_inclusive ? *v >= lo : *v > lo) && *v <= hi;
        return ok ? std::string() : std::string("must be ") + what + ", got " + s;
      },
      what);
}
inline CLI::Validator number_between(double lo, double hi, const char* what) { return number_between(lo, hi, true, what); }
inline CLI::Validator number_at_least(double min, bool inclusive, const char* what) {
  return number_between(min, std::numeric_limits<double>::infinity(), inclusive, what);
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
