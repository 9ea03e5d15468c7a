// /pks/lookup query strings: parse_lookup must answer a request or a Problem, never crash, and a
// parsed search must survive its own upstream form.
#include <cstdint>
#include <string_view>

#include "hkp/lookup.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view query(reinterpret_cast<const char*>(data), size);
  auto parsed = hkpgw::hkp::parse_lookup(query);
  if (parsed) {
    const std::string again = "op=get&search=" + hkpgw::hkp::percent_encode(parsed->search.upstream_form());
    (void)hkpgw::hkp::parse_lookup(again);
  } else if (parsed.error().status < 400 || parsed.error().status > 599) {
    __builtin_trap();  // a refusal is always a 4xx or 5xx
  }
  return 0;
}
