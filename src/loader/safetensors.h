// safetensors files, read through mmap, single or sharded
// (model.safetensors.index.json), and written (for --dump-logits and the
// checkpoint maker). Every malformed header is a mimo::Error naming the file.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace mimo {

struct TensorInfo {
  std::string name;
  std::string file;  // path of the file that holds it
  DType dtype;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;  // inside the file's mapping
  size_t nbytes = 0;
};

class SafetensorsFile {
 public:
  static std::shared_ptr<SafetensorsFile> open(const std::string& path);
  ~SafetensorsFile();
  const std::string& path() const { return path_; }
  const std::map<std::string, TensorInfo>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  SafetensorsFile() = default;
  std::string path_;
  void* map_ = nullptr;
  size_t size_ = 0;
  std::map<std::string, TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

// All tensors of a checkpoint directory (or of one .safetensors file).
class Checkpoint {
 public:
  static Checkpoint open(const std::string& path);

  bool has(const std::string& name) const { return index_.count(name) != 0; }
  const TensorInfo& info(const std::string& name) const;  // mimo::Error if missing
  // A host tensor viewing the mapped bytes (kept alive by the checkpoint's files).
  Tensor view(const std::string& name) const;
  std::vector<std::string> names() const;
  uint64_t total_bytes() const;
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorInfo*> index_;
  std::map<std::string, std::shared_ptr<SafetensorsFile>> owner_;
};

// Writes host tensors (in the given order) to a safetensors file.
void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace mimo
