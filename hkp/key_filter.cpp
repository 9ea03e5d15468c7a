#include "hkp/key_filter.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <ctime>
#include <deque>
#include <optional>
#include <random>
#include <unordered_map>
#include <unordered_set>

#include "hkp/armor.hpp"
#include "hkp/modern.hpp"
#include "hkp/packets.hpp"
#include "hkp/text.hpp"

namespace hkpgw::hkp {
namespace {

// Budgets for signatures by the primary key that are not in the trusted (cached) copy: each
// costs RNP one verification (up to ~1.5 ms for RSA). A real key gathers a handful per user ID
// or subkey over its life (one per expiry extension); these leave room for decades of that.
constexpr std::size_t kMaxNewSelfSigsPerComponent = 16;
constexpr std::size_t kMaxNewRevocationsPerComponent = 16;
constexpr std::size_t kMaxNewSelfSigsPerKey = 500;
constexpr std::size_t kMaxNewRevocationsPerKey = 64;
// Under `strip`, what other keys' signatures may add: a designated revoker revokes a key once
// (a second allows for a reissue), a certifier certifies a user ID once or a few times over its
// life (a renewal, a revocation of the certification).
constexpr std::size_t kMaxRevocationsPerRevoker = 2;
// Nothing RNP can check without the revoker's key: kept small (an RSA-16384 revocation with a
// reason is about 2.2 KB), so two forgeries on the revoker's name cost a key 8 KiB at most.
constexpr std::size_t kMaxDesignatedRevocationBytes = 4096;
constexpr std::size_t kMaxCertificationsPerCertifier = 4;   // per user ID
constexpr std::size_t kMaxNewCertificationsPerKey = 32;

// Public-key parameters beyond what any implementation makes (GnuPG: RSA up to 4096 bits, 16384
// with --enable-large-rsa, e = 65537; DSA up to 3072/256). Verification cost grows with them: a
// 16,383-bit RSA exponent made one forged signature cost over a second.
constexpr std::size_t kMaxRsaModulusBits = 16384;
constexpr std::size_t kMaxRsaExponentBits = 64;
constexpr std::size_t kMaxDsaPrimeBits = 4096;
constexpr std::size_t kMaxDsaSubgroupBits = 512;

namespace sigtype {
constexpr std::uint8_t generic_cert = 0x10, positive_cert = 0x13;
constexpr std::uint8_t subkey_binding = 0x18, direct_key = 0x1F, key_revocation = 0x20;
constexpr std::uint8_t subkey_revocation = 0x28, cert_revocation = 0x30;
}  // namespace sigtype

bool is_revocation(std::uint8_t t) {
  return t == sigtype::key_revocation || t == sigtype::subkey_revocation ||
         t == sigtype::cert_revocation;
}

std::uint32_t be(std::string_view s, std::size_t at, int n) {
  std::uint32_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | static_cast<unsigned char>(s[at + i]);
  return v;
}

// The MPIs of a v4 public key packet body, one after the other (RFC 4880 section 5.5.2).
struct Mpis {
  std::string_view body;
  std::size_t at = 6;  // version, creation time (4), algorithm
  // The next MPI's bit count as its header says, the reader moved past it; nullopt when not
  // even the header is there.
  std::optional<std::size_t> next_bits() {
    if (at + 2 > body.size()) return std::nullopt;
    const std::size_t bits = be(body, at, 2);
    at += 2 + (bits + 7) / 8;
    return bits;
  }
  bool complete() const { return at <= body.size(); }  // every MPI read so far is all there
};

// Subpackets of a v4 signature area (RFC 4880 section 5.2.3.1). False when malformed.
template <class F>
bool each_subpacket(std::string_view area, F fn) {
  std::size_t at = 0;
  while (at < area.size()) {
    const auto c0 = static_cast<std::uint8_t>(area[at]);
    std::size_t len = 0, hdr = 0;
    if (c0 < 192) {
      len = c0;
      hdr = 1;
    } else if (c0 < 255) {
      if (at + 1 >= area.size()) return false;
      len = ((c0 - 192) << 8) + static_cast<std::uint8_t>(area[at + 1]) + 192;
      hdr = 2;
    } else {
      if (at + 4 >= area.size()) return false;
      len = be(area, at + 1, 4);
      hdr = 5;
    }
    if (len == 0 || len > area.size() - at - hdr) return false;
    fn(static_cast<std::uint8_t>(area[at + hdr]) & 0x7F, area.substr(at + hdr + 1, len - 1));
    at += hdr + len;
  }
  return true;
}

struct Sig {
  std::string_view whole;
  SignatureFacts facts;
  bool self = false;
  bool trusted = false;
  bool keep = true;
  bool prefix_checked = false;  // its hash prefix was found to match where it stands
};

struct Component {
  std::string_view whole;  // empty for the direct-key slot
  int tag = 0;
  std::vector<Sig> sigs;
  std::unordered_set<std::string_view> seen;  // signature bodies already here
};

enum class Slot { direct, user, subkey };

struct Build {
  std::string_view primary;
  std::string fingerprint;  // hex
  std::string fpr_raw;      // 20 bytes (v4) or 32 (v6)
  Component direct;
  std::vector<Component> users, subkeys;  // user IDs and attributes; subkeys
  std::unordered_map<std::string_view, std::size_t> user_at, subkey_at;  // packet body -> index
  std::size_t third_party = 0;
  std::size_t oversize_user_ids = 0, largest_oversize_user_id = 0;
  std::optional<RejectedKey> refused;
};

}  // namespace

namespace {

// A key packet's fingerprint, raw: v4, SHA-1 over 0x99, the two-byte length and the body (20
// bytes); v6, SHA-256 over 0x9B, the four-byte length and the body (32). Empty for any other
// version.
std::string fingerprint_raw(std::string_view body) {
  const int version = key_packet_version(body);
  if ((version != 4 && version != 6) || (version == 4 && body.size() > 0xFFFF)) return {};
  const std::string hashed = modern::hashed_key_packet(body);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(hashed.data(), hashed.size(), md, &len, version == 6 ? EVP_sha256() : EVP_sha1(),
                 nullptr) != 1) {
    return {};
  }
  return std::string(reinterpret_cast<const char*>(md), len);
}

}  // namespace

