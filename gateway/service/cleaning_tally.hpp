// What key cleaning dropped (from upstream answers and from submissions) since start, by
// reason: op=stats shows the totals, hkp_gateway_keys_rejected_total counts them, and each
// cleaned key gets one keys_cleaned log line. Shared by the lookup and submission services.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "gateway/observe/metrics.hpp"

namespace hkpgw::gateway {

class CleaningTally {
 public:
  explicit CleaningTally(Metrics& metrics = Metrics::none()) : metrics_(metrics) {}

  // Counts what cleaning dropped from keys that came from `source` (an upstream, "upload").
  void add(const std::map<std::string, std::size_t>& dropped, std::string_view source);
  std::map<std::string, std::uint64_t> totals() const;

 private:
  Metrics& metrics_;
  mutable std::mutex mutex_;
  std::map<std::string, std::uint64_t> totals_;
};

}  // namespace hkpgw::gateway
