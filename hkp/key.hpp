// What the gateway knows about one OpenPGP key (a certificate: primary key, user IDs, subkeys):
// the facts the index formats and the identifier checks need, extracted once with RNP when the
// key arrives, so that serving it never parses OpenPGP again.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hkp/lookup.hpp"

namespace hkpgw::hkp {

struct UserId {
  std::string text;   // as in the packet (UTF-8 by convention, not guaranteed)
  std::string email;  // lower-cased addr-spec or ""
  std::int64_t created = 0;  // newest self-signature, seconds since the epoch
  bool revoked = false;
};

struct Subkey {
  std::string fingerprint;  // upper-case hex
  std::uint8_t algo = 0;    // OpenPGP public-key algorithm number
  std::uint32_t bits = 0;
  std::int64_t created = 0;
  std::int64_t expires = 0;  // absolute, 0 = never
  bool revoked = false;
};

struct KeyInfo {
  std::string fingerprint;  // primary key, upper-case hex (40 for v4)
  std::uint8_t version = 4;
  std::uint8_t algo = 0;
  std::uint32_t bits = 0;
  std::int64_t created = 0;
  std::int64_t expires = 0;  // absolute, 0 = never
  bool revoked = false;
  std::vector<UserId> uids;  // valid or revoked ones only; forged ones are never listed
  std::vector<Subkey> subkeys;

  // 64-bit key ID of the primary key (v4: the last 16 hex digits of the fingerprint).
  std::string keyid() const;
  // True when the primary key or a subkey carries the ID / fingerprint, or (email) a user ID
  // carries the address. Text searches match a user ID case-insensitively as a substring.
  bool matches(const Search& search) const;
  bool expired_at(std::int64_t now) const { return expires != 0 && expires <= now; }
};

// A key as it is stored and served: its facts plus its public packets (binary, transferable
// public key; never secret material).
struct ParsedKey {
  KeyInfo info;
  std::string packets;
};

// The addresses of a key's user IDs, once each, with whether every user ID carrying it is
// revoked, in user ID order.
std::vector<std::pair<std::string, bool>> addresses_of(const KeyInfo& info);

// Key ID of a fingerprint (v4: the low 64 bits).
std::string keyid_of(const std::string& fingerprint);

// Algorithm number for the names RNP uses ("RSA", "EDDSA", ...); 0 when unknown.
std::uint8_t algo_number(std::string_view rnp_name);
// Short display name for an algorithm number ("RSA", "EdDSA", ...).
const char* algo_display(std::uint8_t algo);

}  // namespace hkpgw::hkp