RejectedKey without_self_signature(const FilteredKey& key, const config::KeysConfig& limits) {
  if (key.oversize_user_ids > 0) {
    return RejectedKey{key.fingerprint, GPG_ERR_TOO_LARGE,
                       "no valid self-signature is left: a user ID of " +
                           std::to_string(key.largest_oversize_user_id) +
                           " bytes was over max_packet_bytes (" +
                           std::to_string(limits.max_packet_bytes) + ") and dropped"};
  }
  return RejectedKey{key.fingerprint, GPG_ERR_BAD_SIGNATURE,
                     "the primary key has no valid self-signature"};
}

std::string key_fingerprint(std::string_view body) { return hex_upper(fingerprint_raw(body)); }

std::vector<std::string> certifier_problems(const config::KeysConfig& keys) {
  std::vector<std::string> out;
  if (keys.certifier_key_data.empty()) return out;
  const std::string file = "keys.certifier_keys: \"" + keys.certifier_keys + "\" ";
  const auto decoded = dearmor(keys.certifier_key_data);
  const auto packets = decoded ? split_packets(decoded->binary) : std::nullopt;
  if (!packets) {
    out.push_back(file + "is not OpenPGP: expected the certifiers' public keys");
    return out;
  }
  std::vector<std::string> held;
  bool secret = decoded->private_block;
  for (const auto& p : *packets) {
    secret = secret || p.tag == tag::secret_key || p.tag == tag::secret_subkey;
    if (p.tag == tag::public_key) held.push_back(key_fingerprint(p.body));
  }
  if (secret) out.push_back(file + "holds secret key material: give the public keys only");
  for (std::size_t i = 0; i < keys.certifiers.size(); ++i) {
    if (std::find(held.begin(), held.end(), keys.certifiers[i]) == held.end()) {
      out.push_back("keys.certifiers[" + std::to_string(i) + "]: " + keys.certifiers[i] +
                    " is not among the keys of \"" + keys.certifier_keys + "\"");
    }
  }
  return out;
}

std::string_view keyid_raw(std::string_view fpr_raw) {
  return fpr_raw.size() == 20 ? fpr_raw.substr(12) : fpr_raw.substr(0, 8);
}

bool issued_by(const SignatureFacts& f, std::string_view fpr_raw) {
  if (!f.issuer_fpr.empty()) return f.issuer_fpr == fpr_raw;
  return f.issuer_keyid.size() == 8 && keyid_raw(fpr_raw) == f.issuer_keyid;
}

std::string SignatureFacts::issuer_keyid_hex() const {
  if (!issuer_fpr.empty()) return hex_upper(keyid_raw(issuer_fpr));
  return hex_upper(issuer_keyid);
}

std::optional<SignatureFacts> read_signature(std::string_view b) {
  SignatureFacts f;
  if (b.size() >= 19 + 2 && b[0] == 3 && b[1] == 5) {
    f.version = 3;
    f.type = static_cast<std::uint8_t>(b[2]);
    f.created = be(b, 3, 4);
    f.issuer_keyid = std::string(b.substr(7, 8));
    return f;
  }
  if (b.size() < 6 || (b[0] != 4 && b[0] != 6)) return std::nullopt;
  // v4: the subpacket areas' lengths take 2 octets; v6: 4, and a salt follows the hash prefix.
  f.version = b[0];
  const std::size_t n = f.version == 6 ? 4 : 2;
  f.type = static_cast<std::uint8_t>(b[1]);
  if (4 + n > b.size()) return std::nullopt;
  const std::size_t hashed = be(b, 4, static_cast<int>(n));
  if (hashed > b.size() - 4 - n || 4 + n + hashed + n > b.size()) return std::nullopt;
  const std::size_t unhashed = be(b, 4 + n + hashed, static_cast<int>(n));
  const std::size_t areas = 4 + 2 * n + hashed;
  if (unhashed > b.size() - areas || areas + unhashed + 2 + 2 > b.size()) {
    return std::nullopt;  // the hash prefix and at least something after it
  }
  bool hashed_area = true;
  auto look = [&](int t, std::string_view d) {
    if (t == 2 && d.size() == 4 && hashed_area) f.created = be(d, 0, 4);
    if (t == 33 && ((d.size() == 21 && d[0] == 4) || (d.size() == 33 && d[0] == 6))) {
      f.issuer_fpr = std::string(d.substr(1));
    }
    if (t == 16 && d.size() == 8) f.issuer_keyid = std::string(d);
    // Revocation key: class (0x80 set), algorithm, fingerprint (v4: 20 bytes, v6: 32); only
    // where it is signed.
    if (t == 12 && (d.size() == 22 || d.size() == 34) && hashed_area &&
        (static_cast<std::uint8_t>(d[0]) & 0x80) && f.revokers.size() < 16) {
      f.revokers.emplace_back(d.substr(2));
    }
  };
  if (!each_subpacket(b.substr(4 + n, hashed), look)) return std::nullopt;
  hashed_area = false;
  if (!each_subpacket(b.substr(4 + 2 * n + hashed, unhashed), look)) return std::nullopt;
  return f;
}

