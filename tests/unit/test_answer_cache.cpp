// The armored-answer cache: a hit is armored once, a changed key is never served from an old
// entry, the store's change hook drops entries, and memory stays within the budget.
#include <catch2/catch.hpp>

#include "gateway/service/answer_cache.hpp"
#include "hkp/armor.hpp"

using namespace hkpgw;
using gateway::AnswerCache;

namespace {

cache::Fingerprint fpr(int n) {
  char hex[41];
  std::snprintf(hex, sizeof hex, "%040X", n);
  return *cache::Fingerprint::from_hex(hex);
}

}  // namespace

TEST_CASE("a key asked for again is kept, then served from the cache", "[answers][unit]") {
  AnswerCache answers;
  const std::string packets("\x98\x33\x04packets of a key", 19);
  const auto once = answers.armored(fpr(1), packets);
  CHECK(*once == hkp::armor_public_keys(packets));
  CHECK(answers.stats().entries == 0);  // asked for once: not kept (yet)
  const auto first = answers.armored(fpr(1), packets);
  CHECK(answers.stats().entries == 1);
  CHECK(answers.armored(fpr(1), packets) == first);  // the same object: not armored again
}

TEST_CASE("keys asked for once do not flush the ones asked for again", "[answers][unit]") {
  AnswerCache answers(64 << 10);  // 4 KiB a shard: a handful of entries
  const std::string packets(500, 'x');
  answers.armored(fpr(1), packets);
  const auto hot = answers.armored(fpr(1), packets);
  for (int i = 100; i < 5100; ++i) answers.armored(fpr(i), packets);  // a scan, each once
  CHECK(answers.armored(fpr(1), packets) == hot);
}

TEST_CASE("new packets for a key are armored anew, whatever the cache holds", "[answers][unit]") {
  AnswerCache answers;
  const std::string v1("\x98\x33\x04version one", 14), v2("\x98\x33\x04version two", 14);
  const auto a1 = answers.armored(fpr(1), v1);
  const auto a2 = answers.armored(fpr(1), v2);  // the store changed before on_commit ran
  CHECK(*a2 == hkp::armor_public_keys(v2));
  CHECK(*a1 != *a2);
  CHECK(answers.stats().entries == 1);
}

TEST_CASE("what a commit changed is dropped", "[answers][unit]") {
  AnswerCache answers;
  const std::string packets("\x98\x33\x04some key", 11);
  for (int round = 0; round < 2; ++round) {  // the second time, they are kept
    answers.armored(fpr(1), packets);
    answers.armored(fpr(2), packets);
  }
  REQUIRE(answers.stats().entries == 2);
  cache::Committed changed;
  changed.keys = {fpr(1), fpr(3)};
  answers.forget(changed);
  CHECK(answers.stats().entries == 1);
  const auto again = answers.armored(fpr(1), packets);
  CHECK(*again == hkp::armor_public_keys(packets));
}

TEST_CASE("the cache stays within its budget", "[answers][unit]") {
  AnswerCache answers(64 << 10);  // 4 KiB a shard
  const std::string packets(1000, 'x');
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 1000; ++i) answers.armored(fpr(i), packets);
  }
  CHECK(answers.stats().bytes <= (64 << 10));
  CHECK(answers.stats().entries > 0);
  // An answer bigger than a shard is served, not kept.
  const std::string huge(8 << 10, 'y');
  const auto big = answers.armored(fpr(5000), huge);
  CHECK(*big == hkp::armor_public_keys(huge));
  CHECK(answers.stats().bytes <= (64 << 10));
}

TEST_CASE("a reload's lower cache.answer_memory gives entries back at once, and 0 keeps none",
          "[answers][unit]") {
  AnswerCache answers(16 << 20);  // 1 MiB a shard; these keys all fall in one
  const std::string packets(1000, 'x');
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 200; ++i) answers.armored(fpr(i), packets);
  }
  REQUIRE(answers.stats().bytes > (64 << 10));
  answers.set_max_bytes(1 << 20);  // 64 KiB a shard
  CHECK(answers.stats().bytes <= (64 << 10));
  CHECK(answers.stats().entries > 0);
  answers.set_max_bytes(0);
  CHECK(answers.stats().entries == 0);
  for (int round = 0; round < 2; ++round) answers.armored(fpr(1), packets);
  CHECK(*answers.armored(fpr(1), packets) == hkp::armor_public_keys(packets));  // still served
  CHECK(answers.stats().entries == 0);
}
