// Valid OpenPGP v4 public keys in bulk, for the scale benchmark: each an Ed25519 primary key, one
// user ID "Scale User I <PREFIX-I@PREFIX.example>" and its positive self-certification (SHA-256,
// creation time, issuer fingerprint and key ID, key flags certify+sign), built packet by packet
// with OpenSSL. RNP's key generation makes a few hundred keys a second; this makes tens of
// thousands, so a million keys take about a minute.
//   keyfactory N OUT.pgp [PREFIX] [FPRS.txt]
// OUT is a binary keyring (what `hkp-gateway cache import` and `gpg --import` read); FPRS gets
// one fingerprint per line. Deterministic creation times; keys are random.
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>

namespace {

using Bytes = std::string;

void be16(Bytes& out, std::uint32_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}
void be32(Bytes& out, std::uint32_t v) {
  be16(out, v >> 16);
  be16(out, v & 0xffff);
}

// A packet with a new-format header (RFC 4880 section 4.2.2).
void packet(Bytes& out, int tag, const Bytes& body) {
  out.push_back(static_cast<char>(0xc0 | tag));
  const std::size_t n = body.size();
  if (n < 192) {
    out.push_back(static_cast<char>(n));
  } else if (n < 8384) {
    out.push_back(static_cast<char>(((n - 192) >> 8) + 192));
    out.push_back(static_cast<char>((n - 192) & 0xff));
  } else {
    out.push_back(static_cast<char>(0xff));
    be32(out, static_cast<std::uint32_t>(n));
  }
  out += body;
}

// An MPI of a big-endian number: bit count, then the bytes without leading zeros.
void mpi(Bytes& out, const unsigned char* p, std::size_t n) {
  while (n > 0 && *p == 0) ++p, --n;
  std::uint32_t bits = n == 0 ? 0 : static_cast<std::uint32_t>(n * 8);
  if (n > 0) {
    for (unsigned char top = *p; !(top & 0x80); top <<= 1) --bits;
  }
  be16(out, bits);
  out.append(reinterpret_cast<const char*>(p), n);
}

struct Factory {
  EVP_MD_CTX* md = EVP_MD_CTX_new();

  bool make(std::uint64_t i, const std::string& prefix, std::uint32_t created, Bytes& out,
            std::string& fpr_hex) {
    EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
    if (!key) return false;
    unsigned char pub[32];
    std::size_t pub_len = sizeof pub;
    EVP_PKEY_get_raw_public_key(key, pub, &pub_len);

    Bytes body;  // public key packet body: v4, time, EdDSA (22), the Ed25519 OID, 0x40 || key
    body.push_back(4);
    be32(body, created);
    body.push_back(22);
    static const unsigned char oid[] = {9, 0x2b, 0x06, 0x01, 0x04, 0x01, 0xda, 0x47, 0x0f, 0x01};
    body.append(reinterpret_cast<const char*>(oid), sizeof oid);
    unsigned char point[33];
    point[0] = 0x40;
    std::copy(pub, pub + 32, point + 1);
    mpi(body, point, sizeof point);

    Bytes framed;  // what fingerprints and signatures hash: 0x99, length, body
    framed.push_back(static_cast<char>(0x99));
    be16(framed, static_cast<std::uint32_t>(body.size()));
    framed += body;
    unsigned char fpr[SHA_DIGEST_LENGTH];
    SHA1(reinterpret_cast<const unsigned char*>(framed.data()), framed.size(), fpr);

    const std::string uid = "Scale User " + std::to_string(i) + " <" + prefix + "-" +
                            std::to_string(i) + "@" + prefix + ".example>";
    Bytes hashed;  // hashed subpackets
    hashed += std::string{5, 2};
    be32(hashed, created);
    hashed += std::string{22, 33, 4};
    hashed.append(reinterpret_cast<const char*>(fpr), sizeof fpr);
    hashed += std::string{2, 27, 0x03};
    Bytes sig_head;  // version, type 0x13 (positive certification), EdDSA, SHA-256
    sig_head += std::string{4, 0x13, 22, 8};
    be16(sig_head, static_cast<std::uint32_t>(hashed.size()));
    sig_head += hashed;

    Bytes signed_data = framed;
    signed_data.push_back(static_cast<char>(0xb4));
    be32(signed_data, static_cast<std::uint32_t>(uid.size()));
    signed_data += uid;
    signed_data += sig_head;
    signed_data += std::string{4, static_cast<char>(0xff)};
    be32(signed_data, static_cast<std::uint32_t>(sig_head.size()));
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(signed_data.data()), signed_data.size(), digest);

    unsigned char sig[64];
    std::size_t sig_len = sizeof sig;
    EVP_MD_CTX_reset(md);  // a one-shot Ed25519 context is not reusable without it
    const bool ok = EVP_DigestSignInit(md, nullptr, nullptr, nullptr, key) == 1 &&
                    EVP_DigestSign(md, sig, &sig_len, digest, sizeof digest) == 1;
    EVP_PKEY_free(key);
    if (!ok) return false;

    Bytes sig_body = sig_head;
    sig_body += std::string{9, 16};  // unhashed: issuer key ID
    sig_body.append(reinterpret_cast<const char*>(fpr) + 12, 8);
    sig_body.insert(sig_head.size(), "\x00\x0a", 2);  // the unhashed area's length (10)
    sig_body.append(reinterpret_cast<const char*>(digest), 2);
    mpi(sig_body, sig, 32);
    mpi(sig_body, sig + 32, 32);

    packet(out, 6, body);
    packet(out, 13, uid);
    packet(out, 2, sig_body);
    static const char hex[] = "0123456789ABCDEF";
    fpr_hex.clear();
    for (const unsigned char c : fpr) {
      fpr_hex.push_back(hex[c >> 4]);
      fpr_hex.push_back(hex[c & 15]);
    }
    return true;
  }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: keyfactory N OUT.pgp [PREFIX] [FPRS.txt]\n");
    return 2;
  }
  const std::uint64_t n = std::stoull(argv[1]);
  const std::string prefix = argc > 3 ? argv[3] : "scale";
  std::ofstream out(argv[2], std::ios::binary | std::ios::trunc);
  std::ofstream fprs;
  if (argc > 4) fprs.open(argv[4], std::ios::trunc);
  Factory factory;
  Bytes key;
  std::string hex;
  for (std::uint64_t i = 0; i < n; ++i) {
    key.clear();
    // Creation times spread over 2020-2025, so listings differ from key to key.
    const auto created = static_cast<std::uint32_t>(1577836800 + (i * 7919) % 189345600);
    if (!factory.make(i, prefix, created, key, hex)) {
      std::fprintf(stderr, "keyfactory: OpenSSL failed at key %llu\n",
                   static_cast<unsigned long long>(i));
      return 1;
    }
    out.write(key.data(), static_cast<std::streamsize>(key.size()));
    if (fprs.is_open()) fprs << hex << '\n';
  }
  out.flush();
  if (!out || (fprs.is_open() && !fprs.flush())) {
    std::fprintf(stderr, "keyfactory: cannot write the output\n");
    return 1;
  }
  return 0;
}