std::optional<std::string> absurd_key_parameters(std::string_view body) {
  // v4: version, creation time (4), algorithm, then the algorithm's MPIs (RFC 4880 section 5.5.2).
  if (body.size() < 6 || body[0] != 4) return std::nullopt;
  const auto algo = static_cast<unsigned char>(body[5]);
  Mpis mpis{body};
  auto over = [](const char* what, std::size_t bits, std::size_t limit) {
    return std::string("its ") + what + " has " + std::to_string(bits) + " bits, over the " +
           std::to_string(limit) + " any OpenPGP implementation makes (refused before any " +
           "signature is verified: each would cost seconds)";
  };
  if (algo == 1 || algo == 2 || algo == 3) {  // RSA: n, e
    const auto n = mpis.next_bits();
    const auto e = mpis.next_bits();
    if (n && *n > kMaxRsaModulusBits) return over("RSA modulus", *n, kMaxRsaModulusBits);
    if (e && *e > kMaxRsaExponentBits) return over("RSA public exponent", *e, kMaxRsaExponentBits);
  } else if (algo == 17) {  // DSA: p, q, g, y
    const auto p = mpis.next_bits();
    const auto q = mpis.next_bits();
    if (p && *p > kMaxDsaPrimeBits) return over("DSA prime p", *p, kMaxDsaPrimeBits);
    if (q && *q > kMaxDsaSubgroupBits) return over("DSA subgroup q", *q, kMaxDsaSubgroupBits);
  } else if (algo == 16 || algo == 20) {  // ElGamal: p, g, y
    const auto p = mpis.next_bits();
    if (p && *p > kMaxRsaModulusBits) return over("ElGamal prime p", *p, kMaxRsaModulusBits);
  }
  return std::nullopt;
}

std::uint64_t verification_cost_us(std::string_view body) {
  // What parse_keys spends per new self-signature (RNP validates a key's signatures more than
  // once: import, the validity checks, cleaning, the cleaned key read back), measured with forged
  // RSA signatures whose hash prefixes are right (bench_hardening prints the figures next to
  // these estimates): RSA-2048 with e = 65537 ~490 us, 4096 ~1.7 ms, 8192 with a 64-bit e
  // ~8.4 ms, 16384 ~25 ms. The others scale OpenSSL's figures by the same factor (~10).
  // Over-estimating is the safe side: it only lowers how many forged signatures get verified.
  constexpr std::uint64_t kUnknown = 20000;
  if (const auto k = modern::parse_key(body)) {
    // Verified with OpenSSL once each (bench_modern: ~110 us an Ed25519 signature, hashing
    // included); keys that cannot sign (X25519, X448, ML-KEM) make no back-signature to verify.
    switch (k->algorithm) {
      case modern::kEd25519: return 120;
      case modern::kEd448: return 360;
      case modern::kX25519:
      case modern::kX448:
      case modern::kMlKem768X25519:
      case modern::kMlKem1024X448: return 0;
      default: return kUnknown;  // a v6 key of another algorithm: its signatures are not verified
    }
  }
  if (body.size() < 6 || body[0] != 4) return kUnknown;
  const auto algo = static_cast<unsigned char>(body[5]);
  Mpis mpis{body};
  auto next_bits = [&mpis]() -> std::optional<double> {  // nullopt unless all there
    const auto bits = mpis.next_bits();
    if (!bits || !mpis.complete()) return std::nullopt;
    return static_cast<double>(*bits);
  };
  auto size = [](double modulus_bits) { return std::pow(std::max(modulus_bits, 1024.0) / 2048, 1.9); };
  auto us = [](double v) { return static_cast<std::uint64_t>(std::max(1.0, v)); };
  if (algo == 1 || algo == 3) {  // RSA: the modulus's size to the power 1.9, the exponent's length
    const auto n = next_bits();
    const auto e = next_bits();
    if (!n || !e) return kUnknown;
    return us(430 * size(*n) * (1 + *e / 128));
  }
  if (algo == 17) {  // DSA: two exponentiations mod p by q-bit exponents (2048/256: ~3 ms)
    const auto p = next_bits();
    const auto q = next_bits();
    if (!p || !q) return kUnknown;
    return us(3200 * size(*p) * std::max(*q, 160.0) / 256);
  }
  if (algo == 16 || algo == 20) {  // ElGamal: exponents as long as p
    const auto p = next_bits();
    if (!p) return kUnknown;
    return us(3200 * size(*p) * std::max(*p, 1024.0) / 256);
  }
  if (algo == 18 || algo == 19 || algo == 22) {  // ECDH, ECDSA, EdDSA: by the curve
    if (body.size() < 7) return kUnknown;
    const std::size_t oid_len = static_cast<unsigned char>(body[6]);
    const std::string_view oid = body.substr(7, oid_len);
    // Measured as the RSA figures are (bench_hardening: 15 forged signatures on a key gpg made,
    // per signature, three runs), then some more: Ed25519 47-51 us, P-256 370-515, P-384
    // 680-1,000, P-521 1,250-1,750, brainpoolP256r1 380-570, brainpoolP512r1 1,460-1,950. A
    // curve not listed: 13 ms.
    using namespace std::string_view_literals;  // the OIDs hold zero bytes
    struct Curve {
      std::string_view oid;
      std::uint64_t us;
    };
    static constexpr Curve kCurves[] = {
        {"\x2B\x06\x01\x04\x01\xDA\x47\x0F\x01"sv, 100},           // Ed25519
        {"\x2B\x06\x01\x04\x01\x97\x55\x01\x05\x01"sv, 100},       // Curve25519
        {"\x2A\x86\x48\xCE\x3D\x03\x01\x07"sv, 800},                // NIST P-256
        {"\x2B\x81\x04\x00\x22"sv, 1500},                            // NIST P-384
        {"\x2B\x81\x04\x00\x23"sv, 2600},                            // NIST P-521
        {"\x2B\x81\x04\x00\x0A"sv, 900},                             // secp256k1
        {"\x2B\x24\x03\x03\x02\x08\x01\x01\x07"sv, 900},           // brainpoolP256r1
        {"\x2B\x24\x03\x03\x02\x08\x01\x01\x0B"sv, 1900},          // brainpoolP384r1
        {"\x2B\x24\x03\x03\x02\x08\x01\x01\x0D"sv, 2900},          // brainpoolP512r1
    };
    for (const Curve& c : kCurves) {
      if (oid == c.oid) return c.us;
    }
    return 13000;
  }
  return kUnknown;
}

