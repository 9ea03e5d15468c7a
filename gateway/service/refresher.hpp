// The refresher (config [refresh]): every cached key is asked of the upstreams again at least
// once per `every`, whether or not a client asks for it, so a revocation published upstream
// reaches the cache (and every client) within about `every`, and a cache never makes a
// revocation slower than the keyserver it fronts.
//
// The schedule is the gateway's own: a sweep walks the cache in fingerprint order (the store's
// slots, a slice at a time, read on the work pool) and refreshes the keys that are due: first
// those an upstream's prefix log says changed there (whatever their age), then those a client
// was served since their copy was fetched, then the rest. A key is due `every`
// after an upstream last confirmed it, less up to a tenth (fixed per key, from its fingerprint:
// keys fetched together do not come due together). Refreshes are paced evenly, with jitter, at
// twice the rate that covers the cache once per `every` (at least one a second, at most
// `max_rate`), so the upstream sees a steady trickle in an order no client chose, never a
// burst: after a restart or a long outage the overdue keys are spread out, not fetched at once.
// A refresh is a fetch like any other (UpstreamFetch: verified, merged with the cached copy,
// never losing a user ID, subkey or revocation, stored through the one write path). It waits
// while no upstream is healthy, and for an upstream's Retry-After; failures back off.
//
// Thread-safety: the loop runs on a strand of its own; refresh_now, request_all and
// oldest_seconds may be called from any thread.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cache/store.hpp"
#include "gateway/service/deps.hpp"
#include "gateway/service/upstream_fetch.hpp"
#include "gateway/upstream/snapshot.hpp"

namespace hkpgw::gateway {

// What one refresh did: unchanged, updated, revoked (the key, a subkey or a user ID became
// revoked), absent (every upstream asked answered that it has no such key: the copy is kept
// and counted as refreshed), failed (kept, asked again later).
enum class RefreshOutcome { unchanged, updated, revoked, absent, failed };
const char* refresh_outcome_name(RefreshOutcome o);

class Refresher {
 public:
  explicit Refresher(ServiceDeps deps)
      : d_(deps),
        fetch_(deps),
        refreshed_(deps.metrics.counter(
            "refresh_total",
            "Cached keys asked of the upstreams again by the refresher, by outcome (unchanged, "
            "updated, revoked, absent, failed)",
            {"outcome"}, {{"unchanged"}, {"updated"}, {"revoked"}, {"absent"}, {"failed"}})) {}

  // Starts the loop on its own strand of `executor`; stop() ends it after the current step.
  void start(boost::asio::any_io_executor executor, SnapshotSource snapshots);
  void stop() { running_ = false; }

  // Refreshes one cached key now, whatever its schedule (POST /admin/refresh/<fingerprint>);
  // nullopt when it is not cached.
  boost::asio::awaitable<std::optional<RefreshOutcome>> refresh_now(cache::Fingerprint fpr,
                                                                    std::shared_ptr<const Snapshot> snap);
  // Makes every key cached now due at once (POST /admin/refresh), refreshed at max_rate.
  void request_all();

  // Seconds since the oldest cached copy was confirmed by an upstream, as the last complete
  // sweep saw it (0 before one completed, with no key, or with the refresher off).
  double oldest_seconds() const;

 private:
  boost::asio::awaitable<void> step(std::shared_ptr<const Snapshot> snap);
  // The next due key of the sweep, reading slices as needed; nullopt when the sweep ended.
  boost::asio::awaitable<std::optional<cache::Store::KeyTimes>> next_due(
      const config::RefreshConfig& cfg);
  // `retry_after`: the longest Retry-After a failing upstream sent (0: none). nullopt when the
  // key is not cached (any more).
  boost::asio::awaitable<std::optional<RefreshOutcome>> refresh_one(cache::Fingerprint fpr,
                                                     std::shared_ptr<const Snapshot> snap,
                                                     std::chrono::seconds* retry_after);
  // A refresh the loop started has ended (on the loop's strand).
  void finished(const cache::Store::KeyTimes& key, RefreshOutcome outcome,
                std::chrono::seconds retry_after, const config::RefreshConfig& cfg);
  bool due(const cache::Store::KeyTimes& k, const config::RefreshConfig& cfg,
           std::int64_t now) const;

  ServiceDeps d_;
  UpstreamFetch fetch_;
  CounterFamily refreshed_;  // refresh_total{outcome}, each present at zero
  std::atomic<bool> running_{false};

  // The upstreams' prefix logs (HKP v2 draft, /pks/v2/prefixlog/<day>): fingerprint prefixes of
  // keys that changed upstream, each with when it was first seen here; a cached key carrying
  // one and confirmed before that is refreshed first. Read between sweeps every
  // clamp(every / 60, 10 s, 5 min) (news starts a sweep at once); an upstream that serves none
  // is asked again a day later.
  // Returns how many prefixes were new.
  boost::asio::awaitable<std::size_t> read_prefix_logs(const Snapshot& snap);
  bool changed_upstream(const cache::Store::KeyTimes& k) const;

  // The sweep, touched by the loop's strand only.
  enum class Phase { changed, served, rest };
  Phase phase_ = Phase::changed;
  // lower-case hex prefix -> first seen (unix); found by string_view (std::less<>)
  std::map<std::string, std::int64_t, std::less<>> changed_;
  std::set<std::size_t> prefix_lengths_;
  std::map<std::string, std::chrono::steady_clock::time_point> no_prefix_log_until_;
  std::chrono::steady_clock::time_point next_prefix_log_{};
  std::optional<cache::Fingerprint> cursor_;  // the last slot read
  std::vector<cache::Store::KeyTimes> slice_;
  std::size_t at_ = 0;                         // next entry of slice_ to look at
  std::int64_t sweep_oldest_ = 0;              // the least fetched_at seen in this sweep's rest
  std::chrono::steady_clock::time_point next_sweep_{}, next_refresh_{}, paused_until_{};
  unsigned failures_ = 0;  // in a row
  int in_flight_ = 0;      // refreshes the loop started that have not finished
  bool pause_logged_ = false;

  std::atomic<std::int64_t> oldest_{0};        // published at the end of each sweep
  std::atomic<std::int64_t> force_before_{0};  // keys confirmed before this are due now
  std::atomic<bool> restart_sweep_{false};     // request_all: the next step starts a sweep
};

}  // namespace hkpgw::gateway
