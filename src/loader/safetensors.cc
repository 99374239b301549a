#include "loader/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"

namespace mimo {

namespace fs = std::filesystem;
using json = nlohmann::json;

SafetensorsFile::~SafetensorsFile() {
  if (map_) munmap(map_, size_);
}

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  std::shared_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->path_ = path;
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) fail("cannot open '{}': {}", path, std::strerror(errno));
  struct stat st {};
  fstat(fd, &st);
  f->size_ = size_t(st.st_size);
  if (f->size_ < 8) {
    ::close(fd);
    fail("'{}' is not a safetensors file: {} bytes, too short for a header", path, f->size_);
  }
  f->map_ = mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (f->map_ == MAP_FAILED) {
    f->map_ = nullptr;
    fail("cannot mmap '{}': {}", path, std::strerror(errno));
  }
  const uint8_t* base = static_cast<const uint8_t*>(f->map_);
  uint64_t hlen;
  std::memcpy(&hlen, base, 8);
  if (hlen > f->size_ - 8 || hlen > (100u << 20))
    fail("'{}': corrupt safetensors header (header length {} exceeds file size {})", path, hlen, f->size_);
  json h;
  try {
    h = json::parse(reinterpret_cast<const char*>(base + 8), reinterpret_cast<const char*>(base + 8 + hlen));
  } catch (const json::exception& e) {
    fail("'{}': corrupt safetensors header: {}", path, e.what());
  }
  if (!h.is_object()) fail("'{}': corrupt safetensors header: not a JSON object", path);
  const uint8_t* data = base + 8 + hlen;
  size_t data_size = f->size_ - 8 - hlen;
  for (auto& [name, v] : h.items()) {
    if (name == "__metadata__") {
      if (v.is_object())
        for (auto& [k, mv] : v.items())
          if (mv.is_string()) f->metadata_[k] = mv.get<std::string>();
      continue;
    }
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets") ||
        !v["dtype"].is_string() || !v["shape"].is_array() || !v["data_offsets"].is_array() ||
        v["data_offsets"].size() != 2)
      fail("'{}': tensor '{}' has a malformed header entry", path, name);
    TensorInfo ti;
    ti.name = name;
    ti.file = path;
    std::string dt = v["dtype"].get<std::string>();
    if (!dtype_from_name(dt, &ti.dtype)) fail("'{}': tensor '{}' has unknown dtype '{}'", path, name, dt);
    int64_t numel = 1;
    for (auto& d : v["shape"]) {
      if (!d.is_number_unsigned()) fail("'{}': tensor '{}' has a bad shape entry", path, name);
      ti.shape.push_back(d.get<int64_t>());
      numel *= ti.shape.back();
    }
    auto& off = v["data_offsets"];
    if (!off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      fail("'{}': tensor '{}' has bad data_offsets", path, name);
    uint64_t b = off[0].get<uint64_t>(), e = off[1].get<uint64_t>();
    if (b > e || e > data_size)
      fail("'{}': tensor '{}' data [{}, {}) lies outside the file's {} data bytes (truncated file?)", path, name, b, e,
           data_size);
    if (e - b != uint64_t(numel) * dtype_size(ti.dtype))
      fail("'{}': tensor '{}' has {} bytes but shape and dtype need {}", path, name, e - b,
           uint64_t(numel) * dtype_size(ti.dtype));
    ti.data = data + b;
    ti.nbytes = size_t(e - b);
    f->tensors_.emplace(name, std::move(ti));
  }
  return f;
}

