#include "server/tokenizer_codec.h"

namespace mimo::server {

namespace {

class DetokenizerStream : public TextStream {
 public:
  DetokenizerStream(const Tokenizer& t, bool skip_special) : detok_(t, skip_special) {}
  std::string push(int32_t token) override { return detok_.push(token); }
  std::string flush() override { return detok_.flush(); }

 private:
  IncrementalDetokenizer detok_;
};

}  // namespace

std::unique_ptr<TextStream> TokenizerCodec::stream(bool skip_special) const {
  return std::make_unique<DetokenizerStream>(tokenizer_, skip_special);
}

}  // namespace mimo::server
