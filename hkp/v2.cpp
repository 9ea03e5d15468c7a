#include "hkp/v2.hpp"

#include <algorithm>
#include <array>
#include <cctype>

#include "hkp/text.hpp"

namespace hkpgw::hkp {

namespace {

struct Category {
  std::string_view name;     // after /pks/v2/
  std::string_view methods;  // for OPTIONS
};
constexpr std::array<Category, 5> kCategories{{
    {"certs/by-vfingerprint", "GET, HEAD, OPTIONS"},
    {"certs/by-keyid", "GET, HEAD, OPTIONS"},
    {"certs/by-identity", "GET, HEAD, OPTIONS"},
    {"index", "GET, HEAD, OPTIONS"},
    {"certs", "POST, OPTIONS"},
}};

// The category a path names and the identifier after it ("" when absent), or no category.
struct Split {
  const Category* category = nullptr;
  std::string_view identifier;
};

Split split(std::string_view path) {
  if (!path.starts_with(kV2Prefix)) return {};
  std::string_view rest = path.substr(kV2Prefix.size());
  for (const Category& c : kCategories) {
    if (!rest.starts_with(c.name)) continue;
    const std::string_view after = rest.substr(c.name.size());
    if (after.empty()) return {&c, {}};
    if (after.front() == '/') return {&c, after.substr(1)};
  }
  return {};
}

bool all_hex(std::string_view s) {
  for (const char c : s) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

std::string shown(std::string_view s) { return "\"" + std::string(s.substr(0, 80)) + "\""; }

Problem not_found(std::string what) { return Problem{404, GPG_ERR_NOT_FOUND, std::move(what)}; }

Result<Search> by_vfingerprint(std::string_view id) {
  // Hockeypuck routes the version as a path component of its own: 4/<fp> or 04/<fp>.
  std::string joined;
  if (const auto slash = id.find('/'); slash != std::string_view::npos) {
    std::string_view version = id.substr(0, slash);
    if (version.size() == 1) joined = "0";
    joined += std::string(version) + std::string(id.substr(slash + 1));
    id = joined;
  }
  const std::string shape =
      "a versioned fingerprint is its version octet and the fingerprint, "
      "in hex without 0x (04 and 40 digits for v4, 06 and 64 for v6)";
  if (id.size() < 2 || !all_hex(id)) {
    return not_found("not a versioned fingerprint: " + shown(id) + "; " + shape);
  }
  const std::string_view version = id.substr(0, 2), fpr = id.substr(2);
  if (version == "05" && fpr.size() == 64) {
    return not_found(
        "a v5 (LibrePGP) fingerprint: OpenPGP (RFC 9580) keys are v4 or v6, and "
        "this gateway serves no v5 key");
  }
  if (!(version == "04" && fpr.size() == 40) && !(version == "06" && fpr.size() == 64)) {
    return not_found("not a v4 or v6 versioned fingerprint: " + shown(id) + "; " + shape);
  }
  return Search{SearchKind::fingerprint, upper_ascii(fpr)};
}

Result<Search> by_keyid(std::string_view id) {
  if (id.size() != 16 || !all_hex(id)) {
    return not_found("not a key ID: " + shown(id) + "; a key ID is 16 hex digits without 0x");
  }
  return Search{SearchKind::long_keyid, upper_ascii(id)};
}

Result<Search> by_identity(std::string_view raw) {
  const std::string decoded = percent_decode(raw, false);
  std::string_view id = trim(decoded);
  // "<alice@example.org>" is the address in angle brackets, as a user ID carries it.
  if (id.size() > 2 && id.front() == '<' && id.back() == '>') id = id.substr(1, id.size() - 2);
  const auto at = id.find('@');
  if (id.size() > 512) return not_found("an identity of more than 512 bytes");
  if (at == std::string_view::npos || id.find_first_of(" <>\t\r\n") != std::string_view::npos) {
    return Problem{501, GPG_ERR_NOT_IMPLEMENTED,
                   "identities are looked up by address only here: " + shown(id) +
                       " is not an email address"};
  }
  if (at == 0 || at + 1 == id.size() || id.find('@', at + 1) != std::string_view::npos) {
    return not_found("not an email address: " + shown(id));
  }
  return Search{SearchKind::email, ascii_lower(id)};
}

}  // namespace

Result<LookupRequest> parse_v2_lookup(std::string_view path) {
  const Split s = split(path);
  if (!s.category || s.category->name == "certs") {
    return Problem{501, GPG_ERR_NOT_IMPLEMENTED,
                   "HKP v2 category not served here: this gateway answers certs/by-vfingerprint, "
                   "certs/by-keyid, certs/by-identity and index"};
  }
  if (s.identifier.empty()) {
    return Problem{403, GPG_ERR_INV_REQUEST,
                   "a lookup names what it looks for: /pks/v2/" + std::string(s.category->name) +
                       "/<identifier>"};
  }
  LookupRequest req;
  req.op = Op::get;
  req.machine_readable = true;
  req.v2 = true;
  Result<Search> search = Problem{};
  if (s.category->name == "certs/by-vfingerprint") {
    search = by_vfingerprint(s.identifier);
  } else if (s.category->name == "certs/by-keyid") {
    search = by_keyid(s.identifier);
  } else if (s.category->name == "certs/by-identity") {
    search = by_identity(s.identifier);
  } else {  // index: any of the three
    req.op = Op::index;
    const std::string_view id = s.identifier;
    if (id.size() == 16 && all_hex(id)) {
      search = by_keyid(id);
    } else if (all_hex(id) && id.size() > 40) {
      search = by_vfingerprint(id);
    } else {
      search = by_identity(id);
    }
  }
  if (!search) return search.error();
  req.search = std::move(*search);
  return req;
}

std::string_view v2_allowed_methods(std::string_view path) {
  const Split s = split(path);
  return s.category ? s.category->methods : std::string_view();
}

std::vector<std::string> parse_prefix_log(std::string_view body, std::size_t max_prefixes) {
  std::vector<std::string> out;
  while (!body.empty() && out.size() < max_prefixes) {
    const auto nl = body.find('\n');
    std::string_view line = body.substr(0, nl);
    body.remove_prefix(nl == std::string_view::npos ? body.size() : nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() < 4 || line.size() > 64) continue;
    std::string prefix;
    prefix.reserve(line.size());
    for (const char c : line) {
      if (!std::isxdigit(static_cast<unsigned char>(c))) break;
      prefix.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    }
    if (prefix.size() == line.size()) out.push_back(std::move(prefix));
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace hkpgw::hkp
