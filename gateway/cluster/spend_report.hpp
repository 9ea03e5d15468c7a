// The wire form of a replica's spend report (gateway/cluster/cluster_spends.hpp, POST
// /cluster/spends): what each client spent at one replica in the last second. Pure text in and
// out, no I/O, so the parser can be fuzzed alone (tests/fuzz/fuzz_spends.cpp).
//
//   hkpgw-spends 1 <instance: 16 hex digits>
//   <client> <key lookups> <searches> <submissions>     one line per client, at most 20,000
//
// A client is as the rate limiter keys it: an IPv4 address or an IPv6 /64 ("2001:db8:1:2::/64"),
// in the limiter's own text form and no other; each count at most 1,000,000.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "gateway/http/rate_limit.hpp"  // ClientSpend

namespace hkpgw::gateway {

inline constexpr std::size_t kMaxReportClients = 20000;

struct SpendReport {
  std::string instance;
  std::vector<ClientSpend> spent;
};

std::string format_spend_report(const std::string& instance, const std::vector<ClientSpend>& spent);

// The report, or what is wrong with it as "line N: what" (the first problem; nothing of a
// report that is not whole is used).
std::variant<SpendReport, std::string> parse_spend_report(std::string_view body);

}  // namespace hkpgw::gateway
