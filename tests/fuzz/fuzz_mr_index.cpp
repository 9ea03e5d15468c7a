// Machine-readable index listings from upstreams: parse, and format what parsed again; the v2
// JSON listing of whatever parsed (any bytes in user IDs) must itself parse as JSON. The same
// bytes as an upstream's prefix log: every prefix kept is 4 to 64 lower-case hex digits, sorted,
// at most as many as asked for.
#include <cstdint>
#include <string_view>

#include <boost/json.hpp>

#include "hkp/index.hpp"
#include "hkp/v2.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  auto entries = hkpgw::hkp::parse_mr_index(body);
  if (entries) {
    (void)hkpgw::hkp::format_mr_index(*entries, 1700000000);
    (void)hkpgw::hkp::format_html_index(*entries, "x", true, 1700000000);
    boost::system::error_code ec;
    (void)boost::json::parse(hkpgw::hkp::format_json_index(*entries, 1700000000), ec);
    if (ec) __builtin_trap();
  }
  const auto prefixes = hkpgw::hkp::parse_prefix_log(body, 1000);
  if (prefixes.size() > 1000) __builtin_trap();
  for (std::size_t i = 0; i < prefixes.size(); ++i) {
    const auto& p = prefixes[i];
    if (p.size() < 4 || p.size() > 64) __builtin_trap();
    for (const char c : p) {
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) __builtin_trap();
    }
    if (i > 0 && !(prefixes[i - 1] < p)) __builtin_trap();
  }
  return 0;
}
