#include "cli/commands.h"

namespace mimo::cli {

// tokenize / detokenize / chat-template land with the tokenizer work.
void register_text_commands(CLI::App&) {}

}  // namespace mimo::cli
