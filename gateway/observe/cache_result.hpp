// What the cache could do for one lookup: the X-HKP-Cache header, the access log's cache= field
// and the result label of hkp_gateway_cache_lookups_total (docs/contract.md) all name it this way.
#pragma once

#include <string_view>

namespace hkpgw::gateway {

enum class CacheResult {
  none,         // not a lookup ("-")
  hit,          // fresh copy served
  stale,        // served past fresh_for (refreshing in the background, or upstreams failing)
  miss,         // nothing usable cached: the upstreams were asked
  revalidated,  // cached copy too old to serve as is: re-fetched before answering
  negative,     // remembered "not found"
};

constexpr std::string_view cache_result_name(CacheResult r) {
  switch (r) {
    case CacheResult::none: return "-";
    case CacheResult::hit: return "hit";
    case CacheResult::stale: return "stale";
    case CacheResult::miss: return "miss";
    case CacheResult::revalidated: return "revalidated";
    case CacheResult::negative: return "negative";
  }
  return "-";
}

}  // namespace hkpgw::gateway
