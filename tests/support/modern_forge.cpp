#include "support/modern_forge.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <ctime>
#include <stdexcept>

#include "hkp/modern.hpp"
#include "hkp/packets.hpp"
#include "hkp/text.hpp"

namespace hkpgw::test::modern_forge {
namespace {

void put(std::string& out, std::uint64_t v, int n) {
  for (int i = n - 1; i >= 0; --i) out.push_back(static_cast<char>(v >> (8 * i) & 0xff));
}

std::string random_bytes(std::size_t n) {
  std::string out(n, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n));
  return out;
}

std::uint32_t an_hour_ago() { return static_cast<std::uint32_t>(std::time(nullptr)) - 3600; }

}  // namespace

std::string Key::fingerprint() const {
  const auto k = hkp::modern::parse_key(body);
  if (!k) throw std::runtime_error("modern_forge: a key hkp::modern cannot read");
  return k->fingerprint;
}
std::string Key::fingerprint_hex() const { return hkp::hex_upper(fingerprint()); }
std::string Key::packet(bool subkey) const {
  return hkp::make_packet(subkey ? hkp::tag::public_subkey : hkp::tag::public_key, body);
}

Key make_key(int version, int algorithm, std::uint32_t created) {
  Key k;
  k.version = version;
  k.algorithm = algorithm;
  std::string material;
  if (algorithm == hkp::modern::kEd25519) {
    EVP_PKEY* raw = nullptr;
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr);
    if (!ctx || EVP_PKEY_keygen_init(ctx) != 1 || EVP_PKEY_keygen(ctx, &raw) != 1) {
      throw std::runtime_error("modern_forge: Ed25519 key generation failed");
    }
    EVP_PKEY_CTX_free(ctx);
    k.private_key =
        std::shared_ptr<void>(raw, [](void* p) { EVP_PKEY_free(static_cast<EVP_PKEY*>(p)); });
    material.resize(32);
    std::size_t len = 32;
    EVP_PKEY_get_raw_public_key(raw, reinterpret_cast<unsigned char*>(material.data()), &len);
  } else {
    const std::size_t size = hkp::modern::material_size(algorithm);
    material = random_bytes(size ? size : 32);
  }
  k.body.push_back(static_cast<char>(version));
  put(k.body, created ? created : an_hour_ago() - 60, 4);
  k.body.push_back(static_cast<char>(algorithm));
  if (version == 6) put(k.body, material.size(), 4);
  k.body += material;
  return k;
}

std::string subpacket(int type, std::string_view body) {
  // A subpacket's length (of its type and body) is written as a new-format packet's is: the
  // packet without its tag octet.
  std::string typed(1, static_cast<char>(type));
  typed += body;
  return hkp::make_packet(0, typed).substr(1);
}

namespace {

// The body of a signature of `type` by `signer` over `data`, as sign() wraps it.
std::string signature_body(const Key& signer, int type, std::string_view data,
                           const SigOptions& o) {
  if (!signer.private_key) throw std::runtime_error("modern_forge: this key cannot sign");
  const Key& issuer = o.claimed_issuer ? *o.claimed_issuer : signer;
  std::string created;
  put(created, o.created ? o.created : an_hour_ago(), 4);
  std::string hashed = subpacket(2, created);
  hashed += subpacket(33, std::string(1, static_cast<char>(issuer.version)) + issuer.fingerprint());
  hashed += o.extra_hashed;
  const int n = signer.version == 6 ? 4 : 2;
  std::string prefix;
  prefix.push_back(static_cast<char>(signer.version));
  prefix.push_back(static_cast<char>(type));
  prefix.push_back(static_cast<char>(signer.algorithm));
  prefix.push_back(10);  // SHA2-512
  put(prefix, hashed.size(), n);
  prefix += hashed;
  hkp::modern::Signature sig;
  sig.version = signer.version;
  sig.hash_algorithm = 10;
  sig.hashed_part = prefix;
  if (signer.version == 6) sig.salt = random_bytes(32);
  const auto digest = hkp::modern::signature_digest(sig, data);
  if (!digest) throw std::runtime_error("modern_forge: no digest");
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  unsigned char out[64];
  std::size_t len = sizeof(out);
  const bool ok =
      ctx &&
      EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr,
                         static_cast<EVP_PKEY*>(signer.private_key.get())) == 1 &&
      EVP_DigestSign(ctx, out, &len, reinterpret_cast<const unsigned char*>(digest->data()),
                     digest->size()) == 1;
  EVP_MD_CTX_free(ctx);
  if (!ok || len != 64) throw std::runtime_error("modern_forge: Ed25519 signing failed");
  std::string body = prefix;
  put(body, 0, n);  // no unhashed subpackets
  body += digest->substr(0, 2);
  if (signer.version == 6) {
    body.push_back(static_cast<char>(sig.salt.size()));
    body += sig.salt;
  }
  body.append(reinterpret_cast<const char*>(out), 64);
  return body;
}

std::string flags(int f) { return subpacket(27, std::string(1, static_cast<char>(f))); }

}  // namespace

std::string sign(const Key& signer, int type, std::string_view data, const SigOptions& o) {
  return hkp::make_packet(hkp::tag::signature, signature_body(signer, type, data, o));
}

std::string user_id_packet(std::string_view text) {
  return hkp::make_packet(hkp::tag::user_id, text);
}

std::string certify(const Key& primary, std::string_view uid, const Key* signer,
                    const SigOptions& o) {
  SigOptions with = o;
  if (!signer) with.extra_hashed = flags(0x03) + o.extra_hashed;
  return sign(signer ? *signer : primary, 0x13, hkp::modern::signed_data(primary.body, 13, uid),
              with);
}

std::string bind(const Key& primary, const Key& sub, bool signing, bool back_sign,
                 const Key* signer) {
  const std::string data = hkp::modern::signed_data(primary.body, 14, sub.body);
  SigOptions o;
  o.extra_hashed = flags(signing ? 0x02 : 0x0C);
  if (signing && back_sign) o.extra_hashed += subpacket(32, signature_body(sub, 0x19, data, {}));
  if (signer) o.claimed_issuer = &primary;
  return sign(signer ? *signer : primary, 0x18, data, o);
}

std::string direct_key(const Key& primary) {
  SigOptions o;
  o.extra_hashed = flags(0x03);
  return sign(primary, 0x1F, hkp::modern::signed_data(primary.body), o);
}

std::string revoke_key(const Key& primary, const Key* signer, const SigOptions& o) {
  SigOptions with = o;
  with.extra_hashed = subpacket(29, std::string("\x02", 1) + "compromised") + o.extra_hashed;
  return sign(signer ? *signer : primary, 0x20, hkp::modern::signed_data(primary.body), with);
}

std::string revoke_subkey(const Key& primary, const Key& sub) {
  return sign(primary, 0x28, hkp::modern::signed_data(primary.body, 14, sub.body),
              {subpacket(29, std::string("\x01", 1))});
}

std::string certificate(const Key& primary, std::string_view uid, const Key& encryption_subkey) {
  std::string out = primary.packet();
  if (primary.version == 6) out += direct_key(primary);
  out += user_id_packet(uid) + certify(primary, uid);
  out += encryption_subkey.packet(true) + bind(primary, encryption_subkey);
  return out;
}

}  // namespace hkpgw::test::modern_forge