namespace {

// Decisions an attacker must not be able to steer: which of too many unverified signatures
// get verified. Seeded once per thread from the system's entropy.
std::mt19937_64& chance() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng;
}

// Keeps `keep` of `sigs`, chosen uniformly at random; marks the others dropped (for `why`).
void keep_random(std::vector<Sig*>& sigs, std::size_t keep, FilterOutcome& out,
                 const char* why = "excess_signature") {
  if (sigs.size() <= keep) return;
  std::shuffle(sigs.begin(), sigs.end(), chance());
  for (std::size_t i = keep; i < sigs.size(); ++i) {
    sigs[i]->keep = false;
    ++out.dropped[why];
  }
  sigs.resize(keep);
}

// Whether the hash prefix `s` carries (its digest's left 16 bits) is the digest of what it would
// sign standing under `c` (RFC 9580 section 5.2.4: the primary key, then the user ID, attribute
// or subkey, then the signature's salt, hashed part and trailer; v4 and v6 alike). No public-key
// mathematics: a few microseconds. nullopt when that cannot be told (a body that does not
// frame, a hash algorithm not computed here): the signature is left alone.
std::optional<bool> prefix_matches(std::string_view primary_body, const Component& c,
                                   const Sig& s) {
  const auto packet = first_packet(s.whole);
  const auto sig = packet ? modern::parse_signature(packet->body) : std::nullopt;
  if (!sig) return std::nullopt;
  std::optional<std::string> digest;
  if (c.whole.empty()) {
    digest = modern::signature_digest(*sig, modern::signed_data(primary_body), true);
  } else if (const auto component = first_packet(c.whole)) {
    digest = modern::signature_digest(
        *sig, modern::signed_data(primary_body, component->tag, component->body), true);
  }
  if (!digest || digest->size() < 2) return std::nullopt;
  return digest->compare(0, 2, sig->left16) == 0;
}

// A new signature whose carried hash prefix is not the hash of what it claims to sign cannot
// verify: dropped (wrong_hash_prefix) for the price of a hash, before any budget or cap counts
// it (a forger must try 65,536 variants of each signature to get past this; random junk never
// does). True when it was dropped; trusted and already checked ones are left as they are.
bool drop_if_wrong_prefix(std::string_view primary_body, const Component& c, Sig& s,
                          FilterOutcome& out) {
  if (s.trusted || !s.keep || s.prefix_checked) return false;
  const auto matches = prefix_matches(primary_body, c, s);
  if (!matches || *matches) return false;
  s.keep = false;
  ++out.dropped["wrong_hash_prefix"];
  return true;
}

// One signature's exact bytes under several components (a copy of a real self-signature put under
// a forged user ID: anyone can make one). Its hash covers one component only, so it belongs to at
// most one; RNP folds identical signatures into one and attributes it to the last place it saw,
// which made the real user ID read as unsigned and the whole key unreadable. Each copy stays only
// where the hash prefix the signature carries matches; a copy whose prefix matches several places
// (16 bits: a collision costs 65,536 tries) stays in the first of them (the cached copy's first).
void drop_copied_signatures(Build& b, const std::vector<Component*>& all, FilterOutcome& out) {
  std::unordered_map<std::string_view, std::vector<std::pair<Component*, Sig*>>> places;
  for (auto* c : all) {
    for (auto& s : c->sigs) places[s.whole].emplace_back(c, &s);
  }
  const auto primary = first_packet(b.primary);
  if (!primary) return;
  for (auto& [bytes, at] : places) {
    if (at.size() < 2) continue;
    bool kept = false;
    for (auto& [c, s] : at) {
      if (kept) {  // it belongs to one place at most: the rest go unhashed
        if (s->keep) ++out.dropped["copied_signature"];
        s->keep = false;
        continue;
      }
      if (prefix_matches(primary->body, *c, *s).value_or(false)) {
        kept = true;
        s->prefix_checked = true;
        continue;
      }
      if (s->keep) {
        s->keep = false;
        ++out.dropped["copied_signature"];
      }
    }
  }
}

// New signatures claiming the primary key, checked so before anything counts them.
void drop_wrong_prefix(const Build& b, const std::vector<Component*>& all, FilterOutcome& out) {
  const auto primary = first_packet(b.primary);
  if (!primary) return;
  for (auto* c : all) {
    for (auto& s : c->sigs) {
      if (s.self) drop_if_wrong_prefix(primary->body, *c, s, out);
    }
  }
}

// User IDs, attributes and subkeys that not even a claimed self-signature binds cannot be part of
// the key (verification would drop them): they go before anything is counted, so padding a key
// with bare packets never refuses it (and never keeps a revocation from arriving).
void drop_unbound(Build& b, FilterOutcome& out) {
  auto unbound = [](const Component& c) {
    return std::none_of(c.sigs.begin(), c.sigs.end(), [](const Sig& s) { return s.self && s.keep; });
  };
  const std::size_t users = std::erase_if(b.users, unbound);
  const std::size_t subkeys = std::erase_if(b.subkeys, unbound);
  if (users) out.dropped["unbound_user_id"] += users;
  if (subkeys) out.dropped["unbound_subkey"] += subkeys;
}

