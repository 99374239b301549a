// The engine's TextCodec over mimo::Tokenizer: streaming detokenization
// (IncrementalDetokenizer) and the tokenizer's end-of-sequence ids.
#pragma once

#include "engine/text.h"
#include "tokenizer/tokenizer.h"

namespace mimo::server {

class TokenizerCodec : public TextCodec {
 public:
  explicit TokenizerCodec(Tokenizer tokenizer) : tokenizer_(std::move(tokenizer)) {}
  std::unique_ptr<TextStream> stream(bool skip_special) const override;
  std::vector<int32_t> eos_ids() const override { return tokenizer_.eos_ids(); }
  const Tokenizer& tokenizer() const { return tokenizer_; }

 private:
  Tokenizer tokenizer_;
};

}  // namespace mimo::server
