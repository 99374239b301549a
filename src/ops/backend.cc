#include "ops/backend.h"

#include "core/error.h"

namespace mimo {

Tensor Backend::upload(const Tensor& host) {
  MIMO_ASSERT(host.device() == Device::CPU);
  // Tiled layouts are the CPU kernels'; another device's weights come from
  // its own prepare_weight.
  MIMO_ASSERT(host.layout() == Tensor::Layout::RowMajor, "upload of tiled {} to {}", host.shape_str(), name());
  Tensor t = alloc(host.shape(), host.dtype());
  copy_from_host(t, host.data());
  if (host.scales()) t = t.with_scales(upload(*host.scales()), host.scale_block());  // FP8 block scales travel along
  return t;
}

void Backend::begin_capture() { MIMO_ASSERT(false, "backend {} cannot capture op graphs", name()); }
std::unique_ptr<OpGraph> Backend::end_capture() {
  MIMO_ASSERT(false, "backend {} cannot capture op graphs", name());
  return nullptr;
}
void Backend::abort_capture() { MIMO_ASSERT(false, "backend {} cannot capture op graphs", name()); }
void Backend::replay(OpGraph&) { MIMO_ASSERT(false, "backend {} cannot replay op graphs", name()); }

#ifndef MIMOSERVE_WITH_CUDA
std::unique_ptr<Backend> make_cuda_backend() { return nullptr; }
#endif

Tensor Workspace::take(std::vector<int64_t> shape, DType dtype) {
  int64_t n = 1;
  for (auto s : shape) n *= s;
  size_t bytes = (size_t(n) * dtype_size(dtype) + 255) / 256 * 256;
  if (used_ + bytes > capacity_) {
    // Out of room this step: serve from a separate allocation and remember to
    // grow the block at the next reset().
    high_water_ = std::max(high_water_, used_ + bytes);
    Tensor t = backend_.alloc(std::move(shape), dtype);
    overflow_.push_back(t);
    used_ += bytes;
    return t;
  }
  Tensor flat = block_.slice_rows(int64_t(used_), int64_t(used_ + bytes));
  used_ += bytes;
  high_water_ = std::max(high_water_, used_);
  Tensor t = Tensor::from_storage(std::move(shape), dtype, block_.device(), nullptr, flat.data());
  return t;
}

void Workspace::reset() {
  if (!overflow_.empty() || capacity_ < high_water_) {
    overflow_.clear();
    block_ = Tensor();
    capacity_ = high_water_ + high_water_ / 4;
    block_ = backend_.alloc({int64_t(capacity_)}, DType::U8);
    // Touched now, once: a host block is fresh pages, and the kernel zeroes
    // each on its first write. Left to the ops, that happened inside the
    // first big step after the block grew (a 512-token prefill of bench-0.5b
    // at batch 16 spent ~15% of its time in the kernel's clear_page).
    backend_.zero_(block_);
  }
  used_ = 0;
}

}  // namespace mimo
