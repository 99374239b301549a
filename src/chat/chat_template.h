// A model's chat template: OpenAI-style messages + tools -> prompt text,
// rendered like SGLang does it (message normalization of its serving_chat)
// on top of transformers' apply_chat_template (template choice, special
// token variables, jinja2 environment).
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace mimo {

namespace jinja {
class Template;
}

class ChatTemplate {
 public:
  // Loads the template(s) and special tokens of a Hugging Face model directory,
  // with transformers' precedence: chat_template.jinja (written by recent
  // transformers) wins over tokenizer_config.json's "chat_template", which is
  // a string or a list of {name, template}; additional_chat_templates/*.jinja
  // add named templates; chat_template.json is the last resort.
  // bos/eos/unk/pad/... tokens come from tokenizer_config.json (a string or
  // {"content": ...}), then special_tokens_map.json for ones it lacks.
  // Throws mimo::Error naming the file on a missing or unparsable template.
  static ChatTemplate from_model_dir(const std::string& dir);

  // Just the special tokens of a model directory (for a template given
  // separately, e.g. SGLang's --chat-template).
  static nlohmann::ordered_json read_special_tokens(const std::string& dir);

  // One template from its source. `special_tokens` maps names such as
  // "bos_token" to strings, exposed to the template as variables.
  static ChatTemplate from_string(const std::string& source,
                                  const nlohmann::ordered_json& special_tokens = nlohmann::ordered_json::object());

  // Renders the prompt. `messages`: OpenAI chat messages. `tools`: null, [] or
  // an array handed to the template unchanged (note SGLang passes
  // [t.function for t in tools] while transformers/vLLM pass the OpenAI tool
  // objects; the caller chooses). `extra_kwargs`: chat_template_kwargs such
  // as {"enable_thinking": false}, or null. Before rendering, messages are
  // normalized as SGLang does: null content becomes "", other null fields are
  // dropped, a list of content parts is joined (text parts, separated by " ")
  // unless the template iterates message content itself, and tool call
  // arguments given as JSON strings are parsed into objects.
  // Throws mimo::Error for malformed input and jinja::TemplateError (a
  // mimo::Error) when the template fails or calls raise_exception.
  std::string render(const nlohmann::ordered_json& messages, const nlohmann::ordered_json& tools,
                     bool add_generation_prompt, const nlohmann::ordered_json& extra_kwargs) const;

  // The exact variables render() gives the template (for tests that render
  // the same context with Python's jinja2).
  nlohmann::ordered_json build_context(const nlohmann::ordered_json& messages, const nlohmann::ordered_json& tools,
                                       bool add_generation_prompt, const nlohmann::ordered_json& extra_kwargs) const;

  // The template source render() would use for these tools.
  const std::string& source(const nlohmann::ordered_json& tools = nullptr) const;
  std::vector<std::string> template_names() const;
  const nlohmann::ordered_json& special_tokens() const { return special_tokens_; }

 private:
  struct Named {
    std::string name;
    std::string source;
    std::shared_ptr<const jinja::Template> tmpl;
    bool openai_content = false;  // iterates message content parts (SGLang's "openai" content format)
  };
  void add(const std::string& name, const std::string& source, const std::string& origin);
  const Named& select(const nlohmann::ordered_json& tools) const;
  nlohmann::ordered_json context_for(const Named& t, const nlohmann::ordered_json& messages,
                                     const nlohmann::ordered_json& tools, bool add_generation_prompt,
                                     const nlohmann::ordered_json& extra_kwargs) const;

  std::vector<Named> templates_;
  nlohmann::ordered_json special_tokens_ = nlohmann::ordered_json::object();
};

}  // namespace mimo
