// Keys made wrong on purpose, packet by packet, from real keys made by gpg: a forged user ID, a
// subkey bound by someone else, a key flooded with third-party certifications, oversize packets.
#pragma once

#include <string>

namespace hkpgw::test {

// Binary packets of the first key in an armored or binary file (RNP, nothing cleaned).
std::string key_packets(const std::string& armored_or_binary);

// `key` plus a user ID whose "self-signature" is a copy of the key's first user ID's: it does
// not verify, as anyone could have appended it.
std::string with_forged_uid(const std::string& key, const std::string& uid_text);

// `key` plus the first subkey of `other` with `other`'s binding signature.
std::string with_foreign_subkey(const std::string& key, const std::string& other);

// `key` with `count` distinct third-party certifications on its first user ID, as the 2019
// keyserver flooding attack made them. Their issuer is a key nobody has, so neither the gateway
// nor gpg can verify them, exactly as with the real attack's signatures.
std::string flooded(const std::string& key, int count);

// `key` plus a user ID of `bytes` bytes with a copy of a real self-signature (over the limit).
std::string with_oversize_uid(const std::string& key, std::size_t bytes);

// The primary key packet and its first user ID, whose self-signature is broken: no valid
// self-signature of any kind is left.
std::string without_valid_self_signature(const std::string& key);

// Number of signature packets in binary key data.
int signature_count(const std::string& packets);

}  // namespace hkpgw::test
