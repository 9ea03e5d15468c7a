#include "hkp/text.hpp"

namespace hkpgw::hkp {

std::string hex_upper(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const unsigned char c : bytes) {
    out.push_back(kHexUpper[c >> 4]);
    out.push_back(kHexUpper[c & 15]);
  }
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace hkpgw::hkp
