// Turning untrusted bytes (an upstream answer, an upload, a keyring export) into ParsedKeys with
// RNP: armored or binary input, several keys per body, bad keys skipped one by one, secret key
// material detected and refused, third-party signatures stripped per policy, size limits applied.
// CPU bound (about 1 ms for an ed25519 key, 3 ms for RSA-3072): never call it on a cache hit.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "hkp/key.hpp"

namespace hkpgw::hkp {

struct RejectedKey {
  std::string fingerprint;  // "" when not even that could be read
  gpg_err_code_t code = GPG_ERR_INV_PACKET;
  std::string reason;  // one line
};

struct ParseOutcome {
  std::vector<ParsedKey> keys;       // usable public keys, in input order
  std::vector<RejectedKey> rejected;
  bool secret_material = false;  // the input held secret key packets: callers refuse all of it
  bool not_openpgp = false;      // nothing in the input parsed as OpenPGP at all
  std::size_t stripped_signatures = 0;  // third-party certifications removed by policy
};

// Thread-safe (each call has its own RNP context). Never throws for bad input.
ParseOutcome parse_keys(std::string_view data, const config::KeysConfig& limits);

// ASCII armor (RFC 4880 section 6.2) of binary OpenPGP packets as a PUBLIC KEY BLOCK, with the
// CRC-24 line, ending in a newline. Pure and cheap: the cache-hit path uses it.
std::string armor_public_keys(std::string_view packets);

}  // namespace hkpgw::hkp
