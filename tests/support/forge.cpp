#include "support/forge.hpp"

#include <openssl/evp.h>

#include <stdexcept>

#include "hkp/keyring.hpp"
#include "hkp/packets.hpp"

namespace hkpgw::test {

using hkp::Packet;
namespace tag = hkp::tag;

namespace {

std::vector<Packet> split(const std::string& key) {
  auto p = hkp::split_packets(key);
  if (!p) throw std::runtime_error("forge: not a packet sequence");
  return *p;
}

// Index just past the first user ID and its signatures.
std::size_t after_first_uid(const std::vector<Packet>& ps) {
  std::size_t i = 0;
  while (i < ps.size() && ps[i].tag != tag::user_id) ++i;
  if (i == ps.size()) throw std::runtime_error("forge: key has no user ID");
  ++i;
  while (i < ps.size() && ps[i].tag == tag::signature) ++i;
  return i;
}

// A copy of the first user ID's self-signature with its last byte changed: a distinct packet
// (an identical copy would be merged with the original) that does not verify.
std::string first_uid_signature(const std::vector<Packet>& ps) {
  for (std::size_t i = 0; i + 1 < ps.size(); ++i) {
    if (ps[i].tag == tag::user_id && ps[i + 1].tag == tag::signature) {
      std::string sig(ps[i + 1].whole);
      sig.back() = static_cast<char>(sig.back() ^ 0x01);
      return sig;
    }
  }
  throw std::runtime_error("forge: no user ID signature");
}

std::string join(const std::vector<Packet>& ps, std::size_t from, std::size_t to) {
  std::string out;
  for (std::size_t i = from; i < to; ++i) out += ps[i].whole;
  return out;
}

}  // namespace

std::string key_packets(const std::string& data) {
  config::KeysConfig keep;
  keep.third_party_sigs = config::ThirdPartySigs::keep;
  keep.max_key_bytes = keep.max_packet_bytes = keep.max_sig_packet_bytes = 1ULL << 30;
  keep.max_third_party_sigs = 1ULL << 40;
  auto parsed = hkp::parse_keys(data, keep);
  if (parsed.keys.empty()) throw std::runtime_error("forge: no key in input");
  return parsed.keys.front().packets;
}

std::string altered_signature(const std::string& sig, int n) {
  // The last bytes are the signature's MPIs: the packet still frames, claims the same issuer,
  // type and hash prefix, and verifies for nothing.
  std::string out = sig;
  if (out.size() < 4) return out;
  // (first_uid_signature already flips bit 0 of the last byte: never flip it back.)
  out[out.size() - 1] = static_cast<char>(out[out.size() - 1] ^ (2 + n % 250));
  out[out.size() - 2] = static_cast<char>(out[out.size() - 2] ^ (n / 250));
  return out;
}

std::string with_forged_uid(const std::string& key, const std::string& uid_text) {
  const auto ps = split(key);
  const std::size_t at = after_first_uid(ps);
  return join(ps, 0, at) + hkp::make_packet(tag::user_id, uid_text) +
         altered_signature(first_uid_signature(ps), 0) + join(ps, at, ps.size());
}

std::string with_foreign_subkey(const std::string& key, const std::string& other) {
  const auto theirs = split(other);
  std::string sub;
  for (std::size_t i = 0; i < theirs.size(); ++i) {
    if (theirs[i].tag != tag::public_subkey) continue;
    sub = std::string(theirs[i].whole);
    if (i + 1 < theirs.size() && theirs[i + 1].tag == tag::signature) sub += theirs[i + 1].whole;
    break;
  }
  if (sub.empty()) throw std::runtime_error("forge: other key has no subkey");
  return key + sub;
}

std::string forged_signature(int type, const std::string& issuer, std::uint32_t when) {
  // v4, `type`, EdDSA (22), SHA-256 (8); hashed: creation time; unhashed: issuer key ID.
  std::string b = {4, static_cast<char>(type), 22, 8, 0, 6, 5, 2};
  for (int shift : {24, 16, 8, 0}) b.push_back(static_cast<char>((when >> shift) & 0xFF));
  b += std::string{0, 10, 9, 16};
  b += issuer.substr(0, 8);
  b += std::string{0x12, 0x34};
  for (int mpi = 0; mpi < 2; ++mpi) {
    b += std::string{1, 0};  // 256 bits
    b += std::string(32, static_cast<char>(0xC1 + mpi));  // top bit set: exactly 256 bits
  }
  return hkp::make_packet(tag::signature, b);
}

namespace {

// An MPI of exactly `bits` bits: top bit set, the rest filled from `fill`, odd.
std::string mpi(std::size_t bits, unsigned fill) {
  std::string m{static_cast<char>(bits >> 8), static_cast<char>(bits & 0xFF)};
  std::string value((bits + 7) / 8, '\0');
  for (std::size_t i = 0; i < value.size(); ++i) {
    fill = fill * 1103515245u + 12345u;
    value[i] = static_cast<char>(fill >> 16);
  }
  const unsigned top = (bits - 1) % 8;
  value[0] = static_cast<char>((static_cast<unsigned char>(value[0]) & ((1u << top) - 1)) |
                               (1u << top));
  value.back() = static_cast<char>(value.back() | 1);
  return m + value;
}

}  // namespace

// The left 16 bits of SHA-256 over what a v4 signature on `key_body` signs (RFC 4880 section
// 5.2.4): with a user ID (`uid`) or a subkey (`subkey_body`) when given, then the signature's
// hashed part `hashed` and its trailer. With them right, no implementation can refuse the
// signature without the public-key mathematics.
std::string left16(const std::string& key_body, const std::string& uid, const std::string& hashed,
                   const std::string& subkey_body = {}) {
  auto key_packet = [](const std::string& body) {
    return std::string{static_cast<char>(0x99), static_cast<char>(body.size() >> 8),
                       static_cast<char>(body.size() & 0xFF)} + body;
  };
  std::string data = key_packet(key_body);
  if (!uid.empty()) {
    data += {static_cast<char>(0xB4), 0, 0, static_cast<char>(uid.size() >> 8),
             static_cast<char>(uid.size() & 0xFF)};
    data += uid;
  } else if (!subkey_body.empty()) {
    data += key_packet(subkey_body);
  }
  data += hashed;
  data += {4, static_cast<char>(0xFF), 0, 0, static_cast<char>(hashed.size() >> 8),
           static_cast<char>(hashed.size() & 0xFF)};
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("forge: SHA-256 failed");
  }
  return std::string(reinterpret_cast<const char*>(digest), 2);
}

