// Web Key Directory addressing (draft-koch-openpgp-webkey-service): where an address's key is
// published on its own domain. Pure functions; the fetching is an upstream kind's job.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace hkpgw::hkp {

// z-base-32 (Zooko's alphabet "ybndrfg8ejkmcpqxot1uwisza345h769"), most significant bit first,
// no padding: 20 bytes give 32 characters.
std::string zbase32(std::string_view bytes);

// The hashed local part: ASCII letters lower-cased (others untouched), SHA-1, z-base-32.
std::string wkd_hash(std::string_view local_part);

// One place to ask: the host to connect to (port 443) and the request target on it.
struct WkdLocation {
  std::string host;
  std::string target;
  std::string url() const { return "https://" + host + target; }
};

struct WkdUrls {
  std::string domain;  // lower case
  // openpgpkey.<domain>, /.well-known/openpgpkey/<domain>/hu/<hash>?l=<local>
  WkdLocation advanced;
  WkdLocation direct;  // <domain>, /.well-known/openpgpkey/hu/<hash>?l=<local>
};

// Both places for an address (local@domain; the domain lower-cased), or nothing when it is no
// address WKD can serve: no '@', an empty part, or a domain config::valid_domain_name refuses
// (an IP literal or a single-label name: input never makes the gateway connect to those).
std::optional<WkdUrls> wkd_urls(std::string_view address);

}  // namespace hkpgw::hkp