// Budgets for the new (not trusted) signatures that claim the primary key as issuer: each costs a
// verification, so their number is bounded. What decides which ones are verified must not be an
// order the sender controls (dates, positions): eight forged revocations dated after the owner's
// genuine one would otherwise push it out before verification. So revocations are kept at
// random within their budget, and other self-signatures half by date (the newest carry a key's
// current expiry) and half at random. What verification proves then stays in the cached copy
// (trusted, never dropped again), so a later copy cannot undo it and a refresh that missed a
// genuine signature in a flood of forgeries finds it at a later one.
void select_new_self_signatures(const std::vector<Component*>& all, FilterOutcome& out) {
  std::vector<Sig*> revocations, others;  // kept per component, the key's budgets next
  std::size_t direct_revocations = 0;
  for (auto* c : all) {
    std::vector<Sig*> rev, other;
    for (auto& s : c->sigs) {
      if (!s.self || s.trusted || !s.keep) continue;
      (is_revocation(s.facts.type) ? rev : other).push_back(&s);
    }
    keep_random(rev, kMaxNewRevocationsPerComponent, out);
    if (other.size() > kMaxNewSelfSigsPerComponent) {
      std::stable_sort(other.begin(), other.end(),
                       [](const Sig* x, const Sig* y) { return x->facts.created > y->facts.created; });
      std::vector<Sig*> rest(other.begin() + kMaxNewSelfSigsPerComponent / 2, other.end());
      other.resize(kMaxNewSelfSigsPerComponent / 2);
      keep_random(rest, kMaxNewSelfSigsPerComponent - other.size(), out);
      other.insert(other.end(), rest.begin(), rest.end());
    }
    if (c == all.front()) direct_revocations = rev.size();
    revocations.insert(revocations.end(), rev.begin(), rev.end());
    others.insert(others.end(), other.begin(), other.end());
  }
  // The key's revocation budget: the primary key's own revocations (the direct slot, first in
  // `revocations`) first, then the other components' at random.
  if (revocations.size() > kMaxNewRevocationsPerKey) {
    std::vector<Sig*> rest(revocations.begin() + static_cast<std::ptrdiff_t>(direct_revocations),
                           revocations.end());
    keep_random(rest, kMaxNewRevocationsPerKey - direct_revocations, out);
  }
  keep_random(others, kMaxNewSelfSigsPerKey, out);
}

// The estimated CPU of verifying a key's new self-signatures (each costs a verification with the
// primary key; a subkey binding one more with the subkey, its back-signature) kept within
// `budget_us`: what counts cannot bound, a key whose every verification costs milliseconds
// (an 8,192-bit modulus, a 64-bit exponent) can. Revocations are kept first (the primary key's
// own before the others'), each group in random order. Returns the cost of what is kept.
std::uint64_t fit_verification_budget(const Build& b, const std::vector<Component*>& all,
                                      std::uint64_t budget_us, FilterOutcome& out) {
  const auto primary = first_packet(b.primary);
  const std::uint64_t by_primary = verification_cost_us(primary ? primary->body : "");
  struct Costed {
    Sig* sig;
    std::uint64_t cost;
  };
  std::vector<Costed> direct_revocations, revocations, others;
  for (auto* c : all) {
    std::uint64_t backsig = 0;
    if (c->tag == tag::public_subkey) {
      const auto sub = first_packet(c->whole);
      backsig = verification_cost_us(sub ? sub->body : "");
    }
    for (auto& s : c->sigs) {
      if (!s.self || s.trusted || !s.keep) continue;
      const std::uint64_t cost =
          by_primary + (s.facts.type == sigtype::subkey_binding ? backsig : 0);
      if (!is_revocation(s.facts.type)) {
        others.push_back({&s, cost});
      } else {
        (c == all.front() ? direct_revocations : revocations).push_back({&s, cost});
      }
    }
  }
  std::uint64_t spent = 0;
  for (auto* group : {&direct_revocations, &revocations, &others}) {
    std::shuffle(group->begin(), group->end(), chance());
    for (const Costed& c : *group) {
      if (spent + c.cost <= budget_us) {
        spent += c.cost;
      } else {
        c.sig->keep = false;
        ++out.dropped["verification_budget"];
      }
    }
  }
  return spent;
}

// At most `cap` of one issuer's signatures on one component: the trusted (cached) ones are
// never dropped and count first; of the new ones, a random choice, never an order the sender
// controls. Returns the new ones kept.
std::vector<Sig*> cap_issuer(const std::vector<Sig*>& sigs, std::size_t cap, FilterOutcome& out) {
  std::vector<Sig*> fresh;
  std::size_t trusted = 0;
  for (Sig* s : sigs) {
    if (s->trusted) {
      ++trusted;
    } else {
      fresh.push_back(s);
    }
  }
  keep_random(fresh, cap > trusted ? cap - trusted : 0, out, "third_party_signature");
  return fresh;
}

