// Spend reports as another replica (or whoever reaches the admin listener from a trusted
// network) sends them: parsing never crashes, refuses what breaks the bounds, and a report that
// parses formats back to bytes that parse to the same report. The same bytes as the
// Authorization header of a /cluster/ request: parsed within its shape, and never a MAC that
// verifies without the secret.
#include <cstdint>
#include <string_view>
#include <variant>

#include "gateway/cluster/spend_report.hpp"
#include "gateway/net/cluster_auth.hpp"

using namespace hkpgw::gateway;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  if (const auto auth = parse_cluster_authorization(body)) {
    if (auth->nonce.size() != 32 || auth->mac.size() != 64) __builtin_trap();
    static ReplayGuard replays;
    if (!check_cluster_request("a secret the fuzzer does not know, 32+ bytes", body, "POST",
                               "/cluster/spends", "", auth->t, replays)) {
      __builtin_trap();
    }
  }
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
