#include "hkp/lookup.hpp"

#include <algorithm>
#include <cctype>

#include "hkp/text.hpp"

namespace hkpgw::hkp {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// `s` equals `lower` (lower-case ASCII) ignoring the case of ASCII letters.
bool equals_lower(std::string_view s, std::string_view lower) {
  if (s.size() != lower.size()) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i] >= 'A' && s[i] <= 'Z' ? static_cast<char>(s[i] - 'A' + 'a') : s[i];
    if (c != lower[i]) return false;
  }
  return true;
}

// A query-string part as text: decoded only when it has something to decode, so the common
// part ("op", "get", "mr", a fingerprint) is not copied. Neither copyable nor movable: the view
// may point into `decoded_`.
class QueryText {
 public:
  QueryText(std::string_view raw, bool plus_is_space) : text_(raw) {
    if (raw.find_first_of(plus_is_space ? std::string_view("%+") : std::string_view("%")) !=
        std::string_view::npos) {
      decoded_ = percent_decode(raw, plus_is_space);
      text_ = decoded_;
    }
  }
  QueryText(const QueryText&) = delete;
  QueryText& operator=(const QueryText&) = delete;
  std::string_view view() const { return text_; }

 private:
  std::string decoded_;
  std::string_view text_;
};

// Calls fn(raw_key, raw_value) for each non-empty &-separated part of a query string.
template <typename Fn>
void for_each_part(std::string_view query, Fn&& fn) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (part.empty()) continue;
    const auto eq = part.find('=');
    fn(part.substr(0, eq), eq == std::string_view::npos ? std::string_view() : part.substr(eq + 1));
  }
}

// Hex key id or fingerprint, "0x" optional. Returns nullopt when the text is not meant as hex
// (then it is an email or text search); a Problem when it is meant as hex but is malformed.
std::optional<Result<Search>> parse_hex(std::string_view s) {
  const bool prefixed = s.size() >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
  std::string hex;
  hex.reserve(s.size());
  for (char c : prefixed ? s.substr(2) : s) {
    if (c == ' ') continue;  // "DEAD BEEF ..." as printed by gpg
    if (hex_value(c) < 0) {
      if (prefixed) {
        return Result<Search>(problem(400, GPG_ERR_INV_USER_ID,
                                      "malformed key ID or fingerprint \"" + std::string(s) +
                                          "\" (expected 0x and 16, 40 or 64 hex digits)"));
      }
      return std::nullopt;
    }
    hex.push_back(upper_ascii(c));
  }
  switch (hex.size()) {
    case 8: return Result<Search>(Search{SearchKind::short_keyid, std::move(hex)});
    case 16: return Result<Search>(Search{SearchKind::long_keyid, std::move(hex)});
    case 40:  // v4
    case 64:  // v6 (RFC 9580)
      return Result<Search>(Search{SearchKind::fingerprint, std::move(hex)});
    case 32:
      return Result<Search>(problem(501, GPG_ERR_NOT_SUPPORTED,
                                    "v3 (MD5) fingerprints are not supported; use the key ID"));
    default:
      if (!prefixed) return std::nullopt;
      return Result<Search>(problem(400, GPG_ERR_INV_USER_ID,
                                    "malformed key ID or fingerprint \"" + std::string(s) +
                                        "\" (expected 0x and 16, 40 or 64 hex digits)"));
  }
}

}  // namespace

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

const char* op_name(Op op) {
  switch (op) {
    case Op::get: return "get";
    case Op::index: return "index";
    case Op::vindex: return "vindex";
    case Op::stats: return "stats";
  }
  return "?";
}

const char* kind_name(SearchKind kind) {
  switch (kind) {
    case SearchKind::fingerprint: return "fingerprint";
    case SearchKind::long_keyid: return "keyid";
    case SearchKind::short_keyid: return "short_keyid";
    case SearchKind::email: return "email";
    case SearchKind::text: return "text";
  }
  return "?";
}

std::string Search::upstream_form() const { return is_key_id() ? "0x" + value : value; }

std::string percent_decode(std::string_view in, bool plus_is_space) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '%' && i + 2 < in.size() && hex_value(in[i + 1]) >= 0 && hex_value(in[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex_value(in[i + 1]) * 16 + hex_value(in[i + 2])));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string percent_encode(std::string_view in) {
  std::string out;
  out.reserve(in.size() * 3);
  for (unsigned char c : in) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHexUpper[c >> 4]);
      out.push_back(kHexUpper[c & 15]);
    }
  }
  return out;
}

std::vector<std::pair<std::string_view, std::string_view>> split_query(std::string_view query) {
  std::vector<std::pair<std::string_view, std::string_view>> out;
  for_each_part(query, [&](std::string_view k, std::string_view v) { out.emplace_back(k, v); });
  return out;
}

