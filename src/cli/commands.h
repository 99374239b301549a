// Subcommands of build/mimoserve. Each register_* adds one or more CLI11
// subcommands whose callbacks do the work; errors are mimo::Error and become
// "mimoserve: error: ..." with exit code 1 in main.cc.
#pragma once

#include <CLI/CLI.hpp>

namespace mimo::cli {

void register_generate(CLI::App& app);         // cmd_generate.cc
void register_make_checkpoint(CLI::App& app);  // cmd_make_checkpoint.cc
void register_text_commands(CLI::App& app);    // cmd_text.cc: tokenize, detokenize, chat-template
void register_serve_commands(CLI::App& app);   // cmd_serve.cc: serve (alias launch_server)
void register_bench_commands(CLI::App& app);   // cmd_bench.cc: bench-one-batch
void register_bench_spec(CLI::App& app);       // cmd_bench_spec.cc: speculative decoding
void register_bench_serving(CLI::App& app);    // cmd_bench_serving.cc: HTTP serving benchmark
void register_bench_sweeps(CLI::App& app);     // cmd_bench_sweep.cc: bench-prefill, bench-decode

}  // namespace mimo::cli
