// Keys made wrong on purpose, packet by packet, from real keys made by gpg: a forged user ID, a
// subkey bound by someone else, a key flooded with third-party certifications, oversize packets.
#pragma once

#include <cstdint>
#include <string>

namespace hkpgw::test {

// Binary packets of the first key in an armored or binary file (RNP, nothing cleaned).
std::string key_packets(const std::string& armored_or_binary);

// `sig` (a whole signature packet) with its last bytes changed (`n` makes copies distinct): the
// same issuer, type and hash prefix, and it verifies for nothing.
std::string altered_signature(const std::string& sig, int n);

// `key` plus a user ID whose "self-signature" is an altered copy of the key's first user ID's:
// it does not verify, as anyone could have appended it.
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

// A well-formed v4 signature packet of `type` by `issuer` (8 raw bytes) that verifies against
// nothing: EdDSA, SHA-256, creation time `when`, meaningless MPIs.
std::string forged_signature(int type, const std::string& issuer, std::uint32_t when);

// As a forger who knows the key would make one: a signature of `type` claiming `key`'s primary
// key, on its user ID `uid` (or, with "", on the key alone: a direct-key signature or key
// revocation), whose hash prefix is right, so only the public-key mathematics can refuse it.
// With `issuer` (8 raw bytes), it claims that key instead: a forged third-party certification.
std::string forged_signature_on(const std::string& key, const std::string& uid, int type,
                                std::uint32_t when, const std::string& issuer = {});

// A direct-key signature claiming `key`'s primary key that names the key whose v4 fingerprint is
// `revoker_fpr` (20 raw bytes) a designated revoker: its hash prefix is right, and it verifies
// for nothing (as anyone who wants his own revocations kept on someone's key would make it).
std::string forged_designation(const std::string& key, const std::string& revoker_fpr);

// The primary key's 64-bit key ID as 8 raw bytes.
std::string primary_keyid(const std::string& key);

// `key` with `sigs` (signature packets) inserted right after its first subkey's own signatures,
// where only a binding or a subkey revocation may stand.
std::string with_after_first_subkey(const std::string& key, const std::string& sigs);

// `key` with `sigs` inserted right after the primary key packet (the direct-key slot).
std::string with_after_primary(const std::string& key, const std::string& sigs);

// `key` with `sigs` inserted after its first user ID's signatures.
std::string with_after_first_uid(const std::string& key, const std::string& sigs);

// The signature right after the first user ID (its self-signature), as it stands.
std::string first_uid_self_signature(const std::string& key);

// `key` plus `count` made-up subkeys (the first subkey's packet with other creation times, so
// other fingerprints), each with a forged binding whose hash prefix is right (verifying for
// nothing, but only verification can tell), made at `bound_at` (0: when the subkey was).
std::string with_fake_subkeys(const std::string& key, int count, std::uint32_t bound_at = 0);

// `key` plus `count` made-up user IDs, each with a forged self-signature whose hash prefix is
// right (forged_signature_on).
std::string with_fake_uids(const std::string& key, int count);

// `key` plus `count` made-up user IDs without any signature (padding anyone can add upstream).
std::string with_bare_uids(const std::string& key, int count);

// `key` plus `count` made-up subkeys without any signature.
std::string with_bare_subkeys(const std::string& key, int count);

// `key` (RSA) with the public exponent of its primary key replaced by one of `bits` bits: every
// verification with it costs a modular exponentiation that long.
std::string with_rsa_exponent(const std::string& key, std::size_t bits);

// A made-up RSA key nobody holds the private half of: a primary key with an `n_bits` modulus
// (distinct per `seed`) and an `e_bits` exponent of all ones, `user_ids` user IDs each with `sigs_per_uid`
// forged RSA self-signatures of `n_bits` (distinct, verifying for nothing). Each verification
// attempt costs a full modular exponentiation: the CPU attack of issue 22.
std::string forged_rsa_key(std::size_t n_bits, std::size_t e_bits, int user_ids, int sigs_per_uid,
                           int seed);

// Number of signature packets in binary key data.
int signature_count(const std::string& packets);

}  // namespace hkpgw::test
