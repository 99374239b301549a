#include "core/tensor.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <numeric>

#include <sys/mman.h>

#include "core/error.h"
#include "core/host_alloc.h"

namespace mimo {

std::string_view device_name(Device d) { return d == Device::CPU ? "cpu" : "cuda"; }

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (auto s : shape_) n *= s;
  return n;
}

std::string Tensor::shape_str() const {
  std::string s = "[";
  for (size_t i = 0; i < shape_.size(); i++) s += (i ? ", " : "") + std::to_string(shape_[i]);
  return s + "]";
}

void* host_alloc(size_t bytes, bool huge) {
  constexpr size_t kHuge = size_t(2) << 20;
  if (!huge || bytes < 2 * kHuge) {
    bytes = std::max<size_t>(64, (bytes + 63) / 64 * 64);
    void* p = std::aligned_alloc(64, bytes);
    MIMO_CHECK(p != nullptr, "out of host memory allocating {} bytes", bytes);
    return p;
  }
  bytes = (bytes + kHuge - 1) / kHuge * kHuge;
  void* p = std::aligned_alloc(kHuge, bytes);
  MIMO_CHECK(p != nullptr, "out of host memory allocating {} bytes", bytes);
#ifdef MADV_HUGEPAGE
  madvise(p, bytes, MADV_HUGEPAGE);  // a hint: without transparent huge pages nothing changes
#endif
  return p;
}

Tensor Tensor::empty(std::vector<int64_t> shape, DType dtype, bool huge) {
  Tensor t;
  t.shape_ = std::move(shape);
  t.dtype_ = dtype;
  void* p = host_alloc(t.nbytes(), huge);
  t.storage_ = std::shared_ptr<void>(p, [](void* q) { std::free(q); });
  t.data_ = p;
  return t;
}

Tensor Tensor::zeros(std::vector<int64_t> shape, DType dtype) {
  Tensor t = empty(std::move(shape), dtype);
  std::memset(t.data_, 0, t.nbytes());
  return t;
}

Tensor Tensor::from_storage(std::vector<int64_t> shape, DType dtype, Device dev, std::shared_ptr<void> storage,
                            void* data) {
  Tensor t;
  t.shape_ = std::move(shape);
  t.dtype_ = dtype;
  t.device_ = dev;
  t.storage_ = std::move(storage);
  t.data_ = data;
  return t;
}

Tensor Tensor::wrap(std::vector<int64_t> shape, DType dtype, void* data, std::shared_ptr<void> owner) {
  return from_storage(std::move(shape), dtype, Device::CPU, std::move(owner), data);
}

Tensor Tensor::view(std::vector<int64_t> shape) const {
  Tensor t = *this;
  t.shape_ = std::move(shape);
  MIMO_ASSERT(t.numel() == numel(), "view {} of {}", t.shape_str(), shape_str());
  if (scales_.s) {
    // Scales follow the rows: the last dim (the scaled columns) must stay.
    MIMO_ASSERT(!t.shape_.empty() && t.shape_.back() == shape_.back(), "view {} of block-scaled {}", t.shape_str(),
                shape_str());
    std::vector<int64_t> ss = t.shape_;
    ss.back() = scales_.s->shape().back();
    t.scales_.s = std::make_shared<const Tensor>(scales_.s->view(std::move(ss)));
  }
  return t;
}

Tensor Tensor::with_scales(Tensor scales, int block) const {
  MIMO_ASSERT(dtype_ == DType::F8E4M3 && scales.dtype() == DType::F32 && block > 0 && ndim() >= 1 &&
                  scales.ndim() == ndim() && scales.device() == device_,
              "block scales {} for {}", scales.shape_str(), shape_str());
  for (int i = 0; i + 1 < ndim(); i++) MIMO_ASSERT(scales.dim(i) == dim(i), "block scales {} for {}", scales.shape_str(), shape_str());
  MIMO_ASSERT(scales.dim(-1) == (dim(-1) + block - 1) / block, "block scales {} for {} in blocks of {}",
              scales.shape_str(), shape_str(), block);
  Tensor t = *this;
  t.scales_ = {std::make_shared<const Tensor>(std::move(scales)), block};
  return t;
}

Tensor Tensor::with_layout(Layout l) const {
  MIMO_ASSERT(l == Layout::RowMajor || (ndim() >= 2 && !scales_.s), "tiles for {}", shape_str());
  Tensor t = *this;
  t.layout_ = l;
  return t;
}

Tensor Tensor::slice_rows(int64_t begin, int64_t end) const {
  MIMO_ASSERT(ndim() >= 1 && begin >= 0 && begin <= end && end <= shape_[0]);
  // A tiled matrix splits only at whole tiles (a stack of them at any matrix).
  const int64_t tile = layout_ == Layout::AmxTiles ? kAmxTileRows : kRowTileRows;
  MIMO_ASSERT(layout_ == Layout::RowMajor || ndim() > 2 || (begin % tile == 0 && end % tile == 0),
              "rows {}..{} of tiled {}", begin, end, shape_str());
  Tensor t = *this;
  int64_t row = shape_[0] ? numel() / shape_[0] : 0;
  t.shape_[0] = end - begin;
  t.data_ = static_cast<char*>(data_) + size_t(begin * row) * dtype_size(dtype_);
  if (scales_.s) t.scales_.s = std::make_shared<const Tensor>(scales_.s->slice_rows(begin, end));
  return t;
}

}  // namespace mimo