// Which signatures by other keys stay (key_filter.hpp). Under `strip` the key's owner decides:
// a key revocation stays when its issuer is a revoker named by a self-signature that stays (a
// forged designation goes with RNP's verification, and the next cleaning round drops what it
// named), a certification or certification revocation when its issuer is one of the operator's
// certifiers (RNP verifies those with the certifiers' keys). Everything else, and anything over
// the per-issuer caps, goes: no shape of third-party signature grows a served key by a byte.
void apply_third_party_policy(Build& b, const std::vector<Component*>& all,
                              const config::KeysConfig& limits, FilterOutcome& out) {
  using config::ThirdPartySigs;
  if (limits.third_party_sigs == ThirdPartySigs::keep) return;
  auto drop = [&out](Sig& s) {
    s.keep = false;
    ++out.dropped["third_party_signature"];
  };
  if (limits.third_party_sigs == ThirdPartySigs::strip_if_oversize) {
    std::size_t bytes = b.primary.size();
    for (auto* c : all) {
      bytes += c->whole.size();
      for (const auto& s : c->sigs) bytes += s.whole.size();
    }
    if (b.third_party <= limits.max_third_party_sigs && bytes <= limits.max_key_bytes) return;
    for (auto* c : all) {
      for (auto& s : c->sigs) {
        if (!s.self && s.keep) drop(s);
      }
    }
    return;
  }
  std::vector<std::string> revokers;  // named by the self-signatures that stay
  for (auto* c : all) {
    for (const auto& s : c->sigs) {
      if (!s.self || !s.keep) continue;
      for (const auto& r : s.facts.revokers) {
        if (std::find(revokers.begin(), revokers.end(), r) == revokers.end()) revokers.push_back(r);
      }
    }
  }
  std::vector<std::string> certifiers;
  for (const auto& hex : limits.certifiers) certifiers.push_back(unhex(hex));
  auto issuer_in = [](const Sig& s, const std::vector<std::string>& list) -> int {
    for (std::size_t i = 0; i < list.size(); ++i) {
      if (issued_by(s.facts, list[i])) return static_cast<int>(i);
    }
    return -1;
  };
  // A candidate whose hash prefix is wrong goes before a cap can count it against a real one.
  const auto primary = first_packet(b.primary);
  auto right_prefix = [&](const Component& c, Sig& s) {
    return !primary || !drop_if_wrong_prefix(primary->body, c, s, out);
  };
  std::map<int, std::vector<Sig*>> by_revoker;
  std::vector<Sig*> new_certifications;
  for (auto* c : all) {
    const bool direct = c == all.front();
    std::map<int, std::vector<Sig*>> by_certifier;
    for (auto& s : c->sigs) {
      if (s.self || !s.keep) continue;
      const std::uint8_t t = s.facts.type;
      const bool certification = (t >= sigtype::generic_cert && t <= sigtype::positive_cert) ||
                                 t == sigtype::cert_revocation;
      if (const int r = issuer_in(s, revokers);
          direct && t == sigtype::key_revocation && r >= 0 &&
          s.whole.size() <= kMaxDesignatedRevocationBytes) {
        if (right_prefix(*c, s)) by_revoker[r].push_back(&s);
      } else if (const int k = issuer_in(s, certifiers); !direct && certification && k >= 0) {
        if (right_prefix(*c, s)) by_certifier[k].push_back(&s);
      } else {
        drop(s);
      }
    }
    for (const auto& [issuer, sigs] : by_certifier) {
      const auto fresh = cap_issuer(sigs, kMaxCertificationsPerCertifier, out);
      new_certifications.insert(new_certifications.end(), fresh.begin(), fresh.end());
    }
  }
  for (const auto& [issuer, sigs] : by_revoker) cap_issuer(sigs, kMaxRevocationsPerRevoker, out);
  keep_random(new_certifications, kMaxNewCertificationsPerKey, out, "third_party_signature");
}

// The key's packets: the primary key, then each component followed by its signatures that `take`.
template <class Take>
std::string packets_of(const Build& b, const std::vector<Component*>& all, Take take) {
  std::string packets(b.primary);
  for (auto* c : all) {
    packets += c->whole;
    for (const auto& s : c->sigs) {
      if (take(s)) packets += s.whole;
    }
  }
  return packets;
}

// A refused key's revocations by its primary key (each after the packet it revokes, within the
// budgets), or nullopt when it has none.
std::optional<FilteredKey> revocations_only(const Build& b, const std::vector<Component*>& all) {
  std::vector<Component*> revoked;
  for (auto* c : all) {
    const bool any = std::any_of(c->sigs.begin(), c->sigs.end(), [](const Sig& s) {
      return s.keep && s.self && is_revocation(s.facts.type);
    });
    if (any) revoked.push_back(c);
  }
  if (revoked.empty()) return std::nullopt;
  FilteredKey k;
  k.fingerprint = b.fingerprint;
  k.packets = packets_of(b, revoked,
                         [](const Sig& s) { return s.keep && s.self && is_revocation(s.facts.type); });
  return k;
}

// Phase 1: the packets, framed one by one so that a damaged tail loses only the tail.
std::vector<Packet> frame(std::string_view binary, FilterOutcome& out) {
  std::vector<Packet> packets;
  for (std::string_view rest = binary; !rest.empty();) {
    auto p = first_packet(rest);
    if (!p) {
      ++out.dropped["malformed_packet"];
      break;
    }
    rest.remove_prefix(p->whole.size());
    packets.push_back(*p);
  }
  out.any_packet = !packets.empty();
  return packets;
}

// Why a primary key that is neither v4 nor v6 is refused, in one line: a v5 (LibrePGP) key as
// such.
RejectedKey unsupported_version(std::string_view body) {
  const int version = key_packet_version(body);
  if (version == 5) {
    return RejectedKey{"", GPG_ERR_UNKNOWN_VERSION,
                       "a v5 (LibrePGP) key: OpenPGP (RFC 9580) has v4 and v6 keys, not v5"};
  }
  return RejectedKey{"", GPG_ERR_UNKNOWN_VERSION,
                     "a v" + std::to_string(version) + " key: OpenPGP keys are v4 or v6"};
}

// Why a primary key whose self-signatures cannot be verified here is refused, or nullopt. RNP
// verifies the classic v4 algorithms, hkp/modern Ed25519 and Ed448 (v4 and v6); anything else
// could only be served unverified.
std::optional<std::string> unverifiable_primary(std::string_view body) {
  const int version = key_packet_version(body);
  const auto k = modern::parse_key(body);
  if (version == 6 && !k) return "the v6 key packet does not frame (its material's length)";
  if (!k || modern::verifies(k->algorithm)) return std::nullopt;
  const std::string uses = "the primary key uses " + modern::algorithm_name(k->algorithm) +
                           " (algorithm " + std::to_string(k->algorithm) + ")";
  switch (k->algorithm) {
    case modern::kMlDsa65Ed25519:
    case modern::kMlDsa87Ed448:
    case modern::kSlhDsaShake128s:
    case modern::kSlhDsaShake128f:
    case modern::kSlhDsaShake256s:
      return uses +
             ", a post-quantum signature algorithm OpenSSL 3.0 cannot verify: its "
             "signatures cannot be checked here";
    case modern::kX25519:
    case modern::kX448:
    case modern::kMlKem768X25519:
    case modern::kMlKem1024X448:
      return uses + ", an encryption algorithm: it cannot certify anything";
    default:
      return uses +
             " in a v6 key: this gateway verifies v6 keys with Ed25519 or Ed448 primary "
             "keys";
  }
}

