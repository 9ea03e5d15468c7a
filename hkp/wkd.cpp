#include "hkp/wkd.hpp"

#include "config/units.hpp"

#include <openssl/sha.h>

#include "hkp/lookup.hpp"

namespace hkpgw::hkp {

std::string zbase32(std::string_view bytes) {
  static constexpr char kAlphabet[] = "ybndrfg8ejkmcpqxot1uwisza345h769";
  std::string out;
  out.reserve((bytes.size() * 8 + 4) / 5);
  std::uint32_t acc = 0;
  int bits = 0;
  for (const char c : bytes) {
    acc = (acc << 8) | static_cast<unsigned char>(c);
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += kAlphabet[(acc >> bits) & 31];
    }
  }
  if (bits > 0) out += kAlphabet[(acc << (5 - bits)) & 31];
  return out;
}

std::string wkd_hash(std::string_view local_part) {
  const std::string lower = ascii_lower(local_part);
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(lower.data()), lower.size(), digest);
  return zbase32(std::string_view(reinterpret_cast<const char*>(digest), sizeof digest));
}

std::optional<WkdUrls> wkd_urls(std::string_view address) {
  const auto at = address.rfind('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == address.size()) return std::nullopt;
  const std::string_view local = address.substr(0, at);
  const std::string domain = ascii_lower(address.substr(at + 1));
  if (!config::valid_domain_name(domain)) return std::nullopt;
  const std::string hash = wkd_hash(local);
  const std::string l = "?l=" + percent_encode(local);
  return WkdUrls{domain,
                 {"openpgpkey." + domain, "/.well-known/openpgpkey/" + domain + "/hu/" + hash + l},
                 {domain, "/.well-known/openpgpkey/hu/" + hash + l}};
}

}  // namespace hkpgw::hkp
