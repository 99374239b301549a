// Helpers shared by subcommands.
#pragma once

#include <memory>
#include <string>

#include "ops/backend.h"

namespace mimo::cli {

// "cpu", "cuda" or "auto" (cuda when this build has it and a GPU is present).
std::unique_ptr<Backend> make_backend(const std::string& device);

// The checkpoint to load: the given path, or the embedded default model when
// empty.
std::string resolve_model_path(const std::string& path);

}  // namespace mimo::cli
