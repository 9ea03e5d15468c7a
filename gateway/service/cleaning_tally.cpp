#include "gateway/service/cleaning_tally.hpp"

#include "gateway/observe/log.hpp"

namespace hkpgw::gateway {

void CleaningTally::add(const std::map<std::string, std::size_t>& dropped,
                        std::string_view source) {
  if (dropped.empty()) return;
  std::string summary;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [reason, n] : dropped) {
      totals_[reason] += n;
      metrics_.keys_rejected(reason, n);
      summary += (summary.empty() ? "" : ",") + reason + ":" + std::to_string(n);
    }
  }
  log::info("keys_cleaned", {{"upstream", std::string(source)}, {"dropped", summary}});
}

std::map<std::string, std::uint64_t> CleaningTally::totals() const {
  std::lock_guard lock(mutex_);
  return totals_;
}

}  // namespace hkpgw::gateway
