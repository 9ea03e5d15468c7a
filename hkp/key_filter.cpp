#include "hkp/key_filter.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <deque>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "hkp/armor.hpp"
#include "hkp/packets.hpp"
#include "hkp/text.hpp"

namespace hkpgw::hkp {
namespace {

// Budgets for signatures by the primary key that are not in the trusted (cached) copy: each
// costs RNP one verification (up to ~1.5 ms for RSA). A real key gathers a handful per user ID
// or subkey over its life (one per expiry extension); these leave room for decades of that.
constexpr std::size_t kMaxNewSelfSigsPerComponent = 16;
constexpr std::size_t kMaxNewRevocationsPerComponent = 8;
constexpr std::size_t kMaxNewSelfSigsPerKey = 500;

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
  std::string fpr_raw;      // 20 bytes
  Component direct;
  std::vector<Component> users, subkeys;  // user IDs and attributes; subkeys
  std::unordered_map<std::string_view, std::size_t> user_at, subkey_at;  // packet body -> index
  std::size_t third_party = 0;
  std::size_t oversize_user_ids = 0, largest_oversize_user_id = 0;
  std::optional<RejectedKey> refused;
};

}  // namespace

namespace {

// SHA-1 over 0x99, the two-byte length and the body (RFC 4880 section 12.2): 20 raw bytes, or
// empty when the packet is not a v4 key.
std::string fingerprint_raw(std::string_view body) {
  if (body.empty() || body[0] != 4 || body.size() > 0xFFFF) return {};
  const unsigned char head[3] = {0x99, static_cast<unsigned char>(body.size() >> 8),
                                 static_cast<unsigned char>(body.size() & 0xFF)};
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha1(), nullptr) == 1 &&
                  EVP_DigestUpdate(ctx, head, 3) == 1 &&
                  EVP_DigestUpdate(ctx, body.data(), body.size()) == 1 &&
                  EVP_DigestFinal_ex(ctx, md, &len) == 1 && len == 20;
  EVP_MD_CTX_free(ctx);
  return ok ? std::string(reinterpret_cast<const char*>(md), 20) : std::string();
}

}  // namespace

std::string v4_fingerprint(std::string_view body) { return hex_upper(fingerprint_raw(body)); }

std::string SignatureFacts::issuer_keyid_hex() const {
  if (issuer_fpr.size() == 20) return hex_upper(std::string_view(issuer_fpr).substr(12));
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
  if (b.size() < 6 || b[0] != 4) return std::nullopt;
  f.version = 4;
  f.type = static_cast<std::uint8_t>(b[1]);
  const std::size_t hashed = be(b, 4, 2);
  if (6 + hashed + 2 > b.size()) return std::nullopt;
  const std::size_t unhashed = be(b, 6 + hashed, 2);
  if (8 + hashed + unhashed + 2 + 2 > b.size()) return std::nullopt;  // left16 and one MPI
  bool hashed_area = true;
  auto look = [&](int t, std::string_view d) {
    if (t == 2 && d.size() == 4 && hashed_area) f.created = be(d, 0, 4);
    if (t == 33 && d.size() == 21 && d[0] == 4) f.issuer_fpr = std::string(d.substr(1));
    if (t == 16 && d.size() == 8) f.issuer_keyid = std::string(d);
  };
  if (!each_subpacket(b.substr(6, hashed), look)) return std::nullopt;
  hashed_area = false;
  if (!each_subpacket(b.substr(8 + hashed, unhashed), look)) return std::nullopt;
  return f;
}