// Phase 2: each packet placed where it belongs, in one linear pass: a primary key starts a key
// (or folds another copy of one already seen into it), a user ID, attribute or subkey starts a
// component of the current key, a signature goes to the current component if its type may
// stand there; whatever is oversize, malformed, misplaced or from the future is dropped and
// counted, and everything after a refused key or dropped component goes with it.
class Placer {
 public:
  Placer(std::string_view binary, const config::KeysConfig& limits, std::size_t trusted_prefix,
         std::size_t max_keys, FilterOutcome& out)
      : binary_(binary), limits_(limits), trusted_prefix_(trusted_prefix), max_keys_(max_keys),
        out_(out),
        horizon_(static_cast<std::uint64_t>(std::time(nullptr)) + kClockSkewSeconds) {}

  // False: stop reading (secret key material, or more keys than the caller takes).
  bool place(const Packet& p) {
    switch (p.tag) {
      case tag::secret_key:
      case tag::secret_subkey:
        out_.secret_material = true;
        return false;  // nothing of it is looked at further
      case tag::public_key:
        return primary(p);
      case tag::user_id:
      case tag::user_attribute:
      case tag::public_subkey:
        component(p);
        return true;
      case tag::signature:
        signature(p);
        return true;
      default:
        drop("other_packet");  // trust, marker, literal data, ...: nothing a key needs
        return true;
    }
  }
  std::deque<Build>& builds() { return builds_; }

 private:
  void drop(const char* why) { ++out_.dropped[why]; }
  bool trusted(const Packet& p) const {
    return static_cast<std::size_t>(p.whole.data() - binary_.data()) < trusted_prefix_;
  }

  bool primary(const Packet& p) {
    skipping_ = false;
    slot_ = Slot::direct;
    if (auto it = build_at_.find(p.body); it != build_at_.end()) {
      cur_ = &builds_[it->second];  // another copy of a key already seen: fold it in
      comp_ = &cur_->direct;
      skipping_ = cur_->refused.has_value();
      return true;
    }
    if (out_.primaries == max_keys_) {
      ++out_.primaries;  // the caller refuses the count; the rest is not read
      return false;
    }
    ++out_.primaries;
    builds_.emplace_back();
    cur_ = &builds_.back();
    build_at_.emplace(p.body, builds_.size() - 1);
    cur_->primary = p.whole;
    cur_->fpr_raw = fingerprint_raw(p.body);
    cur_->fingerprint = hex_upper(cur_->fpr_raw);
    comp_ = &cur_->direct;
    if (cur_->fingerprint.empty()) {
      cur_->refused = unsupported_version(p.body);
    } else if (auto why = unverifiable_primary(p.body)) {
      cur_->refused = RejectedKey{cur_->fingerprint, GPG_ERR_PUBKEY_ALGO, std::move(*why)};
    } else if (p.whole.size() > limits_.max_packet_bytes) {
      cur_->refused = RejectedKey{cur_->fingerprint, GPG_ERR_TOO_LARGE,
                                  "the primary key packet is over max_packet_bytes (" +
                                      std::to_string(limits_.max_packet_bytes) + ")"};
    } else if (auto absurd = absurd_key_parameters(p.body)) {
      cur_->refused = RejectedKey{cur_->fingerprint, GPG_ERR_BAD_PUBKEY,
                                  "the primary key: " + *absurd};
    }
    skipping_ = cur_->refused.has_value();
    return true;
  }

  void component(const Packet& p) {
    const bool is_sub = p.tag == tag::public_subkey;
    if (!cur_) {
      if (is_sub) {
        out_.rejected.push_back({key_fingerprint(p.body), GPG_ERR_NO_PUBKEY,
                                 "subkey without its primary key (upload the whole key)"});
      } else {
        drop("other_packet");
      }
      skipping_ = true;
      return;
    }
    if (cur_->refused) return;
    slot_ = is_sub ? Slot::subkey : Slot::user;
    skipping_ = false;
    if (is_sub && absurd_key_parameters(p.body)) {  // its back-signature would cost seconds
      drop("absurd_subkey");
      skipping_ = true;
      return;
    }
    if (p.whole.size() > limits_.max_packet_bytes) {
      drop(is_sub ? "oversize_subkey" : "oversize_user_id");
      if (!is_sub) {
        ++cur_->oversize_user_ids;
        cur_->largest_oversize_user_id = std::max(cur_->largest_oversize_user_id, p.whole.size());
      }
      skipping_ = true;
      return;
    }
    auto& index = is_sub ? cur_->subkey_at : cur_->user_at;
    auto& list = is_sub ? cur_->subkeys : cur_->users;
    auto [it, fresh] = index.try_emplace(p.body, list.size());
    if (fresh) {
      list.emplace_back();
      list.back().whole = p.whole;
      list.back().tag = p.tag;
    }
    comp_ = &list[it->second];
  }

  // Whether a signature of type `t` may stand where the current component puts it.
  bool allowed_here(std::uint8_t t, bool self) const {
    switch (slot_) {
      case Slot::direct:
        return (self && t == sigtype::direct_key) || t == sigtype::key_revocation;
      case Slot::user:
        return (t >= sigtype::generic_cert && t <= sigtype::positive_cert) ||
               t == sigtype::cert_revocation;
      case Slot::subkey:
        return self && (t == sigtype::subkey_binding || t == sigtype::subkey_revocation);
    }
    return false;
  }

  void signature(const Packet& p) {
    if (!cur_) {  // before any key: a bare revocation certificate, perhaps
      if (!skipping_) out_.leading_signatures += p.whole;
      return;
    }
    if (skipping_ || !comp_) return;
    if (p.whole.size() > limits_.max_sig_packet_bytes) {
      drop("oversize_signature");
      return;
    }
    auto facts = read_signature(p.body);
    if (!facts) {
      drop("malformed_signature");
      return;
    }
    const bool self = issued_by(*facts, cur_->fpr_raw);
    if (!allowed_here(facts->type, self)) {
      drop("misplaced_signature");
      return;
    }
    if (facts->created > horizon_ && !trusted(p)) {  // made after tomorrow: nobody made it
      drop("future_signature");
      return;
    }
    if (!comp_->seen.insert(p.body).second) return;  // the same signature again: folded
    cur_->third_party += !self;
    comp_->sigs.push_back(Sig{p.whole, std::move(*facts), self, trusted(p)});
  }

