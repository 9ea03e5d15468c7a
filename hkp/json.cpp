#include "hkp/json.hpp"

#include <boost/json/serialize.hpp>
#include <cmath>

#include "hkp/text.hpp"

namespace hkpgw::hkp {

json::string json_text(std::string_view s) {
  const std::string valid = valid_utf8(s);
  return json::string(valid);
}

json::value json_number(double d) {
  if (d == std::floor(d) && std::fabs(d) < 9.0e15) return static_cast<std::int64_t>(d);
  return d;
}

std::string json_body(const json::value& v, bool newline) {
  std::string out = json::serialize(v);
  if (newline) out.push_back('\n');
  return out;
}

}  // namespace hkpgw::hkp
