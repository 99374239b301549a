#include <cstdio>

#include "cli/commands.h"
#include "core/error.h"

int main(int argc, char** argv) {
  CLI::App app{"mimoserve: an inference and serving engine for MiMo-V2-Flash"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "show help for every subcommand");
  mimo::cli::register_generate(app);
  mimo::cli::register_make_checkpoint(app);
  mimo::cli::register_text_commands(app);
  mimo::cli::register_serve_commands(app);
  mimo::cli::register_bench_commands(app);
  mimo::cli::register_bench_spec(app);
  mimo::cli::register_bench_serving(app);
  mimo::cli::register_bench_sweeps(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const mimo::Error& e) {
    std::fprintf(stderr, "mimoserve: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mimoserve: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
