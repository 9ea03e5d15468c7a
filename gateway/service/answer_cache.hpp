// Armored answers of key gets, so a cached key is armored once, not on every hit
// (armoring was about a third of a hit's instructions). An entry is the key's packets and their
// armor; it is used only when the packets just read from LMDB are byte for byte the ones it was
// made from, so a stale entry can cost a miss, never a wrong answer. The store's change hook
// (StoreOptions::on_commit) drops the entries of keys that changed or were evicted, which keeps
// memory for keys that are still served.
//
// Bounded: at most `max_bytes` of packets and armor (cache.answer_memory; 0 keeps nothing), in
// 16 shards of their own mutex (held for a lookup or an insert only); a full shard drops entries
// picked at random until the new one fits. Admission: a key is kept on its second miss within a
// while (a doorkeeper of 64k fingerprint hashes), so a scan of a million keys seen once each does
// not flush the keys that are asked for again and again.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "cache/record.hpp"
#include "cache/store.hpp"
#include "gateway/observe/clock.hpp"
#include "gateway/service/reused_answers.hpp"

namespace hkpgw::gateway {

class AnswerCache {
 public:
  explicit AnswerCache(std::size_t max_bytes = 16 << 20,
                       std::size_t reused_per_thread = ReusedAnswers::kDefaultPerThread)
      : shard_budget_(max_bytes / kShards), reused_(unix_now, reused_per_thread) {}
  // A reload's new bound: entries over it go now (picked at random).
  void set_max_bytes(std::size_t max_bytes);

  // A key's packets and their armor, made once and shared by every answer that sends them (a
  // hit copies neither out of LMDB nor into the response).
  struct Prepared {
    std::string packets;
    std::string armor;
  };
  // For `packets` (key `fpr`, just read from LMDB): the cached entry, or one made now and kept.
  std::shared_ptr<const Prepared> prepared(const cache::Fingerprint& fpr, std::string_view packets);
  // The armor alone (shares the entry).
  std::shared_ptr<const std::string> armored(const cache::Fingerprint& fpr, std::string_view packets) {
    auto p = prepared(fpr, packets);
    const std::string* armor = &p->armor;
    return std::shared_ptr<const std::string>(std::move(p), armor);
  }
  // Drops what a commit changed (connect to StoreOptions::on_commit), whole reused answers too.
  void forget(const cache::Committed& changed);
  // Whole answers sent again per network thread (the HKP server's AnswerReuse).
  ReusedAnswers& reused() { return reused_; }

  struct Stats {
    std::size_t entries = 0, bytes = 0;
  };
  Stats stats() const;

 private:
  static constexpr std::size_t kShards = 16;
  struct FingerprintHash {
    std::size_t operator()(const cache::Fingerprint& f) const noexcept;
  };
  struct Shard {
    mutable std::mutex mutex;
    std::unordered_map<cache::Fingerprint, std::shared_ptr<const Prepared>, FingerprintHash> entries;
    std::size_t bytes = 0;
    std::uint64_t victim = 0x9E3779B97F4A7C15ULL;  // picks what a full shard drops
  };
  Shard& shard_of(const cache::Fingerprint& f) { return shards_[FingerprintHash{}(f) % kShards]; }

  bool admit(const cache::Fingerprint& f);  // seen recently: worth keeping

  std::atomic<std::size_t> shard_budget_;
  static constexpr std::size_t kDoorkeeper = 1 << 16;
  std::array<std::atomic<std::uint32_t>, kDoorkeeper> seen_{};
  std::array<Shard, kShards> shards_;
  ReusedAnswers reused_;
};

}  // namespace hkpgw::gateway
