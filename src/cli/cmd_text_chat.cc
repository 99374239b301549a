// `mimoserve chat-template`: renders a model's chat template from the command
// line, the way the OpenAI server will, so prompts can be checked against
// SGLang/transformers without starting a server.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "chat/chat_template.h"
#include "core/error.h"

namespace mimo::cli {

namespace {

using json = nlohmann::ordered_json;

struct ChatTemplateArgs {
  std::string model_path;
  std::string template_file;
};

void run_chat_template(const ChatTemplateArgs& args) {
  std::string input((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  json req;
  try {
    req = json::parse(input);
  } catch (const json::exception& e) {
    fail("stdin: invalid JSON request: {}", e.what());
  }
  if (!req.is_object() || !req.contains("messages"))
    fail(
        "stdin: expected {{\"messages\": [...], \"tools\": [...], \"add_generation_prompt\": bool, "
        "\"chat_template_kwargs\": {{...}}}}");
  // The OpenAI server renders with add_generation_prompt=True unless told otherwise.
  bool add_generation_prompt = true;
  if (req.contains("add_generation_prompt")) {
    if (!req["add_generation_prompt"].is_boolean()) fail("stdin: add_generation_prompt must be true or false");
    add_generation_prompt = req["add_generation_prompt"].get<bool>();
  }
  const json tools = req.contains("tools") ? req["tools"] : json();
  const json kwargs = req.contains("chat_template_kwargs") ? req["chat_template_kwargs"] : json();

  ChatTemplate ct = [&] {
    if (args.template_file.empty()) return ChatTemplate::from_model_dir(args.model_path);
    std::ifstream f(args.template_file, std::ios::binary);
    if (!f) fail("cannot read {}", args.template_file);
    std::string src((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    return ChatTemplate::from_string(src, ChatTemplate::read_special_tokens(args.model_path));
  }();
  std::string prompt = ct.render(req["messages"], tools, add_generation_prompt, kwargs);
  // Exactly the prompt: no newline is added, so the output can be diffed
  // byte for byte against transformers' apply_chat_template(tokenize=False).
  if (std::fwrite(prompt.data(), 1, prompt.size(), stdout) != prompt.size()) fail("cannot write to stdout");
  std::fflush(stdout);
}

}  // namespace

void register_chat_template_command(CLI::App& app) {
  auto args = std::make_shared<ChatTemplateArgs>();
  CLI::App* cmd = app.add_subcommand(
      "chat-template",
      "print the prompt a chat request renders to; reads {\"messages\", \"tools\", \"add_generation_prompt\", "
      "\"chat_template_kwargs\"} as JSON on stdin");
  cmd->add_option("--model-path", args->model_path, "model directory (tokenizer_config.json, chat_template.jinja)")
      ->required();
  cmd->add_option("--chat-template", args->template_file,
                  "a Jinja template file to use instead of the model's (special tokens still come from the model)");
  cmd->callback([args] { run_chat_template(*args); });
}

}  // namespace mimo::cli
