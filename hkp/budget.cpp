#include "hkp/budget.hpp"

#include "hkp/lookup.hpp"

namespace hkpgw::hkp {

namespace {

bool is_hex(char c) {
  const unsigned char u = static_cast<unsigned char>(c) | 0x20;  // ASCII letters to lower case
  return (c >= '0' && c <= '9') || (u >= 'a' && u <= 'f');
}

// A key ID or fingerprint as searches write them: 0x or not, hex, spaces (raw, %20 or +).
bool looks_like_key_id(std::string_view v) {
  if (v.starts_with("0x") || v.starts_with("0X")) v.remove_prefix(2);
  std::size_t hex = 0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    const char c = v[i];
    if (is_hex(c)) {
      ++hex;
    } else if (c == '%' && v.substr(i + 1, 2) == "20") {
      i += 2;
    } else if (c != '+' && c != ' ') {
      return false;
    }
  }
  return hex >= 8;
}

// `key` is `name` (lower case), in any case.
bool is_name(std::string_view key, std::string_view name) {
  if (key.size() != name.size()) return false;
  for (std::size_t i = 0; i < key.size(); ++i) {
    if ((static_cast<unsigned char>(key[i]) | 0x20) != static_cast<unsigned char>(name[i])) {
      return false;
    }
  }
  return true;
}

// The raw values of op and search in a query string ("" when absent), in one pass. Names are
// read as parse_lookup reads them, percent-decoded (`se%61rch=` is search= there, and spent no
// budget here when names were compared raw); values stay raw, which can only charge more.
void op_and_search(std::string_view query, std::string_view& op, std::string_view& search) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view part = query.substr(0, amp);
    const auto eq = part.find('=');
    if (eq != std::string_view::npos) {
      std::string_view key = part.substr(0, eq);
      std::string decoded;  // only for the rare name with an escape in it
      if (key.find_first_of("%+") != std::string_view::npos) {
        decoded = percent_decode(key, true);
        key = decoded;
      }
      if (is_name(key, "op")) op = part.substr(eq + 1);
      if (is_name(key, "search")) search = part.substr(eq + 1);
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
}

}  // namespace

const char* budget_name(Budget b) {
  switch (b) {
    case Budget::key_lookup: return "key_lookups";
    case Budget::search: return "searches";
    case Budget::submission: return "submissions";
    case Budget::none: break;
  }
  return "none";
}

Budget lookup_budget(std::string_view query) {
  std::string_view op, search;
  op_and_search(query, op, search);
  if (op.empty() || is_name(op, "stats") || search.empty()) return Budget::none;
  return looks_like_key_id(search) ? Budget::key_lookup : Budget::search;
}

Budget vks_budget(std::string_view rest) {
  if (rest.starts_with("by-email/")) return Budget::search;
  return rest.starts_with("by-") ? Budget::key_lookup : Budget::none;
}

Budget v2_budget(std::string_view rest) {
  if (rest.starts_with("certs/by-identity/")) return Budget::search;
  if (rest.starts_with("index/")) {
    return looks_like_key_id(rest.substr(6)) ? Budget::key_lookup : Budget::search;
  }
  return rest.starts_with("certs/by-") ? Budget::key_lookup : Budget::none;
}

}  // namespace hkpgw::hkp
