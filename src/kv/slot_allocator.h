// One KV pool's slots, handed out in pages.
//
// Invariants (what callers and the radix cache rely on):
//  - The pool has capacity() = floor(num_slots / page_size) * page_size usable slots, cut into pages of
//    page_size consecutive slots: page p holds slots [p * page_size, (p + 1) * page_size). Slots past the last
//    whole page are never handed out.
//  - A page is either free or owned by exactly one holder (a running request or the radix cache); the allocator
//    does not know which. Ownership moves only in whole pages: free() releases the page of every slot given.
//  - A sequence's positions are page-contiguous: position i lives at page_base(i / page_size) + i % page_size.
//    So the slots of any page-aligned run of a sequence's positions are a set of whole pages, which is what lets
//    the radix cache own (and free) node-sized runs without splitting a page between two owners.
//  - free_slots() + slots held by all holders == capacity(), always. Freeing a free page is a bug (MIMO_ASSERT).
//  - Pages are reused last-freed-first; a fresh allocator hands out page 0 first. Nothing here is thread-safe:
//    the scheduler thread owns the allocators.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace mimo {

class SlotAllocator {
 public:
  SlotAllocator(int64_t num_slots, int page_size);  // capacity = floor(num_slots / page) pages; page_size >= 1

  int page_size() const { return page_; }
  int64_t capacity() const { return num_pages_ * page_; }                    // slots
  int64_t free_slots() const { return int64_t(free_pages_.size()) * page_; }  // free pages * page_size
  int64_t num_pages() const { return num_pages_; }
  int64_t free_pages() const { return int64_t(free_pages_.size()); }

  // Pages needed to extend a sequence of cur_len tokens by n tokens (positions stay page-contiguous:
  // position i lives at page_base(i / page) + i % page).
  int64_t pages_needed(int64_t cur_len, int64_t n) const;

  // Appends to `out` the slots of positions [cur_len, cur_len + n) of one sequence whose position
  // cur_len - 1 lives at `last_slot` (ignored when cur_len % page == 0: a fresh page starts).
  // Returns false and allocates nothing when not enough pages are free.
  bool alloc_extend(int64_t cur_len, int32_t last_slot, int64_t n, std::vector<int32_t>& out);
  // A fresh sequence of n tokens (alloc_extend from position 0).
  bool alloc(int64_t n, std::vector<int32_t>& out) { return alloc_extend(0, -1, n, out); }

  // Frees the pages that hold these slots (each page once; slots of one page may repeat or be partial).
  // Callers only free pages they own entirely. Slots < 0 are ignored. Double free is a MIMO_ASSERT.
  void free(std::span<const int32_t> slots);

  // Whether the page holding `slot` is currently handed out (tests and invariant checks).
  bool is_allocated(int32_t slot) const;

 private:
  int page_;
  int64_t num_pages_;
  std::vector<int32_t> free_pages_;  // stack of free page indices; back() is handed out next
  std::vector<uint8_t> page_free_;   // [num_pages] 1 = free
  // free() may see one page many times in a call; pages stamped with the current call's epoch were freed by
  // this call already, so repeats are skipped without sorting while true double frees still trip the assert.
  std::vector<uint32_t> page_epoch_;
  uint32_t epoch_ = 0;
};

}  // namespace mimo
