#include "support/forge.hpp"

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

std::string primary_keyid(const std::string& key) {
  const std::string hex = hkp::v4_fingerprint(split(key).at(0).body).substr(24);
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

std::string with_fake_subkeys(const std::string& key, int count) {
  const auto ps = split(key);
  std::size_t i = 0;
  while (i < ps.size() && ps[i].tag != tag::public_subkey) ++i;
  if (i + 1 >= ps.size()) throw std::runtime_error("forge: key has no subkey");
  const std::string body(ps[i].body), binding(ps[i + 1].whole);
  std::string out = key;
  for (int n = 0; n < count; ++n) {
    std::string b = body;  // v4: version, then the 4-byte creation time
    const std::uint32_t when = 1500000000u + static_cast<std::uint32_t>(n);
    for (int k = 0; k < 4; ++k) b[1 + k] = static_cast<char>((when >> (24 - 8 * k)) & 0xFF);
    out += hkp::make_packet(tag::public_subkey, b) + altered_signature(binding, n);
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
  const std::string sig = first_uid_signature(ps);
  std::string uids;
  for (int n = 0; n < count; ++n) {
    uids += hkp::make_packet(tag::user_id, "Fake " + std::to_string(n) + " <fake" +
                                               std::to_string(n) + "@example.org>") +
            altered_signature(sig, n);
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