std::optional<std::string> form_field(std::string_view body, std::string_view name) {
  for (const auto& [k, v] : split_query(body)) {
    if (percent_decode(k, true) == name) {
      return percent_decode(v, true);
    }
  }
  return std::nullopt;
}

std::optional<std::string> extract_email(std::string_view text) {
  std::string_view s = trim(text);
  const auto open = s.rfind('<');
  if (open != std::string_view::npos) {
    const auto close = s.find('>', open);
    if (close == std::string_view::npos) return std::nullopt;
    s = trim(s.substr(open + 1, close - open - 1));
  } else if (const auto sp = s.find_last_of(" \t"); sp != std::string_view::npos) {
    s = s.substr(sp + 1);  // "Alice alice@example.org": drop the leading name
  }
  const auto at = s.find('@');
  if (at == std::string_view::npos || at == 0 || at + 1 >= s.size() ||
      s.find('@', at + 1) != std::string_view::npos || s.size() > 254) {
    return std::nullopt;
  }
  for (char c : s) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == '<' || c == '>' || c == '"') {
      return std::nullopt;
    }
  }
  return ascii_lower(s);
}

Result<Search> parse_search(std::string_view raw_encoded) {
  // A raw '+' is a plus inside an email (sq, older GpgFrontend send it unescaped) and a space
  // elsewhere (HTML forms); %2B is always a plus.
  // Without '%' or '+' (a key ID or fingerprint, nearly always) there is nothing to decode.
  std::string decoded;
  std::string_view plain = raw_encoded;
  const bool plus = raw_encoded.find('+') != std::string_view::npos;
  if (plus || raw_encoded.find('%') != std::string_view::npos) {
    decoded = percent_decode(raw_encoded, false);
    if (plus && decoded.find('@') == std::string::npos) decoded = percent_decode(raw_encoded, true);
    plain = decoded;
  }
  const std::string_view s = trim(plain);
  if (s.empty()) {
    return problem(400, GPG_ERR_INV_REQUEST, "empty search");
  }
  if (s.size() > 512) {
    return problem(400, GPG_ERR_TOO_LARGE, "search longer than 512 bytes");
  }
  if (auto hex = parse_hex(s)) {
    return std::move(*hex);
  }
  if (s.find('@') != std::string_view::npos) {
    if (auto email = extract_email(s)) {
      return Search{SearchKind::email, std::move(*email)};
    }
  }
  std::string text;
  for (char c : s) {
    if (is_space(c)) {
      if (!text.empty() && text.back() != ' ') text.push_back(' ');
    } else {
      text.push_back(c);
    }
  }
  return Search{SearchKind::text, std::move(text)};
}

bool has_option(std::string_view list, std::string_view name) {
  while (!list.empty()) {
    const auto comma = list.find(',');
    if (equals_lower(trim(list.substr(0, comma)), name)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

Result<LookupRequest> parse_lookup(std::string_view query) {
  LookupRequest req;
  std::optional<std::string> op;
  std::optional<std::string_view> search;
  // No allocation for the usual parts (the hit path parses every request).
  for_each_part(query, [&](std::string_view raw_key, std::string_view raw_value) {
    const QueryText key(raw_key, true);
    if (equals_lower(key.view(), "op")) {
      op = ascii_lower(QueryText(raw_value, true).view());
    } else if (equals_lower(key.view(), "search")) {
      search = raw_value;
    } else if (equals_lower(key.view(), "options")) {
      const QueryText list(raw_value, true);
      req.machine_readable |= has_option(list.view(), "mr");
      req.no_modify |= has_option(list.view(), "nm");
    }
    // Unknown variables are ignored (SHAW section 3), and so are exact= (an address lookup is
    // always exact here) and fingerprint= (listings always carry full fingerprints).
  });
  if (!op || op->empty()) {
    return problem(400, GPG_ERR_INV_REQUEST, "missing op (expected op=get, op=index or op=vindex)");
  }
  if (*op == "get") {
    req.op = Op::get;
  } else if (*op == "index") {
    req.op = Op::index;
  } else if (*op == "vindex") {
    req.op = Op::vindex;
  } else if (*op == "stats") {
    req.op = Op::stats;
    return req;
  } else {
    return problem(501, GPG_ERR_NOT_IMPLEMENTED, "op=" + *op + " is not supported");
  }
  if (!search) {
    return problem(400, GPG_ERR_INV_REQUEST, "missing search");
  }
  auto s = parse_search(*search);
  if (!s) {
    return s.error();
  }
  req.search = std::move(*s);
  return req;
}

}  // namespace hkpgw::hkp
