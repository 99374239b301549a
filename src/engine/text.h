// How the engine turns tokens into text for streaming and stop strings,
// without depending on a tokenizer implementation.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace mimo {

class TextStream {
 public:
  virtual ~TextStream() = default;
  // Text completed by this token (never a broken UTF-8 sequence).
  virtual std::string push(int32_t token) = 0;
  virtual std::string flush() = 0;
};

class TextCodec {
 public:
  virtual ~TextCodec() = default;
  virtual std::unique_ptr<TextStream> stream(bool skip_special) const = 0;
  virtual std::vector<int32_t> eos_ids() const = 0;
};

}  // namespace mimo
