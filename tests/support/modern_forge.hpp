// RFC 9580 keys made at test time with OpenSSL, packet by packet: v6 and v4 keys with Ed25519
// primary keys, subkeys of any algorithm (X25519, ML-KEM-768+X25519 with random material, which
// a binding covers like any other), and every signature a test needs, right or forged. They let
// tests build the shapes no library makes on purpose: bindings by the wrong key, tampered salts,
// certifications where they do not belong, post-quantum primaries.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace hkpgw::test::modern_forge {

// A key packet body and, for a key that signs (Ed25519), its private half.
struct Key {
  int version = 6;
  int algorithm = 27;
  std::string body;                   // the key packet's body
  std::shared_ptr<void> private_key;  // EVP_PKEY, null for keys made of random material
  std::string fingerprint() const;    // raw: 32 bytes (v6) or 20 (v4)
  std::string fingerprint_hex() const;
  std::string packet(bool subkey = false) const;
};

// Ed25519 (27) keys are real; any other algorithm gets random material of its size.
Key make_key(int version, int algorithm = 27, std::uint32_t created = 0);

// Options for a signature: extra hashed subpackets (whole, with their headers), the issuer it
// claims (default: the signer), its creation time (default: an hour ago).
struct SigOptions {
  std::string extra_hashed;
  const Key* claimed_issuer = nullptr;
  std::uint32_t created = 0;
};

// A signature packet of `type` by `signer` over `data` (hkp::modern::signed_data).
std::string sign(const Key& signer, int type, std::string_view data, const SigOptions& o = {});

// A subpacket (type, body) with its length header.
std::string subpacket(int type, std::string_view body);

std::string user_id_packet(std::string_view text);
// A positive certification of `uid` by `primary` (or by `signer` claiming to be whoever
// o.claimed_issuer says).
std::string certify(const Key& primary, std::string_view uid, const Key* signer = nullptr,
                    const SigOptions& o = {});
// A binding of `sub` to `primary`, for encryption (key flags 0x0C), or for signing (0x02) with
// the subkey's back-signature embedded when `back_sign`.
std::string bind(const Key& primary, const Key& sub, bool signing = false, bool back_sign = true,
                 const Key* signer = nullptr);
std::string direct_key(const Key& primary);
std::string revoke_key(const Key& primary, const Key* signer = nullptr, const SigOptions& o = {});
std::string revoke_subkey(const Key& primary, const Key& sub);

// A whole certificate: the primary key, a direct-key signature (v6), the user ID with its
// certification, and each subkey with its binding.
std::string certificate(const Key& primary, std::string_view uid, const Key& encryption_subkey);

}  // namespace hkpgw::test::modern_forge
