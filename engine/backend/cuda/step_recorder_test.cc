#include "engine/backend/cuda/step_recorder.h"

#include <algorithm>
#include <numeric>
#include <vector>

#include "gtest/gtest.h"

namespace tessera::engine::cuda {
namespace {

TEST(MetaArenaTest, StagesChunksAlignedAndSharesRepeats) {
  std::vector<int32_t> host(1024, -7);
  MetaArena arena(host.data(), host.size());
  const std::vector<int32_t> pos = {5, 6, 7};
  const std::vector<int32_t> slots = {80, 81, 82};
  auto a = arena.Stage(/*kind=*/1, pos.data(), pos.size());
  auto b = arena.Stage(/*kind=*/2, slots.data(), slots.size());
  ASSERT_TRUE(a && b);
  EXPECT_EQ(*a, 0);
  EXPECT_EQ(*b, MetaArena::kMinReserve);
  EXPECT_EQ(*b % MetaArena::kAlign, 0);
  EXPECT_EQ(std::vector<int32_t>(host.begin() + *a, host.begin() + *a + 3), pos);
  EXPECT_EQ(std::vector<int32_t>(host.begin() + *b, host.begin() + *b + 3), slots);
  // The reserved tail is zeroed, not left with old contents.
  EXPECT_EQ(host[3], 0);
  EXPECT_EQ(host[MetaArena::kMinReserve - 1], 0);
  // The same positions again (the next layer): shared, nothing copied.
  const int64_t used = arena.used();
  EXPECT_EQ(arena.Stage(1, pos.data(), pos.size()), a);
  EXPECT_EQ(arena.used(), used);
  // Different contents under the same kind: a new chunk.
  const std::vector<int32_t> other = {5, 6, 8};
  auto c = arena.Stage(1, other.data(), other.size());
  ASSERT_TRUE(c);
  EXPECT_NE(*c, *a);
}

TEST(MetaArenaTest, LayoutStaysWhileAChunkGrowsWithinItsReservation) {
  // One decode step after another: the block table grows by one entry, the chunks after it
  // (and so the device pointers in a captured graph) must not move.
  std::vector<int32_t> host(4096);
  MetaArena arena(host.data(), host.size());
  std::vector<int64_t> first;
  for (int table_len = 17; table_len <= 64; ++table_len) {
    arena.Reset();
    std::vector<int32_t> ids = {42}, table(table_len), tail = {1, 2};
    std::iota(table.begin(), table.end(), 100);
    std::vector<int64_t> offsets = {*arena.Stage(0, ids.data(), 1),
                                    *arena.Stage(1, table.data(), table.size()),
                                    *arena.Stage(2, tail.data(), tail.size())};
    if (first.empty()) first = offsets;
    EXPECT_EQ(offsets, first) << "table length " << table_len;
  }
  // Past the reservation, later chunks move (and the step's signature changes with them).
  arena.Reset();
  std::vector<int32_t> ids = {42}, table(65), tail = {1, 2};
  arena.Stage(0, ids.data(), 1);
  arena.Stage(1, table.data(), table.size());
  EXPECT_NE(*arena.Stage(2, tail.data(), tail.size()), first[2]);
}

TEST(MetaArenaTest, FullArenaRefusesAndResetStartsOver) {
  std::vector<int32_t> host(128);
  MetaArena arena(host.data(), host.size());
  std::vector<int32_t> big(65, 3);
  EXPECT_TRUE(arena.Stage(0, big.data(), big.size()));  // reserves 128: all of it
  std::vector<int32_t> one = {1};
  EXPECT_FALSE(arena.Stage(1, one.data(), 1));
  EXPECT_FALSE(arena.Stage(2, big.data(), -1));
  arena.Reset();
  EXPECT_EQ(arena.used(), 0);
  EXPECT_EQ(arena.Stage(1, one.data(), 1), 0);
  // After a reset nothing is shared: the same chunk under kind 0 is copied again (and here no
  // longer fits next to the first one).
  EXPECT_FALSE(arena.Stage(0, big.data(), big.size()));
  arena.Reset();
  EXPECT_EQ(arena.Stage(0, big.data(), big.size()), 0);
}

TEST(OpSignatureTest, EqualOnlyForEqualArguments) {
  float x = 0;
  OpSignature a, b, c;
  a.Add(1, &x, int64_t{4096}, 1.0f);
  b.Add(1, &x, int64_t{4096}, 1.0f);
  c.Add(1, &x, int64_t{4097}, 1.0f);
  EXPECT_EQ(a.bytes(), b.bytes());
  EXPECT_NE(a.bytes(), c.bytes());
  OpSignature d;
  d.Add(2, &x, int64_t{4096}, 1.0f);  // another op with the same arguments
  EXPECT_NE(a.bytes(), d.bytes());
  a.Clear();
  EXPECT_TRUE(a.empty());
}

TEST(GraphCacheTest, CapturesOnTheSecondSightingAndReplaysAfter) {
  GraphCache<int> cache(/*max_graphs=*/2);
  int exec = 0;
  EXPECT_EQ(cache.Decide("step-a", &exec), GraphAction::kEager);
  EXPECT_EQ(cache.Decide("step-a", &exec), GraphAction::kCapture);
  EXPECT_FALSE(cache.UpdateCandidate().has_value());  // room left: no update
  EXPECT_TRUE(cache.Insert("step-a", 11).empty());
  EXPECT_EQ(cache.Decide("step-a", &exec), GraphAction::kReplay);
  EXPECT_EQ(exec, 11);
  // Alternating shapes each keep their graph while there is room.
  EXPECT_EQ(cache.Decide("step-b", &exec), GraphAction::kEager);
  EXPECT_EQ(cache.Decide("step-b", &exec), GraphAction::kCapture);
  EXPECT_FALSE(cache.UpdateCandidate().has_value());
  EXPECT_TRUE(cache.Insert("step-b", 12).empty());
  EXPECT_EQ(cache.Decide("step-a", &exec), GraphAction::kReplay);
  EXPECT_EQ(exec, 11);
  EXPECT_EQ(cache.Decide("step-b", &exec), GraphAction::kReplay);
  EXPECT_EQ(exec, 12);
  // Full: a new shape is offered the least recently used graph (a) to update in place.
  EXPECT_EQ(cache.Decide("step-c", &exec), GraphAction::kEager);
  EXPECT_EQ(cache.Decide("step-c", &exec), GraphAction::kCapture);
  ASSERT_EQ(cache.UpdateCandidate(), 11);
  cache.RekeyCandidate("step-c");
  EXPECT_EQ(cache.Decide("step-c", &exec), GraphAction::kReplay);
  EXPECT_EQ(exec, 11);
  // The updated graph no longer replays step-a; b is now the least recently used.
  EXPECT_EQ(cache.Decide("step-a", &exec), GraphAction::kEager);
  EXPECT_EQ(cache.UpdateCandidate(), 12);
  EXPECT_EQ(cache.size(), 2u);
}

TEST(GraphCacheTest, EvictsTheLeastRecentlyUsed) {
  GraphCache<int> cache(/*max_graphs=*/2);
  int exec = 0;
  EXPECT_TRUE(cache.Insert("a", 1).empty());
  EXPECT_TRUE(cache.Insert("b", 2).empty());
  EXPECT_EQ(cache.Decide("a", &exec), GraphAction::kReplay);  // a is now the most recent
  const std::vector<int> evicted = cache.Insert("c", 3);
  EXPECT_EQ(evicted, std::vector<int>{2});
  EXPECT_EQ(cache.Decide("b", &exec), GraphAction::kEager);
  EXPECT_EQ(cache.Decide("a", &exec), GraphAction::kReplay);
  std::vector<int> all = cache.Clear();
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, (std::vector<int>{1, 3}));
  EXPECT_EQ(cache.size(), 0u);
}

TEST(GraphCacheTest, SeenSetIsBounded) {
  GraphCache<int> cache(/*max_graphs=*/4, /*max_seen=*/3);
  int exec = 0;
  for (const char* s : {"a", "b", "c"}) EXPECT_EQ(cache.Decide(s, &exec), GraphAction::kEager);
  EXPECT_EQ(cache.Decide("d", &exec), GraphAction::kEager);  // forgets a, b, c
  EXPECT_EQ(cache.Decide("a", &exec), GraphAction::kEager);
  EXPECT_EQ(cache.Decide("d", &exec), GraphAction::kCapture);
}

}  // namespace
}  // namespace tessera::engine::cuda
