// The tokenizer.json "normalizer": Unicode normalisation forms (utf8proc),
// alone or in a Sequence, or none at all. Other normalizer types are refused
// at load time rather than silently skipped, since skipping one changes ids.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace mimo {

class Normalizer {
 public:
  enum class Form { NFC, NFD, NFKC, NFKD };

  Normalizer() = default;  // identity
  // `j` is the "normalizer" value (null allowed). Throws mimo::Error.
  static Normalizer from_json(const nlohmann::json& j);

  bool is_identity() const { return forms_.empty(); }
  // `text` must be valid UTF-8. Returns a view of `text` when nothing changes,
  // else a view of *storage.
  std::string_view apply(std::string_view text, std::string* storage) const;

 private:
  std::vector<Form> forms_;
};

}  // namespace mimo