std::string forged_rsa_key(std::size_t n_bits, std::size_t e_bits, int user_ids, int sigs_per_uid,
                           int seed) {
  std::string body = {4, 0x60, 0, 0, 0, 1};  // v4, 2021, RSA
  body += mpi(n_bits, static_cast<unsigned>(seed));
  std::string e{static_cast<char>(e_bits >> 8), static_cast<char>(e_bits & 0xFF)};
  e += std::string((e_bits + 7) / 8, static_cast<char>(0xFF));  // all ones: the costliest
  if (e_bits % 8) e[2] = static_cast<char>((1u << (e_bits % 8)) - 1);
  body += e;
  std::string key = hkp::make_packet(tag::public_key, body);
  const std::string id = primary_keyid(key);
  std::uint32_t when = 1700000000u;
  for (int u = 0; u < user_ids; ++u) {
    const std::string uid =
        "Costly " + std::to_string(u) + " <costly" + std::to_string(u) + "@example.org>";
    key += hkp::make_packet(tag::user_id, uid);
    for (int s = 0; s < sigs_per_uid; ++s, ++when) {
      // v4, positive certification, RSA, SHA-256; hashed: creation time; unhashed: issuer.
      std::string b = {4, 0x13, 1, 8, 0, 6, 5, 2};
      for (int shift : {24, 16, 8, 0}) b.push_back(static_cast<char>((when >> shift) & 0xFF));
      b += std::string{0, 10, 9, 16} + id + left16(body, uid, b);
      b += mpi(n_bits - 1, when);
      key += hkp::make_packet(tag::signature, b);
    }
  }
  return key;
}

