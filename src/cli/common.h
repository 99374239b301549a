// Helpers shared by subcommands.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "ops/backend.h"

namespace mimo::cli {

// "cpu", "cuda" or "auto" (cuda when this build has it and a GPU is present).
std::unique_ptr<Backend> make_backend(const std::string& device);

// The checkpoint to load: the given path, or the embedded default model when
// empty.
std::string resolve_model_path(const std::string& path);

// A comma-separated list of integers given to `flag`, each >= min_value;
// anything else (a non-number, a value below the bound, an empty list
// unless allowed) fails naming the flag and the item.
std::vector<int> parse_ints(const std::string& s, const char* flag, int min_value, bool allow_empty = false);

}  // namespace mimo::cli
