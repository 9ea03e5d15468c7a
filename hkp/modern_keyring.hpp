// Verification and cleaning of the keys RNP 0.16 cannot read: v6 keys (RFC 9580) and v4 keys
// whose primary key uses Ed25519 or Ed448 (what OpenPGP.js 6 makes by default). The mathematics
// is hkp/modern's (OpenSSL); the rules are the ones keyring.cpp applies with RNP, so a key is
// cleaned the same way whoever verifies it:
//
//  - a signature by the primary key stays only when it verifies where it stands (a binding of a
//    signing subkey also needs the subkey's back-signature); a certification by one of the
//    operator's certifiers only when it verifies with the certifier's key; other keys'
//    signatures that filter_keys let through (a designated revoker's revocation, anything under
//    `keep`) stay unverified, as with RNP, the revocation only while a verified self-signature
//    still names its issuer;
//  - a user ID or attribute stays with a verified certification or revocation by the primary
//    key, a subkey with a verified binding or revocation, whatever the key's state today;
//  - a key with no verified self-signature at all is refused.
//
// Internal to hkp/: parse_keys (keyring.hpp) calls it for the keys filter_keys passed.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <variant>

#include "config/config.hpp"
#include "hkp/key.hpp"
#include "hkp/key_filter.hpp"

namespace hkpgw::hkp {

// Whether a key (its packets, primary key first) is one for this verifier rather than RNP.
bool is_modern_key(std::string_view packets);

// The cleaned key and its facts, or why it is refused. Counts what it removed in `dropped`
// (invalid_signature, invalid_user_id, invalid_subkey), as keyring.cpp does.
std::variant<ParsedKey, RejectedKey> clean_modern_key(const FilteredKey& key,
                                                      const config::KeysConfig& limits,
                                                      std::map<std::string, std::size_t>& dropped);

}  // namespace hkpgw::hkp