std::string forged_signature_on(const std::string& key, const std::string& uid, int type,
                                std::uint32_t when, const std::string& issuer) {
  const auto ps = split(key);
  const std::string body(ps.at(0).body);
  // v4, `type`, the key's own algorithm, SHA-256; hashed: creation time; unhashed: issuer.
  std::string b = {4, static_cast<char>(type), body.at(5), 8, 0, 6, 5, 2};
  for (int shift : {24, 16, 8, 0}) b.push_back(static_cast<char>((when >> shift) & 0xFF));
  b += std::string{0, 10, 9, 16} + (issuer.empty() ? primary_keyid(key) : issuer.substr(0, 8)) +
       left16(body, uid, b);
  for (int mpi = 0; mpi < 2; ++mpi) {  // 247 bits: below every curve's order, so not refused
    b += std::string{0, static_cast<char>(247)};  // for its size before the mathematics
    b += std::string(31, static_cast<char>(0x41 + mpi));
  }
  return hkp::make_packet(tag::signature, b);
}

std::string forged_designation(const std::string& key, const std::string& revoker_fpr) {
  const auto ps = split(key);
  const std::string body(ps.at(0).body);
  // v4, direct-key, the key's algorithm, SHA-256; hashed: creation time and the revocation key
  // (class 0x80, EdDSA, fingerprint); unhashed: issuer.
  std::string b = {4, 0x1F, body.at(5), 8, 0, 30, 5, 2, 0x66, 0, 0, 0, 23, 12,
                   static_cast<char>(0x80), 22};
  b += revoker_fpr.substr(0, 20);
  b += std::string{0, 10, 9, 16} + primary_keyid(key) + left16(body, "", b);
  for (int mpi = 0; mpi < 2; ++mpi) {
    b += std::string{0, static_cast<char>(247)};
    b += std::string(31, static_cast<char>(0x51 + mpi));
  }
  return hkp::make_packet(tag::signature, b);
}

std::string primary_keyid(const std::string& key) {
  const std::string hex = hkp::key_fingerprint(split(key).at(0).body).substr(24);
  std::string raw;
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    raw.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return raw;
}

std::string flooded(const std::string& key, int count) {
  // Issuer 0x00C0FFEE00C0FFEE, a key nobody has; creation time varying per copy.
  std::string sigs;
  for (int i = 0; i < count; ++i) {
    sigs += forged_signature(0x10, std::string("\x00\xC0\xFF\xEE\x00\xC0\xFF\xEE", 8),
                             1600000000u + static_cast<std::uint32_t>(i));
  }
  return with_after_first_uid(key, sigs);
}

std::string with_after_first_uid(const std::string& key, const std::string& sigs) {
  const auto ps = split(key);
  const std::size_t at = after_first_uid(ps);
  return join(ps, 0, at) + sigs + join(ps, at, ps.size());
}

std::string with_after_primary(const std::string& key, const std::string& sigs) {
  const auto ps = split(key);
  return join(ps, 0, 1) + sigs + join(ps, 1, ps.size());
}

std::string with_after_first_subkey(const std::string& key, const std::string& sigs) {
  const auto ps = split(key);
  std::size_t i = 0;
  while (i < ps.size() && ps[i].tag != tag::public_subkey) ++i;
  if (i == ps.size()) throw std::runtime_error("forge: key has no subkey");
  ++i;
  while (i < ps.size() && ps[i].tag == tag::signature) ++i;
  return join(ps, 0, i) + sigs + join(ps, i, ps.size());
}

std::string first_uid_self_signature(const std::string& key) {
  const auto ps = split(key);
  for (std::size_t i = 0; i + 1 < ps.size(); ++i) {
    if (ps[i].tag == tag::user_id && ps[i + 1].tag == tag::signature) {
      return std::string(ps[i + 1].whole);
    }
  }
  throw std::runtime_error("forge: no user ID signature");
}

std::string with_fake_subkeys(const std::string& key, int count, std::uint32_t bound_at) {
  const auto ps = split(key);
  std::size_t i = 0;
  while (i < ps.size() && ps[i].tag != tag::public_subkey) ++i;
  if (i + 1 >= ps.size()) throw std::runtime_error("forge: key has no subkey");
  const std::string body(ps[i].body);
  std::string out = key;
  for (int n = 0; n < count; ++n) {
    std::string b = body;  // v4: version, then the 4-byte creation time
    const std::uint32_t when = 1500000000u + static_cast<std::uint32_t>(n);
    for (int k = 0; k < 4; ++k) b[1 + k] = static_cast<char>((when >> (24 - 8 * k)) & 0xFF);
    // A forged binding whose hash prefix is right for this subkey: only verification refuses it.
    const std::string primary(ps.at(0).body);
    std::string sig = {4, 0x18, primary.at(5), 8, 0, 6, 5, 2};
    const std::uint32_t signed_at = bound_at ? bound_at : when;
    for (int shift : {24, 16, 8, 0}) sig.push_back(static_cast<char>((signed_at >> shift) & 0xFF));
    sig += std::string{0, 10, 9, 16} + primary_keyid(key) + left16(primary, "", sig, b);
    for (int mpi = 0; mpi < 2; ++mpi) sig += std::string{1, 0} + std::string(32, static_cast<char>(0xC1));
    out += hkp::make_packet(tag::public_subkey, b) + hkp::make_packet(tag::signature, sig);
  }
  return out;
}

