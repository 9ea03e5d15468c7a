// An entry of a full hash map picked at random, for caches that drop one to make room (random
// replacement: close to LRU's hit ratio for spread-out lookups, with no order to keep up).
// `state` is the caller's own small generator state. The map must not be empty.
#pragma once

#include <cstdint>

namespace hkpgw::gateway {

template <class Map>
typename Map::iterator random_entry(Map& map, std::uint64_t& state) {
  state = state * 6364136223846793005ULL + 1442695040888963407ULL;  // an LCG step
  const std::size_t buckets = map.bucket_count();
  for (std::size_t b = (state >> 33) % buckets;; b = (b + 1) % buckets) {
    if (map.bucket_size(b) > 0) return map.find(map.begin(b)->first);
  }
}

}  // namespace hkpgw::gateway
