// SlotAllocator: page arithmetic, continuing partial pages, freeing whole pages once, all-or-nothing allocation.
#include "kv/slot_allocator.h"

#include <gtest/gtest.h>

#include <vector>

namespace mimo {
namespace {

TEST(SlotAllocator, CapacityIsWholePages) {
  SlotAllocator a(10, 4);
  EXPECT_EQ(a.page_size(), 4);
  EXPECT_EQ(a.num_pages(), 2);
  EXPECT_EQ(a.capacity(), 8);
  EXPECT_EQ(a.free_slots(), 8);
  SlotAllocator b(7, 1);
  EXPECT_EQ(b.capacity(), 7);
  SlotAllocator c(3, 4);
  EXPECT_EQ(c.capacity(), 0);
  std::vector<int32_t> out;
  EXPECT_FALSE(c.alloc(1, out));
  EXPECT_TRUE(c.alloc(0, out));
  EXPECT_TRUE(out.empty());
}

TEST(SlotAllocator, PagesNeeded) {
  SlotAllocator a(64, 4);
  EXPECT_EQ(a.pages_needed(0, 0), 0);
  EXPECT_EQ(a.pages_needed(0, 1), 1);
  EXPECT_EQ(a.pages_needed(0, 4), 1);
  EXPECT_EQ(a.pages_needed(0, 5), 2);
  EXPECT_EQ(a.pages_needed(3, 1), 0);  // fills the started page
  EXPECT_EQ(a.pages_needed(3, 2), 1);
  EXPECT_EQ(a.pages_needed(4, 1), 1);  // page boundary: fresh page
  EXPECT_EQ(a.pages_needed(5, 11), 2);  // positions 5..15: rest of page 1, pages 2 and 3
  SlotAllocator b(64, 1);
  EXPECT_EQ(b.pages_needed(17, 5), 5);
}

TEST(SlotAllocator, AllocExtendContinuesPartialPage) {
  SlotAllocator a(32, 4);
  std::vector<int32_t> seq;
  ASSERT_TRUE(a.alloc(3, seq));  // positions 0..2 on page 0
  EXPECT_EQ(seq, (std::vector<int32_t>{0, 1, 2}));
  EXPECT_EQ(a.free_slots(), 28);
  std::vector<int32_t> other;
  ASSERT_TRUE(a.alloc(2, other));  // another sequence takes page 1
  EXPECT_EQ(other, (std::vector<int32_t>{4, 5}));
  // Extend the first sequence by 6: position 3 goes to slot 3 (page 0), positions 4..8 to a fresh page (and one more).
  ASSERT_TRUE(a.alloc_extend(3, seq.back(), 6, seq));
  ASSERT_EQ(seq.size(), 9u);
  EXPECT_EQ(seq[3], 3);
  for (int i = 4; i < 8; ++i) EXPECT_EQ(seq[size_t(i)], seq[4] + (i - 4));
  EXPECT_EQ(seq[4] % 4, 0);
  EXPECT_EQ(seq[8] % 4, 0);
  EXPECT_NE(seq[8] / 4, seq[4] / 4);
  EXPECT_EQ(a.free_slots(), 32 - 4 * 4);
  // Continue the second sequence's page from position 2 (slot 6).
  ASSERT_TRUE(a.alloc_extend(2, other.back(), 2, other));
  EXPECT_EQ(other, (std::vector<int32_t>{4, 5, 6, 7}));
  EXPECT_EQ(a.free_slots(), 16);
  // At a page boundary last_slot is ignored.
  ASSERT_TRUE(a.alloc_extend(4, 12345, 1, other));
  EXPECT_EQ(other[4] % 4, 0);
}

TEST(SlotAllocator, ExhaustionAllocatesNothing) {
  SlotAllocator a(8, 4);
  std::vector<int32_t> s;
  ASSERT_TRUE(a.alloc(5, s));  // two pages
  EXPECT_EQ(a.free_slots(), 0);
  std::vector<int32_t> t;
  EXPECT_FALSE(a.alloc(1, t));
  EXPECT_TRUE(t.empty());
  // Filling the started page needs no new page, but going one past it does.
  EXPECT_FALSE(a.alloc_extend(5, s.back(), 4, s));
  EXPECT_EQ(s.size(), 5u);
  EXPECT_TRUE(a.alloc_extend(5, s.back(), 3, s));
  EXPECT_EQ(s.size(), 8u);
  EXPECT_EQ(a.free_slots(), 0);

  SlotAllocator b(12, 1);
  std::vector<int32_t> u;
  ASSERT_TRUE(b.alloc(10, u));
  EXPECT_FALSE(b.alloc_extend(10, u.back(), 3, u));
  EXPECT_EQ(u.size(), 10u);
  EXPECT_EQ(b.free_slots(), 2);
}

TEST(SlotAllocator, FreeWholePagesOnce) {
  SlotAllocator a(16, 4);
  std::vector<int32_t> s;
  ASSERT_TRUE(a.alloc(6, s));  // page 0 full, page 1 partial (slots 4, 5)
  EXPECT_EQ(a.free_slots(), 8);
  // A partial page and repeats free each page once; -1 is skipped.
  std::vector<int32_t> some{5, -1, 4, 5};
  a.free(some);
  EXPECT_EQ(a.free_slots(), 12);
  EXPECT_FALSE(a.is_allocated(4));
  EXPECT_FALSE(a.is_allocated(7));
  EXPECT_TRUE(a.is_allocated(0));
  std::vector<int32_t> one{2};  // any slot of a page frees the page
  a.free(one);
  EXPECT_EQ(a.free_slots(), 16);
  EXPECT_FALSE(a.is_allocated(0));
  // Freed pages are handed out again, last freed first.
  std::vector<int32_t> t;
  ASSERT_TRUE(a.alloc(1, t));
  EXPECT_EQ(t[0], 0);
  // The same page may be freed again once it has been reallocated.
  a.free(t);
  EXPECT_EQ(a.free_slots(), 16);
}

TEST(SlotAllocator, ConservationUnderRandomUse) {
  for (int page : {1, 3, 4}) {
    SlotAllocator a(200, page);
    std::vector<std::vector<int32_t>> seqs(8);
    uint32_t rng = 12345;
    auto next = [&] { return rng = rng * 1664525u + 1013904223u, rng >> 8; };
    for (int step = 0; step < 3000; ++step) {
      auto& s = seqs[next() % seqs.size()];
      if (next() % 4 == 0) {
        a.free(s);
        s.clear();
      } else {
        const int64_t n = int64_t(next() % 9), before = int64_t(s.size());
        const int64_t need = a.pages_needed(before, n), had = a.free_pages();
        const bool ok = a.alloc_extend(before, s.empty() ? -1 : s.back(), n, s);
        EXPECT_EQ(ok, need <= had);
        EXPECT_EQ(a.free_pages(), ok ? had - need : had);
        EXPECT_EQ(int64_t(s.size()), ok ? before + n : before);
        for (size_t i = size_t(before); i < s.size(); ++i) {
          if (i % size_t(page) != 0) {
            EXPECT_EQ(s[i], s[i - 1] + 1);
          } else {
            EXPECT_EQ(s[i] % page, 0);
          }
        }
      }
      int64_t held_pages = 0;
      for (auto& q : seqs) held_pages += (int64_t(q.size()) + page - 1) / page;
      ASSERT_EQ(a.free_slots() + held_pages * page, a.capacity());
    }
  }
}

TEST(SlotAllocatorDeathTest, DoubleFreeAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  SlotAllocator a(8, 4);
  std::vector<int32_t> s;
  ASSERT_TRUE(a.alloc(4, s));
  a.free(s);
  EXPECT_DEATH(a.free(s), "double free");
}

}  // namespace
}  // namespace mimo
