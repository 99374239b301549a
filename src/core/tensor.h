// A tensor: shape, dtype, device and a pointer into reference-counted storage.
// Row-major and contiguous; views share storage. Model code never reads device
// memory from the host; it only passes tensors to a Backend.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace mimo {

enum class Device : uint8_t { CPU, CUDA };
std::string_view device_name(Device d);

class Tensor;

// Block scales of a quantised weight matrix (F8E4M3): element (r, c) of the
// matrix is fp8(r, c) * s[r][c / block]. The scale tensor is F32 with one row
// per matrix row (any row grid of the checkpoint is expanded), so row slices
// of the matrix slice their scales alike.
struct BlockScales {
  std::shared_ptr<const Tensor> s;  // [..., rows, ceil(cols / block)] F32
  int block = 0;                    // columns per scale
};

class Tensor {
 public:
  Tensor() = default;

  // Allocates on the CPU (64-byte aligned, uninitialised; `huge`: on huge
  // pages, for memory read in long streams, see host_alloc.h). Other devices
  // go through their Backend, which wraps its memory with from_storage().
  static Tensor empty(std::vector<int64_t> shape, DType dtype, bool huge = false);
  static Tensor zeros(std::vector<int64_t> shape, DType dtype);
  static Tensor from_storage(std::vector<int64_t> shape, DType dtype, Device dev, std::shared_ptr<void> storage,
                             void* data);
  // A host tensor wrapping memory it does not own (e.g. an mmap kept alive by `owner`).
  static Tensor wrap(std::vector<int64_t> shape, DType dtype, void* data, std::shared_ptr<void> owner = nullptr);

  bool defined() const { return data_ != nullptr || numel() == 0; }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  int ndim() const { return int(shape_.size()); }
  int64_t dim(int i) const { return shape_[i < 0 ? i + ndim() : i]; }
  int64_t numel() const;
  size_t nbytes() const { return size_t(numel()) * dtype_size(dtype_); }
  std::string shape_str() const;

  void* data() { return data_; }
  const void* data() const { return data_; }
  template <typename T> T* ptr() { return static_cast<T*>(data_); }
  template <typename T> const T* ptr() const { return static_cast<const T*>(data_); }

  // Same storage, new shape with the same element count.
  Tensor view(std::vector<int64_t> shape) const;
  // Rows [begin, end) along dim 0 (block scales are sliced alike).
  Tensor slice_rows(int64_t begin, int64_t end) const;

  // Quantised weights carry their block scales; null for every other tensor.
  const Tensor* scales() const { return scales_.s.get(); }
  int scale_block() const { return scales_.block; }
  // This tensor with block scales attached (F8E4M3 only; scales on the same device).
  Tensor with_scales(Tensor scales, int block) const;

  // How a weight matrix's elements sit in memory. Only the CPU backend lays
  // weights out other than row-major, for its kernels (ops/cpu/kernels.h):
  // RowTiles, kRowTileRows rows interleaved per 8 values of k; AmxTiles,
  // 1 KB tiles of kAmxTileRows rows x 32 k. Only that backend's linear and
  // moe_experts read such a tensor; the shape stays [.., N, K].
  enum class Layout : uint8_t { RowMajor, RowTiles, AmxTiles };
  Layout layout() const { return layout_; }
  static constexpr int64_t kRowTileRows = 8;   // rows per tile (ops/cpu/kernels.h: kTileRows)
  static constexpr int64_t kAmxTileRows = 16;  // rows per AMX tile (kernels.h: kAmxRows)
  // The same storage marked as laid out so (the caller laid the data out).
  Tensor with_layout(Layout l) const;

 private:
  std::vector<int64_t> shape_;
  DType dtype_ = DType::F32;
  Device device_ = Device::CPU;
  std::shared_ptr<void> storage_;
  void* data_ = nullptr;
  BlockScales scales_;
  Layout layout_ = Layout::RowMajor;
};

}  // namespace mimo
