#include "hkp/key.hpp"

#include <algorithm>

namespace hkpgw::hkp {

std::string keyid_of(const std::string& fingerprint) {
  return fingerprint.size() == 40 ? fingerprint.substr(24) : fingerprint.substr(0, 16);
}

std::string KeyInfo::keyid() const { return keyid_of(fingerprint); }

bool KeyInfo::matches(const Search& search) const {
  auto id_matches = [&](const std::string& fpr) {
    switch (search.kind) {
      case SearchKind::fingerprint: return fpr == search.value;
      case SearchKind::long_keyid: return keyid_of(fpr) == search.value;
      case SearchKind::short_keyid: return keyid_of(fpr).ends_with(search.value);
      default: return false;
    }
  };
  if (search.is_key_id()) {
    return id_matches(fingerprint) ||
           std::any_of(subkeys.begin(), subkeys.end(),
                       [&](const Subkey& s) { return id_matches(s.fingerprint); });
  }
  if (search.kind == SearchKind::email) {
    return std::any_of(uids.begin(), uids.end(),
                       [&](const UserId& u) { return u.email == search.value; });
  }
  const std::string needle = ascii_lower(search.value);
  return std::any_of(uids.begin(), uids.end(), [&](const UserId& u) {
    return ascii_lower(u.text).find(needle) != std::string::npos;
  });
}

std::vector<std::pair<std::string, bool>> addresses_of(const KeyInfo& info) {
  std::vector<std::pair<std::string, bool>> out;
  for (const auto& uid : info.uids) {
    if (uid.email.empty()) continue;
    auto same = [&](const auto& a) { return a.first == uid.email; };
    auto at = std::find_if(out.begin(), out.end(), same);
    if (at == out.end()) out.emplace_back(uid.email, uid.revoked);
    else at->second = at->second && uid.revoked;
  }
  return out;
}

std::uint8_t algo_number(std::string_view name) {
  if (name == "RSA") return 1;
  if (name == "ELGAMAL") return 16;
  if (name == "DSA") return 17;
  if (name == "ECDH") return 18;
  if (name == "ECDSA") return 19;
  if (name == "EDDSA") return 22;
  if (name == "SM2") return 99;
  return 0;
}

const char* algo_display(std::uint8_t algo) {
  switch (algo) {
    case 1:
    case 2:
    case 3: return "RSA";
    case 16: return "ELG";
    case 17: return "DSA";
    case 18: return "ECDH";
    case 19: return "ECDSA";
    case 22: return "EdDSA";
    case 25: return "X25519";
    case 26: return "X448";
    case 27: return "Ed25519";
    case 28: return "Ed448";
    case 35: return "ML-KEM-768+X25519";
    case 36: return "ML-KEM-1024+X448";
    default: return "unknown";
  }
}

}  // namespace hkpgw::hkp
