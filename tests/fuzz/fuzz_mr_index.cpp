// Machine-readable index listings from upstreams: parse, and format what parsed again; the v2
// JSON listing of whatever parsed (any bytes in user IDs) must itself parse as JSON.
#include <cstdint>
#include <string_view>

#include <boost/json.hpp>

#include "hkp/index.hpp"

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
  return 0;
}
