// RFC 9580's version 6 keys, and version 4 keys with its new algorithms (Ed25519, X25519, Ed448,
// X448: what OpenPGP.js 6 makes by default), with their signatures, parsed here and verified
// with OpenSSL 3 (RNP 0.16, Debian bookworm's, reads neither). Pure but for OpenSSL's digests
// and signature checks; no allocation beyond the parsed values; every length is checked against
// what is there. hkp/modern_keyring.cpp cleans whole keys with it.
//
// A v6 key packet: version 6, creation time (4), algorithm (1), the material's length (4), the
// material. Its fingerprint is SHA-256 over 0x9B, the packet body's length (4) and the body; its
// key ID the fingerprint's first 8 octets. A v4 key packet: version 4, creation time, algorithm,
// the material (of a fixed size for these algorithms); fingerprint SHA-1 over 0x99, the body's
// length (2) and the body; key ID its last 8 octets. v4 signatures have 2-octet subpacket
// lengths and no salt, and their trailer starts 0x04 0xFF. A v6 signature: version 6, type, key
// algorithm, hash algorithm, the hashed subpackets (4-octet length), the unhashed ones (4-octet
// length), the digest's left 16 bits, a salt (1-octet length, as the hash algorithm prescribes),
// the material. The digest covers the salt, the signed data, the signature's fields up to the end
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
// The post-quantum ones (RFC 9980, formerly draft-ietf-openpgp-pqc): composite signatures
// (ML-DSA with EdDSA), stateless hash-based signatures, composite encryption (ML-KEM with ECDH).
inline constexpr int kMlDsa65Ed25519 = 30;
inline constexpr int kMlDsa87Ed448 = 31;
inline constexpr int kSlhDsaShake128s = 32;
inline constexpr int kSlhDsaShake128f = 33;
inline constexpr int kSlhDsaShake256s = 34;
inline constexpr int kMlKem768X25519 = 35;
inline constexpr int kMlKem1024X448 = 36;

// A public-key algorithm's name as people know it ("Ed25519", "ML-KEM-768+X25519", "RSA"), or
// "algorithm N" for one without a name here.
std::string algorithm_name(int algorithm);
// The octets of a key's material for the algorithms above; 0 for any other.
std::size_t material_size(int algorithm);
// Whether signatures by a key of this algorithm are verified here (Ed25519, Ed448).
bool verifies(int algorithm);
// The size in bits shown for a key of one of the algorithms above (Ed25519 255, ML-KEM-768 768).
std::uint32_t algorithm_bits(int algorithm);

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

// A v6 key packet's body (of any algorithm: the material of one not listed above is kept as
// it is), or a v4 one with one of RFC 9580's four new algorithms or ML-KEM-768+X25519; nothing
// otherwise (a classic v4 key is RNP's) or when it does not frame.
std::optional<Key> parse_key(std::string_view body);
// The octets a key packet stands for in a fingerprint or a signature's hash: v6 0x9B and the
// body's length in 4 octets, v4 0x99 and the length in 2, then the body.
std::string hashed_key_packet(std::string_view body);
// What a signature over a key's component hashes before its own fields: the primary key, then
// the subkey (tag 14), user ID (13) or attribute (17) `body`; the primary key alone for any
// other tag (a direct-key signature or key revocation).
std::string signed_data(std::string_view primary_body, int tag = 0, std::string_view body = {});
// The digest a signature's hash algorithm makes over its salt, `data` (signed_data), its hashed
// part and its trailer; nothing for a hash algorithm not taken here. MD5, SHA-1 and RIPEMD-160
// only with `legacy` (old v4 signatures carry them: their hash prefix can be checked, nothing
// is proven with them).
std::optional<std::string> signature_digest(const Signature& sig, std::string_view data,
                                            bool legacy = false);
// A signature subpacket (critical bit ignored) of `type`: the hashed area's first, or when
// `hashed_only` is false the unhashed area's; nothing when absent.
std::optional<std::string_view> find_subpacket(const Signature& sig, int type,
                                               bool hashed_only = true);
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
// ... a primary key binding (0x19, a signing subkey's back-signature, embedded in its binding)
// over `primary` and `subkey`, by `subkey`.
bool verify_back_signature(const Key& subkey, const Signature& sig, const Key& primary);
// ... over `primary` and a user ID (tag 13) or attribute (tag 17): certifications 0x10-0x13 and
// their revocation 0x30, by `signer`.
bool verify_certification(const Key& signer, const Signature& sig, const Key& primary,
                          int packet_tag, std::string_view user_id);

}  // namespace modern

}  // namespace hkpgw::hkp
