// The lookup policy (ARCHITECTURE.md, "Life of a lookup"). A fresh cached answer is served at once ("hit").
// Past fresh_for but within stale_while_revalidate it is still served at once ("stale") and
// refreshed in the background, once however many requests see it. Past that window it is
// re-fetched before answering ("revalidated"); if every upstream fails, a copy within
// stale_if_error is served ("stale"). Nothing cached: the upstreams are asked ("miss") through the
// fleet's order, health and hedging, and concurrent identical misses share one fetch. Keys that do
// not really carry what was asked for are never cached; accepted keys are merged with the cached
// copy (nothing a cached copy had is lost), written through the cache's writer, then served. Not
// found anywhere: 404, remembered for negative_ttl ("negative"). Upstreams failing with nothing to
// serve: 503, or 504 when they timed out. Never 502 (dirmngr marks a host dead on a 502).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "cache/store.hpp"
#include "config/config.hpp"
#include "gateway/coalescer.hpp"
#include "gateway/fleet.hpp"
#include "gateway/http_message.hpp"
#include "gateway/metrics.hpp"
#include "hkp/lookup.hpp"
#include "gateway/clock.hpp"

namespace hkpgw::gateway {

class WorkPool;

class LookupService {
 public:
  // `background` runs revalidations that outlive the request that started them.
  // `pool` does every OpenPGP parse and merge (never a network thread).
  LookupService(cache::Store& store, Fleet& fleet, WorkPool& pool, Clock now,
                boost::asio::any_io_executor background, Metrics* metrics = nullptr)
      : store_(store),
        fleet_(fleet),
        pool_(pool),
        now_(std::move(now)),
        background_(std::move(background)),
        metrics_(metrics) {}

  // Answers one parsed lookup (any op but stats), from any front. Applies the lookup policy:
  // 32-bit key IDs per keys.short_key_ids (400 under "reject"), the client's no-cache only with
  // server.honor_client_no_cache. Never throws for client or upstream input.
  boost::asio::awaitable<HttpResponse> lookup(const hkp::LookupRequest& request,
                                              bool client_no_cache,
                                              std::shared_ptr<const Snapshot> snapshot);

  // What key cleaning removed (from upstream answers and submissions) since start, by reason.
  std::map<std::string, std::uint64_t> dropped_totals() const;
  // Counts (log line, op=stats, metrics) what cleaning dropped from keys that came from `source`.
  void count_dropped(const std::map<std::string, std::size_t>& dropped, std::string_view source);

 private:
  struct Found;
  struct Fetched;
  boost::asio::awaitable<HttpResponse> lookup_keys(const hkp::LookupRequest& request,
                                                   bool no_cache,
                                                   std::shared_ptr<const Snapshot> snapshot);
  boost::asio::awaitable<HttpResponse> lookup_index(const hkp::LookupRequest& request,
                                                    bool no_cache,
                                                    std::shared_ptr<const Snapshot> snapshot);
  // Fetch, verify, merge and store: the coalesced unit of work for one query.
  boost::asio::awaitable<Fetched> fetch_keys(hkp::Search search, std::string qkey,
                                             std::shared_ptr<const Snapshot> snapshot);
  boost::asio::awaitable<Fetched> fetch_index(hkp::Search search, std::string qkey,
                                              std::shared_ptr<const Snapshot> snapshot);
  boost::asio::awaitable<std::shared_ptr<const Fetched>> shared_fetch(
      bool index, const hkp::Search& search, const std::string& qkey,
      std::shared_ptr<const Snapshot> snapshot);
  void revalidate_in_background(bool index, const hkp::Search& search, const std::string& qkey,
                                std::shared_ptr<const Snapshot> snapshot);
  boost::asio::awaitable<void> store_and_wait(cache::WriteBatch batch);
  Found load_cached(const hkp::Search& search, bool need_info) const;

  cache::Store& store_;
  Fleet& fleet_;
  WorkPool& pool_;
  Clock now_;
  boost::asio::any_io_executor background_;
  Metrics* metrics_;
  Coalescer<Fetched> keys_, indexes_;
  std::atomic<bool> write_failure_logged_{false};
  mutable std::mutex dropped_mutex_;
  std::map<std::string, std::uint64_t> dropped_;
};

}  // namespace hkpgw::gateway
