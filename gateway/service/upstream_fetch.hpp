// Asking the upstreams on a miss (ARCHITECTURE.md, "Life of a lookup", steps 5 to 7): one fetch
// per query, shared by every request waiting for it (LookupService coalesces). Keys are verified
// to carry what was asked (a key that does not is never cached), cleaned and merged with the
// cached copy on the work pool, and written through the cache's one write path before the
// answer goes back, so a lookup that returned 200 is a cached key. A "not found" worth
// remembering is the exception: its record is left in `settle`, written after the 404 goes
// out (the coalescer answers the same search from the settled fetch until it is committed).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "cache/store.hpp"
#include "gateway/service/deps.hpp"
#include "gateway/upstream/fleet.hpp"
#include "hkp/index.hpp"
#include "hkp/key.hpp"

namespace hkpgw::gateway {

// What the upstreams said about one search, after verification, merging and storing.
struct Fetched {
  std::string upstream;                  // who answered usefully ("a+b" when merged); "" = nobody
  std::vector<hkp::ParsedKey> keys;      // verified to carry the search (key lookups)
  std::vector<hkp::IndexEntry> entries;  // index lookups
  int asked = 0, failed = 0, timed_out = 0, not_found = 0;
  bool panic = false;     // every upstream was known unhealthy before asking
  bool changed = false;   // the cache gained something (a key added or updated), not a stamp
  std::chrono::seconds retry_after{0};  // the longest Retry-After a failing upstream sent
  std::string failures;   // "detail; ..." for the 503/504 message
  cache::WriteBatch settle;  // to commit once the answer is out (taken before it is shared)

  // Leaves a "not found" for `qkey` in `settle` when nobody had it and nobody failed.
  void remember_if_not_found(const std::string& qkey, std::int64_t now);

  bool found() const { return !upstream.empty(); }
  // Every upstream asked answered, and none had it: worth remembering as "not found".
  bool definitive_not_found() const { return !found() && failed == 0; }
  // At least one upstream answered that it has nothing: the client hears "not found" (404) even
  // if others failed, but only a definitive answer is remembered.
  bool said_not_found() const { return !found() && (not_found > 0 || failed == 0); }
  bool all_timed_out() const { return asked > 0 && timed_out == asked; }
  // An answer we cannot use: a 404 (or nothing matching) is an answer; anything else is a
  // failure, logged.
  void record_unusable(const std::string& name, const UpstreamResponse& r);
};

class UpstreamFetch {
 public:
  // Keys one search keeps from the upstreams' answers: an address can carry thousands (anyone
  // can make keys with it), and each is verified, stored and served; the first ones, in answer
  // order, are kept, the rest dropped and logged (event=upstream_keys_capped).
  static constexpr std::size_t kMaxKeysPerAnswer = 100;

  explicit UpstreamFetch(ServiceDeps deps) : d_(std::move(deps)) {}

  // `qkey` is the query record's key (cache::query_key). `remember_not_found`: a definitive
  // "not found" leaves its query record in `settle` (the caller holds no answer for the search,
  // and every upstream was asked). `only`: ask that upstream alone, even when it is unhealthy
  // (then as in panic mode, for at most panic_timeout).
  boost::asio::awaitable<Fetched> keys(hkp::Search search, std::string qkey,
                                       std::shared_ptr<const Snapshot> snapshot,
                                       bool remember_not_found, std::string only = {});
  boost::asio::awaitable<Fetched> index(hkp::Search search, std::string qkey,
                                        std::shared_ptr<const Snapshot> snapshot,
                                        bool remember_not_found, std::string only = {});
  // Writes through the cache and waits for the commit; a failure is logged once and the
  // answer is served anyway.
  boost::asio::awaitable<void> store(cache::WriteBatch batch);

 private:
  // The part both share: candidates in order, panic mode, limits, the fan-out.
  boost::asio::awaitable<void> ask(const Snapshot& snap, UpstreamQuery query, Fetched& out,
                                   Judge judge, const std::string& only);
  boost::asio::awaitable<void> store_keys(const hkp::Search& search, const std::string& qkey,
                                          const std::vector<std::string>& order,
                                          std::map<std::string, std::string>& copies,
                                          const config::Config& cfg, Fetched& out);

  ServiceDeps d_;
  std::atomic<bool> write_failure_logged_{false};
};

}  // namespace hkpgw::gateway
