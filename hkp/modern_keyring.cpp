#include "hkp/modern_keyring.hpp"

#include <algorithm>
#include <optional>
#include <vector>

#include "hkp/armor.hpp"
#include "hkp/lookup.hpp"
#include "hkp/modern.hpp"
#include "hkp/packets.hpp"
#include "hkp/text.hpp"

namespace hkpgw::hkp {
namespace {

namespace sigtype {
constexpr int subkey_binding = 0x18, back_signature = 0x19, direct_key = 0x1F;
constexpr int key_revocation = 0x20, subkey_revocation = 0x28, cert_revocation = 0x30;
}  // namespace sigtype

bool is_certification(int t) { return (t >= 0x10 && t <= 0x13) || t == sigtype::cert_revocation; }

std::uint32_t be32(std::string_view s) {
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < 4 && i < s.size(); ++i) v = v << 8 | static_cast<unsigned char>(s[i]);
  return v;
}

// One signature as this verifier sees it: its packet, what the filter reads of it (issuer,
// type, date, designations) and its parsed fields for the mathematics.
struct Sig {
  Packet packet;
  std::optional<SignatureFacts> facts;  // none: it does not frame
  std::optional<modern::Signature> parsed;
  bool self = false;
  bool keep = false;
};

// The primary key's slot (direct-key signatures and revocations), a user ID or attribute, or a
// subkey, with the signatures standing after it.
struct Part {
  std::optional<Packet> packet;  // none for the primary key's slot
  std::optional<modern::Key> subkey;
  bool readable = true;  // false: a subkey hkp/modern cannot read
  std::vector<Sig> sigs;
  bool kept() const {
    return readable &&
           std::any_of(sigs.begin(), sigs.end(), [](const Sig& s) { return s.self && s.keep; });
  }
};

bool is_certifier(const config::KeysConfig& limits, const SignatureFacts& f) {
  return std::any_of(limits.certifiers.begin(), limits.certifiers.end(),
                     [&](const std::string& hex) { return issued_by(f, unhex(hex)); });
}

// The operator's certifiers whose keys hkp/modern reads, so their certifications on a modern
// key can be proven.
std::vector<modern::Key> modern_certifiers(const config::KeysConfig& limits) {
  std::vector<modern::Key> out;
  if (limits.certifier_key_data.empty()) return out;
  const auto decoded = dearmor(limits.certifier_key_data);
  const auto packets = decoded ? split_packets(decoded->binary) : std::nullopt;
  if (!packets) return out;
  for (const Packet& p : *packets) {
    if (p.tag != tag::public_key) continue;
    auto k = modern::parse_key(p.body);
    if (k && std::find(limits.certifiers.begin(), limits.certifiers.end(),
                       modern::fingerprint_hex(*k)) != limits.certifiers.end()) {
      out.push_back(std::move(*k));
    }
  }
  return out;
}

// Whether a signing subkey's binding carries a back-signature by the subkey that verifies
// (RFC 9580 section 5.2.3.34: an embedded primary key binding signature); true for a subkey
// that can neither sign nor certify, which makes none.
bool back_signed(const modern::Key& primary, const modern::Signature& binding,
                 const modern::Key& subkey) {
  const auto flags = modern::find_subpacket(binding, 27);  // key flags
  const bool signs = flags && !flags->empty() && (static_cast<unsigned char>((*flags)[0]) & 0x03);
  if (!signs) return true;
  const auto embedded = modern::find_subpacket(binding, 32, false);
  const auto back = embedded ? modern::parse_signature(*embedded) : std::nullopt;
  return back && modern::verify_back_signature(subkey, *back, primary);
}

// Whether a self-signature verifies where it stands.
bool verifies(const modern::Key& primary, const Part& part, const Sig& s) {
  if (!s.parsed) return false;
  const modern::Signature& sig = *s.parsed;
  if (!part.packet) return modern::verify_over_key(primary, sig, primary);
  if (part.subkey) {
    return modern::verify_subkey_binding(primary, sig, *part.subkey) &&
           (sig.type != sigtype::subkey_binding || back_signed(primary, sig, *part.subkey));
  }
  return modern::verify_certification(primary, sig, primary, part.packet->tag, part.packet->body);
}

// The key expiration time (seconds after creation) a signature carries; 0 for none.
std::int64_t expiry_of(const Sig& s) {
  const auto sp = s.parsed ? modern::find_subpacket(*s.parsed, 9) : std::nullopt;
  return sp && sp->size() == 4 ? be32(*sp) : 0;
}

// The newest kept self-signature of `types` in `part`, or none.
template <class Pred>
const Sig* newest(const Part& part, Pred types) {
  const Sig* best = nullptr;
  for (const Sig& s : part.sigs) {
    if (s.self && s.keep && types(s.facts->type) &&
        (!best || s.facts->created > best->facts->created)) {
      best = &s;
    }
  }
  return best;
}

bool revoked_by(const Part& part, int type) {
  return std::any_of(part.sigs.begin(), part.sigs.end(),
                     [&](const Sig& s) { return s.self && s.keep && s.facts->type == type; });
}

// What a client lists of the cleaned key: the primary key's facts (its expiry from the newest
// direct-key signature, else the newest certification, a primary user ID's first), the user
// IDs (not attributes) and the subkeys, each with its revocation state.
KeyInfo facts_of(const modern::Key& primary, const std::vector<Part>& parts) {
  KeyInfo info;
  info.fingerprint = modern::fingerprint_hex(primary);
  info.version = static_cast<std::uint8_t>(primary.version);
  info.algo = static_cast<std::uint8_t>(primary.algorithm);
  info.bits = modern::algorithm_bits(primary.algorithm);
  info.created = primary.created;
  info.revoked = revoked_by(parts.front(), sigtype::key_revocation);
  const Sig* expiry = newest(parts.front(), [](int t) { return t == sigtype::direct_key; });
  const Sig* newest_cert = nullptr;
  bool newest_is_primary = false;
  for (const Part& part : parts) {
    if (!part.packet || part.subkey || !part.kept()) continue;
    const Sig* cert = newest(part, [](int t) { return t >= 0x10 && t <= 0x13; });
    if (cert) {
      const auto flag = cert->parsed ? modern::find_subpacket(*cert->parsed, 25) : std::nullopt;
      const bool primary_uid = flag && !flag->empty() && (*flag)[0] != 0;
      if (!newest_cert || (primary_uid && !newest_is_primary) ||
          (primary_uid == newest_is_primary &&
           cert->facts->created > newest_cert->facts->created)) {
        newest_cert = cert;
        newest_is_primary = primary_uid;
      }
    }
    if (part.packet->tag != tag::user_id) continue;
    UserId u;
    u.text = std::string(part.packet->body);
    u.email = extract_email(u.text).value_or("");
    u.revoked = revoked_by(part, sigtype::cert_revocation);
    for (const Sig& s : part.sigs) {
      if (s.self && s.keep) u.created = std::max<std::int64_t>(u.created, s.facts->created);
    }
    info.uids.push_back(std::move(u));
  }
  if (!expiry || expiry_of(*expiry) == 0) expiry = newest_cert ? newest_cert : expiry;
  if (expiry && expiry_of(*expiry) != 0) info.expires = info.created + expiry_of(*expiry);
  for (const Part& part : parts) {
    if (!part.subkey || !part.kept()) continue;
    Subkey s;
    s.fingerprint = modern::fingerprint_hex(*part.subkey);
    s.algo = static_cast<std::uint8_t>(part.subkey->algorithm);
    s.bits = modern::algorithm_bits(part.subkey->algorithm);
    s.created = part.subkey->created;
    if (const Sig* b = newest(part, [](int t) { return t == sigtype::subkey_binding; })) {
      if (expiry_of(*b) != 0) s.expires = s.created + expiry_of(*b);
    }
    s.revoked = revoked_by(part, sigtype::subkey_revocation);
    info.subkeys.push_back(std::move(s));
  }
  return info;
}

}  // namespace

