// The lookup policy of DESIGN.md section 2: answer /pks/lookup from the cache when it can, else
// ask the upstreams in order (default first), accept only keys that really carry what was asked
// for, write them through the cache's writer, then answer. Not found anywhere -> 404, remembered
// for negative_ttl; upstreams failing -> the cached copy if there is one (stale-if-error), else
// 503, or 504 when they timed out. Never 502 (dirmngr marks a host dead on a 502).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "cache/store.hpp"
#include "config/config.hpp"
#include "gateway/http_message.hpp"
#include "gateway/upstream_client.hpp"
#include "hkp/lookup.hpp"

namespace hkpgw::gateway {

// Everything a request needs from the configuration, fixed for its whole life: a reload builds a
// new Snapshot and swaps it in; requests in flight keep theirs.
struct Snapshot {
  std::shared_ptr<const config::Config> config;
  std::vector<std::shared_ptr<UpstreamClient>> upstreams;  // in try order: default first
};

using Clock = std::function<std::int64_t()>;  // seconds since the epoch

class LookupService {
 public:
  LookupService(cache::Store& store, Clock now) : store_(store), now_(std::move(now)) {}

  // Answers one parsed lookup (any op but stats). Never throws for client or upstream input.
  boost::asio::awaitable<HttpResponse> lookup(const hkp::LookupRequest& request, bool no_cache,
                                              const Snapshot& snapshot);

 private:
  struct Found;
  struct Fetched;
  boost::asio::awaitable<HttpResponse> lookup_keys(const hkp::LookupRequest& request,
                                                   bool no_cache, const Snapshot& snapshot);
  boost::asio::awaitable<HttpResponse> lookup_index(const hkp::LookupRequest& request,
                                                    bool no_cache, const Snapshot& snapshot);
  boost::asio::awaitable<Fetched> fetch_keys(const hkp::Search& search, const Snapshot& snapshot);
  boost::asio::awaitable<Fetched> fetch_index(const hkp::Search& search, const Snapshot& snapshot);
  boost::asio::awaitable<void> store_and_wait(cache::WriteBatch batch);
  Found load_cached(const hkp::Search& search, bool need_info) const;

  cache::Store& store_;
  Clock now_;
  std::atomic<bool> write_failure_logged_{false};
};

}  // namespace hkpgw::gateway
