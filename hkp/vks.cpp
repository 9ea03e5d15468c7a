#include "hkp/vks.hpp"

#include <boost/json.hpp>

#include "hkp/armor.hpp"
#include "hkp/json.hpp"
#include "hkp/text.hpp"

namespace hkpgw::hkp {

namespace {

bool is_hex(std::string_view s) {
  for (const char c : s) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return !s.empty();
}

// The hex of a by-fingerprint or by-keyid path: 0x dropped, upper-cased.
Result<std::string> hex_value(std::string_view raw, std::string_view what) {
  if (raw.starts_with("0x") || raw.starts_with("0X")) raw.remove_prefix(2);
  if (!is_hex(raw)) {
    return Problem{400, GPG_ERR_INV_VALUE,
                   "not a " + std::string(what) + " (hexadecimal digits expected): \"" +
                       std::string(raw.substr(0, 80)) + "\""};
  }
  return upper_ascii(raw);
}

// Base64 of a binary key, whitespace and line breaks allowed anywhere.
std::optional<std::string> decode_base64(std::string_view text) {
  std::string out, line;
  std::uint32_t acc = 0;
  int bits = 0;
  bool ended = false;
  for (const char c : text) {
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') line += c;
  }
  if (line.empty() || !decode_base64_line(line, out, acc, bits, ended)) return std::nullopt;
  return out;
}

}  // namespace

Result<LookupRequest> parse_vks_lookup(std::string_view path) {
  if (!path.starts_with(kVksPrefix)) return Problem{404, GPG_ERR_NOT_FOUND, "not a VKS path"};
  std::string_view rest = path.substr(kVksPrefix.size());
  const auto slash = rest.find('/');
  const std::string_view what = rest.substr(0, slash);
  const std::string_view raw = slash == std::string_view::npos ? "" : rest.substr(slash + 1);
  LookupRequest req;
  req.op = Op::get;
  req.machine_readable = true;
  if (what == "by-fingerprint") {
    auto hex = hex_value(raw, "fingerprint");
    if (!hex) return hex.error();
    if (hex->size() != 40 && hex->size() != 64) {
      return Problem{400, GPG_ERR_INV_VALUE,
                     "a fingerprint has 40 (v4) or 64 (v6) hexadecimal digits, not " +
                         std::to_string(hex->size())};
    }
    req.search = {SearchKind::fingerprint, std::move(*hex)};
    return req;
  }
  if (what == "by-keyid") {
    auto hex = hex_value(raw, "key ID");
    if (!hex) return hex.error();
    if (hex->size() != 16) {
      return Problem{400, GPG_ERR_INV_VALUE,
                     "a key ID has 16 hexadecimal digits, not " + std::to_string(hex->size()) +
                         " (short key IDs are forgeable)"};
    }
    req.search = {SearchKind::long_keyid, std::move(*hex)};
    return req;
  }
  if (what == "by-email") {
    const std::string decoded = percent_decode(raw, false);
    const auto at = decoded.find('@');
    if (decoded.empty() || at == 0 || at == std::string::npos || at + 1 == decoded.size() ||
        decoded.find_first_of(" <>\t\r\n") != std::string::npos) {
      return Problem{400, GPG_ERR_INV_VALUE,
                     "not an email address: \"" + decoded.substr(0, 80) + "\""};
    }
    req.search = {SearchKind::email, ascii_lower(decoded)};
    return req;
  }
  return Problem{404, GPG_ERR_NOT_FOUND,
                 "no such VKS endpoint: use by-fingerprint, by-keyid, by-email or upload"};
}

namespace {

Result<boost::json::object> parse_object(std::string_view body) {
  boost::json::parse_options options;
  options.max_depth = 32;
  boost::system::error_code ec;
  boost::json::value doc = boost::json::parse(body, ec, {}, options);
  if (ec) return Problem{400, GPG_ERR_INV_VALUE, "the body is not JSON (" + ec.message() + ")"};
  auto* object = doc.if_object();
  if (!object) return Problem{400, GPG_ERR_INV_VALUE, "the body is not a JSON object"};
  return std::move(*object);
}

}  // namespace

Result<Submission> parse_vks_upload(std::string_view body) {
  auto parsed = parse_object(body);
  if (!parsed) return parsed.error();
  const boost::json::object* object = &*parsed;
  const auto* keytext = object->if_contains("keytext");
  if (!keytext || !keytext->is_string()) {
    return Problem{400, GPG_ERR_NO_DATA, "no \"keytext\" string in the JSON object"};
  }
  const boost::json::string& text = keytext->get_string();
  if (text.empty()) return Problem{400, GPG_ERR_NO_DATA, "keytext is empty: no key submitted"};
  Submission s;
  if (std::string_view(text).find("-----BEGIN PGP") != std::string_view::npos) {
    s.keytext = std::string(text);
    return s;
  }
  auto binary = decode_base64(text);
  if (!binary) {
    return Problem{400, GPG_ERR_INV_VALUE, "keytext is neither an armored key nor base64"};
  }
  s.keytext = std::move(*binary);
  return s;
}

Result<VerifyRequest> parse_vks_verify(std::string_view body) {
  auto parsed = parse_object(body);
  if (!parsed) return parsed.error();
  VerifyRequest out;
  const auto* token = parsed->if_contains("token");
  if (!token || !token->is_string() || token->get_string().empty()) {
    return Problem{400, GPG_ERR_NO_DATA, "no \"token\" string in the JSON object"};
  }
  out.token = std::string(token->get_string());
  const auto* addresses = parsed->if_contains("addresses");
  if (!addresses || !addresses->is_array()) {
    return Problem{400, GPG_ERR_NO_DATA, "no \"addresses\" list in the JSON object"};
  }
  if (addresses->get_array().size() > 100) {
    return Problem{400, GPG_ERR_TOO_LARGE, "more than 100 addresses"};
  }
  for (const auto& a : addresses->get_array()) {
    if (!a.is_string()) return Problem{400, GPG_ERR_INV_VALUE, "an address is not a string"};
    out.addresses.push_back(ascii_lower(std::string_view(a.get_string())));
  }
  if (const auto* locale = parsed->if_contains("locale")) {
    if (!locale->is_array() || locale->get_array().size() > 10) {
      return Problem{400, GPG_ERR_INV_VALUE, "locale is not a list of at most 10 strings"};
    }
    for (const auto& l : locale->get_array()) {
      if (!l.is_string() || l.get_string().size() > 35) {
        return Problem{400, GPG_ERR_INV_VALUE, "a locale is not a language tag"};
      }
      out.locale.emplace_back(l.get_string());
    }
  }
  return out;
}

std::string vks_verify_json(const VerifyRequest& r) {
  const auto list = [](const std::vector<std::string>& items) {
    json::array out;
    for (const auto& item : items) out.push_back(json_text(item));
    return out;
  };
  return json_body({{"token", json_text(r.token)},
                    {"addresses", list(r.addresses)},
                    {"locale", list(r.locale)}});
}

Result<VksReply> parse_vks_reply(std::string_view body) {
  constexpr std::size_t kMaxString = 512, kMaxStates = 100;
  auto parsed = parse_object(body);
  if (!parsed) return Problem{502, GPG_ERR_INV_VALUE, "not a JSON object"};
  VksReply out;
  const auto text = [&](const char* key, std::string& to) {
    const auto* v = parsed->if_contains(key);
    if (v && v->is_string() && v->get_string().size() <= kMaxString) to = v->get_string();
  };
  text("key_fpr", out.key_fpr);
  text("token", out.token);
  if (const auto* status = parsed->if_contains("status"); status && status->is_object()) {
    for (const auto& [address, state] : status->get_object()) {
      if (out.status.size() == kMaxStates) break;
      const bool fits = address.size() <= kMaxString && state.is_string() &&
                        state.get_string().size() <= kMaxString;
      if (!fits) continue;
      out.status.emplace_back(std::string(address), std::string(state.get_string()));
    }
  }
  if (out.key_fpr.empty() && out.token.empty() && out.status.empty()) {
    return Problem{502, GPG_ERR_INV_VALUE, "no key_fpr, token or status in the answer"};
  }
  return out;
}

std::optional<std::string> parse_vks_error(std::string_view body) {
  auto parsed = parse_object(body);
  if (!parsed) return std::nullopt;
  const auto* e = parsed->if_contains("error");
  if (!e || !e->is_string()) return std::nullopt;
  return std::string(std::string_view(e->get_string()).substr(0, 512));
}

}  // namespace hkpgw::hkp
