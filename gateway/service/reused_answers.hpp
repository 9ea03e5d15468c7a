// Whole answers of cached-key hits, kept per network thread and sent again to the next request
// for the same target without running the handler (net/answer_reuse.hpp): no parsing, no route,
// no LMDB read, no lock. What makes that safe:
//   - only fresh hits of op=get by fingerprint, key ID or address, and of listings (op=index)
//     answered from a query record, are kept (LookupService gives them a Ticket), each until
//     its fresh_for ends, and never once a stored access time is over access_granularity old
//     (the handler then runs and notes the access for eviction's second chances);
//   - an address's answer depends on which keys carry the address and on its query record: any
//     commit that changes a key or a query record ends it;
//   - every commit that changes a key (a write, a merge, a purge, an eviction) bumps that key's
//     generation slot (forget, from the store's on_commit); an answer made before the bump is
//     never sent again. The insert checks a global generation read before its LMDB read, under
//     the mutex forget takes, so a commit racing the request can cost a reuse, never a stale
//     answer;
//   - a config reload drops everything (clear).
// Bounded: at most server.reused_answers answers per network thread (default 4,096; 0 keeps
// none, and every hit runs the handler); a full table drops one at random
// for each new one (random replacement: about LRU's hit ratio for spread-out lookups). An answer
// is prepared the second time its target is answered (a doorkeeper of 16k target hashes per
// thread), so lookups spread over a million keys prepare nothing that is never sent again.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>

#include "cache/record.hpp"
#include "cache/store.hpp"
#include "gateway/net/answer_reuse.hpp"

namespace hkpgw::gateway {

class ReusedAnswers final : public AnswerReuse {
 public:
  static constexpr std::size_t kDefaultPerThread = 4096;

  // What LookupService attaches to a reusable answer (HttpResponse::reuse).
  struct Ticket {
    cache::Fingerprint key;
    std::uint64_t generation = 0;  // generation() before the answer's LMDB read
    std::int64_t fetched_at = 0;
    std::int64_t reuse_until = 0;  // seconds: the end of fresh_for, or of the access granularity
    // An address's answer: which keys carry the address, and its query record, decide it, so
    // any key change and any query record change end it (not just `key`'s).
    bool any_change = false;
    std::uint64_t queries_generation = 0;  // queries_generation() before the read
  };
  // Answers bigger than this are not kept (a many-key address answer).
  static constexpr std::size_t kMaxBody = 64 << 10;

  ReusedAnswers(std::function<std::int64_t()> now, std::size_t max_per_thread);
  // A reload's new bound; each thread's table comes down to it at its next request.
  void set_max_per_thread(std::size_t n) { max_per_thread_.store(n, std::memory_order_relaxed); }
  // Read before the LMDB read whose answer may be reused.
  std::uint64_t generation() const { return global_.load(); }
  std::uint64_t queries_generation() const { return queries_.load(); }

  std::shared_ptr<const PreparedAnswer> find(const HttpRequest& request) override;
  void keep(const HttpRequest& request, const HttpResponse& response) override;
  void forget(const cache::Committed& changed);
  void clear();  // config reloaded

 private:
  static constexpr std::size_t kSlots = 4096;
  static std::size_t slot_of(const cache::Fingerprint& f);

  std::function<std::int64_t()> now_;
  const std::uint64_t serial_;  // whose thread tables these are
  std::atomic<std::size_t> max_per_thread_;
  std::mutex mutex_;            // keep() against forget()
  std::atomic<std::uint64_t> global_{1};
  std::atomic<std::uint64_t> epoch_{1};
  std::atomic<std::uint64_t> queries_{1};  // bumped by every commit that changes a query record
  std::array<std::atomic<std::uint32_t>, kSlots> slots_{};
};

}  // namespace hkpgw::gateway
