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

struct WkdUrls {
  std::string advanced;  // https://openpgpkey.<domain>/.well-known/openpgpkey/<domain>/hu/<hash>?l=<local>
  std::string direct;    // https://<domain>/.well-known/openpgpkey/hu/<hash>?l=<local>
};

// Both URLs for an address (local@domain; the domain lower-cased), or nothing when it is no
// address: no '@', an empty part, or a domain with characters outside [a-z0-9.-].
std::optional<WkdUrls> wkd_urls(std::string_view address);

}  // namespace hkpgw::hkp
