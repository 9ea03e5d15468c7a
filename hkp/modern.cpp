#include "hkp/modern.hpp"

#include <openssl/evp.h>

#include <memory>

#include "hkp/text.hpp"

namespace hkpgw::hkp {

int key_packet_version(std::string_view body) {
  return body.empty() ? 0 : static_cast<unsigned char>(body.front());
}

namespace modern {

namespace {

std::uint32_t be32(std::string_view s, std::size_t at) {
  return static_cast<std::uint32_t>(static_cast<unsigned char>(s[at])) << 24 |
         static_cast<std::uint32_t>(static_cast<unsigned char>(s[at + 1])) << 16 |
         static_cast<std::uint32_t>(static_cast<unsigned char>(s[at + 2])) << 8 |
         static_cast<std::uint32_t>(static_cast<unsigned char>(s[at + 3]));
}

void put_be32(std::string& out, std::size_t n) {
  out.push_back(static_cast<char>(n >> 24 & 0xff));
  out.push_back(static_cast<char>(n >> 16 & 0xff));
  out.push_back(static_cast<char>(n >> 8 & 0xff));
  out.push_back(static_cast<char>(n & 0xff));
}

// The algorithms a v4 key packet may carry and RNP 0.16 cannot read.
bool v4_modern(int algorithm) {
  return (algorithm >= kX25519 && algorithm <= kEd448) || algorithm == kMlKem768X25519;
}

std::size_t signature_size(int algorithm) {
  return algorithm == kEd25519 ? 64 : algorithm == kEd448 ? 114 : 0;
}

// The digest for an RFC 9580 hash algorithm ID: SHA-2 and SHA-3, and with `legacy` MD5, SHA-1
// and RIPEMD-160 too (old v4 signatures carry them; nothing is proven with them here).
const EVP_MD* digest_of(int hash, bool legacy) {
  switch (hash) {
    case 1: return legacy ? EVP_md5() : nullptr;
    case 2: return legacy ? EVP_sha1() : nullptr;
    case 3: return legacy ? EVP_ripemd160() : nullptr;
    case 8: return EVP_sha256();
    case 9: return EVP_sha384();
    case 10: return EVP_sha512();
    case 11: return EVP_sha224();
    case 12: return EVP_sha3_256();
    case 14: return EVP_sha3_512();
    default: return nullptr;
  }
}

std::size_t salt_size(int hash) {
  switch (hash) {
    case 8: case 11: case 12: return 16;
    case 9: return 24;
    case 10: case 14: return 32;
    default: return 0;
  }
}

std::uint32_t be16(std::string_view s, std::size_t at) {
  return static_cast<std::uint32_t>(static_cast<unsigned char>(s[at])) << 8 |
         static_cast<std::uint32_t>(static_cast<unsigned char>(s[at + 1]));
}

struct MdCtx {
  EVP_MD_CTX* p = EVP_MD_CTX_new();
  ~MdCtx() { EVP_MD_CTX_free(p); }
};

}  // namespace

std::string hashed_key_packet(std::string_view body) {
  std::string out;
  if (key_packet_version(body) == 6) {
    out.push_back('\x9b');
    put_be32(out, body.size());
  } else {
    out.push_back('\x99');
    out.push_back(static_cast<char>(body.size() >> 8 & 0xff));
    out.push_back(static_cast<char>(body.size() & 0xff));
  }
  out += body;
  return out;
}

std::optional<std::string> signature_digest(const Signature& sig, std::string_view data,
                                            bool legacy) {
  const EVP_MD* md = digest_of(sig.hash_algorithm, legacy);
  if (!md) return std::nullopt;
  MdCtx ctx;
  std::string trailer(1, static_cast<char>(sig.version));
  trailer.push_back('\xff');
  put_be32(trailer, sig.hashed_part.size());
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (!ctx.p || EVP_DigestInit_ex(ctx.p, md, nullptr) != 1 ||
      EVP_DigestUpdate(ctx.p, sig.salt.data(), sig.salt.size()) != 1 ||
      EVP_DigestUpdate(ctx.p, data.data(), data.size()) != 1 ||
      EVP_DigestUpdate(ctx.p, sig.hashed_part.data(), sig.hashed_part.size()) != 1 ||
      EVP_DigestUpdate(ctx.p, trailer.data(), trailer.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.p, out, &n) != 1) {
    return std::nullopt;
  }
  return std::string(reinterpret_cast<const char*>(out), n);
}

namespace {

// Whether `sig` (its digest over `data`) is `signer`'s: the left 16 bits first (cheap), then
// EdDSA over the digest.
bool verify(const Key& signer, const Signature& sig, std::string_view data) {
  // A v6 key makes v6 signatures, a v4 key v4 ones.
  if (sig.version != signer.version || sig.key_algorithm != signer.algorithm) return false;
  const int nid = signer.algorithm == kEd25519 ? EVP_PKEY_ED25519
                  : signer.algorithm == kEd448 ? EVP_PKEY_ED448
                                               : 0;
  if (nid == 0 || sig.material.size() != signature_size(signer.algorithm)) return false;
  const auto d = signature_digest(sig, data);
  if (!d || d->compare(0, 2, sig.left16) != 0) return false;
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> pkey(
      EVP_PKEY_new_raw_public_key(nid, nullptr,
                                  reinterpret_cast<const unsigned char*>(signer.material.data()),
                                  signer.material.size()),
      EVP_PKEY_free);
  if (!pkey) return false;
  MdCtx ctx;
  if (!ctx.p || EVP_DigestVerifyInit(ctx.p, nullptr, nullptr, nullptr, pkey.get()) != 1) {
    return false;
  }
  return EVP_DigestVerify(ctx.p, reinterpret_cast<const unsigned char*>(sig.material.data()),
                          sig.material.size(), reinterpret_cast<const unsigned char*>(d->data()),
                          d->size()) == 1;
}

// The first subpacket of `type` in a subpacket area (critical bit ignored), or nothing.
std::optional<std::string_view> subpacket(std::string_view area, int type) {
  while (!area.empty()) {
    const auto first = static_cast<unsigned char>(area[0]);
    std::size_t len = 0, header = 0;
    if (first < 192) {
      len = first;
      header = 1;
    } else if (first < 255) {
      if (area.size() < 2) return std::nullopt;
      len = (static_cast<std::size_t>(first - 192) << 8) +
            static_cast<unsigned char>(area[1]) + 192;
      header = 2;
    } else {
      if (area.size() < 5) return std::nullopt;
      len = be32(area, 1);
      header = 5;
    }
    if (len == 0 || area.size() - header < len) return std::nullopt;
    const std::string_view sp = area.substr(header, len);
    if ((static_cast<unsigned char>(sp[0]) & 0x7f) == type) return sp.substr(1);
    area.remove_prefix(header + len);
  }
  return std::nullopt;
}

}  // namespace

std::optional<Key> parse_key(std::string_view body) {
  const int version = key_packet_version(body);
  Key k;
  k.version = version;
  if (version == 6) {
    if (body.size() < 10) return std::nullopt;
    k.created = be32(body, 1);
    k.algorithm = static_cast<unsigned char>(body[5]);
    const std::uint32_t len = be32(body, 6);
    if (len != body.size() - 10) return std::nullopt;
    const std::size_t want = material_size(k.algorithm);
    if (want != 0 && len != want) return std::nullopt;
    k.material = std::string(body.substr(10));
  } else if (version == 4) {
    if (body.size() < 6) return std::nullopt;
    k.created = be32(body, 1);
    k.algorithm = static_cast<unsigned char>(body[5]);
    const std::size_t want = material_size(k.algorithm);
    if (!v4_modern(k.algorithm) || body.size() - 6 != want) return std::nullopt;  // RNP's
    k.material = std::string(body.substr(6));
  } else {
    return std::nullopt;
  }
  k.body = std::string(body);
  const std::string hashed = hashed_key_packet(k.body);
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (EVP_Digest(hashed.data(), hashed.size(), out, &n, version == 6 ? EVP_sha256() : EVP_sha1(),
                 nullptr) != 1) {
    return std::nullopt;
  }
  k.fingerprint = std::string(reinterpret_cast<const char*>(out), n);
  return k;
}

std::optional<Signature> parse_signature(std::string_view body) {
  if (body.size() < 6) return std::nullopt;
  Signature s;
  s.version = static_cast<unsigned char>(body[0]);
  if (s.version != 4 && s.version != 6) return std::nullopt;
  const std::size_t len_size = s.version == 6 ? 4 : 2;  // subpacket areas' length octets
  auto length_at = [&](std::size_t at) { return len_size == 4 ? be32(body, at) : be16(body, at); };
  s.type = static_cast<unsigned char>(body[1]);
  s.key_algorithm = static_cast<unsigned char>(body[2]);
  s.hash_algorithm = static_cast<unsigned char>(body[3]);
  std::size_t at = 4;
  // A subpacket area at `at`: its length, then that many octets; false when it does not fit.
  auto area = [&](std::string& out) {
    if (body.size() - at < len_size) return false;
    const std::uint32_t len = length_at(at);
    at += len_size;
    if (len > body.size() - at) return false;
    out = std::string(body.substr(at, len));
    at += len;
    return true;
  };
  if (!area(s.hashed_subpackets)) return std::nullopt;
  s.hashed_part = std::string(body.substr(0, at));
  if (!area(s.unhashed_subpackets)) return std::nullopt;
  if (body.size() - at < 2) return std::nullopt;
  s.left16 = std::string(body.substr(at, 2));
  at += 2;
  if (s.version == 6) {
    if (body.size() - at < 1) return std::nullopt;
    const std::size_t salt_len = static_cast<unsigned char>(body[at]);
    at += 1;
    if (salt_len != salt_size(s.hash_algorithm) || salt_len > body.size() - at) return std::nullopt;
    s.salt = std::string(body.substr(at, salt_len));
    at += salt_len;
  }
  s.material = std::string(body.substr(at));
  const std::size_t want = signature_size(s.key_algorithm);
  if (want != 0 && s.material.size() != want) return std::nullopt;
  return s;
}

std::string fingerprint_hex(const Key& key) { return hex_upper(key.fingerprint); }

std::string key_id_hex(const Key& key) {
  return hex_upper(key.version == 6 ? key.fingerprint.substr(0, 8)
                                    : key.fingerprint.substr(key.fingerprint.size() - 8));
}

std::optional<std::string_view> find_subpacket(const Signature& sig, int type, bool hashed_only) {
  if (auto sp = subpacket(sig.hashed_subpackets, type)) return sp;
  if (hashed_only) return std::nullopt;
  return subpacket(sig.unhashed_subpackets, type);
}

std::string algorithm_name(int algorithm) {
  switch (algorithm) {
    case 1:
    case 2:
    case 3: return "RSA";
    case 16: return "ElGamal";
    case 17: return "DSA";
    case 18: return "ECDH";
    case 19: return "ECDSA";
    case 22: return "EdDSA (legacy)";
    case kX25519: return "X25519";
    case kX448: return "X448";
    case kEd25519: return "Ed25519";
    case kEd448: return "Ed448";
    case kMlDsa65Ed25519: return "ML-DSA-65+Ed25519";
    case kMlDsa87Ed448: return "ML-DSA-87+Ed448";
    case kSlhDsaShake128s: return "SLH-DSA-SHAKE-128s";
    case kSlhDsaShake128f: return "SLH-DSA-SHAKE-128f";
    case kSlhDsaShake256s: return "SLH-DSA-SHAKE-256s";
    case kMlKem768X25519: return "ML-KEM-768+X25519";
    case kMlKem1024X448: return "ML-KEM-1024+X448";
    default: return "algorithm " + std::to_string(algorithm);
  }
}

// The composites are the ECC key, then the post-quantum one (ML-KEM-768: 1,184 octets, ML-KEM-1024:
// 1,568, ML-DSA-65: 1,952, ML-DSA-87: 2,592).
std::size_t material_size(int algorithm) {
  switch (algorithm) {
    case kX25519: return 32;
    case kX448: return 56;
    case kEd25519: return 32;
    case kEd448: return 57;
    case kMlDsa65Ed25519: return 32 + 1952;
    case kMlDsa87Ed448: return 57 + 2592;
    case kSlhDsaShake128s:
    case kSlhDsaShake128f: return 32;
    case kSlhDsaShake256s: return 64;
    case kMlKem768X25519: return 32 + 1184;
    case kMlKem1024X448: return 56 + 1568;
    default: return 0;
  }
}

bool verifies(int algorithm) { return algorithm == kEd25519 || algorithm == kEd448; }

std::uint32_t algorithm_bits(int algorithm) {
  switch (algorithm) {
    case kX25519:
    case kEd25519: return 255;
    case kX448:
    case kEd448: return 448;
    case kMlKem768X25519: return 768;
    case kMlKem1024X448: return 1024;
    case kMlDsa65Ed25519: return 65;
    case kMlDsa87Ed448: return 87;
    case kSlhDsaShake128s:
    case kSlhDsaShake128f: return 128;
    case kSlhDsaShake256s: return 256;
    default: return 0;
  }
}

std::string issuer_fingerprint_hex(const Signature& sig) {
  for (const std::string* area : {&sig.hashed_subpackets, &sig.unhashed_subpackets}) {
    const auto sp = subpacket(*area, 33);  // Issuer Fingerprint: version, then the fingerprint
    if (!sp || sp->empty()) continue;
    const int version = static_cast<unsigned char>((*sp)[0]);
    if ((version == 6 && sp->size() == 33) || (version == 4 && sp->size() == 21)) {
      return hex_upper(sp->substr(1));
    }
  }
  return {};
}

bool verify_over_key(const Key& signer, const Signature& sig, const Key& key) {
  if (sig.type != 0x1f && sig.type != 0x20) return false;
  return verify(signer, sig, signed_data(key.body));
}

bool verify_subkey_binding(const Key& primary, const Signature& sig, const Key& subkey) {
  if (sig.type != 0x18 && sig.type != 0x28) return false;
  return verify(primary, sig, signed_data(primary.body, 14, subkey.body));
}

bool verify_back_signature(const Key& subkey, const Signature& sig, const Key& primary) {
  if (sig.type != 0x19) return false;
  return verify(subkey, sig, signed_data(primary.body, 14, subkey.body));
}

bool verify_certification(const Key& signer, const Signature& sig, const Key& primary,
                          int packet_tag, std::string_view user_id) {
  if (!((sig.type >= 0x10 && sig.type <= 0x13) || sig.type == 0x30)) return false;
  if (packet_tag != 13 && packet_tag != 17) return false;
  return verify(signer, sig, signed_data(primary.body, packet_tag, user_id));
}

std::string signed_data(std::string_view primary_body, int tag, std::string_view body) {
  std::string data = hashed_key_packet(primary_body);
  if (tag == 14) {
    data += hashed_key_packet(body);
  } else if (tag == 13 || tag == 17) {
    data.push_back(tag == 13 ? '\xb4' : '\xd1');
    put_be32(data, body.size());
    data.append(body);
  }
  return data;
}

}  // namespace modern

}  // namespace hkpgw::hkp