FilterOutcome filter_keys(std::string_view binary, const config::KeysConfig& limits,
                          std::size_t trusted_prefix, std::size_t max_keys) {
  FilterOutcome out;
  std::vector<Packet> packets;
  // Frame packet by packet so that a damaged tail loses only the tail.
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

  std::deque<Build> builds;  // stable addresses: `cur` points into it
  std::unordered_map<std::string_view, std::size_t> build_at;  // primary body -> index
  Build* cur = nullptr;
  Component* comp = nullptr;
  Slot slot = Slot::direct;
  bool skipping = false;  // inside a refused key or a dropped component: its signatures go too
  auto drop = [&](const char* why) { ++out.dropped[why]; };
  auto trusted = [&](const Packet& p) {
    return static_cast<std::size_t>(p.whole.data() - binary.data()) < trusted_prefix;
  };

  for (const Packet& p : packets) {
    switch (p.tag) {
      case tag::secret_key:
      case tag::secret_subkey:
        out.secret_material = true;
        return out;  // nothing of it is looked at further
      case tag::public_key: {
        skipping = false;
        comp = nullptr;
        slot = Slot::direct;
        if (auto it = build_at.find(p.body); it != build_at.end()) {
          cur = &builds[it->second];  // another copy of a key already seen: fold it in
          comp = &cur->direct;
          skipping = cur->refused.has_value();
          continue;
        }
        if (out.primaries == max_keys) {
          ++out.primaries;  // the caller refuses the count; the rest is not read
          return out;
        }
        ++out.primaries;
        builds.emplace_back();
        cur = &builds.back();
        build_at.emplace(p.body, builds.size() - 1);
        cur->primary = p.whole;
        cur->fpr_raw = fingerprint_raw(p.body);
        cur->fingerprint = hex_upper(cur->fpr_raw);
        comp = &cur->direct;
        if (cur->fingerprint.empty()) {
          cur->refused = RejectedKey{"", GPG_ERR_UNKNOWN_VERSION, "only v4 keys are supported"};
        } else if (p.whole.size() > limits.max_packet_bytes) {
          cur->refused = RejectedKey{cur->fingerprint, GPG_ERR_TOO_LARGE,
                                     "the primary key packet is over max_packet_bytes (" +
                                         std::to_string(limits.max_packet_bytes) + ")"};
        }
        skipping = cur->refused.has_value();
        continue;
      }
      case tag::user_id:
      case tag::user_attribute:
      case tag::public_subkey: {
        if (!cur) {
          if (p.tag == tag::public_subkey) {
            out.rejected.push_back({v4_fingerprint(p.body), GPG_ERR_NO_PUBKEY,
                                    "subkey without its primary key (upload the whole key)"});
          } else {
            drop("other_packet");
          }
          skipping = true;
          continue;
        }
        if (cur->refused) continue;
        const bool is_sub = p.tag == tag::public_subkey;
        slot = is_sub ? Slot::subkey : Slot::user;
        skipping = false;
        if (p.whole.size() > limits.max_packet_bytes) {
          drop(is_sub ? "oversize_subkey" : "oversize_user_id");
          if (!is_sub) {
            ++cur->oversize_user_ids;
            cur->largest_oversize_user_id =
                std::max(cur->largest_oversize_user_id, p.whole.size());
          }
          skipping = true;
          continue;
        }
        auto& index = is_sub ? cur->subkey_at : cur->user_at;
        auto& list = is_sub ? cur->subkeys : cur->users;
        auto [it, fresh] = index.try_emplace(p.body, list.size());
        if (fresh) {
          list.emplace_back();
          list.back().whole = p.whole;
          list.back().tag = p.tag;
        }
        comp = &list[it->second];
        continue;
      }
      case tag::signature: {
        if (!cur) {  // before any key: a bare revocation certificate, perhaps
          if (!skipping) out.leading_signatures += p.whole;
          continue;
        }
        if (skipping || !comp) continue;
        if (p.whole.size() > limits.max_sig_packet_bytes) {
          drop("oversize_signature");
          continue;
        }
        auto facts = read_signature(p.body);
        if (!facts) {
          drop("malformed_signature");
          continue;
        }
        const bool self =
            (!facts->issuer_fpr.empty() && facts->issuer_fpr == cur->fpr_raw) ||
            (facts->issuer_fpr.empty() && facts->issuer_keyid.size() == 8 &&
             std::string_view(cur->fpr_raw).substr(12) == facts->issuer_keyid);
        const std::uint8_t t = facts->type;
        bool allowed = false;
        switch (slot) {
          case Slot::direct:
            allowed = (self && t == sigtype::direct_key) || t == sigtype::key_revocation;
            break;
          case Slot::user:
            allowed = (t >= sigtype::generic_cert && t <= sigtype::positive_cert) ||
                      t == sigtype::cert_revocation;
            break;
          case Slot::subkey:
            allowed = self && (t == sigtype::subkey_binding || t == sigtype::subkey_revocation);
            break;
        }
        if (!allowed) {
          drop("misplaced_signature");
          continue;
        }
        if (!comp->seen.insert(p.body).second) continue;  // the same signature again: folded
        cur->third_party += !self;
        comp->sigs.push_back(Sig{p.whole, std::move(*facts), self, trusted(p)});
        continue;
      }
      default:
        drop("other_packet");  // trust, marker, literal data, ...: nothing a key needs
        continue;
    }
  }

  for (Build& b : builds) {
    if (b.refused) {
      out.rejected.push_back(std::move(*b.refused));
      continue;
    }
    auto over = [&](std::size_t n, std::uint64_t limit, const char* what, const char* key) {
      if (n <= limit) return false;
      out.rejected.push_back({b.fingerprint, GPG_ERR_TOO_LARGE,
                              "key has " + std::to_string(n) + " " + what + ", over " + key + " (" +
                                  std::to_string(limit) + ")"});
      return true;
    };
    if (over(b.users.size(), limits.max_user_ids, "user IDs", "max_user_ids") ||
        over(b.subkeys.size(), limits.max_subkeys, "subkeys", "max_subkeys")) {
      continue;
    }
    std::vector<Component*> all{&b.direct};
    for (auto& c : b.users) all.push_back(&c);
    for (auto& c : b.subkeys) all.push_back(&c);

    // Third-party policy, counted over the whole key.
    using config::ThirdPartySigs;
    bool strip = limits.third_party_sigs == ThirdPartySigs::strip;
    if (limits.third_party_sigs == ThirdPartySigs::strip_if_oversize) {
      std::size_t bytes = b.primary.size();
      for (auto* c : all) {
        bytes += c->whole.size();
        for (const auto& s : c->sigs) bytes += s.whole.size();
      }
      strip = b.third_party > limits.max_third_party_sigs || bytes > limits.max_key_bytes;
    }
    // Budgets for new self-issued signatures: revocations first, then the newest.
    std::size_t new_self = 0;
    for (auto* c : all) {
      std::vector<Sig*> fresh;
      for (auto& s : c->sigs) {
        if (!s.self) {
          if (strip) {
            s.keep = false;
            drop("third_party_signature");
          }
        } else if (!s.trusted) {
          fresh.push_back(&s);
        }
      }
      std::stable_sort(fresh.begin(), fresh.end(), [](const Sig* x, const Sig* y) {
        const bool rx = is_revocation(x->facts.type), ry = is_revocation(y->facts.type);
        if (rx != ry) return rx;
        return x->facts.created > y->facts.created;
      });
      std::size_t revocations = 0, others = 0;
      for (Sig* s : fresh) {
        const bool rev = is_revocation(s->facts.type);
        std::size_t& used = rev ? revocations : others;
        const std::size_t cap = rev ? kMaxNewRevocationsPerComponent : kMaxNewSelfSigsPerComponent;
        if (used == cap || new_self == kMaxNewSelfSigsPerKey) {
          s->keep = false;
          drop("excess_signature");
          continue;
        }
        ++used;
        ++new_self;
      }
    }

    FilteredKey k;
    k.fingerprint = b.fingerprint;
    k.oversize_user_ids = b.oversize_user_ids;
    k.largest_oversize_user_id = b.largest_oversize_user_id;
    k.packets += b.primary;
    for (auto* c : all) {
      k.packets += c->whole;
      for (const auto& s : c->sigs) {
        if (s.keep) k.packets += s.whole;
      }
    }
    out.keys.push_back(std::move(k));
  }
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
    // v4 revocations only: of the key, of a subkey, of a certification.
    if (!facts || facts->version != 4 ||
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
