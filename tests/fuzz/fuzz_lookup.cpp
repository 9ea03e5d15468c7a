// /pks/lookup query strings: parse_lookup must answer a request or a Problem, never crash, and a
// parsed search must survive its own upstream form. The same bytes as a VKS and an HKP v2 path:
// a lookup or a 4xx/5xx Problem, nothing else. The same bytes as what a balancer sends first
// (a PROXY protocol header: its length within what was received) and as a query's budget.
#include <cstdint>
#include <string_view>

#include "gateway/net/proxy_protocol.hpp"
#include "hkp/budget.hpp"
#include "hkp/lookup.hpp"
#include "hkp/v2.hpp"
#include "hkp/vks.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view query(reinterpret_cast<const char*>(data), size);
  auto parsed = hkpgw::hkp::parse_lookup(query);
  if (parsed) {
    const std::string again = "op=get&search=" + hkpgw::hkp::percent_encode(parsed->search.upstream_form());
    (void)hkpgw::hkp::parse_lookup(again);
  } else if (parsed.error().status < 400 || parsed.error().status > 599) {
    __builtin_trap();  // a refusal is always a 4xx or 5xx
  }
  const std::string tail(query);
  for (const std::string& path : {std::string(hkpgw::hkp::kVksPrefix) + tail,
                                  std::string(hkpgw::hkp::kV2Prefix) + tail}) {
    auto p = path.starts_with(hkpgw::hkp::kV2Prefix) ? hkpgw::hkp::parse_v2_lookup(path)
                                                     : hkpgw::hkp::parse_vks_lookup(path);
    if (p ? p->search.value.empty() : (p.error().status < 400 || p.error().status > 599)) {
      __builtin_trap();  // a lookup always names something; a refusal is a 4xx or 5xx
    }
    (void)hkpgw::hkp::v2_allowed_methods(path);
  }
  const auto proxy = hkpgw::gateway::parse_proxy_header(query);
  if (proxy.status == hkpgw::gateway::ProxyHeader::Status::ok &&
      (proxy.length == 0 || proxy.length > size ||
       (proxy.family != 0 && proxy.family != 4 && proxy.family != 6))) {
    __builtin_trap();
  }
  (void)hkpgw::hkp::lookup_budget(query);
  (void)hkpgw::hkp::vks_budget(query);
  (void)hkpgw::hkp::v2_budget(query);
  return 0;
}
