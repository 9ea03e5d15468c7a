// What each key of a certificate may be used for, as its key flags say (RFC 9580, section
// 5.2.3.29): the primary key's from its newest self-signature (direct-key or on a user ID), each
// subkey's from its newest binding signature. Read from a copy already verified and cleaned
// (hkp/keyring.hpp decided which signatures hold); this only reads their flags. Linear in the
// packets, no cryptography but the fingerprints' digests.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace hkpgw::hkp {

namespace key_flag {
inline constexpr std::uint8_t certify = 0x01, sign = 0x02, encrypt_communications = 0x04,
                              encrypt_storage = 0x08, authenticate = 0x20;
}

// Upper-case hex fingerprint → key flags, for each key (primary and subkeys) of `packets`
// (binary) whose signature carries them; a key without them is absent.
std::map<std::string, std::uint8_t> key_flags(std::string_view packets);

// "certify, sign", "encrypt", "authenticate": what people call the flags; "" for none.
std::string usage_words(std::uint8_t flags);

}  // namespace hkpgw::hkp