std::string with_bare_uids(const std::string& key, int count) {
  std::string out = key;
  for (int n = 0; n < count; ++n) {
    out += hkp::make_packet(tag::user_id, "Padding " + std::to_string(n) + " <pad" +
                                              std::to_string(n) + "@example.org>");
  }
  return out;
}

std::string with_bare_subkeys(const std::string& key, int count) {
  const auto ps = split(key);
  std::size_t i = 0;
  while (i < ps.size() && ps[i].tag != tag::public_subkey) ++i;
  if (i == ps.size()) throw std::runtime_error("forge: key has no subkey");
  std::string out = key;
  for (int n = 0; n < count; ++n) {
    std::string b(ps[i].body);
    const std::uint32_t when = 1400000000u + static_cast<std::uint32_t>(n);
    for (int k = 0; k < 4; ++k) b[1 + k] = static_cast<char>((when >> (24 - 8 * k)) & 0xFF);
    out += hkp::make_packet(tag::public_subkey, b);
  }
  return out;
}

std::string with_rsa_exponent(const std::string& key, std::size_t bits) {
  const auto ps = split(key);
  const int want = tag::public_key;
  std::string out;
  bool done = false;
  for (const auto& p : ps) {
    if (done || p.tag != want) {
      out += p.whole;
      continue;
    }
    std::string b(p.body);  // version, time (4), algorithm, n, e
    if (b.size() < 8 || (b[5] != 1 && b[5] != 2 && b[5] != 3)) {
      throw std::runtime_error("forge: not an RSA key");
    }
    const std::size_t n_bits = (static_cast<unsigned char>(b[6]) << 8) | static_cast<unsigned char>(b[7]);
    const std::size_t e_at = 8 + (n_bits + 7) / 8;
    std::string e(2, '\0');
    e[0] = static_cast<char>(bits >> 8);
    e[1] = static_cast<char>(bits & 0xFF);
    std::string value((bits + 7) / 8, static_cast<char>(0xFF));  // odd, all ones
    if (bits % 8) value[0] = static_cast<char>((1u << (bits % 8)) - 1);
    out += hkp::make_packet(want, b.substr(0, e_at) + e + value);
    done = true;
  }
  return out;
}

std::string with_fake_uids(const std::string& key, int count) {
  const auto ps = split(key);
  std::string uids;
  for (int n = 0; n < count; ++n) {
    const std::string uid =
        "Fake " + std::to_string(n) + " <fake" + std::to_string(n) + "@example.org>";
    uids += hkp::make_packet(tag::user_id, uid) +
            forged_signature_on(key, uid, 0x13, 1700000000u + static_cast<std::uint32_t>(n));
  }
  const std::size_t at = after_first_uid(ps);
  return join(ps, 0, at) + uids + join(ps, at, ps.size());
}

std::string with_oversize_uid(const std::string& key, std::size_t bytes) {
  const auto ps = split(key);
  const std::size_t at = after_first_uid(ps);
  std::string text = "Big <big@example.org> ";
  text.resize(bytes, 'x');
  return join(ps, 0, at) + hkp::make_packet(tag::user_id, text) + first_uid_signature(ps) +
         join(ps, at, ps.size());
}

std::string without_valid_self_signature(const std::string& key) {
  const auto ps = split(key);
  std::string uid;
  for (const auto& p : ps) {
    if (p.tag == tag::user_id) {
      uid = std::string(p.whole);
      break;
    }
  }
  return std::string(ps.at(0).whole) + uid + first_uid_signature(ps);
}

int signature_count(const std::string& packets) {
  int n = 0;
  for (const auto& p : split(packets)) n += p.tag == tag::signature;
  return n;
}

}  // namespace hkpgw::test