  std::string_view binary_;
  const config::KeysConfig& limits_;
  std::size_t trusted_prefix_, max_keys_;
  FilterOutcome& out_;
  std::uint64_t horizon_;
  std::deque<Build> builds_;  // stable addresses: `cur_` points into it
  std::unordered_map<std::string_view, std::size_t> build_at_;  // primary body -> index
  Build* cur_ = nullptr;
  Component* comp_ = nullptr;
  Slot slot_ = Slot::direct;
  bool skipping_ = false;  // inside a refused key or a dropped component: its signatures go too
};

// Phase 3: one key's cleaning, in order: copied and wrongly prefixed signatures out, components
// no signature binds out, the new self-signatures chosen and fitted to the verification
// budget, the counts checked (a key over them is refused, its revocations kept aside), the
// third-party policy applied; what is left goes to `out` with its estimated cost.
void clean(Build& b, const config::KeysConfig& limits, FilterOutcome& out) {
  if (b.refused) {
    out.rejected.push_back(std::move(*b.refused));
    return;
  }
  auto components = [&b] {  // again after drop_unbound: erasing moves components
    std::vector<Component*> all{&b.direct};
    for (auto& c : b.users) all.push_back(&c);
    for (auto& c : b.subkeys) all.push_back(&c);
    return all;
  };
  drop_copied_signatures(b, components(), out);
  drop_wrong_prefix(b, components(), out);
  drop_unbound(b, out);
  const std::vector<Component*> all = components();
  select_new_self_signatures(all, out);
  const std::uint64_t cost = fit_verification_budget(
      b, all, static_cast<std::uint64_t>(limits.verify_budget_per_key.count()) * 1000, out);

  auto over = [&](std::size_t n, std::uint64_t limit, const char* what, const char* key) {
    if (n <= limit) return false;
    out.rejected.push_back({b.fingerprint, GPG_ERR_TOO_LARGE,
                            "key has " + std::to_string(n) + " " + what + ", over " + key + " (" +
                                std::to_string(limit) + ")"});
    return true;
  };
  if (over(b.users.size(), limits.max_user_ids, "user IDs", "max_user_ids") ||
      over(b.subkeys.size(), limits.max_subkeys, "subkeys", "max_subkeys")) {
    // Refused, but its revocations are kept aside: whatever else is wrong with a copy, the
    // caller may still apply them to the copy it has (merge_key,
    // cache::apply_refused_revocations).
    if (auto rev = revocations_only(b, all)) out.revocations.push_back(std::move(*rev));
    return;
  }

  apply_third_party_policy(b, all, limits, out);

  FilteredKey k;
  k.fingerprint = b.fingerprint;
  k.oversize_user_ids = b.oversize_user_ids;
  k.largest_oversize_user_id = b.largest_oversize_user_id;
  k.packets = packets_of(b, all, [](const Sig& s) { return s.keep; });
  k.verify_cost_us = cost;
  out.verify_cost_us += cost;
  out.keys.push_back(std::move(k));
}

}  // namespace

FilterOutcome filter_keys(std::string_view binary, const config::KeysConfig& limits,
                          std::size_t trusted_prefix, std::size_t max_keys) {
  FilterOutcome out;
  const std::vector<Packet> packets = frame(binary, out);
  Placer placer(binary, limits, trusted_prefix, max_keys, out);
  for (const Packet& p : packets) {
    if (!placer.place(p)) return out;
  }
  for (Build& b : placer.builds()) clean(b, limits, out);
  return out;
}

std::vector<std::string> keyring_chunks(std::string_view data, std::size_t keys_per_chunk) {
  // Every armor block (gpg --export -a writes one; concatenated exports have several).
  auto decoded = dearmor(data);
  if (!decoded) return {std::string(data)};  // the parser reports what is wrong with it
  const std::string& binary = decoded->binary;
  const auto packets = split_packets(binary);
  if (!packets) return {std::string(data)};
  std::vector<std::string> chunks;
  std::string current;
  std::size_t keys = 0;
  for (const auto& p : *packets) {
    if (p.tag == tag::public_key || p.tag == tag::secret_key) {  // secret: refused later, whole
      if (keys == keys_per_chunk) {
        chunks.push_back(std::move(current));
        current.clear();
        keys = 0;
      }
      ++keys;
    }
    current += p.whole;
  }
  if (!current.empty()) chunks.push_back(std::move(current));
  return chunks;
}

std::optional<BareRevocations> bare_revocations(std::string_view data) {
  const auto decoded = dearmor(data);
  if (!decoded || decoded->private_block) return std::nullopt;
  const auto packets = split_packets(decoded->binary);
  if (!packets || packets->empty()) return std::nullopt;
  BareRevocations out;
  for (const auto& p : *packets) {
    if (p.tag != tag::signature) return std::nullopt;
    const auto facts = read_signature(p.body);
    // v4 and v6 revocations only: of the key, of a subkey, of a certification.
    if (!facts || (facts->version != 4 && facts->version != 6) ||
        (facts->type != 0x20 && facts->type != 0x28 && facts->type != 0x30)) {
      return std::nullopt;
    }
    std::string issuer = facts->issuer_keyid_hex();
    if (issuer.empty()) return std::nullopt;
    ++out.signatures;
    if (std::find(out.issuers.begin(), out.issuers.end(), issuer) == out.issuers.end()) {
      out.issuers.push_back(std::move(issuer));
    }
  }
  return out;
}

}  // namespace hkpgw::hkp
