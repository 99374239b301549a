#include "kv/slot_allocator.h"

#include <algorithm>
#include <limits>

#include "core/error.h"

namespace mimo {

SlotAllocator::SlotAllocator(int64_t num_slots, int page_size) : page_(page_size) {
  MIMO_ASSERT(page_size >= 1, "page_size {}", page_size);
  MIMO_ASSERT(num_slots >= 0 && num_slots <= std::numeric_limits<int32_t>::max(), "num_slots {}", num_slots);
  num_pages_ = num_slots / page_size;
  free_pages_.reserve(size_t(num_pages_));
  // Highest page first in the stack so that page 0 is handed out first: fresh pools fill from the bottom,
  // which keeps small tests readable and first allocations deterministic.
  for (int64_t p = num_pages_ - 1; p >= 0; --p) free_pages_.push_back(int32_t(p));
  page_free_.assign(size_t(num_pages_), 1);
  page_epoch_.assign(size_t(num_pages_), 0);
}

int64_t SlotAllocator::pages_needed(int64_t cur_len, int64_t n) const {
  MIMO_ASSERT(cur_len >= 0, "cur_len {}", cur_len);
  if (n <= 0) return 0;
  // Pages already started cover positions [0, ceil(cur_len / page) * page); the rest need new pages.
  auto pages_for = [&](int64_t len) { return (len + page_ - 1) / page_; };
  return pages_for(cur_len + n) - pages_for(cur_len);
}

bool SlotAllocator::alloc_extend(int64_t cur_len, int32_t last_slot, int64_t n, std::vector<int32_t>& out) {
  if (n <= 0) return true;
  const int64_t need = pages_needed(cur_len, n);
  if (need > int64_t(free_pages_.size())) return false;
  out.reserve(out.size() + size_t(n));
  int64_t pos = cur_len, left = n;
  if (int64_t off = cur_len % page_; off != 0) {
    // Continue the partial page that holds position cur_len - 1 (at in-page offset off - 1).
    MIMO_ASSERT(last_slot >= 0 && last_slot < capacity(), "last_slot {} of a partial page", last_slot);
    MIMO_ASSERT(last_slot % page_ == off - 1, "last_slot {} is not position {} of its page", last_slot, cur_len - 1);
    MIMO_ASSERT(!page_free_[size_t(last_slot / page_)], "last_slot {} lies in a free page", last_slot);
    const int32_t base = last_slot - int32_t(off - 1);
    for (; off < page_ && left > 0; ++off, ++pos, --left) out.push_back(base + int32_t(off));
  }
  while (left > 0) {
    const int32_t page = free_pages_.back();
    free_pages_.pop_back();
    page_free_[size_t(page)] = 0;
    const int32_t base = page * page_;
    for (int off = 0; off < page_ && left > 0; ++off, ++pos, --left) out.push_back(base + off);
  }
  return true;
}

void SlotAllocator::free(std::span<const int32_t> slots) {
  if (slots.empty()) return;
  if (++epoch_ == 0) {  // wrapped: clear the stamps so an ancient epoch cannot alias the new one
    std::fill(page_epoch_.begin(), page_epoch_.end(), 0);
    epoch_ = 1;
  }
  for (int32_t s : slots) {
    if (s < 0) continue;
    MIMO_ASSERT(s < capacity(), "slot {} out of range (capacity {})", s, capacity());
    const size_t page = size_t(s / page_);
    if (page_epoch_[page] == epoch_) continue;  // freed by this call already
    MIMO_ASSERT(!page_free_[page], "double free of slot {} (page {})", s, page);
    page_epoch_[page] = epoch_;
    page_free_[page] = 1;
    free_pages_.push_back(int32_t(page));
  }
}

bool SlotAllocator::is_allocated(int32_t slot) const {
  if (slot < 0 || slot >= capacity()) return false;
  return !page_free_[size_t(slot / page_)];
}

}  // namespace mimo
