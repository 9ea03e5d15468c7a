#include "hkp/usage.hpp"

#include "hkp/key_filter.hpp"
#include "hkp/modern.hpp"
#include "hkp/packets.hpp"

namespace hkpgw::hkp {

namespace {

constexpr int kCreationTime = 2, kKeyFlags = 27;

std::uint32_t created(const modern::Signature& sig) {
  const auto t = modern::find_subpacket(sig, kCreationTime);
  if (!t || t->size() != 4) return 0;
  std::uint32_t v = 0;
  for (const char c : *t) v = v << 8 | static_cast<unsigned char>(c);
  return v;
}

}  // namespace

std::map<std::string, std::uint8_t> key_flags(std::string_view packets) {
  std::map<std::string, std::uint8_t> out;
  const auto split = split_packets(packets);
  if (!split) return out;
  std::map<std::string, std::uint32_t> newest;  // fingerprint → the time of the flags kept
  std::string primary, current;                 // fingerprints
  for (const auto& p : *split) {
    if (p.tag == tag::public_key || p.tag == tag::public_subkey) {
      current = key_fingerprint(p.body);
      if (current.size() != 40 && current.size() != 64) current.clear();  // v3, unreadable
      if (p.tag == tag::public_key) primary = current;
      continue;
    }
    if (p.tag != tag::signature || current.empty()) continue;
    const auto sig = modern::parse_signature(p.body);
    if (!sig) continue;
    // The primary key's own signatures (on itself or a user ID), or a subkey's binding; third
    // parties' certifications say nothing about what the key is for.
    const bool self = sig->type == 0x1f || (sig->type >= 0x10 && sig->type <= 0x13);
    const bool binding = sig->type == 0x18;
    if (!(current == primary ? self : binding)) continue;
    if (self) {
      const std::string issuer = modern::issuer_fingerprint_hex(*sig);
      if (!issuer.empty() && issuer != primary) continue;
    }
    const auto flags = modern::find_subpacket(*sig, kKeyFlags);
    if (!flags || flags->empty()) continue;
    const std::uint32_t when = created(*sig);
    auto at = newest.find(current);
    if (at != newest.end() && at->second > when) continue;
    newest[current] = when;
    out[current] = static_cast<std::uint8_t>((*flags)[0]);
  }
  return out;
}

std::string usage_words(std::uint8_t flags) {
  std::string out;
  const auto add = [&out](const char* word) {
    out += (out.empty() ? "" : ", ") + std::string(word);
  };
  if (flags & key_flag::certify) add("certify");
  if (flags & key_flag::sign) add("sign");
  if (flags & (key_flag::encrypt_communications | key_flag::encrypt_storage)) add("encrypt");
  if (flags & key_flag::authenticate) add("authenticate");
  return out;
}

}  // namespace hkpgw::hkp
