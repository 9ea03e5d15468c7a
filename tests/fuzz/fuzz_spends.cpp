// Spend reports as another replica (or whoever reaches the admin listener from a trusted
// network) sends them: parsing never crashes, refuses what breaks the bounds, and a report that
// parses formats back to bytes that parse to the same report.
#include <cstdint>
#include <string_view>
#include <variant>

#include "gateway/http/spend_report.hpp"

using namespace hkpgw::gateway;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  const auto parsed = parse_spend_report(body);
  const auto* report = std::get_if<SpendReport>(&parsed);
  if (report == nullptr) return 0;
  if (report->instance.size() != 16 || report->spent.size() > kMaxReportClients) __builtin_trap();
  for (const auto& s : report->spent) {
    if (s.client.empty() || s.client.size() > 64) __builtin_trap();
    for (auto n : s.n) {
      if (n > 1'000'000) __builtin_trap();
    }
  }
  const auto again = parse_spend_report(format_spend_report(report->instance, report->spent));
  const auto* same = std::get_if<SpendReport>(&again);
  if (same == nullptr || same->instance != report->instance || same->spent != report->spent) {
    __builtin_trap();
  }
  return 0;
}