Checkpoint Checkpoint::open(const std::string& path) {
  Checkpoint c;
  std::vector<std::string> files;
  if (fs::is_regular_file(path)) {
    c.dir_ = fs::path(path).parent_path().string();
    files.push_back(path);
  } else if (fs::is_directory(path)) {
    c.dir_ = path;
    fs::path index = fs::path(path) / "model.safetensors.index.json";
    if (fs::exists(index)) {
      std::ifstream in(index);
      json j;
      try {
        j = json::parse(in);
      } catch (const json::exception& e) {
        fail("'{}': malformed JSON: {}", index.string(), e.what());
      }
      if (!j.contains("weight_map") || !j["weight_map"].is_object())
        fail("'{}': missing object 'weight_map'", index.string());
      std::set<std::string> shard_names;
      for (auto& [name, file] : j["weight_map"].items()) {
        if (!file.is_string()) fail("'{}': weight_map entry '{}' is not a file name", index.string(), name);
        shard_names.insert(file.get<std::string>());
      }
      for (auto& s : shard_names) files.push_back((fs::path(path) / s).string());
      // Every tensor the index names must be in the shard it names.
      std::vector<std::shared_ptr<SafetensorsFile>> opened;
      for (auto& f : files) opened.push_back(SafetensorsFile::open(f));
      std::map<std::string, std::shared_ptr<SafetensorsFile>> by_file;
      for (size_t i = 0; i < files.size(); i++) by_file[fs::path(files[i]).filename().string()] = opened[i];
      for (auto& [name, file] : j["weight_map"].items()) {
        auto& sf = by_file[file.get<std::string>()];
        if (!sf->tensors().count(name))
          fail("'{}' names tensor '{}' in '{}', which does not hold it", index.string(), name, sf->path());
      }
      for (auto& f : opened) c.files_.push_back(f);
      files.clear();
    } else if (fs::exists(fs::path(path) / "model.safetensors")) {
      files.push_back((fs::path(path) / "model.safetensors").string());
    } else {
      for (auto& e : fs::directory_iterator(path))
        if (e.path().extension() == ".safetensors") files.push_back(e.path().string());
      std::sort(files.begin(), files.end());
      if (files.empty()) fail("'{}' holds no .safetensors file", path);
    }
  } else {
    fail("model path '{}' does not exist", path);
  }
  for (auto& f : files) c.files_.push_back(SafetensorsFile::open(f));
  for (auto& f : c.files_)
    for (auto& [name, ti] : f->tensors()) {
      if (c.index_.count(name)) fail("tensor '{}' appears in both '{}' and '{}'", name, c.index_[name]->file, ti.file);
      c.index_[name] = &ti;
      c.owner_[name] = f;
    }
  return c;
}

const TensorInfo& Checkpoint::info(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) fail("checkpoint '{}' has no tensor '{}'", dir_, name);
  return *it->second;
}

Tensor Checkpoint::view(const std::string& name) const {
  const TensorInfo& ti = info(name);
  return Tensor::wrap(ti.shape, ti.dtype, const_cast<uint8_t*>(ti.data), owner_.at(name));
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  for (auto& [n, _] : index_) out.push_back(n);
  return out;
}

uint64_t Checkpoint::total_bytes() const {
  uint64_t n = 0;
  for (auto& [_, ti] : index_) n += ti->nbytes;
  return n;
}

void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  json h = json::object();
  if (!metadata.empty()) h["__metadata__"] = metadata;
  uint64_t off = 0;
  for (auto& [name, t] : tensors) {
    MIMO_ASSERT(t.device() == Device::CPU);
    h[name] = {{"dtype", std::string(dtype_name(t.dtype()))}, {"shape", t.shape()}, {"data_offsets", {off, off + t.nbytes()}}};
    off += t.nbytes();
  }
  std::string hs = h.dump();
  while ((hs.size() + 8) % 8) hs.push_back(' ');  // keep data 8-byte aligned
  std::ofstream out(path, std::ios::binary);
  if (!out) fail("cannot write '{}'", path);
  uint64_t hl = hs.size();
  out.write(reinterpret_cast<const char*>(&hl), 8);
  out.write(hs.data(), std::streamsize(hs.size()));
  for (auto& [_, t] : tensors) out.write(static_cast<const char*>(t.data()), std::streamsize(t.nbytes()));
  if (!out) fail("error writing '{}'", path);
}

}  // namespace mimo
