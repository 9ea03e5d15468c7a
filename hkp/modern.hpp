// RFC 9580's version 6 keys, and version 4 keys with its new algorithms (Ed25519, X25519, Ed448,
// X448: what OpenPGP.js 6 makes by default), with their signatures, parsed here and verified
// with OpenSSL 3 (RNP 0.16, Debian bookworm's, reads neither): the first pieces of issue 24. Pure but for OpenSSL's
// digests and signature checks; no allocation beyond the parsed values; every length is checked
// against what is there.
//
// A v6 key packet: version 6, creation time (4), algorithm (1), the material's length (4), the
// material. Its fingerprint is SHA-256 over 0x9B, the packet body's length (4) and the body; its
// key ID the fingerprint's first 8 octets. A v4 key packet: version 4, creation time, algorithm,
// the material (of a fixed size for these algorithms); fingerprint SHA-1 over 0x99, the body's
// length (2) and the body; key ID its last 8 octets. v4 signatures have 2-octet subpacket
// lengths and no salt, and their trailer starts 0x04 0xFF. A v6 signature: version 6, type, key algorithm, hash
// algorithm, the hashed subpackets (4-octet length), the unhashed ones (4-octet length), the
// digest's left 16 bits, a salt (1-octet length, as the hash algorithm prescribes), the
// material. The digest covers the salt, the signed data, the signature's fields up to the end
// of the hashed subpackets, and a trailer (0x06 0xFF, that length in 4 octets).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace hkpgw::hkp {

// The version octet of a key packet's body (4, 5, 6, ...), 0 for an empty one.
int key_packet_version(std::string_view body);

namespace modern {

// RFC 9580's new public-key algorithm IDs.
inline constexpr int kX25519 = 25;
inline constexpr int kX448 = 26;
inline constexpr int kEd25519 = 27;
inline constexpr int kEd448 = 28;

struct Key {
  int version = 0;           // 4 or 6
  std::string body;          // the packet body, as hashed
  std::uint32_t created = 0;
  int algorithm = 0;
  std::string material;      // Ed25519/X25519: 32 octets, Ed448: 57, X448: 56
  std::string fingerprint;   // v6: 32 octets (SHA-256); v4: 20 (SHA-1)
};

struct Signature {
  int version = 0;
  int type = 0;
  int key_algorithm = 0;
  int hash_algorithm = 0;
  std::string hashed_part;   // version through the hashed subpackets: what the digest covers
  std::string hashed_subpackets, unhashed_subpackets;
  std::string left16;        // 2 octets
  std::string salt;          // v6 only
  std::string material;      // Ed25519: 64 octets, Ed448: 114
};

// A v6 key packet's body, or a v4 one with one of the algorithms above; nothing otherwise (a
// classic v4 key is RNP's) or when it does not frame.
std::optional<Key> parse_key(std::string_view body);
// A v6 or v4 signature packet's body, or nothing (a v6 salt of the wrong size included).
std::optional<Signature> parse_signature(std::string_view body);

std::string fingerprint_hex(const Key& key);  // 64 (v6) or 40 (v4) hex digits, upper case
std::string key_id_hex(const Key& key);       // 16 hex digits, upper case
// The fingerprint an Issuer Fingerprint subpacket (hashed, or else unhashed) names; "" if none.
std::string issuer_fingerprint_hex(const Signature& sig);

// Whether `sig` is a valid signature by `signer` of its type over `key` alone (a direct-key
// signature or a key revocation: types 0x1F, 0x20).
bool verify_over_key(const Key& signer, const Signature& sig, const Key& key);
// ... over `primary` and `subkey` (a subkey binding or revocation: 0x18, 0x28), by `primary`.
bool verify_subkey_binding(const Key& primary, const Signature& sig, const Key& subkey);
// ... over `primary` and a user ID (tag 13) or attribute (tag 17): certifications 0x10-0x13 and
// their revocation 0x30, by `signer`.
bool verify_certification(const Key& signer, const Signature& sig, const Key& primary,
                          int packet_tag, std::string_view user_id);

}  // namespace modern

}  // namespace hkpgw::hkp
