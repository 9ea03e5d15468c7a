// The gateway's figures, gathered once per request and rendered for each surface from one list
// of names (docs/contract.md): op=stats as text and as JSON (options=mr), the admin API's
// /admin/cache, the scrape-time sample of /metrics, and `hkp-gateway cache stats`.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cache/store.hpp"
#include "gateway/observe/metrics.hpp"
#include "gateway/upstream/snapshot.hpp"
#include "hkp/text.hpp"

namespace hkpgw::gateway {

struct UpstreamFigures {
  std::string name, url;
  bool is_default = false;
  bool healthy = true;
  std::size_t connections = 0;
  std::uint64_t tls_resumptions = 0;
};

struct StatsReport {
  cache::StoreStats cache;
  std::map<std::string, std::uint64_t> dropped;  // cleaning totals by reason
  std::vector<UpstreamFigures> upstreams;        // in try order
};

StatsReport gather_stats(const cache::Store& store, const Snapshot& snap,
                         std::map<std::string, std::uint64_t> dropped = {});

// The cache's figures under their contract names, in display order: keys, identifiers, queries,
// cache_bytes, cache_file_bytes, cache_max_bytes, evicted, second_chances, forward_queue.
std::vector<std::pair<std::string_view, std::uint64_t>> cache_figures(const cache::StoreStats& s);

std::string stats_text(const StatsReport& r);  // op=stats
std::string stats_json(const StatsReport& r);  // op=stats&options=mr
std::string cache_json(const cache::StoreStats& s);  // /admin/cache (both end in a newline)
MetricsSample metrics_sample(const StatsReport& r);  // /metrics

// Whether this gateway can answer lookups: the cache reads, and an upstream is healthy or the
// cache holds keys to serve. The answer of /readyz (admin listener: with the reason) and of
// /readyz on the HKP listener (for load balancers that probe the serving port).
struct Readiness {
  bool ready = false;
  std::string why;  // "ready", "ready (cache only: no upstream is healthy)", "not ready: ..."
};
Readiness readiness(const cache::Store& store, const Snapshot& snap);

using hkp::json_string;  // every JSON answer quotes its strings one way (hkp/text.hpp)

}  // namespace hkpgw::gateway
