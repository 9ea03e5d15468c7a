#include "hkp/json.hpp"

#include <boost/json/serialize.hpp>
#include <cmath>

#include "hkp/text.hpp"

namespace hkpgw::hkp {

json::string json_text(std::string_view s) {
  json::string out;
  out.reserve(s.size());
  std::size_t run = 0;  // start of the bytes kept as they are
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const std::size_t n = c < 0x80 ? 1 : utf8_sequence(s.substr(i));
    if (n > 0) {
      i += n;
      continue;
    }
    out.append(s.substr(run, i - run));
    out.append("\xef\xbf\xbd");  // U+FFFD for the byte that is not UTF-8
    run = ++i;
  }
  out.append(s.substr(run));
  return out;
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