bool is_modern_key(std::string_view packets) {
  const auto first = first_packet(packets);
  return first && first->tag == tag::public_key && modern::parse_key(first->body).has_value();
}

std::variant<ParsedKey, RejectedKey> clean_modern_key(const FilteredKey& fk,
                                                      const config::KeysConfig& limits,
                                                      std::map<std::string, std::size_t>& dropped) {
  const auto packets = split_packets(fk.packets);
  const auto primary =
      packets && !packets->empty() ? modern::parse_key(packets->front().body) : std::nullopt;
  if (!primary) {
    return RejectedKey{fk.fingerprint, GPG_ERR_INV_PACKET, "the key packets cannot be read"};
  }
  const std::string& fpr_raw = primary->fingerprint;
  // The parts in the order filter_keys wrote them: the primary key's slot, then each component.
  std::vector<Part> parts(1);
  for (std::size_t i = 1; i < packets->size(); ++i) {
    const Packet& p = (*packets)[i];
    if (p.tag != tag::signature) {
      Part part;
      part.packet = p;
      if (p.tag == tag::public_subkey) {
        // One hkp/modern cannot read (a classic v4 subkey under a v6 key) is not provably bound.
        part.subkey = modern::parse_key(p.body);
        part.readable = part.subkey.has_value();
      }
      parts.push_back(std::move(part));
      continue;
    }
    Sig s{p, read_signature(p.body), modern::parse_signature(p.body)};
    if (s.facts) {
      s.self = issued_by(*s.facts, fpr_raw);
    }
    parts.back().sigs.push_back(std::move(s));
  }

  const std::vector<modern::Key> certifiers = modern_certifiers(limits);
  std::size_t invalid = 0;
  for (Part& part : parts) {
    if (!part.readable) continue;
    for (Sig& s : part.sigs) {
      if (!s.facts) {
        s.keep = false;
      } else if (s.self) {
        s.keep = verifies(*primary, part, s);
      } else if (part.packet && !part.subkey && is_certification(s.facts->type) &&
                 is_certifier(limits, *s.facts)) {
        // A configured certifier's certification: proven with the certifier's key, or gone.
        s.keep = s.parsed && std::any_of(certifiers.begin(), certifiers.end(), [&](const auto& c) {
                   return modern::verify_certification(c, *s.parsed, *primary, part.packet->tag,
                                                       part.packet->body);
                 });
      } else {
        s.keep = true;  // placed and chosen by filter_keys' third-party policy; not checkable
      }
      invalid += !s.keep;
    }
  }
  // A designated revoker's revocation stays only while a verified self-signature names it.
  std::vector<std::string> revokers;
  for (const Part& part : parts) {
    for (const Sig& s : part.sigs) {
      if (s.self && s.keep) {
        revokers.insert(revokers.end(), s.facts->revokers.begin(), s.facts->revokers.end());
      }
    }
  }
  for (Sig& s : parts.front().sigs) {
    if (s.keep && !s.self && s.facts->type == sigtype::key_revocation &&
        std::none_of(revokers.begin(), revokers.end(),
                     [&](const std::string& r) { return issued_by(*s.facts, r); })) {
      s.keep = false;
      ++invalid;
    }
  }
  if (invalid) dropped["invalid_signature"] += invalid;

  const bool certified = std::any_of(parts.begin(), parts.end(),
                                     [](const Part& part) { return !part.subkey && part.kept(); });
  if (!certified) return without_self_signature(fk, limits);
  ParsedKey pk;
  pk.packets = std::string(packets->front().whole);
  std::vector<Part> kept;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    Part& part = parts[i];
    if (i > 0 && !part.kept()) {
      ++dropped[part.packet->tag == tag::public_subkey ? "invalid_subkey" : "invalid_user_id"];
      continue;
    }
    if (part.packet) pk.packets += part.packet->whole;
    for (const Sig& s : part.sigs) {
      if (s.keep) pk.packets += s.packet.whole;
    }
    kept.push_back(std::move(part));
  }
  if (pk.packets.size() > limits.max_key_bytes) {
    return RejectedKey{fk.fingerprint, GPG_ERR_TOO_LARGE,
                       "key is " + std::to_string(pk.packets.size()) +
                           " bytes, over max_key_bytes (" + std::to_string(limits.max_key_bytes) +
                           ")"};
  }
  pk.info = facts_of(*primary, kept);
  return pk;
}

}  // namespace hkpgw::hkp
