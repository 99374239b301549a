// tokenize / detokenize (cmd_text_tokenize.cc) and chat-template
// (cmd_text_chat.cc). A development tree built without those libraries
// (MIMOSERVE_SKIP_DIRS) simply lacks the commands.
#include "cli/commands.h"

namespace mimo::cli {

#ifdef MIMO_HAVE_TOKENIZER
void register_tokenize_commands(CLI::App& app);
#endif
#ifdef MIMO_HAVE_CHAT
void register_chat_template_command(CLI::App& app);
#endif

void register_text_commands(CLI::App& app) {
#ifdef MIMO_HAVE_TOKENIZER
  register_tokenize_commands(app);
#endif
#ifdef MIMO_HAVE_CHAT
  register_chat_template_command(app);
#endif
  (void)app;
}

}  // namespace mimo::cli
